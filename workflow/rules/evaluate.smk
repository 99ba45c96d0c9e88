# Stage 4: metrics per model, one timing job over all of them, then the results table.


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
        onnx_int8=f"{RESULTS}/exports/{{model}}.int8.onnx",
        int8_report=f"{RESULTS}/int8/{{model}}.json",
        correct=f"{RESULTS}/predictions/{{model}}.json",
    log:
        f"{LOGS}/evaluate_model/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_model/{{model}}.tsv"
    conda:
        ENVIRONMENT
    # Nothing here is timed (time_models is); jobs.exclusive only decides how jobs share the cores.
    threads: TIMING_THREADS if EXCLUSIVE else 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1 if EXCLUSIVE else 0,
    params:
        job=jobs.evaluate_job(config).to_json(),
        masked_arg=lambda wildcards, input: (
            f"--masked-ckpt {input.masked_ckpt}" if input.masked_ckpt else ""
        ),
        code=code_hash("scripts.evaluate"),
    shell:
        "python -m scripts.evaluate --job {params.job:q} --ckpt {input.ckpt} --data {input.data} --threads {threads}"
        " {params.masked_arg} --export-fp32 {output.export_fp32} --export-fp16 {output.export_fp16}"
        " --onnx {output.onnx} --onnx-int8 {output.onnx_int8} --int8-report {output.int8_report}"
        " --correct {output.correct}"
        " --out {output.metrics} > {log} 2>&1"


# Every model timed in one process, round-robin, alone on the machine (all cores, the GPU slot):
# the latency tables, speed-ups and the latency figure read only this file.
rule time_models:
    input:
        ckpts=expand(f"{RESULTS}/models/{{model}}.pt", model=MODELS),
        onnx=expand(f"{RESULTS}/exports/{{model}}.onnx", model=MODELS),
        onnx_int8=expand(f"{RESULTS}/exports/{{model}}.int8.onnx", model=MODELS),
        sparse_probe=sparse_probe_checkpoint(),
    output:
        latency=report(
            LATENCY_JSON, caption="../report/latency.rst", category="4 Evaluation"
        ),
    log:
        f"{LOGS}/time_models.log",
    benchmark:
        f"{BENCHMARKS}/time_models.tsv"
    conda:
        ENVIRONMENT
    threads: TIMING_THREADS
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    params:
        models=lambda wildcards, input: " ".join(
            f"--model {m} {c} {o} {q}"
            for m, c, o, q in zip(MODELS, input.ckpts, input.onnx, input.onnx_int8)
        ),
        probe=lambda wildcards, input: (
            f"--sparse-probe {input.sparse_probe}" if input.sparse_probe else ""
        ),
        job=jobs.timing_job(config).to_json(),
        code=code_hash("scripts.timing"),
    shell:
        "python -m scripts.timing --job {params.job:q} {params.models} {params.probe}"
        " --threads {threads} --out {output.latency} > {log} 2>&1"


rule aggregate_results:
    input:
        metrics=expand(f"{RESULTS}/metrics/{{model}}.json", model=ALL_MODELS),
        latency=LATENCY_JSON,
    output:
        csv=report(
            RESULTS_CSV, caption="../report/results.rst", category="4 Evaluation"
        ),
        json=RESULTS_JSON,
    log:
        f"{LOGS}/aggregate_results.log",
    benchmark:
        f"{BENCHMARKS}/aggregate_results.tsv"
    conda:
        ENVIRONMENT
    params:
        job=jobs.results_job(config).to_json(),
        code=code_hash("scripts.results"),
    shell:
        "python -m scripts.results --job {params.job:q} --metrics {input.metrics}"
        " --latency {input.latency} --csv {output.csv} --json {output.json} > {log} 2>&1"
