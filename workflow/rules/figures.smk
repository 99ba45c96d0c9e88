# Stage 5: figures, one rule per entry of the figure registry (scripts/registry.py
# FIGURES), each drawn by scripts/figures.py plot_<name> from results files only.
# A new figure is a function and a registry entry; its rule comes from this loop.


def figure_inputs(figure):
    """What a figure's function is given, by the kind its registry entry declares."""
    if figure.inputs == "results":
        return {"results": rules.aggregate_results.output.json}
    if figure.inputs == "histories":
        return {"histories": expand(f"{RESULTS}/histories/{{experiment}}.json", experiment=ITERATIVE)}
    return {"ckpts": expand(f"{RESULTS}/models/{{model}}.pt", model=MODELS)}


def figure_outputs(figure):
    """One PNG, or one per model (figures/<name>/<model>.png) for per-checkpoint figures."""
    if figure.inputs == "checkpoints":
        return expand(f"{PAPER}/figures/{figure.name}/{{model}}.png", model=MODELS)
    return [f"{PAPER}/figures/{figure.name}.png"]


def figure_arguments(wildcards, input):
    """The command-line inputs of scripts.figures for whichever inputs this rule has.
    (A function of the job's input: the rule's `shell` runs at job time, after the loop.)"""
    named = dict(input.items())
    if "results" in named:
        return f"--results {shlex.quote(named['results'])}"
    if "histories" in named:
        labels = [shlex.quote(experiment(config, n)["label"]) for n in ITERATIVE]
        return " ".join(["--histories", *map(shlex.quote, named["histories"]), "--labels", *labels])
    return " ".join(["--ckpts", *map(shlex.quote, named["ckpts"]), "--names", *MODELS])


for figure in FIGURES.values():

    rule:
        name:
            f"plot_{figure.name}"
        localrule: True
        input:
            **figure_inputs(figure),
        output:
            pngs=figure_outputs(figure),
        params:
            figure=figure.name,
            inputs=figure_arguments,
        conda:
            ENVIRONMENT
        log:
            f"{LOGS}/plot_{figure.name}.log",
        benchmark:
            f"{BENCHMARKS}/plot_{figure.name}.tsv"
        shell:
            "python -m scripts.figures {params.figure} {params.inputs} --out {output.pngs} > {log} 2>&1"


def figure_files():
    """Every registry figure's file(s), by name: inputs of the rendering and of the PDF."""
    return {name: getattr(rules, f"plot_{name}").output.pngs for name in FIGURES}
