# Stage 3: one pruning job per experiment of the matrix.


rule prune_model:
    input:
        baseline=rules.finetune_baseline.output.ckpt,
        data=DATASET,
    output:
        ckpt=f"{RESULTS}/models/{{experiment}}.pt",
        # The seed's way of saving (masks attached), kept for the file-size paradox.
        masked_ckpt=f"{RESULTS}/models/masked/{{experiment}}.pt",
        history=f"{RESULTS}/histories/{{experiment}}.json",
    params:
        experiment=experiment_json,
        prunable=experiment_prunable_json,
        hyp=finetune_json,
        normalisation=normalisation_args(),
        seed=experiment_seed,
        eval_batch_size=config["evaluate"]["batch_size"],
        memory_format=config["engine"]["memory_format"],
        masked_arg=lambda wildcards, output: f"--masked-ckpt {output.get('masked_ckpt')}"
        if output.get("masked_ckpt") else "",
        code=code_hash("scripts.prune"),
    threads: 4 if EXCLUSIVE else 1
    resources:
        mem_mb=8000,
        runtime=360,
        gpu=1 if EXCLUSIVE else 0,
    message:
        "Pruning {wildcards.experiment} on {threads} thread(s); follow it with: tail -f {log}"
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/prune_model/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/prune_model/{{experiment}}.tsv"
    shell:
        "python -m scripts.prune --baseline {input.baseline} --data {input.data}"
        " --name {wildcards.experiment} --experiment {params.experiment:q}"
        " --prunable {params.prunable:q} --hyp {params.hyp:q} {params.normalisation}"
        " --seed {params.seed} --eval-batch-size {params.eval_batch_size}"
        " --memory-format {params.memory_format} --threads {threads}"
        " --ckpt {output.ckpt} {params.masked_arg} --history {output.history} > {log} 2>&1"


# Channels physically removed (Torch-Pruning): the same job without masks to keep. Its
# experiments are listed; prune_model, which takes any name, yields to it for them.
ruleorder: prune_channels > prune_model


use rule prune_model as prune_channels with:
    output:
        ckpt=f"{RESULTS}/models/{{experiment}}.pt",
        history=f"{RESULTS}/histories/{{experiment}}.json",
    wildcard_constraints:
        experiment=names_regex(CHANNEL_EXPERIMENTS),
    log:
        f"{LOGS}/prune_channels/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/prune_channels/{{experiment}}.tsv"
