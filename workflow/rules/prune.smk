# Stage 3: one pruning job per experiment of the matrix.


rule prune_model:
    input:
        baseline=rules.finetune_baseline.output.ckpt,
        data=DATASET,
    output:
        ckpt=f"{RESULTS}/models/{{experiment}}.pt",
        masked_ckpt=f"{RESULTS}/models/masked/{{experiment}}.pt",
        history=f"{RESULTS}/histories/{{experiment}}.json",
    params:
        experiment=experiment_json,
        prunable=prunable_json(),
        hyp=json.dumps(config["prune"]["finetune"]),
        normalisation=normalisation_args(),
        seed=config["seed"],
        eval_batch_size=config["evaluate"]["batch_size"],
    threads: 4
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
        " --seed {params.seed} --eval-batch-size {params.eval_batch_size} --threads {threads}"
        " --ckpt {output.ckpt} --masked-ckpt {output.masked_ckpt} --history {output.history} > {log} 2>&1"
