# Stage 2: fine-tune MobileNetV2 into the baseline.


localrules:
    fetch_imagenet_weights,


# No code param: the file is checked against the hash in its name, whatever code fetched it.
rule fetch_imagenet_weights:
    output:
        IMAGENET_WEIGHTS,
    log:
        "logs/fetch_imagenet_weights.log",
    benchmark:
        "benchmarks/fetch_imagenet_weights.tsv"
    conda:
        ENVIRONMENT
    shell:
        # tee: an offline failure explains itself on the terminal, not only in the log.
        "python -m scripts.model fetch-imagenet --out {output} 2>&1 | tee {log}"


rule finetune_baseline:
    input:
        data=DATASET,
        weights=weights_input(),
    output:
        ckpt=f"{RESULTS}/models/{BASELINE}.pt",
        history=f"{RESULTS}/histories/{BASELINE}.json",
    log:
        f"{LOGS}/finetune_baseline.log",
    benchmark:
        f"{BENCHMARKS}/finetune_baseline.tsv"
    # First when another job is ready too (provenance, the render spec): every training job
    # waits for this one (baseline replicas by input), and it takes every core.
    priority: BASELINE_PRIORITY
    conda:
        ENVIRONMENT
    threads: 4
    # Portable requests only; partitions, accounts and GPU models: workflow/profiles/slurm.
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=1,
    params:
        job=jobs.train_job(config).to_json(),
        epochs=config["train"]["epochs"],
        weights_arg=lambda wildcards, input: (
            f"--weights {shlex.quote(str(input.weights))}" if input.weights else ""
        ),
        code=code_hash("scripts.finetune"),
    message:
        "Training the baseline ({params.epochs} epochs) on {threads} thread(s); follow it with: tail -f {log}"
    shell:
        "python -m scripts.finetune --job {params.job:q} --data {input.data} {params.weights_arg}"
        " --threads {threads} --ckpt {output.ckpt} --history {output.history} > {log} 2>&1"


# The baseline again with another seed of config key baseline_seeds (its init, batch order and
# augmentation): the replicas of that seed prune it, so the seed-to-seed spread covers training.
ruleorder: train_baseline_replica > prune_model


use rule finetune_baseline as train_baseline_replica with:
    input:
        data=DATASET,
        weights=weights_input(),
        # Not read: it makes the replica start after the baseline of seed 0. By priority alone, a
        # replica took the one free core while a short job held the other, and the baseline (all
        # cores) then waited for the replica's two hours with a core idle. The cost: a retrained
        # baseline retrains its replicas too.
        after=f"{RESULTS}/models/{BASELINE}.pt",
    output:
        ckpt=f"{RESULTS}/models/{{baseline_replica}}.pt",
        history=f"{RESULTS}/histories/{{baseline_replica}}.json",
    log:
        f"{LOGS}/finetune_baseline/{{baseline_replica}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune_baseline/{{baseline_replica}}.tsv"
    wildcard_constraints:
        baseline_replica=names_regex(list(BASELINE_REPLICAS)),
    # Ahead of the fine-tuning jobs when the baseline is done: the longest chain (common.smk).
    priority: LONG_CHAIN_PRIORITY
    # One core beside the fine-tuning jobs, like them (config key jobs.exclusive).
    threads: 4 if EXCLUSIVE else 1
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=1 if EXCLUSIVE else 0,
    params:
        job=lambda wildcards: jobs.train_job(
            config, BASELINE_REPLICAS[wildcards.baseline_replica]["seed"]
        ).to_json(),
        epochs=config["train"]["epochs"],
        weights_arg=lambda wildcards, input: (
            f"--weights {shlex.quote(str(input.weights))}" if input.weights else ""
        ),
        code=code_hash("scripts.finetune"),
    message:
        "Training {wildcards.baseline_replica} ({params.epochs} epochs) on {threads} thread(s); follow it with: tail -f {log}"
