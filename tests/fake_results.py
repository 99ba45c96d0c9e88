"""Hand-made results for the paper tests: metrics files of a small study, aggregated by
the real aggregation code, and the other inputs the paper is rendered from.
Only the numbers are invented; the files have the shape the workflow writes."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import yaml

from conftest import ROOT

from scripts.lib.planning.config import experiments_by_name
from scripts.lib.report.results import aggregate
from scripts.lib.planning.registry import BASELINE, FIGURES

# name, label, strategy, schedule, target, steps, accuracy, prunable weights kept (masking) or
# channels kept (channels), latency scale
MATRIX = [
    (BASELINE, "Baseline (trained)", "none", "none", 0.0, 0, 0.9123, 1.0, 1.0),
    ("os_l1_50", "L1 50% & one_shot #1", "l1_unstructured", "oneshot", 0.5, 1, 0.9012, 0.5, 1.01),
    ("it_l1_90", "Iterative L1 90%", "l1_unstructured", "iterative", 0.9, 3, 0.8277, 0.1, 0.99),
    ("os_l1_90", "One-shot L1 90%", "l1_unstructured", "oneshot", 0.9, 1, 0.5123, 0.1, 1.02),
    ("os_rnd_90", "One-shot random 90%", "random_unstructured", "oneshot", 0.9, 1, 0.1161, 0.1, 1.0),
    ("os_ch_50", "One-shot channels 50%", "l2_channels", "oneshot", 0.5, 1, 0.8555, 0.5, 0.6),
    ("os_rch_50", "One-shot random channels 50%", "random_channels", "oneshot", 0.5, 1, 0.7011, 0.5, 0.61),
]
PARAMS, PRUNABLE, MACS, CHANNELS, FILE = 2_236_682, 2_202_560, 6_110_000, 17_000, 9_100_000


def latency_grid(scale: float) -> list[dict]:
    """The timing job's grid of one model (two passes)."""
    grid = []
    for runtime, base in (("pytorch", 2.1), ("onnxruntime", 0.9), ("onnxruntime_int8", 0.5)):
        for b in (1, 64):
            for t in (1, 2):
                # a model's time scales differently per setting, so its speed-ups span a range
                ms = base * scale ** ((1.3 if b == 64 else 1.0) * (0.9 if t == 2 else 1.0)) * (30 if b == 64 else 1) \
                    / (1.6 if t == 2 else 1)
                grid.append({"runtime": runtime, "latency_ms": ms, "latency_iqr_ms": ms * 0.03,
                             "latency_samples": 50, "latency_batch_size": b, "latency_threads": t,
                             "latency_device": "cpu", "latency_pass_ms": [ms * 0.99, ms * 1.01]})
    return grid


def metrics(name, strategy, accuracy, kept, scale) -> dict:
    # channel removal, or a small dense net (no strategy, fewer channels): both layer sides shrink
    channels = strategy.endswith("_channels") or (strategy == "none" and kept < 1)
    share = kept ** 2 if channels else 1.0  # channel removal shrinks both sides of a layer
    prunable = round(PRUNABLE * share)
    nonzero = prunable if channels else round(PRUNABLE * kept)
    masked = strategy in ("l1_unstructured", "random_unstructured", "l2_structured")
    return {"name": name, "sparsity_prunable": 1 - nonzero / prunable, "prunable_params": prunable,
            "prunable_nonzero": nonzero, "macs": round(MACS * share), "channels": round(CHANNELS * kept),
            "params": round(PARAMS * share), "nonzero_params": round(PARAMS * share) - (prunable - nonzero),
            "sparsity_all": (prunable - nonzero) / round(PARAMS * share),
            "file_bytes": round(FILE * share), "gzip_bytes": round(FILE * share * (0.93 - 0.5 * (1 - kept))),
            "sparse_fp32_bytes": round(FILE * share * (kept + 0.03)),
            "sparse_fp16_bytes": round(FILE * share * (kept / 2 + 0.03)),
            "masked_file_bytes": round(FILE * 1.9) if masked else None,
            "masked_gzip_bytes": round(FILE * 1.3) if masked else None,
            "accuracy_fp16_export": accuracy - 0.0003, "accuracy": accuracy, "test_images": 10000,
            "accuracy_flip_tta": min(1.0, accuracy + 0.011),
            "onnx_max_abs_diff": 3.1e-6, "ckpt_sha256": "0" * 64, "cpu": "Test CPU", "torch": "2.14.1",
            "onnx_bytes": round(FILE * share * 0.97), "onnx_gzip_bytes": round(FILE * share * 0.9),
            "accuracy_int8": accuracy - 0.004, "int8_bytes": round(FILE * share * 0.27),
            "int8_gzip_bytes": round(FILE * share * 0.22),
            # the quantizer leaves a few operators of the thinnest models in fp32
            "int8_fp32_nodes": [f"/features/features.{i}/Conv" for i in range(round(10 * (1 - kept)))]}


