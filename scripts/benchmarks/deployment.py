"""Deployment benchmark: what physical channel removal and sparse storage buy, measured
side by side in one process, with the pipeline's timing code (scripts/timing.py: models
timed in one run, in interleaved rounds).

  1. A 50 % channel-pruned model (Torch-Pruning, group L2, the config's round_to)
     against the dense model: MACs ratio, speed-up at batch 1 and 64 in PyTorch eager
     and ONNX Runtime (CPU, all cores), and the share of the MACs limit reached
     (speed-up / MACs reduction; goal: >= 80 % in ONNX Runtime at batch 64).
  2. A 90 % L1-unstructured model: its sparse export (gzip) against the same model's
     checkpoint in the dense fp32 format (goals, set on the raw file: <= 12 % with fp32
     values, <= 7 % with fp16 values), and against that checkpoint after the same gzip (like
     for like, as the paper compares; gzip alone already squeezes most zeros out).
  3. End to end at batch 1: the pruned model in ONNX Runtime against the dense model in
     PyTorch eager (the seed's deployment path).

    python -m scripts.benchmarks.deployment --baseline results/real/models/baseline.pt
    python -m scripts.benchmarks.deployment            # random-init weights (sizes then say less)

Latency needs no trained weights; storage does (trained weights compress differently),
so pass a baseline checkpoint for the storage figure. Nothing is fine-tuned here.
"""
from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch
import yaml

from scripts.lib.pruning.channels import ChannelPruner, count_macs
from scripts.lib.models.runtime import available_cores, configure_threads
from scripts.lib.planning.config import validate_config
from scripts.lib.measure.evaluation import export_onnx, gzip_size
from scripts.lib.models.network import build_model, load_checkpoint, save_checkpoint
from scripts.lib.pruning.masks import make_permanent, prunable_modules, prune_step
from scripts.lib.measure.storage import write_sparse_export
from scripts.lib.measure.timing import Runner, TimingSettings, summarise, time_models

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
IMAGE_SIZE = 32
BATCH_SIZES = (1, 64)
GOALS = {"speedup_fraction_ort_b64": 0.80, "sparse_fp32": 0.12, "sparse_fp16": 0.07}


def time_side_by_side(models: dict, onnx_paths: dict, threads: int, rounds: int, warmup: int,
                      min_run_time: float) -> dict:
    """The pipeline's timing job (scripts/timing.py) on these models: median over `rounds`
    interleaved rounds, per (runtime, batch, model), on `threads` threads."""
    runners = {name: {"pytorch": Runner("pytorch", model, IMAGE_SIZE, torch.device("cpu")),
                      "onnxruntime": Runner("onnxruntime", onnx_paths[name], IMAGE_SIZE, torch.device("cpu"))}
               for name, model in models.items()}
    settings = TimingSettings(BATCH_SIZES, threads, warmup, rounds, min_run_time, passes=1)
    grids = summarise(time_models(runners, settings), "cpu")
    return {(g["runtime"], g["latency_batch_size"], name): g["latency_ms"]
            for name, grid in grids.items() for g in grid if g["latency_threads"] == threads}


def storage_ratios(dense, sparsity: float, layer_types, tmp: Path) -> dict:
    """The sparse exports of an L1-unstructured copy of `dense` as fractions of that copy's
    checkpoint in the dense fp32 format, raw and gzipped (the sparse export is gzipped itself)."""
    model = copy.deepcopy(dense)
    modules = [m for _, m in prunable_modules(model, layer_types)]
    prune_step(modules, "l1_unstructured", sparsity, "layer")
    make_permanent(modules)
    save_checkpoint(model, tmp / "sparse.pt", {"num_classes": 10})
    dense_bytes, dense_gzip_bytes = (tmp / "sparse.pt").stat().st_size, gzip_size(tmp / "sparse.pt")
    state = model.state_dict()
    sparse = {"fp32": write_sparse_export(state, tmp / "fp32.gz", "float32"),
              "fp16": write_sparse_export(state, tmp / "fp16.gz", "float16")}
    return {"dense_bytes": dense_bytes, "dense_gzip_bytes": dense_gzip_bytes,
            **{f"sparse_{k}": v / dense_bytes for k, v in sparse.items()},
            **{f"sparse_{k}_vs_gzip": v / dense_gzip_bytes for k, v in sparse.items()}}


