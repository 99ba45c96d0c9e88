"""Cross-check: recompute the paper's table numbers from the saved checkpoints and
compare them with the rendered paper (and results.json). A mismatch fails.

Recomputed per model: share of prunable weights zeroed or removed (counting zeros
and shapes in the checkpoint), parameters, MACs and checkpoint file size. The gzip
size is not recomputed (gzip -9 of every checkpoint was most of this job's time):
the checkpoint's sha256 must equal the one recorded when it was measured, so the
size in results.json is of this very file. Accuracy and latency need the test set
and the clock; they are compared between results.json and the paper only.

    python -m scripts.crosscheck --results results.json --models-dir models --paper paper.md \
        --layer-types Conv2d Linear --exclude --out crosscheck.txt
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.channels import count_macs
from scripts.common import atomic_output, read_json, setup_logging, sha256_file
from scripts.model import load_checkpoint
from scripts.paper import mb, mega, ms, pct
from scripts.prune import prunable_modules, removed_fraction

TABLE_HEADER = "| Experiment | Target (%)"


class CrossCheckError(RuntimeError):
    """A number in the paper is not what the checkpoints say."""


def paper_table(markdown: str) -> dict[str, list[str]]:
    """The results table of paper.md: label -> its cells after the label."""
    if TABLE_HEADER not in markdown:
        raise CrossCheckError(f"the paper has no results table (no line starting {TABLE_HEADER!r})")
    lines = markdown.split(TABLE_HEADER, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    table = {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        table[cells[0]] = cells[1:]
    return table


def recompute(ckpt: Path, image_size: int, layer_types, exclude, baseline_prunable: int | None) -> dict:
    model, _ = load_checkpoint(ckpt)
    modules = [m for _, m in prunable_modules(model, layer_types, exclude)]
    prunable = sum(m.weight.numel() for m in modules)
    return {"prunable_params": prunable,
            "removed_fraction": removed_fraction(modules, baseline_prunable or prunable),
            "params": sum(p.numel() for p in model.parameters()),
            "macs": count_macs(model, image_size),
            "file_bytes": ckpt.stat().st_size, "ckpt_sha256": sha256_file(ckpt)}


def crosscheck(rows: list[dict], models_dir: Path, markdown: str, image_size: int, layer_types,
               exclude) -> list[str]:
    """Lines of a report; raises CrossCheckError listing every mismatch."""
    table = paper_table(markdown)
    problems, report, baseline_prunable = [], [], None
    for row in rows:
        got = recompute(models_dir / f"{row['name']}.pt", image_size, layer_types, exclude, baseline_prunable)
        baseline_prunable = baseline_prunable or got["prunable_params"]  # the first row is the baseline
        for key in ("removed_fraction", "params", "macs", "file_bytes", "ckpt_sha256"):
            if got[key] != row[key]:
                problems.append(f"{row['name']}: {key} is {got[key]} in the checkpoint, {row[key]} in results.json")
        expected = [pct(row["target_sparsity"]), pct(got["removed_fraction"]), pct(row["accuracy"]),
                    mega(got["params"]), mega(got["macs"]), mb(got["file_bytes"]), mb(row["gzip_bytes"]),
                    ms(row["latency_ms"]), ms(row["latency_iqr_ms"])]
        shown = table.get(row["label"])
        if shown != expected:
            problems.append(f"{row['name']}: the paper shows {shown}, the checkpoint gives {expected}")
        report.append(f"{row['name']}: removed {got['removed_fraction']:.6f}, params {got['params']}, "
                      f"MACs {got['macs']}, file {got['file_bytes']} B (sha256 {got['ckpt_sha256'][:12]}, "
                      f"as measured: gzip {row['gzip_bytes']} B): "
                      + ("MISMATCH" if problems and problems[-1].startswith(row["name"]) else "ok"))
    if set(table) != {r["label"] for r in rows}:
        problems.append(f"the paper's table lists {sorted(table)}, results.json {sorted(r['label'] for r in rows)}")
    if problems:
        raise CrossCheckError("the paper does not match the checkpoints:\n  " + "\n  ".join(problems))
    return report


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--paper", required=True, help="paper.md")
    p.add_argument("--image-size", type=int, required=True)
    p.add_argument("--layer-types", nargs="+", required=True)
    p.add_argument("--exclude", nargs="*", default=[])
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        report = crosscheck(read_json(args.results), Path(args.models_dir), Path(args.paper).read_text(),
                            args.image_size, args.layer_types, args.exclude)
    except CrossCheckError as e:
        raise SystemExit(f"error: {e}") from None
    with atomic_output(args.out) as tmp:
        Path(tmp).write_text("\n".join(report) + "\nall numbers match\n")


if __name__ == "__main__":
    main()
