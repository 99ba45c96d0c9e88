# Stage 1: data -> one cached tensor file per preset.

# Downloads need the network: on a cluster they run where snakemake runs.
localrules:
    download_cifar10,


# No code param: the tarball is torchvision's file, checked against its md5, whatever code
# fetched it; new download code must not fetch it again.

rule download_cifar10:
    output:
        CIFAR_TARBALL,
    conda:
        ENVIRONMENT
    log:
        "logs/download_cifar10.log",
    benchmark:
        "benchmarks/download_cifar10.tsv"
    shell:
        # tee: an offline failure explains itself on the terminal, not only in the log.
        "python -m scripts.data download-cifar10 --out {output} 2>&1 | tee {log}"


rule prepare_data:
    input:
        data_input(),
    output:
        dataset=DATASET,
        summary=DATA_SUMMARY,
    params:
        source=config["data"]["source"],
        path_arg=f"--path {shlex.quote(config['data']['path'])}" if config["data"]["path"] else "",
        val_fraction=config["data"]["val_fraction"],
        num_classes=config["data"]["num_classes"],
        image_size=config["data"]["image_size"],
        synthetic=config["data"]["synthetic"],
        seed=config["seed"],
        code=code_hash("scripts.data"),
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data.tsv"
    shell:
        "python -m scripts.data prepare --source {params.source} {params.path_arg}"
        " --val-fraction {params.val_fraction} --num-classes {params.num_classes}"
        " --image-size {params.image_size} --seed {params.seed}"
        " --synthetic-train-size {params.synthetic[train_size]}"
        " --synthetic-test-size {params.synthetic[test_size]}"
        " --synthetic-noise {params.synthetic[noise]}"
        " --out {output.dataset} --summary {output.summary} > {log} 2>&1"
