"""What the models cost to store and run: speed-ups over the baseline in each timed setting, the
gap between the MACs a model saves and the time it saves, the file-size paradox of masked models,
and the deployment options (which model in which runtime to pick, within an accuracy tolerance).
"""
from __future__ import annotations

from scripts.lib.report.families import channel_rows, masked_rows
from scripts.lib.report.phrases import RUNTIME_NAMES
from scripts.lib.report.results import grid_entry
from scripts.lib.report.stats import paired_test

# Per runtime: the accuracy of what it runs (checkpoint, fp32 ONNX, int8 ONNX).
RUNTIME_ACCURACY = {"pytorch": "accuracy", "onnxruntime": "accuracy", "onnxruntime_int8": "accuracy_int8"}
FP32_RUNTIMES = ("pytorch", "onnxruntime")
# A deployment the paper recommends loses at most this much test accuracy against the dense baseline.
DEPLOY_TOLERANCE = 0.015


def faster(speedup: float, noise: float) -> bool:
    """The paper's one rule for "faster": a speed-up (the other's time / this one's) above
    1 + `noise`, how far the timing passes disagree on a speed-up, so that a difference the
    repetition does not reproduce is not called speed."""
    return speedup > 1 + noise


def speed_verdict(speedup: float, noise: float) -> str:
    """'faster', 'slower', or neither beyond the timing passes' disagreement, in words."""
    if faster(speedup, noise):
        return "faster"
    return "slower" if faster(1 / speedup, noise) else "as fast within the timing passes' disagreement"


def speedups(row: dict, base: dict) -> list[dict]:
    """The row's speed-up over the baseline (baseline latency / row latency, same runtime, batch
    size and thread count) in every setting of the baseline's latency grid."""
    return [{"runtime": g["runtime"], "batch_size": g["latency_batch_size"], "threads": g["latency_threads"],
             "speedup": g["latency_ms"] / grid_entry(row["latency_grid"], g["runtime"], g["latency_batch_size"],
                                                     g["latency_threads"])["latency_ms"]}
            for g in base["latency_grid"]]


def speedup_range(row: dict, base: dict, runtimes=None) -> dict:
    """The slowest and the fastest setting of a row against the baseline (`low`, `high`: cells
    of `speedups`, of the given `runtimes` only where named), so that no speed-up is stated
    without the setting it was measured in."""
    cells = [c for c in speedups(row, base) if runtimes is None or c["runtime"] in runtimes]
    return {"low": min(cells, key=lambda c: c["speedup"]), "high": max(cells, key=lambda c: c["speedup"])}


def hardware_gap(rows, noise: float = 0.0) -> dict | None:
    """Storage and latency of the sparsest masked model against the baseline; None without one.
    `latency_ratio`: the results table's setting (`setting`); `time_range`: its time as a
    multiple of the baseline's over every setting timed (`low` and `high` with their settings),
    `fp32_time_range` the same without int8, `int8_time_range` in int8 alone; `faster`: whether its
    best speed-up exceeds 1 + `noise`, how far the timing passes disagree on a speed-up (the
    agreement's max_spread), so that "no speed" is said only when measured;
    `faster_everywhere`: whether its least one does. `smaller`: whether gzip or the sparse export
    stores it in less than the baseline's gzipped checkpoint."""
    masked = masked_rows(rows)
    if not masked:
        return None
    base = rows[0]
    sparsest = max(masked, key=lambda r: r["sparsity_prunable"])
    latencies = [r["latency_ms"] for r in [base, *masked]]
    span = speedup_range(sparsest, base)

    def times(span):  # its least time against the baseline's is its highest speed-up
        return {"low": {**span["high"], "ratio": 1 / span["high"]["speedup"]},
                "high": {**span["low"], "ratio": 1 / span["low"]["speedup"]}}
    timed = timed_runtimes(base)
    fp32 = [rt for rt in timed if rt in FP32_RUNTIMES]
    return {"baseline": base, "sparsest": sparsest,
            "file_ratio": sparsest["file_bytes"] / base["file_bytes"],
            "gzip_ratio": sparsest["gzip_bytes"] / base["gzip_bytes"],
            "latency_ratio": sparsest["latency_ms"] / base["latency_ms"],
            "setting": {"runtime": "pytorch", "batch_size": base["latency_batch_size"],
                        "threads": base["latency_threads"]},
            "time_range": times(span), "faster": faster(span["high"]["speedup"], noise),
            # without int8, whose quantizer keeps some of a sparse model's operators in fp32 (int8_fp32_nodes)
            "fp32_time_range": times(speedup_range(sparsest, base, fp32)) if fp32 else None,
            "int8_time_range": times(speedup_range(sparsest, base, ["onnxruntime_int8"]))
            if "onnxruntime_int8" in timed else None,
            "faster_everywhere": faster(span["low"]["speedup"], noise),
            "smaller": sparsest["gzip_bytes"] < base["gzip_bytes"] or sparsest["sparse_fp32_ratio"] < 1,
            "latency_min": min(latencies), "latency_max": max(latencies)}


