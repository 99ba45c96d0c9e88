# Stage 5: figures, from the results table, histories and checkpoints only.


localrules:
    plot_pareto,
    plot_leaderboard,
    plot_latency_macs,
    plot_evolution,
    plot_kernel_grids,


rule plot_pareto:
    input:
        results=rules.aggregate_results.output.json,
    output:
        png=f"{PAPER}/figures/pareto.png",
    params:
        code=code_hash("scripts.figures"),
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/plot_pareto.log",
    benchmark:
        f"{BENCHMARKS}/plot_pareto.tsv"
    shell:
        "python -m scripts.figures pareto --results {input.results} --out {output.png} > {log} 2>&1"


rule plot_latency_macs:
    input:
        results=rules.aggregate_results.output.json,
    output:
        png=f"{PAPER}/figures/latency_macs.png",
    params:
        code=code_hash("scripts.figures"),
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/plot_latency_macs.log",
    benchmark:
        f"{BENCHMARKS}/plot_latency_macs.tsv"
    shell:
        "python -m scripts.figures latency-macs --results {input.results} --out {output.png} > {log} 2>&1"


rule plot_leaderboard:
    input:
        results=rules.aggregate_results.output.json,
    output:
        png=f"{PAPER}/figures/leaderboard.png",
    params:
        code=code_hash("scripts.figures"),
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/plot_leaderboard.log",
    benchmark:
        f"{BENCHMARKS}/plot_leaderboard.tsv"
    shell:
        "python -m scripts.figures leaderboard --results {input.results} --out {output.png} > {log} 2>&1"


rule plot_evolution:
    input:
        histories=expand(f"{RESULTS}/histories/{{experiment}}.json", experiment=ITERATIVE),
    output:
        png=f"{PAPER}/figures/evolution.png",
    params:
        labels=[shlex.quote(experiment(config, n)["label"]) for n in ITERATIVE],
        code=code_hash("scripts.figures"),
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/plot_evolution.log",
    benchmark:
        f"{BENCHMARKS}/plot_evolution.tsv"
    shell:
        "python -m scripts.figures evolution --histories {input.histories} --labels {params.labels}"
        " --out {output.png} > {log} 2>&1"


rule plot_kernel_grids:
    input:
        ckpts=expand(f"{RESULTS}/models/{{model}}.pt", model=MODELS),
    output:
        # Their folder, not one output per model: Snakemake tries a requested file against
        # every output of a rule, which made planning quadratic in the number of models.
        pngs=directory(f"{PAPER}/figures/kernels"),
    params:
        names=MODELS,
        pngs=KERNEL_GRIDS,
        code=code_hash("scripts.figures"),
    conda:
        ENVIRONMENT
    log:
        f"{LOGS}/plot_kernel_grids.log",
    benchmark:
        f"{BENCHMARKS}/plot_kernel_grids.tsv"
    shell:
        "python -m scripts.figures kernels --ckpts {input.ckpts} --names {params.names}"
        " --out {params.pngs} > {log} 2>&1"
