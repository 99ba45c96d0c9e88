# Stage 4: metrics per model, then the results table.

localrules:
    aggregate_results,


rule evaluate_model:
    input:
        ckpt=f"{RESULTS}/models/{{model}}.pt",
        masked_ckpt=masked_checkpoint,
        data=DATASET,
    output:
        metrics=f"{RESULTS}/metrics/{{model}}.json",
        export_fp32=f"{RESULTS}/exports/{{model}}.fp32.sparse.pt.gz",
        export_fp16=f"{RESULTS}/exports/{{model}}.fp16.sparse.pt.gz",
        onnx=f"{RESULTS}/exports/{{model}}.onnx",
        correct=f"{RESULTS}/predictions/{{model}}.json",
    params:
        masked_arg=lambda wildcards, input: f"--masked-ckpt {input.masked_ckpt}" if input.masked_ckpt else "",
        prunable=prunable_json(),
        latency=json.dumps(config["evaluate"]["latency"]),
        normalisation=normalisation_args(),
        eval_batch_size=config["evaluate"]["batch_size"],
        code=code_hash("scripts.evaluate"),
    # A latency measurement must not share the machine with another job (jobs.exclusive).
    threads: TIMING_THREADS if EXCLUSIVE else 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1 if EXCLUSIVE else 0,
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/evaluate_model/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_model/{{model}}.tsv"
    shell:
        "python -m scripts.evaluate model --ckpt {input.ckpt} --data {input.data}"
        " {params.normalisation} --eval-batch-size {params.eval_batch_size}"
        " --prunable {params.prunable:q} --latency {params.latency:q} --threads {threads}"
        " {params.masked_arg} --export-fp32 {output.export_fp32} --export-fp16 {output.export_fp16}"
        " --onnx {output.onnx} --correct {output.correct}"
        " --out {output.metrics} > {log} 2>&1"


rule aggregate_results:
    input:
        metrics=expand(f"{RESULTS}/metrics/{{model}}.json", model=MODELS),
    output:
        csv=f"{RESULTS}/results.csv",
        json=f"{RESULTS}/results.json",
    params:
        rows=table_rows_json(),
        code=code_hash("scripts.evaluate"),
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/aggregate_results.log",
    benchmark:
        f"{BENCHMARKS}/aggregate_results.tsv"
    shell:
        "python -m scripts.evaluate aggregate --metrics {input.metrics}"
        " --experiments {params.rows:q} --csv {output.csv} --json {output.json} > {log} 2>&1"
