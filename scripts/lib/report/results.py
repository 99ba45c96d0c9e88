"""The results table: every model's metrics and timings in one table (the results stage, scripts/results.py).

Torch-free (JSON in, CSV and JSON out), so the job starts in a second: it sits on the
paper's critical path, after the timing job and before every figure.
"""
from __future__ import annotations

import csv
import statistics

from scripts.lib.files import atomic_output, read_json, write_json
from scripts.lib.planning.labels import fill_label
from scripts.lib.planning.matrix import curve_id
from scripts.lib.planning.registry import BASELINE
from scripts.lib.report.stats import wilson_interval
from scripts.lib.report.columns import COLUMNS, check_registered


def relative_to_baseline(row: dict, baseline: dict) -> dict:
    """What is left of the baseline: parameters, MACs, conv channels; and the share of the
    baseline's prunable weights that are gone (zeroed by a mask, or removed with their channel)."""
    return {"params_ratio": row["params"] / baseline["params"],
            "macs_ratio": row["macs"] / baseline["macs"],
            "channels_ratio": row["channels"] / baseline["channels"],
            "removed_fraction": 1 - row["prunable_nonzero"] / baseline["prunable_params"]}


def storage_ratios(row: dict) -> dict:
    """Each sparse export against the model's own dense checkpoint, like with like: the export is
    gzipped (scripts.lib.measure.storage), so it is divided by the checkpoint's gzip size (the
    same gzip level), never by its raw file; and what fp16 costs."""
    return {"sparse_fp32_ratio": row["sparse_fp32_bytes"] / row["gzip_bytes"],
            "sparse_fp16_ratio": row["sparse_fp16_bytes"] / row["gzip_bytes"],
            "fp16_accuracy_change": row["accuracy_fp16_export"] - row["accuracy"]}


def grid_entry(grid: list[dict], runtime: str, batch_size: int, threads: int) -> dict:
    """The one measurement of a model's latency grid (its row's latency_grid, from the timing
    job) at this runtime, batch size and thread count."""
    found = [g for g in grid if (g["runtime"], g["latency_batch_size"], g["latency_threads"])
             == (runtime, batch_size, threads)]
    if len(found) != 1:
        raise ValueError(f"the latency grid has {len(found)} measurements of {runtime} at batch {batch_size} "
                         f"on {threads} thread(s), expected one")
    return found[0]


def table_latency(grid: list[dict]) -> dict:
    """The results table's latency: PyTorch eager, the largest batch on the most threads."""
    b = max(g["latency_batch_size"] for g in grid)
    t = max(g["latency_threads"] for g in grid)
    entry = grid_entry(grid, "pytorch", b, t)
    return {k: entry[k] for k in ("latency_ms", "latency_iqr_ms", "latency_samples", "latency_batch_size",
                                  "latency_threads", "latency_device")}


def fold_replicas(rows: list[dict], replicas: list[dict], seed: int) -> None:
    """Each replicated experiment's row gains its seeds, its accuracy per seed (its own first)
    and their mean and sample standard deviation."""
    by_name = {r["name"]: r for r in rows}
    for rep in replicas:
        if rep["replica_of"] not in by_name:
            raise ValueError(f"replica {rep['name']!r}: no experiment {rep['replica_of']!r} in the table")
        row = by_name[rep["replica_of"]]
        row.setdefault("seeds", [seed])
        row.setdefault("accuracy_seeds", [row["accuracy"]])
        row["seeds"].append(rep["seed"])
        row["accuracy_seeds"].append(rep["accuracy"])
    for row in rows:
        if "seeds" in row:
            row["seeds_run"] = len(row["seeds"])
            row["accuracy_mean"] = statistics.fmean(row["accuracy_seeds"])
            row["accuracy_std"] = statistics.stdev(row["accuracy_seeds"])


def aggregate(metric_files, experiments: list[dict], latency: dict, seed: int = 0) -> list[dict]:
    """One row per model, in the order given (the baseline first), with the experiment's
    settings beside its metrics and its latency grid from the timing job; seed replicas
    (experiments with `replica_of`) are folded into their experiment's row (fold_replicas),
    `seed` being the seed of the table's own models. Every metric must be a registered
    column (scripts/lib/report/columns.py), so that none is silently left out of the CSV."""
    rows, replicas = [], []
    for path, exp in zip(metric_files, experiments, strict=True):
        m = read_json(path)
        check_registered(m, str(path))
        if m["name"] != exp["name"]:
            raise ValueError(f"{path}: holds metrics of {m['name']!r}, expected {exp['name']!r}")
        if exp.get("replica_of"):
            replicas.append({**exp, "accuracy": m["accuracy"]})
            continue
        row = {"name": exp["name"], "label": exp.get("label", exp["name"]),
               "strategy": exp.get("strategy", "none"), "schedule": exp.get("schedule", "none"),
               "target_sparsity": exp.get("sparsity", 0.0), "steps": exp.get("steps", 0),
               "curve": curve_id(exp) if "strategy" in exp else None}
        row.update({k: v for k, v in m.items() if k not in row})
        if exp["name"] not in latency["models"]:
            raise ValueError(f"the latency file has no timings of {exp['name']!r}")
        row["latency_grid"] = latency["models"][exp["name"]]
        row.update(table_latency(row["latency_grid"]))
        rows.append(row)
    if rows[0]["name"] != BASELINE:
        raise ValueError(f"the first model must be the {BASELINE!r}, got {rows[0]['name']!r}")
    for row in rows:
        row.update(relative_to_baseline(row, rows[0]))
        row["label"] = fill_label(row["label"], row)  # "<macs_removed>" and the like: measured, not typed
        row.update(storage_ratios(row))
        n = row["test_images"]
        row["accuracy_ci"] = list(wilson_interval(round(row["accuracy"] * n), n))
    fold_replicas(rows, replicas, seed)
    return rows


def write_table(rows, csv_path, json_path) -> None:
    """results.csv: every registered column (scalars); results.json: the rows in full."""
    with atomic_output(csv_path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    write_json(rows, json_path)
