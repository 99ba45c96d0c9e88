# Released models: the published models packed for a public deposit, and the check that
# re-evaluates such an archive against the paper's accuracies (README, verification ladder).


localrules:
    release,


RELEASE_ARCHIVE = f"{RESULTS}/release/models.tar.gz"


# Not part of `all`: about a gigabyte for the published run, packed on request.
rule release:
    input:
        RELEASE_ARCHIVE,
        f"{RELEASE_ARCHIVE}.sha256",


rule pack_release:
    input:
        ckpts=expand(f"{RESULTS}/models/{{model}}.pt", model=MODELS),
        onnx=expand(f"{RESULTS}/exports/{{model}}.onnx", model=MODELS),
        onnx_int8=expand(f"{RESULTS}/exports/{{model}}.int8.onnx", model=MODELS),
        predictions=expand(f"{RESULTS}/predictions/{{model}}.json", model=MODELS),
        results=RESULTS_JSON,
        provenance=PROVENANCE_JSON,
        data_summary=DATA_SUMMARY,
    output:
        archive=RELEASE_ARCHIVE,
        sha256=f"{RELEASE_ARCHIVE}.sha256",
    log:
        f"{LOGS}/pack_release.log",
    benchmark:
        f"{BENCHMARKS}/pack_release.tsv"
    conda:
        ENVIRONMENT
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        models=lambda wildcards, input: " ".join(
            f"--model {m} {c} {o} {q} {p}"
            for m, c, o, q, p in zip(
                MODELS, input.ckpts, input.onnx, input.onnx_int8, input.predictions
            )
        ),
        job=jobs.evaluate_job(config).to_json(),
        root=f"{config['preset']}-models",
        code=code_hash("scripts.release"),
    shell:
        "python -m scripts.release pack --results {input.results} --provenance {input.provenance}"
        " --data-summary {input.data_summary} --evaluate-job {params.job:q} --root {params.root}"
        " {params.models} --out {output.archive} --sha256 {output.sha256} > {log} 2>&1"


# Rung 4: no output, so it runs whenever it is asked for. The archive is a param, not an input:
# a missing one is reported with where to get it, never rebuilt from a whole run; the paper's
# results file likewise (an input would be rewritten by publish_numbers first).
rule verify_release:
    input:
        data=DATASET,
    log:
        f"{LOGS}/verify_release.log",
    conda:
        ENVIRONMENT
    threads: 2
    params:
        archive=config["release_archive"],
        published=f"{PAPER}/numbers/results.json",
        code=code_hash("scripts.release"),
    shell:
        "python -m scripts.release verify {params.archive:q} --data {input.data}"
        " --published {params.published:q} --threads {threads} 2>&1 | tee {log}"
