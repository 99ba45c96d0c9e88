"""What the paper is rendered from, read: a render specification's files, checked and loaded.

The files are named by a RenderSpec (scripts.lib.planning.jobs); this module opens them and
checks what a mistaken spec could get wrong (row order, test sets, the registry's figures),
so that the rest of the report code works on loaded values only.
"""
from __future__ import annotations

import csv
import os
import statistics
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from scripts.lib.files import read_json
from scripts.lib.planning.config import experiments_by_name
from scripts.lib.planning.render_spec import RenderSpec
from scripts.lib.planning.registry import BASELINE, FIGURES

# Snakemake rules as the paper's provenance names the stages.
STAGE_NAMES = {"prepare_data": "data", "finetune_baseline": "baseline training",
               "prune_model": "pruning by masking", "prune_channels": "channel removal",
               "finetune_dense": "dense fine-tuning (controls)", "train_small_dense": "small dense training (controls)",
               "evaluate_model": "evaluation", "time_models": "timing"}


@dataclass(frozen=True)
class Run:
    """One run's numbers as the paper reads them."""
    rows: list[dict]         # results.json: table order, the baseline first
    histories: dict          # per model name, its training history
    data: dict               # the data summary
    provenance: dict
    settings: dict           # the effective config
    seed: dict               # what the seed study reported (paper/seed_reference.yaml)
    stages: list[dict]       # wall time per stage (stage_seconds)
    figures: dict            # per registry figure, its link
    correct: dict = field(default_factory=dict)  # per model name, its per-image correctness string
    correct_int8: dict = field(default_factory=dict)  # the same in ONNX Runtime int8, where evaluated
    # the timing job's file: its settings, the passes' agreement, the sparse-kernel probe
    timing: dict = field(default_factory=lambda: {"agreement": {"passes_compared": 0}})

    @cached_property
    def experiments(self) -> dict[str, dict]:
        """Every experiment of the config by name, built once for all the findings that read it."""
        return experiments_by_name(self.settings)


def epoch_seconds(history: dict) -> float:
    """A training job's time by its own per-epoch records: its median epoch times its number of
    epochs. Whole where the job was killed and resumed (Snakemake's benchmark and the history's
    `seconds` time the last process only); the median because an epoch's record is wall time, so
    an epoch that was paused (a long run stopped for other work) or shared its cores counts the
    pause: one such epoch would otherwise multiply a short fine-tune's time."""
    epochs = history.get("epochs") or [e for step in history.get("steps", []) for e in step.get("epochs", [])]
    return statistics.median(e["seconds"] for e in epochs) * len(epochs) if epochs else 0.0


def stage_seconds(benchmark_files, root) -> list[dict]:
    """Wall time per stage (rule), summed over its jobs, from Snakemake's benchmark files.

    Files lie at <root>/<rule>.tsv, or <root>/<rule>/<wildcard>.tsv for rules with many jobs.
    """
    totals = {}
    for path in benchmark_files:
        rule = Path(path).relative_to(root).parts[0].removesuffix(".tsv")
        with open(path) as f:
            seconds = sum(float(r["s"]) for r in csv.DictReader(f, delimiter="\t"))
        jobs, total = totals.get(rule, (0, 0.0))
        totals[rule] = (jobs + 1, total + seconds)
    return [{"stage": STAGE_NAMES.get(rule, rule.replace("_", " ")), "jobs": jobs, "seconds": s}
            for rule, (jobs, s) in totals.items()]


def benchmark_stages(benchmark_files) -> list[dict]:
    """stage_seconds of files that lie under one benchmarks folder (their common folder)."""
    files = [os.path.normpath(f) for f in benchmark_files]
    return stage_seconds(files, os.path.commonpath(files)) if files else []


def figure_links(spec: RenderSpec, link_dir) -> dict:
    """Each registry figure's file as linked from `link_dir` (the paper's folder)."""
    figures = {}
    for name, files in spec.figures.items():
        if name not in FIGURES:
            raise SystemExit(f"error: figure {name}: not a registry figure ({sorted(FIGURES)})")
        if len(files) != 1:
            raise SystemExit(f"error: figure {name}: the render spec names {len(files)} files, a figure has one")
        figures[name] = os.path.relpath(files[0], link_dir)
    missing = sorted(set(FIGURES) - set(figures))
    if missing:
        raise SystemExit(f"error: the render spec names no files for the figures {missing}")
    return figures


def correct_images(paths, names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Per model name, its per-image correctness in PyTorch fp32 and, where the file has it, in
    ONNX Runtime int8; the files one per row, judged on one test set."""
    if not paths:
        return {}, {}
    files = [read_json(f) for f in paths]
    if [f["name"] for f in files] != names:
        raise SystemExit("error: the per-image correctness files must be one per model, in table order")
    if len({f["test_labels_sha256"] for f in files}) != 1:
        raise SystemExit("error: the per-image correctness files were judged on different test sets")
    return ({f["name"]: f["correct"] for f in files},
            {f["name"]: f["correct_int8"] for f in files if "correct_int8" in f})


def load(spec: RenderSpec, link_dir) -> Run:
    """The run a spec names (paths to open: RenderSpec.read resolves them); figure links are
    relative to `link_dir`, the folder of the paper that shows them."""
    n = spec.numbers
    rows = read_json(n.results)
    if rows[0]["name"] != BASELINE:
        raise SystemExit(f"error: {n.results}: the first row must be the {BASELINE}")
    names = [r["name"] for r in rows]
    with open(spec.sources.seed_reference) as f:
        seed = yaml.safe_load(f)
    correct, correct_int8 = correct_images(n.correct, names)
    return Run(rows=rows, histories={r: read_json(h) for r, h in zip(names, n.histories, strict=True)},
               data=read_json(n.data_summary), provenance=read_json(n.provenance), settings=spec.settings,
               seed=seed, stages=benchmark_stages(n.benchmarks), figures=figure_links(spec, link_dir),
               correct=correct, correct_int8=correct_int8, timing=read_json(n.latency))
