"""Training throughput against batch size: does a larger batch use the cores better?

The engine's own training step (scripts.lib.models.engine.train_one_epoch: resident uint8 data,
batched crop/flip, Nesterov SGD, in the shipped memory format) on MobileNetV2 at
32x32, timed at each batch size in
interleaved rounds so that drift of the machine hits every size alike. Run it with
nothing else on the machine.

    python -m scripts.benchmarks.batch_throughput                       # 64, 128, 256, 512
    python -m scripts.benchmarks.batch_throughput --batch-sizes 128 256 --images 4096 --threads 2

Prints images per second per batch size (median over rounds) and the ratio to the
first size given.
"""
from __future__ import annotations

import argparse
import statistics
import time

import dataclasses
from pathlib import Path

import torch
import yaml

from scripts.benchmarks.engine_speed import HYP, MEAN, STD
from scripts.lib.models.runtime import configure_threads, select_device
from scripts.lib.data.datasets import make_synthetic
from scripts.lib.models.engine import MEMORY_FORMATS, DeviceData, make_optimizer, train_one_epoch
from scripts.lib.models.network import build_model

ROOT = Path(__file__).resolve().parents[2]
# The layout the shipped config trains in (config.yaml, engine.memory_format: its one definition).
SHIPPED_FORMAT = MEMORY_FORMATS[yaml.safe_load((ROOT / "config.yaml").read_text())["engine"]["memory_format"]]


def measure(batch_sizes, images: int, rounds: int, threads: int) -> dict[int, list[float]]:
    """{batch size: images per second of each round}; every round times every size."""
    configure_threads(threads)
    device = select_device()
    splits, _ = make_synthetic(images, 10, 10, 32, 30.0, seed=0)
    data = DeviceData(*splits["train"], MEAN, STD, device, SHIPPED_FORMAT)
    gen = torch.Generator().manual_seed(0)
    model = build_model(10, None).to(device).to(memory_format=SHIPPED_FORMAT)
    hyps = {b: dataclasses.replace(HYP, batch_size=b) for b in batch_sizes}
    optimisers = {b: make_optimizer(model, hyps[b], 1000 * images) for b in batch_sizes}

    def rate(b: int) -> float:
        t0 = time.perf_counter()
        train_one_epoch(model, data, *optimisers[b], hyps[b], gen)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(data) / (time.perf_counter() - t0)

    out = {b: [] for b in batch_sizes}
    for b in batch_sizes:  # warm-up: allocator and kernels at this shape
        rate(b)
    for _ in range(rounds):
        for b in batch_sizes:
            out[b].append(rate(b))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--images", type=int, default=3072, help="images per timed pass at every batch size")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    rates = measure(args.batch_sizes, args.images, args.rounds, args.threads)
    first = statistics.median(rates[args.batch_sizes[0]])
    print(f"device {select_device()}, {args.threads} thread(s), {args.images} images per pass, {args.rounds} rounds")
    for b, r in rates.items():
        m = statistics.median(r)
        print(f"batch {b:4d}: {m:7.1f} img/s (rounds {', '.join(f'{x:.0f}' for x in r)}), "
              f"{m / first:.2f}x batch {args.batch_sizes[0]}")


if __name__ == "__main__":
    main()
