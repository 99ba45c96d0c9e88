"""Each stage's settings: one typed object, built from the config by the workflow, read by its program.

A rule passes its job's settings as one JSON param (`--job '{...}'`): Snakemake reruns a
job whose params changed, provenance can record them, and the program reads them back
into the same class, which names any key missing or unknown. Paths stay Snakemake's
(inputs and outputs on the command line), and so do threads (a resource).

Torch-free: the workflow builds these while it plans.
"""
from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path

from scripts.lib import REPO


class JobError(ValueError):
    """A job's settings do not match its class."""


_PRIMITIVES = (int, float, str, bool)


def _check(value, hint, where: str):
    """Convert `value` (parsed JSON) to `hint`: nested jobs are built, primitives checked."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return hint.from_dict(value, where)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _check(value, inner[0], where) if len(inner) == 1 else value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise JobError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else typing.Any
        return origin(_check(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise JobError(f"{where}: expected an object, got {value!r}")
        args = typing.get_args(hint)  # dict[str, X]: each value checked as an X
        return {k: _check(v, args[1], f"{where}[{k!r}]") for k, v in value.items()} if args else value
    if hint in _PRIMITIVES:
        ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise JobError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class Job:
    """Base of every stage's settings: JSON out (the workflow), JSON in (the program)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, where: str | None = None):
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise JobError(f"{where}: expected an object, got {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - data.keys()), sorted(data.keys() - names)
        if missing or unknown:
            raise JobError(f"{where}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])))
        hints = typing.get_type_hints(cls)
        return cls(**{n: _check(data[n], hints[n], f"{where}.{n}") for n in names})

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise JobError(f"{cls.__name__}: not JSON ({e}): {text[:200]!r}") from None
        return cls.from_dict(data)

    @classmethod
    def argument(cls):
        """An argparse `type=` that reads the job and turns a bad one into a usage error."""
        def parse(text: str):
            try:
                return cls.from_json(text)
            except JobError as e:
                import argparse

                raise argparse.ArgumentTypeError(str(e)) from None
        parse.__name__ = cls.__name__
        return parse


@dataclass(frozen=True)
class Engine(Job):
    """How every job that runs the network feeds it (config keys data.mean/std, evaluate.batch_size,
    engine.memory_format)."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eval_batch_size: int
    memory_format: str


def engine(config: dict) -> Engine:
    return Engine(mean=tuple(config["data"]["mean"]), std=tuple(config["data"]["std"]),
                  eval_batch_size=config["evaluate"]["batch_size"], memory_format=config["engine"]["memory_format"])


# --- the paper's render specification ------------------------------------------------------------

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
    """The repository's files that shape the paper: templates and the seed study's reported numbers."""
    template: str                # the manuscript (pandoc markdown, jinja)
    latex_template: str          # pandoc's LaTeX template (the preamble)
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