def file_size_paradox(rows) -> dict | None:
    """A checkpoint saved with PyTorch's pruning masks still attached (weight_orig and weight_mask)
    against a plain state_dict, for the sparsest model: what a file with masks would cost. The seed's
    reported sizes are those of dense files (Discussion, question 4)."""
    masked = [r for r in rows if r.get("masked_gzip_bytes")]
    if not masked:
        return None
    r = max(masked, key=lambda x: x["sparsity_prunable"])
    base = rows[0]
    return {"row": r, "baseline": base, "masked_ratio": r["masked_file_bytes"] / base["file_bytes"],
            "masked_gzip_ratio": r["masked_gzip_bytes"] / base["gzip_bytes"],
            "plain_gzip_ratio": r["gzip_bytes"] / base["gzip_bytes"]}


def latency_settings(base: dict) -> list[tuple[int, int]]:
    """(batch size, threads) of the baseline's latency grid, in order."""
    return sorted({(g["latency_batch_size"], g["latency_threads"]) for g in base["latency_grid"]})


def timed_runtimes(base: dict) -> list[str]:
    """The runtimes of the baseline's latency grid, in RUNTIME_NAMES order."""
    return [rt for rt in RUNTIME_NAMES if any(g["runtime"] == rt for g in base["latency_grid"])]


def channel_speedups(rows) -> dict:
    """Each channel-removed model's speed-up over the baseline beside its MACs reduction.

    The MACs reduction (baseline MACs / model MACs) is the speed-up a runtime whose time
    is proportional to the arithmetic would reach; `fraction` is the share of it reached
    (speed-up / MACs reduction), per runtime and batch size, on the most threads timed.
    """
    base = rows[0]
    threads = max(t for _, t in latency_settings(base))
    settings = [(rt, b) for rt in timed_runtimes(base) for b, t in latency_settings(base) if t == threads]
    body = []
    for r in channel_rows(rows):
        limit = 1 / r["macs_ratio"]
        cells = []
        for runtime, b in settings:
            speedup = (grid_entry(base["latency_grid"], runtime, b, threads)["latency_ms"]
                       / grid_entry(r["latency_grid"], runtime, b, threads)["latency_ms"])
            cells.append({"runtime": runtime, "batch_size": b, "speedup": speedup, "fraction": speedup / limit})
        body.append({"row": r, "limit": limit, "cells": cells})
    return {"threads": threads, "settings": settings, "rows": body}


