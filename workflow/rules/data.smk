# Stage 1: data -> one cached tensor file per preset.


# Downloads need the network: on a cluster they run where snakemake runs.
localrules:
    download_cifar10,
    download_jpeg_mirror,


# No code param: the tarball is torchvision's file, checked against its md5, whatever code
# fetched it; new download code must not fetch it again.


rule download_cifar10:
    output:
        CIFAR_TARBALL,
    log:
        "logs/download_cifar10.log",
    benchmark:
        "benchmarks/download_cifar10.tsv"
    conda:
        ENVIRONMENT
    shell:
        # tee: an offline failure explains itself on the terminal, not only in the log.
        "python -m scripts.data download-cifar10 --out {output} 2>&1 | tee {log}"


# No code param either: the archive is checked by its decoded content when prepare_data reads it.
rule download_jpeg_mirror:
    output:
        JPEG_MIRROR_ARCHIVE,
    log:
        "logs/download_jpeg_mirror.log",
    benchmark:
        "benchmarks/download_jpeg_mirror.tsv"
    conda:
        ENVIRONMENT
    shell:
        "python -m scripts.data download-jpeg-mirror --out {output} 2>&1 | tee {log}"


rule prepare_data:
    input:
        data_input(),
    output:
        dataset=DATASET,
        summary=DATA_SUMMARY,
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data.tsv"
    conda:
        ENVIRONMENT
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        job=jobs.data_job(config).to_json(),
        input_arg=lambda wildcards, input: (
            f"--input {shlex.quote(input[0])}" if input else ""
        ),
        code=code_hash("scripts.data"),
    shell:
        "python -m scripts.data prepare --job {params.job:q} {params.input_arg}"
        " --out {output.dataset} --summary {output.summary} > {log} 2>&1"
