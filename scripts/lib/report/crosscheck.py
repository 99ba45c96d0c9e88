"""Cross-check: recompute the paper's table numbers from the saved checkpoints and
compare them with both rendered manuscripts (paper.md and paper.tex) and with
results.json. A mismatch fails.

Recomputed per model: share of prunable weights zeroed or removed (counting zeros
and shapes in the checkpoint), parameters, MACs and checkpoint file size. The gzip
size is not recomputed (gzip -9 of every checkpoint was most of this job's time):
the checkpoint's sha256 must equal the one recorded when it was measured, so the
size in results.json is of this very file. Every cell of the paper's per-model
tables (accuracy, latency, ...) is compared between results.json and both
manuscripts, through the column registry (scripts/tables.py): the same headers and
formats the paper was written with.

    python -m scripts.crosscheck --results results.json --models-dir models --md paper.md --tex paper.tex \
        --image-size 32 --layer-types Conv2d Linear --exclude --out crosscheck.txt
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from scripts.lib.pruning.channels import count_macs
from scripts.lib.files import atomic_output, read_json, setup_logging, sha256_file
from scripts.lib.models.network import load_checkpoint
from scripts.lib.pruning.masks import prunable_modules, removed_fraction
from scripts.lib.report.tables import TABLES, cell, find_table, latex_tables, markdown_tables, table_columns

RECOMPUTED = ("removed_fraction", "params", "macs", "file_bytes", "ckpt_sha256")


class CrossCheckError(RuntimeError):
    """A number in the paper is not what the checkpoints say."""


def recompute(ckpt: Path, image_size: int, layer_types, exclude, baseline_prunable: int | None) -> dict:
    model, _ = load_checkpoint(ckpt)
    modules = [m for _, m in prunable_modules(model, layer_types, exclude)]
    prunable = sum(m.weight.numel() for m in modules)
    return {"prunable_params": prunable,
            "removed_fraction": removed_fraction(modules, baseline_prunable or prunable),
            "params": sum(p.numel() for p in model.parameters()),
            "macs": count_macs(model, image_size),
            "file_bytes": ckpt.stat().st_size, "ckpt_sha256": sha256_file(ckpt)}


def check_manuscript(name: str, tables: list, rows: list[dict]) -> list[str]:
    """Every per-model table of one manuscript against the rows, cell by cell."""
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
            if cells != expected:
                problems.append(f"{name}, table {table}, {row['name']}: shows {cells}, expected {expected}")
    return problems


def markdown_cells(md: str) -> list[list[list[str]]]:
    """The pipe tables of paper.md with every CommonMark backslash escape undone: pandoc's
    GitHub writer escapes a cell's leading '+' (a list marker), e.g. the label '+ distillation'.
    (tables.markdown_tables undoes only '|' and '#'; evaluate imports that module, so changing
    it re-runs every evaluation.)"""
    return [[[re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", c) for c in row] for row in table]
            for table in markdown_tables(md)]


def crosscheck(rows: list[dict], models_dir: Path, markdown: str, latex: str, image_size: int, layer_types,
               exclude) -> list[str]:
    """Lines of a report; raises CrossCheckError listing every mismatch."""
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
    problems += check_manuscript("paper.md", markdown_cells(markdown), rows)
    problems += check_manuscript("paper.tex", latex_tables(latex), rows)
    if problems:
        raise CrossCheckError("the paper does not match the checkpoints:\n  " + "\n  ".join(problems))
    report.append(f"paper.md and paper.tex: the {len(TABLES)} per-model tables ({', '.join(TABLES)}) "
                  "show exactly these numbers")
    return report


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--md", required=True, help="paper.md")
    p.add_argument("--tex", required=True, help="paper.tex")
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--layer-types", nargs="+", required=True)
    p.add_argument("--exclude", nargs="*", default=[])
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        report = crosscheck(read_json(args.results), Path(args.models_dir), Path(args.md).read_text(),
                            Path(args.tex).read_text(), args.image_size, args.layer_types, args.exclude)
    except CrossCheckError as e:
        raise SystemExit(f"error: {e}") from None
    with atomic_output(args.out) as tmp:
        Path(tmp).write_text("\n".join(report) + "\nall numbers match\n")


if __name__ == "__main__":
    main()