def deployment_options(rows, small_dense: set, noise: float = 0.0, correct: dict | None = None,
                       correct_int8: dict | None = None) -> dict:
    """The dense baseline, every channel-removed model and every small dense net trained from scratch
    (`small_dense`: their names) in each runtime: accuracy, latency at each batch size on the most
    threads, and the speed-up over the seed's path (the dense model in PyTorch eager). Each option's
    `kind`: "baseline", "pruned" or "small_dense". `picks`: per batch size, the fastest option within
    DEPLOY_TOLERANCE of the baseline's accuracy. The small dense nets compete because a deployment
    needs the fastest accurate network, however it was made (Liu et al., ICLR 2019). `int8`: per
    batch size (`batches`), the dense baseline's int8 time over its fp32 time in ONNX Runtime and the
    verdict (speed_verdict with `noise`); its accuracy change (int8 minus fp32) and, from the
    per-image results (`correct`, `correct_int8`: name -> string), the paired test of int8 against
    fp32 (None where either is missing); None where int8 was not timed."""
    base = rows[0]
    threads = max(t for _, t in latency_settings(base))
    batches = sorted({b for b, _ in latency_settings(base)})
    seed_path = {(b, t): grid_entry(base["latency_grid"], "pytorch", b, t)["latency_ms"]
                 for b, t in latency_settings(base)}
    models = [(base, "baseline"), *((r, "pruned") for r in channel_rows(rows)),
              *((r, "small_dense") for r in rows if r["name"] in small_dense)]
    options = []
    for r, kind in models:
        for runtime in timed_runtimes(base):
            lat = {(b, t): grid_entry(r["latency_grid"], runtime, b, t)["latency_ms"] for b, t in latency_settings(base)}
            accuracy = r[RUNTIME_ACCURACY[runtime]]
            options.append({"row": r, "kind": kind, "runtime": runtime, "accuracy": accuracy,
                            "latency": {b: lat[(b, threads)] for b in batches},
                            "speedup": {b: seed_path[(b, threads)] / lat[(b, threads)] for b in batches},
                            "speedup_1thread": {b: seed_path[(b, 1)] / lat[(b, 1)] for b in batches},
                            "eligible": accuracy >= base["accuracy"] - DEPLOY_TOLERANCE})
    eligible = [o for o in options if o["eligible"]]  # the baseline in PyTorch always is
    picks = {b: min(eligible, key=lambda o: o["latency"][b]) for b in batches}
    # what the runtime gives alone (the dense baseline in it) and what the model adds on top
    runtime_only = {o["runtime"]: o for o in options if o["kind"] == "baseline"}
    for o in options:
        o["runtime_gain"] = runtime_only[o["runtime"]]["speedup"]
        o["model_gain"] = {b: runtime_only[o["runtime"]]["latency"][b] / o["latency"][b] for b in batches}
    int8 = None
    if {"onnxruntime", "onnxruntime_int8"} <= set(runtime_only):
        fp32, q = runtime_only["onnxruntime"], runtime_only["onnxruntime_int8"]
        name = base["name"]
        test = paired_test(correct_int8[name], correct[name]) \
            if name in (correct or {}) and name in (correct_int8 or {}) else None
        int8 = {"fp32_accuracy": fp32["accuracy"], "int8_accuracy": q["accuracy"],
                "accuracy_change": q["accuracy"] - fp32["accuracy"], "test": test,
                "batches": {b: {"ratio": q["latency"][b] / fp32["latency"][b],
                                "verdict": speed_verdict(fp32["latency"][b] / q["latency"][b], noise)}
                            for b in batches},
                "models": int8_of_models(options, batches, noise)}
    return {"threads": threads, "batches": batches, "options": options, "picks": picks, "int8": int8,
            # whether any pruned or small model came within the tolerance (else the picks are the baseline's runtimes)
            "models_eligible": any(o["kind"] != "baseline" for o in eligible),
            "tolerance": DEPLOY_TOLERANCE, "small_dense": any(kind == "small_dense" for _, kind in models)}


def int8_of_models(options: list[dict], batches: list[int], noise: float = 0.0) -> dict | None:
    """int8 against fp32 in ONNX Runtime for the deployment options' models other than the baseline
    (channel-removed and small dense): per batch size the lowest and highest int8 time over fp32
    time and how many models int8 made slower beyond `noise` (speed_verdict), and how many operators
    the quantizer left in fp32 (fewest, most): the baseline's ratio need not hold for them. None
    where there is no such model."""
    by_model = {}
    for o in options:
        if o["kind"] != "baseline":
            by_model.setdefault(o["row"]["name"], {"row": o["row"]})[o["runtime"]] = o["latency"]
    pairs = [m for m in by_model.values() if {"onnxruntime", "onnxruntime_int8"} <= set(m)]
    if not pairs:
        return None
    ratios = {b: [m["onnxruntime_int8"][b] / m["onnxruntime"][b] for m in pairs] for b in batches}
    nodes = [len(m["row"]["int8_fp32_nodes"]) for m in pairs]
    return {"count": len(pairs), "ratio": {b: (min(r), max(r)) for b, r in ratios.items()},
            "slower": {b: sum(speed_verdict(1 / x, noise) == "slower" for x in r) for b, r in ratios.items()},
            "fp32_nodes": (min(nodes), max(nodes))}