def latency_file(matrix=MATRIX) -> dict:
    """What the timing job writes for these models (scripts/timing.py)."""
    from scripts.lib.measure.timing import pass_agreement

    models = {n: latency_grid(scale) for n, *_, scale in matrix}
    probe = [{"batch_size": b, "threads": t, "layers": 35, "sparsity": 0.9, "dense_ms": 9.0 * b / 64 + 0.1,
              "csr_ms": 14.0 * b / 64 + 0.2} for b in (1, 64) for t in (1, 2)]
    return {"settings": {"batch_sizes": [1, 64], "warmup": 1, "rounds": 2, "block_time": 0.05, "passes": 2,
                         "threads": 2, "device": "cpu", "torch": "2.14.1"},
            "models": models, "agreement": pass_agreement(models), "sparse_probe": probe, "sparse_sweep": sparse_sweep()}


SWEEP_LEVELS = (0.5, 0.9, 0.99)
SWEEP_LAYERS = (("expansion", "features.2.conv.0.0", [96, 16], 256), ("projection", "features.17.conv.2", [320, 960], 1),
                ("classifier", "classifier.1", [10, 1280], 1))


def sweep_csr_ms(role: str, b: int, level: float) -> float:
    """Invented CSR times, dense being 1.0 ms: CSR wins from 90 % zeros on the expansion, only at
    99 % on the projection, never on the classifier; batch 64 needs 99 % on the expansion too."""
    wins = {"expansion": 0.9 if b == 1 else 0.99, "projection": 0.99, "classifier": 2.0}[role]
    return 0.7 if level >= wins else 1.4


def sparse_sweep(csr_ms=sweep_csr_ms) -> dict:
    """What the timing job's sparse sweep writes (scripts.lib.measure.timing.sparse_sweep)."""
    cells = [{"role": role, "batch_size": b, "threads": t, "sparsity": level, "zeros": level, "dense_ms": 1.0,
              "csr_ms": csr_ms(role, b, level)}
             for b in (1, 64) for t in (1, 2) for role, *_ in SWEEP_LAYERS for level in SWEEP_LEVELS]
    return {"levels": list(SWEEP_LEVELS), "cells": cells,
            "layers": [{"role": r, "layer": n, "shape": shape, "pixels": px, "zeros": 0.0}
                       for r, n, shape, px in SWEEP_LAYERS]}


def experiments(matrix=MATRIX) -> list[dict]:
    return [{"name": n, "label": label, **({} if s == "none" else  # the baseline, a small dense net
             {"strategy": s, "schedule": sch, "sparsity": t, "steps": steps})}
            for n, label, s, sch, t, steps, *_ in matrix]


