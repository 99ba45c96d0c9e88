"""The manuscript, rendered once and written twice.

One template, paper/templates/paper.md.j2, holds every sentence, table and figure of the
paper, written in pandoc's markdown. Jinja fills it from the context (context.py); pandoc
then writes the same document as GitHub markdown (paper.md) and as LaTeX (paper.tex, with
the preamble paper/templates/paper.latex). Nothing is stated in one format only, so the two
cannot drift.
"""
from __future__ import annotations

from pathlib import Path

import jinja2
import pypandoc

from scripts.lib.files import atomic_output
from scripts.lib.planning.render_spec import RenderSpec
from scripts.lib.planning.registry import CHANNELS, MASKING, STRATEGIES
from scripts.lib.report.controls import FALL_STATED
from scripts.lib.report.context import Context, build_context
from scripts.lib.report.inputs import load
from scripts.lib.report.phrases import FILTERS
from scripts.lib.report.stats import ALPHA

# pandoc: markdown in; GitHub markdown and LaTeX out. The first-level heading is the title:
# LaTeX takes it as \title (heading levels shifted by one), GitHub shows it as a heading.
PANDOC_FROM = "markdown"
# Figures are linked without an extension: paper.md shows the PNG; LaTeX is given the bare name
# and graphicx picks the PDF (vector) the figure rules write beside each PNG.
PANDOC_MD = ["--wrap=none", "--default-image-extension=png"]
PANDOC_TEX = ["--wrap=none", "--standalone", "--shift-heading-level-by=-1"]
# Citations: pandoc's citeproc formats [@key] and the reference list (where the manuscript puts
# its ::: {#refs} block) in both outputs alike, so md and tex cite the same way. pandoc only
# warns about a key the bibliography lacks; --fail-if-warnings makes that an error.
CITATIONS = ["--citeproc", "--fail-if-warnings"]
# What the template knows besides the run: the code's registries, the paired tests' level and the
# fall of validation accuracy the paper states.
GLOBALS = {"strategies": STRATEGIES, "masking": MASKING, "channels": CHANNELS, "alpha": ALPHA,
           "fall_stated": FALL_STATED}


def environment(template_dir) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


def render_source(template, context: Context | dict) -> str:
    """The manuscript in pandoc's markdown: the one definition of the paper."""
    template = Path(template)
    variables = context.variables() if isinstance(context, Context) else context
    return environment(template.parent).get_template(template.name).render(**variables)


def citations(bibliography) -> list[str]:
    return [*CITATIONS, f"--bibliography={bibliography}"] if bibliography else []


def to_markdown(source: str, bibliography=None) -> str:
    return pypandoc.convert_text(source, "gfm", format=PANDOC_FROM, extra_args=PANDOC_MD + citations(bibliography))


def to_latex(source: str, latex_template, bibliography=None) -> str:
    return pypandoc.convert_text(source, "latex", format=PANDOC_FROM,
                                 extra_args=[*PANDOC_TEX, f"--template={latex_template}", *citations(bibliography)])


def render(template, latex_template, bibliography, context: Context, md_out, tex_out) -> None:
    source = render_source(template, context)
    for text, out in ((to_markdown(source, bibliography), md_out),
                      (to_latex(source, latex_template, bibliography), tex_out)):
        with atomic_output(out) as tmp:
            tmp.write_text(text)


def render_spec(spec: RenderSpec, md_out, tex_out, link_dir=None) -> None:
    """The paper a spec (paths to open) describes, into md_out and tex_out. Figures are linked
    relative to `link_dir`, by default md_out's folder (publish renders elsewhere to compare)."""
    run = load(spec, Path(link_dir or Path(md_out).parent))
    render(spec.sources.template, spec.sources.latex_template, spec.sources.bibliography, build_context(run),
           md_out, tex_out)
