# Stage 6: provenance, then the paper rendered from the measured numbers.


localrules:
    verify_published,
    record_provenance,
    write_render_spec,
    render_paper,
    compile_pdf,
    publish_numbers,


PAPER_FIGURES = figure_files()
RENDER = render_spec()
RENDER_SPEC = f"{RESULTS}/render.json"


rule record_provenance:
    input:
        weights=weights_input(),
    output:
        json=report(
            PROVENANCE_JSON,
            caption="../report/provenance.rst",
            category="7 Provenance",
        ),
    log:
        f"{LOGS}/record_provenance.log",
    benchmark:
        f"{BENCHMARKS}/record_provenance.tsv"
    conda:
        ENVIRONMENT
    params:
        # A new config, or new code of a stage the paper shows, re-records provenance (the job
        # reads the git commit itself) and so re-renders the paper; a commit that changes
        # neither does not: the same code gives the same numbers.
        job=jobs.provenance_job(
            config, {m: code_hash(m) for m in PAPER_STAGES}
        ).to_json(),
        code=code_hash("scripts.provenance"),
        weights_file=lambda wildcards, input: (
            f"--weights-file {input.weights}" if input.weights else ""
        ),
    shell:
        "python -m scripts.provenance --job {params.job:q} {params.weights_file} --out {output.json} > {log} 2>&1"


# What the paper is rendered from, once, as a file: render_paper reads it, and publish_numbers
# copies it beside the published paper, where `scripts.publish check` re-renders from it.
rule write_render_spec:
    # Python, not a shell command: the spec holds the whole config, longer than one argument may be.
    output:
        spec=RENDER_SPEC,
    log:
        f"{LOGS}/write_render_spec.log",
    params:
        # The file's text (paths relative to its folder, templates to the repository): a new
        # config, model or path rewrites it, and so re-renders the paper; a fresh clone does not.
        spec=RENDER.text(os.path.dirname(RENDER_SPEC)),
    run:
        Path(output.spec).write_text(params.spec)


rule render_paper:
    input:
        **{f"figure_{name}": files for name, files in PAPER_FIGURES.items()},
        spec=RENDER_SPEC,
        results=RENDER.numbers.results,
        histories=RENDER.numbers.histories,
        data_summary=RENDER.numbers.data_summary,
        provenance=RENDER.numbers.provenance,
        latency=RENDER.numbers.latency,
        # The spec's other numbers are read, not inputs: the benchmark and per-image files are
        # written with their jobs' outputs, which the results table already waits for; as inputs
        # they slowed planning (three files per experiment).
        template=RENDER.sources.template,
        sections=SECTION_TEMPLATES,
        latex_template=RENDER.sources.latex_template,
        bibliography=RENDER.sources.bibliography,
        seed_reference=RENDER.sources.seed_reference,
    output:
        md=report(PAPER_MD, caption="../report/paper.rst", category="6 Paper"),
        tex=report(PAPER_TEX, caption="../report/paper.rst", category="6 Paper"),
    log:
        f"{LOGS}/render_paper.log",
    benchmark:
        f"{BENCHMARKS}/render_paper.tsv"
    conda:
        ENVIRONMENT
    params:
        code=code_hash("scripts.paper"),
    shell:
        "python -m scripts.paper --spec {input.spec:q} --md {output.md:q} --tex {output.tex:q} > {log} 2>&1"