def results_rows(folder: Path, matrix=MATRIX, predictions: Path | None = None,
                 table: list[dict] | None = None, seed: int = 0) -> list[dict]:
    """Write one metrics file per model and aggregate them as the workflow does. With
    `predictions`, also each model's per-image predictions there (predictions/<model>.json, as
    the evaluate job writes them), its accuracies being the exact shares they count. `table`:
    the rows of a config's results job (seed replicas included) the matrix's models stand for,
    in the same order; by default the matrix's own experiments."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (n, _, strategy, _, _, _, acc, kept, scale) in enumerate(matrix):
        m = metrics(n, strategy, acc, kept, scale)
        if predictions is not None:
            record = {"name": n, "test_labels_sha256": "5" * 64,
                      "correct": spread_flags(m["test_images"], round(m["accuracy"] * m["test_images"]), i),
                      "correct_int8": spread_flags(m["test_images"], round(m["accuracy_int8"] * m["test_images"]), i)}
            m["accuracy"], m["accuracy_int8"] = (record[k].count("1") / m["test_images"] for k in ("correct", "correct_int8"))
            predictions.mkdir(parents=True, exist_ok=True)
            (predictions / f"{n}.json").write_text(json.dumps(record))
        path = folder / f"{n}.json"
        path.write_text(json.dumps(m))
        files.append(path)
    return aggregate(files, experiments(matrix) if table is None else table, latency_file(matrix), seed)


SETTINGS_OVERRIDES = {"preset": "test"}


def paper_inputs(rows, settings: dict) -> dict:
    """The other inputs of build_context: data summary, provenance, seed reference, figures."""
    data = {"source": "synthetic", "origin": "synthetic", "sha256": "none", "classes": [str(i) for i in range(10)],
            "train": 1350, "val": 150, "test": 500, "image_shape": [3, 32, 32]}
    provenance = {"commit": "0" * 40, "dirty": False, "config_sha256": "1" * 64,
                  "weights": {"setting": "none", "file": None, "sha256": None},
                  "versions": {"python": "3.11.7", "torch": "2.14.1", "torchvision": "0.29.1", "torch-pruning": "1.6.1",
                               "snakemake": "9.27.1", "onnxruntime": "1.32.0", "jinja2": "3.1.6",
                               "matplotlib": "3.11.2"},
                  "hardware": {"cpu": "Test CPU", "cores": 2, "simd": ["avx2", "fma"], "gpu": None}}
    seed = yaml.safe_load((ROOT / "paper" / "seed_reference.yaml").read_text())  # the seed's reported numbers
    seed["accuracy"]["it_l1_90"] = seed["accuracy"]["iterative_l1_90"]  # the fake matrix's name for that row
    histories = {r["name"]: fake_history(r) for r in rows}
    figures = {name: f"figures/{name}.png" for name in FIGURES}
    stages = [{"stage": "baseline training", "jobs": 1, "seconds": 61.0}]
    # Every row is an experiment of the config the paper reads, as in a real run: the fake rows join
    # whichever config a test passes (its own experiments stay).
    named = set(experiments_by_name(settings))
    settings = {**settings, "experiments": [*settings.get("experiments", []), *(
        {"name": r["name"], "label": r["label"], "strategy": r["strategy"], "schedule": r["schedule"],
         "sparsity": r["target_sparsity"], "steps": r["steps"]}
        for r in rows[1:] if r["name"] not in named and r["strategy"] != "none")]}
    return {"histories": histories, "data": data, "provenance": provenance, "settings": settings, "seed": seed,
            "stages": stages, "figures": figures, "correct": correct_strings(rows), "correct_int8": correct_strings(rows, "accuracy_int8"),
            "timing": latency_file()}


def fake_history(row: dict) -> dict:
    """A history file's fields the paper reads: the best epoch, the baseline's best validation
    accuracy, each pruning step's validation accuracy right after pruning."""
    if row["name"] == BASELINE:
        return {"best_epoch": 3, "best_val_accuracy": round(row["accuracy"] + 0.01, 4),
                "epochs": [{"epoch": e, "seconds": 60.0, "val_accuracy": round(row["accuracy"] + 0.01 * (e - 2), 4)}
                           for e in (1, 2, 3)]}
    return {"best_epoch": 3, "steps": [{"step": k + 1, "val_accuracy_pruned": round(max(0.1, row["accuracy"] - 0.1 * (k + 1)), 4),
                                        "epochs": [{"epoch": 1, "seconds": 30.0}]} for k in range(row["steps"])]}


def correct_strings(rows, accuracy: str = "accuracy") -> dict[str, str]:
    """Per model, which test images it gets right: its `accuracy` field's share (fp32's or
    int8's), the images spread by a stride that differs per model, so that two models disagree
    on some (a model's int8 and fp32 strings share a stride: they differ only in their count)."""
    return {r["name"]: spread_flags(r["test_images"], round(r[accuracy] * r["test_images"]), i)
            for i, r in enumerate(rows) if accuracy in r}


def spread_flags(n: int, k: int, i: int) -> str:
    """k ones among n images, spread by the i-th stride coprime with n (a stride that is,
    such as 5 for 10,000 images, would put fewer than k ones)."""
    stride = next(itertools.islice((s for s in itertools.count(1) if math.gcd(s, n) == 1), i, None))
    right = {(j * stride) % n for j in range(k)}
    return "".join("1" if j in right else "0" for j in range(n))
