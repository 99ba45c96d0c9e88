"""Cross-check: recompute the paper's table numbers from the saved checkpoints and the
per-image predictions, and compare them with results.json and with both rendered
manuscripts (paper.md and paper.tex). A mismatch fails.

- From each checkpoint (RECOMPUTED): the share of prunable weights zeroed or removed
  (counting zeros and shapes), parameters, MACs, file size and sha256. The gzip size is not
  recomputed (gzip -9 of every checkpoint was most of this job's time): the sha256 must equal
  the one recorded when the file was measured, so the size in results.json is of this file.
- From each model's predictions (scripts/lib/report/recount.py): the fp32 and int8
  accuracies, the number of test images, the Wilson interval, the fp16 export's accuracy
  change and, for replicated experiments, the per-seed accuracies, their mean and std.
- In both manuscripts, every cell of the per-model tables (accuracy, latency, ...) against
  results.json with the recounted numbers, through the column registry
  (scripts/lib/report/columns.py): the same headers and formats the paper was written with.
  The manuscripts are read through pandoc's document model (scripts/lib/report/pandoc_tables.py).
"""
from __future__ import annotations

from pathlib import Path

from scripts.lib.files import sha256_file
from scripts.lib.models.network import load_checkpoint
from scripts.lib.pruning.channels import count_macs
from scripts.lib.pruning.masks import prunable_modules, removed_fraction
from scripts.lib.report.columns import TABLES, cell, table_columns
from scripts.lib.report.pandoc_tables import find_table, read_tables
from scripts.lib.report.recount import recount

RECOMPUTED = ("removed_fraction", "params", "macs", "file_bytes", "ckpt_sha256")


class CrossCheckError(RuntimeError):
    """A number in results.json or the paper is not what the checkpoints or predictions say."""


def recompute(ckpt: Path, image_size: int, layer_types, exclude, baseline_prunable: int | None) -> dict:
    model, _ = load_checkpoint(ckpt)
    modules = [m for _, m in prunable_modules(model, layer_types, exclude)]
    prunable = sum(m.weight.numel() for m in modules)
    return {"prunable_params": prunable,
            "removed_fraction": removed_fraction(modules, baseline_prunable or prunable),
            "params": sum(p.numel() for p in model.parameters()),
            "macs": count_macs(model, image_size),
            "file_bytes": ckpt.stat().st_size, "ckpt_sha256": sha256_file(ckpt)}


# Typographic quotes the manuscripts print for the labels' straight ones (pandoc's smart
# punctuation: "the seed's lr" reads back as "the seed’s lr").
TYPOGRAPHIC_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def check_manuscript(name: str, tables: list, rows: list[dict]) -> list[str]:
    """Every per-model table of one manuscript against the rows, cell by cell (quotes compared
    as straight quotes, TYPOGRAPHIC_QUOTES)."""
    problems = []
    for table in TABLES:
        cols = table_columns(table)
        try:
            shown = find_table(tables, [c.header for c in cols], f"{name}, table {table}")
        except LookupError as e:
            problems.append(str(e))
            continue
        if len(shown) != len(rows):
            problems.append(f"{name}, table {table}: {len(shown)} rows, results.json has {len(rows)} models")
            continue
        for row, cells in zip(rows, shown):
            expected = [cell(c, row) for c in cols]
            if [c.translate(TYPOGRAPHIC_QUOTES) for c in cells] != [c.translate(TYPOGRAPHIC_QUOTES) for c in expected]:
                problems.append(f"{name}, table {table}, {row['name']}: shows {cells}, expected {expected}")
    return problems


def check_checkpoints(rows: list[dict], models_dir: Path, image_size: int, layer_types, exclude):
    """Each row's RECOMPUTED numbers against its checkpoint: (problems, report lines)."""
    problems, report, baseline_prunable = [], [], None
    for row in rows:
        got = recompute(models_dir / f"{row['name']}.pt", image_size, layer_types, exclude, baseline_prunable)
        baseline_prunable = baseline_prunable or got["prunable_params"]  # the first row is the baseline
        wrong = [f"{row['name']}: {key} is {got[key]} in the checkpoint, {row[key]} in results.json"
                 for key in RECOMPUTED if got[key] != row[key]]
        problems += wrong
        report.append(f"{row['name']}: removed {got['removed_fraction']:.6f}, params {got['params']}, "
                      f"MACs {got['macs']}, file {got['file_bytes']} B (sha256 {got['ckpt_sha256'][:12]}, "
                      f"as measured: gzip {row['gzip_bytes']} B): " + ("MISMATCH" if wrong else "ok"))
    return problems, report


def check_numbers(rows: list[dict], predictions: dict[str, dict], markdown: str, latex: str):
    """What needs no checkpoint: the accuracies recounted from the predictions against
    results.json, then both manuscripts' tables against the recounted rows: (problems, report lines)."""
    expected, problems, report = recount(rows, predictions)
    for name, text, fmt in (("paper.md", markdown, "markdown"), ("paper.tex", latex, "latex")):
        problems += check_manuscript(name, read_tables(text, fmt), expected)
    return problems, report


def crosscheck(rows: list[dict], predictions: dict[str, dict], models_dir: Path, markdown: str, latex: str,
               image_size: int, layer_types, exclude) -> list[str]:
    """Lines of a report; raises CrossCheckError listing every mismatch."""
    problems, report = check_checkpoints(rows, models_dir, image_size, layer_types, exclude)
    numbers, recounted = check_numbers(rows, predictions, markdown, latex)
    problems += numbers
    if problems:
        raise CrossCheckError("the paper does not match the checkpoints and predictions:\n  " + "\n  ".join(problems))
    return report + recounted + [
        f"paper.md and paper.tex: the {len(TABLES)} per-model tables ({', '.join(TABLES)}) show exactly these numbers"]
