"""The paper's render specification: which files a paper is rendered from, by role.

Not a stage's settings (jobs.py) but a record of paths, written by the workflow
(<results>/render.json) and beside a published paper (<paper>/numbers/render.json), read by
the render and by `publish check`. Same typed contract as a job (jobs.Job): a missing,
unknown or mistyped key is named.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from scripts.lib import REPO
from scripts.lib.planning.jobs import Job


@dataclass(frozen=True)
class RenderNumbers(Job):
    """The run's files the paper takes its numbers from."""
    results: str                 # results.json: the table rows, the baseline first
    histories: tuple[str, ...]   # one per row, table order
    correct: tuple[str, ...]     # per-image correctness, one per row, for the paired tests (empty: no tests)
    data_summary: str
    provenance: str
    latency: str                 # the timing job's file: its settings, the passes' agreement, the sparse probe
    benchmarks: tuple[str, ...]  # Snakemake's benchmark files of the compute stages, <folder>/<rule>[/<job>].tsv


@dataclass(frozen=True)
class RenderSources(Job):
    """The repository's files that shape the paper: templates, the bibliography and the seed
    study's reported numbers."""
    template: str                # the manuscript (pandoc markdown, jinja)
    latex_template: str          # pandoc's LaTeX template (the preamble)
    bibliography: str            # BibTeX, read by pandoc's citation processing
    seed_reference: str


@dataclass(frozen=True)
class RenderSpec(Job):
    """What the paper is rendered from: files by role, and the effective config.

    Written once by the workflow (<results>/render.json, read by render_paper) and again by
    `publish collect` beside the published paper (<paper>/numbers/render.json, read by `publish
    check`). In the file, the numbers' and figures' relative paths are relative to the file's
    folder, so a copied folder still rebuilds; the sources' are relative to the repository,
    because a check renders with the repository's current templates. Unlike a stage's job, it
    holds paths: it is the record of what a published paper was rendered from."""
    numbers: RenderNumbers
    figures: dict[str, tuple[str, ...]]  # registry figure: its file(s), per-model figures in table order
    sources: RenderSources
    settings: dict                       # the effective config

    def rebased(self, numbers, figures=None, sources=None) -> RenderSpec:
        """Every path of each group passed through its function (None: left as it is)."""
        def each(job, f):
            return dataclasses.replace(job, **{field.name: tuple(map(f, v)) if isinstance(v, tuple) else f(v)
                                               for field in dataclasses.fields(job)
                                               for v in (getattr(job, field.name),)})
        return dataclasses.replace(
            self, numbers=each(self.numbers, numbers),
            figures={k: tuple(map(figures, v)) for k, v in self.figures.items()} if figures else self.figures,
            sources=each(self.sources, sources) if sources else self.sources)

    def relative_to(self, folder) -> RenderSpec:
        """As written in a file in `folder` (sources outside the repository stay absolute)."""
        def local(p):
            return Path(os.path.relpath(p, folder)).as_posix()

        def repository(p):
            rel = os.path.relpath(p, REPO)
            return p if rel.split(os.sep)[0] == ".." else Path(rel).as_posix()
        return self.rebased(local, local, repository)

    def resolved(self, folder) -> RenderSpec:
        """As read from a file in `folder`: paths to open."""
        def local(p):
            return os.path.join(folder, p)
        return self.rebased(local, local, lambda p: os.path.join(REPO, p))

    def text(self, folder) -> str:
        """The file's contents, for a file in `folder`."""
        return json.dumps(dataclasses.asdict(self.relative_to(folder)), indent=2) + "\n"

    @classmethod
    def read(cls, path) -> RenderSpec:
        return cls.from_json(Path(path).read_text()).resolved(Path(path).parent)
