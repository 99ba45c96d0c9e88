# Stage 5: figures, one rule per entry of the figure registry (scripts/lib/planning/registry.py
# FIGURES), each drawn by plot_<name> of scripts/lib/report/figures.py from results files only.
# A new figure is a function, a registry entry and a caption (scripts/lib/report/captions.py);
# its rule comes from this loop.


for figure in FIGURES.values():

    rule:
        name:
            f"plot_{figure.name}"
        input:
            **figure_inputs(figure),
        output:
            pngs=report_figure(figure),
            pdfs=figure_pdfs(figure),
        log:
            f"{LOGS}/plot_{figure.name}.log",
        benchmark:
            f"{BENCHMARKS}/plot_{figure.name}.tsv"
        localrule: True
        conda:
            ENVIRONMENT
        params:
            job=jobs.figure_job(config, figure.name, LITERATURE).to_json(),
            caption=figure_caption(figure.name),  # the report's caption (workflow/report/figure.rst)
            inputs=figure_arguments,
            pngs=figure_pngs(figure),
            code=code_hash("scripts.figures"),
        shell:
            "python -m scripts.figures --job {params.job:q} {params.inputs} --out {params.pngs} > {log} 2>&1"