def measure(baseline: str | None, channel_ratio: float, sparsity: float, threads: int, rounds: int, warmup: int,
            min_run_time: float) -> dict:
    """Every figure the benchmark reports, measured in this one process."""
    with open(CONFIG) as f:
        prune_cfg = validate_config(yaml.safe_load(f))["prune"]  # round_to and the prunable set, one source
    torch.manual_seed(0)
    dense = (load_checkpoint(baseline)[0] if baseline else build_model(10)).eval()
    pruned = copy.deepcopy(dense)
    ChannelPruner(pruned, "l2_channels", [channel_ratio], IMAGE_SIZE, prune_cfg["round_to"],
                   [pruned.classifier[1]]).step()
    pruned.eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        onnx = {"dense": tmp / "dense.onnx", "pruned": tmp / "pruned.onnx"}
        for name, model in (("dense", dense), ("pruned", pruned)):
            export_onnx(model, IMAGE_SIZE, onnx[name])
        latency = time_side_by_side({"dense": dense, "pruned": pruned}, onnx, threads, rounds, warmup, min_run_time)
        sizes = storage_ratios(dense, sparsity, prune_cfg["layer_types"], tmp)
    return {"round_to": prune_cfg["round_to"], "latency": latency, "sizes": sizes,
            "macs_ratio": count_macs(pruned, IMAGE_SIZE) / count_macs(dense, IMAGE_SIZE),
            "params_ratio": sum(q.numel() for q in pruned.parameters()) / sum(q.numel() for q in dense.parameters())}


def report(m: dict, args) -> str:
    lat, macs_ratio, sizes = m["latency"], m["macs_ratio"], m["sizes"]
    lines = [f"# deployment benchmark: torch {torch.__version__}, {args.threads} thread(s), CPU, "
             f"{args.rounds} interleaved rounds x {args.min_run_time} s, weights: {args.baseline or 'random init'}",
             f"\n## {args.channel_ratio:.0%} of channels removed (group L2, round_to {m['round_to']})",
             f"MACs ratio {macs_ratio:.3f} (reduction {1 / macs_ratio:.2f}x), params ratio {m['params_ratio']:.3f}",
             f"{'runtime':<12} {'batch':>5} {'dense ms':>9} {'pruned ms':>9} {'speed-up':>8} {'of MACs limit':>13}"]
    for runtime in ("pytorch", "onnxruntime"):
        for b in BATCH_SIZES:
            d, q = lat[(runtime, b, "dense")], lat[(runtime, b, "pruned")]
            lines.append(f"{runtime:<12} {b:>5} {d:>9.3f} {q:>9.3f} {d / q:>7.2f}x {d / q * macs_ratio:>12.1%}")
    reached = lat[("onnxruntime", 64, "dense")] / lat[("onnxruntime", 64, "pruned")] * macs_ratio
    goal = GOALS["speedup_fraction_ort_b64"]
    lines.append(f"goal: ONNX Runtime batch 64 reaches >= {goal:.0%} of the MACs limit: {reached:.1%} "
                 f"-> {'met' if reached >= goal else 'NOT met'}")
    lines.append(f"\n## {args.sparsity:.0%} L1-unstructured model: sparse export (gzip) / its dense-format fp32 "
                 f"checkpoint, raw ({sizes['dense_bytes'] / 1e6:.2f} MB) and gzipped ({sizes['dense_gzip_bytes'] / 1e6:.2f} MB)")
    for key in ("sparse_fp32", "sparse_fp16"):
        lines.append(f"{key}: {sizes[key]:.1%} of the raw file (goal <= {GOALS[key]:.0%}: "
                     f"{'met' if sizes[key] <= GOALS[key] else 'NOT met'}), "
                     f"{sizes[key + '_vs_gzip']:.1%} of the gzipped file")
    e2e = lat[("pytorch", 1, "dense")] / lat[("onnxruntime", 1, "pruned")]
    lines.append(f"\n## end to end, batch 1: dense in PyTorch eager {lat[('pytorch', 1, 'dense')]:.3f} ms, "
                 f"pruned in ONNX Runtime {lat[('onnxruntime', 1, 'pruned')]:.3f} ms -> {e2e:.1f}x")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", help="a baseline checkpoint (default: random-init MobileNetV2)")
    p.add_argument("--channel-ratio", type=float, default=0.5)
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--threads", type=int, default=available_cores(), help="default: all cores")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds of timed passes per model, setting and round")
    args = p.parse_args(argv)
    args.threads = configure_threads(args.threads)
    m = measure(args.baseline, args.channel_ratio, args.sparsity, args.threads, args.rounds, args.warmup,
                args.min_run_time)
    print(report(m, args))


if __name__ == "__main__":
    main()
