# Stage 3, controls: what separates pruning from training. Dense rows of the matrix (strategy
# dense) fine-tune the baseline with a pruned row's schedule and budget, removing nothing; a
# small dense net (config key small_dense) is MobileNetV2 at the width whose MACs match a
# channel-removal experiment's model, trained from scratch (Liu et al., ICLR 2019).


# The prune job, removing nothing: no masks, hence no checkpoint with masks attached.
ruleorder: finetune_dense > prune_model


use rule prune_model as finetune_dense with:
    output:
        ckpt=f"{RESULTS}/models/{{experiment}}.pt",
        history=f"{RESULTS}/histories/{{experiment}}.json",
    log:
        f"{LOGS}/finetune_dense/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune_dense/{{experiment}}.tsv"
    wildcard_constraints:
        experiment=names_regex(DENSE_EXPERIMENTS),
    message:
        "Fine-tuning {wildcards.experiment} without pruning (a dense control) on {threads} thread(s); follow it with: tail -f {log}"


# The width multiplier whose MACs come closest to the matched model's, counted from its checkpoint.
rule match_width:
    input:
        matched=lambda wildcards: f"{RESULTS}/models/{SMALL_DENSE[wildcards.control]['matches']}.pt",
    output:
        width=f"{RESULTS}/controls/{{control}}.width.json",
    log:
        f"{LOGS}/match_width/{{control}}.log",
    benchmark:
        f"{BENCHMARKS}/match_width/{{control}}.tsv"
    wildcard_constraints:
        control=names_regex(list(SMALL_DENSE)),
    # The small dense net's chain, as its matched row and the net (common.smk).
    priority: LONG_CHAIN_PRIORITY
    conda:
        ENVIRONMENT
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        job=lambda wildcards: jobs.width_job(config, wildcards.control).to_json(),
        code=code_hash("scripts.width"),
    shell:
        "python -m scripts.width --job {params.job:q} --matched {input.matched} --out {output.width} > {log} 2>&1"


# The baseline's training program at that width, from random initialisation, for the baseline's
# epochs plus the matched experiment's fine-tuning; resumes after a kill as the baseline does.
ruleorder: train_small_dense > prune_model


rule train_small_dense:
    input:
        data=DATASET,
        width=rules.match_width.output.width,
    output:
        ckpt=f"{RESULTS}/models/{{control}}.pt",
        history=f"{RESULTS}/histories/{{control}}.json",
    log:
        f"{LOGS}/train_small_dense/{{control}}.log",
    benchmark:
        f"{BENCHMARKS}/train_small_dense/{{control}}.tsv"
    wildcard_constraints:
        control=names_regex(list(SMALL_DENSE)),
    # Its chain's last and longest job: ahead of the fine-tuning jobs (common.smk).
    priority: LONG_CHAIN_PRIORITY
    conda:
        ENVIRONMENT
    threads: 4 if EXCLUSIVE else 1
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=1 if EXCLUSIVE else 0,
    params:
        job=lambda wildcards: jobs.small_dense_job(config, wildcards.control).to_json(),
        epochs=lambda wildcards: jobs.small_dense_job(config, wildcards.control).hyp[
            "epochs"
        ],
        code=code_hash("scripts.finetune"),
    message:
        "Training the small dense net {wildcards.control} from scratch ({params.epochs} epochs) on {threads} thread(s); follow it with: tail -f {log}"
    shell:
        "python -m scripts.finetune --job {params.job:q} --data {input.data} --width {input.width}"
        " --threads {threads} --ckpt {output.ckpt} --history {output.history} > {log} 2>&1"
