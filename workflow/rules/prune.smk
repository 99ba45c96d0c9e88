# Stage 3: one pruning job per experiment of the matrix.


rule prune_model:
    input:
        # .get: Snakemake asks this of every rule that could make a models/ file (a baseline
        # replica's too) before the rule order picks one; an unknown name fails at params.
        baseline=lambda wildcards: f"{RESULTS}/models/{BASELINE_OF.get(wildcards.experiment, BASELINE)}.pt",
        data=DATASET,
    output:
        ckpt=f"{RESULTS}/models/{{experiment}}.pt",
        # Saved with PyTorch's masks attached (weight_orig + weight_mask): the file-size question's foil.
        masked_ckpt=f"{RESULTS}/models/masked/{{experiment}}.pt",
        history=f"{RESULTS}/histories/{{experiment}}.json",
    log:
        f"{LOGS}/prune_model/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/prune_model/{{experiment}}.tsv"
    # A small dense net's matched row first: it leads a long chain (common.smk).
    priority: lambda w: LONG_CHAIN_PRIORITY if w.experiment in MATCHED_BY_SMALL_DENSE else 0
    conda:
        ENVIRONMENT
    threads: 4 if EXCLUSIVE else 1
    resources:
        mem_mb=8000,
        runtime=360,
        gpu=1 if EXCLUSIVE else 0,
    params:
        job=lambda wildcards: jobs.prune_job(
            config, RUN_SETTINGS[wildcards.experiment]
        ).to_json(),
        masked_arg=lambda wildcards, output: (
            f"--masked-ckpt {output.get('masked_ckpt')}"
            if output.get("masked_ckpt")
            else ""
        ),
        code=code_hash("scripts.prune"),
    message:
        "Pruning {wildcards.experiment} on {threads} thread(s); follow it with: tail -f {log}"
    shell:
        "python -m scripts.prune --job {params.job:q} --baseline {input.baseline} --data {input.data}"
        " --threads {threads} --ckpt {output.ckpt} {params.masked_arg} --history {output.history} > {log} 2>&1"


# Channels physically removed (Torch-Pruning): the same job without masks to keep. Its
# experiments are listed; prune_model, which takes any name, yields to it for them.
ruleorder: prune_channels > prune_model


use rule prune_model as prune_channels with:
    output:
        ckpt=f"{RESULTS}/models/{{experiment}}.pt",
        history=f"{RESULTS}/histories/{{experiment}}.json",
    log:
        f"{LOGS}/prune_channels/{{experiment}}.log",
    benchmark:
        f"{BENCHMARKS}/prune_channels/{{experiment}}.tsv"
    wildcard_constraints:
        experiment=names_regex(CHANNEL_EXPERIMENTS),