# Every run verifies its paper: the tables' numbers recomputed from the checkpoints, the
# accuracies recounted from the per-image predictions (seed replicas' included). A cluster job,
# not a local rule: it loads every checkpoint, which on SLURM is no work for the login node
# (pandoc comes with the environment's pypandoc-binary; nothing is downloaded).
rule crosscheck_paper:
    input:
        results=RESULTS_JSON,
        md=PAPER_MD,
        tex=PAPER_TEX,
        models=expand(f"{RESULTS}/models/{{model}}.pt", model=MODELS),
        predictions=expand(f"{RESULTS}/predictions/{{model}}.json", model=ALL_MODELS),
    output:
        report=report(
            CROSSCHECK_TXT, caption="../report/crosscheck.rst", category="6 Paper"
        ),
    log:
        f"{LOGS}/crosscheck_paper.log",
    benchmark:
        f"{BENCHMARKS}/crosscheck_paper.tsv"
    conda:
        ENVIRONMENT
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models_dir=lambda wildcards, input: os.path.dirname(input.models[0]),
        job=jobs.crosscheck_job(config).to_json(),
        code=code_hash("scripts.crosscheck"),
    shell:
        "python -m scripts.crosscheck --job {params.job:q} --results {input.results} --models-dir {params.models_dir}"
        " --predictions {input.predictions} --md {input.md} --tex {input.tex} --out {output.report} > {log} 2>&1"


rule compile_pdf:
    input:
        tex=PAPER_TEX,
        figures=[f for files in PAPER_FIGURES.values() for f in files],
        # the LaTeX paper shows each figure's PDF, written beside its PNG by the same job
        vectors=[
            str(Path(f).with_suffix(".pdf"))
            for files in PAPER_FIGURES.values()
            for f in files
        ],
    output:
        pdf=report(
            f"{PAPER}/paper.pdf", caption="../report/paper.rst", category="6 Paper"
        ),
    log:
        f"{LOGS}/compile_pdf.log",
    benchmark:
        f"{BENCHMARKS}/compile_pdf.tsv"
    # TeX itself comes from the system (README: Debian's texlive packages); conda-forge has
    # no working TeX Live, so the environment documents only the Python side.
    conda:
        ENVIRONMENT
    shell:
        # latexmk's build files go to a scratch folder; only the PDF lands in the paper folder.
        "tmp=$(mktemp -d) && latexmk -pdf -interaction=nonstopmode -halt-on-error -output-directory=$tmp"
        " -cd {input.tex} > {log} 2>&1 && mv $tmp/paper.pdf {output.pdf} && rm -rf $tmp"


# Rungs 1 and 2 of the README's ladder, on the paper as committed: re-rendered byte for byte
# from its numbers, and every table number recounted from the per-image predictions and the
# per-model metrics. No input or output: it reads the committed files and builds nothing.
rule verify_published:
    log:
        f"{LOGS}/verify_published.log",
    conda:
        ENVIRONMENT
    params:
        paper=PAPER,
        code=code_hash("scripts.publish"),
    shell:
        # tee: the verdicts are the point, on the terminal as in the log
        "(python -m scripts.publish check {params.paper:q} && python -m scripts.publish recount {params.paper:q})"
        " 2>&1 | tee {log}"


# The numbers the paper was rendered from, beside it (<paper>/numbers, a few MB): committed with the
# paper, they rebuild it byte for byte (scripts/publish.py, "check") without the checkpoints.
rule publish_numbers:
    input:
        spec=RENDER_SPEC,
        md=PAPER_MD,
        tex=PAPER_TEX,
        crosscheck=CROSSCHECK_TXT,
        csv=RESULTS_CSV,
        metrics=expand(f"{RESULTS}/metrics/{{model}}.json", model=ALL_MODELS),
        # the seed replicas' per-image records (the spec has the tabled models'): the seed
        # table's numbers are recounted from them (`scripts.publish recount`)
        replica_predictions=expand(
            f"{RESULTS}/predictions/{{model}}.json",
            model=[*REPLICAS, *BASELINE_REPLICAS],
        ),
    output:
        numbers=directory(f"{PAPER}/numbers"),
    log:
        f"{LOGS}/publish_numbers.log",
    conda:
        ENVIRONMENT
    params:
        paper_dir=lambda wildcards, input: os.path.dirname(input.md),
        code=code_hash("scripts.publish"),
    shell:
        "python -m scripts.publish collect --spec {input.spec:q} --paper-dir {params.paper_dir:q}"
        " --extra {input.crosscheck} {input.csv} {input.metrics} {input.replica_predictions} > {log} 2>&1"
