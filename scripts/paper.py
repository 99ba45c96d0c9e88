"""Stage 6 - paper: render the manuscript from a render specification, as markdown and as LaTeX.

    python -m scripts.paper --spec <results>/render.json --md paper.md --tex paper.tex

The spec (scripts.lib.planning.jobs.RenderSpec, written by the workflow's write_render_spec
rule) names every file the paper is rendered from and holds the effective config; the
library (scripts.lib.report.manuscript) reads them and renders. `publish check` renders
from the spec beside a published paper the same way.
"""
from __future__ import annotations

import argparse

from scripts.lib.files import setup_logging
from scripts.lib.planning.jobs import JobError
from scripts.lib.planning.render_spec import RenderSpec
from scripts.lib.report.manuscript import render_spec


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True, help="render.json: the files by role and the effective config")
    p.add_argument("--md", required=True)
    p.add_argument("--tex", required=True)
    args = p.parse_args(argv)
    try:
        spec = RenderSpec.read(args.spec)
    except JobError as e:
        p.error(f"--spec {args.spec}: {e}")
    render_spec(spec, args.md, args.tex)


if __name__ == "__main__":
    main()
