"""The engine's whole training step in every execution variant, side by side.

Each variant runs `scripts.lib.models.engine.train_one_epoch` itself (batched crop/flip and
normalisation, forward, label-smoothed loss, Nesterov SGD, the lr schedule) on the
same MobileNetV2 weights and images; only how it executes differs:

  layout     contiguous (NCHW, the engine's layout before engine.memory_format) or
             channels_last (NHWC)
  precision  fp32, or bf16 autocast (only where the CPU has bf16 instructions, or on CUDA)
  compile    torch.compile of the model, on or off (--no-compile skips it: each
             compiled variant spends about a minute compiling before round 1)

The variants are timed in interleaved rounds in one process (round 0 warms every one
up and is not counted), so that drift of the machine hits them all alike. Run it with
nothing else on the machine.

    python -m scripts.benchmarks.engine_speed                  # every variant
    python -m scripts.benchmarks.engine_speed --no-compile --rounds 5

Prints images per second of each variant (median over rounds) and its ratio to
"contiguous fp32" without compile, the engine before channels_last.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import time
from dataclasses import dataclass

import torch

from scripts.lib.models.runtime import configure_threads, select_device
from scripts.lib.models.engine import MEMORY_FORMATS, DeviceData, TrainHyp, make_optimizer, train_one_epoch
from scripts.lib.models.network import build_model
from scripts.lib.measure.provenance import simd_flags

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
REFERENCE = ("contiguous", "fp32", False)  # the engine before channels_last
# The baseline's recipe (config.yaml, train), one epoch: the step the engine runs.
HYP = TrainHyp(epochs=1, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True,
               label_smoothing=0.1, warmup_epochs=0, decay_norm_and_bias=False)


@dataclass(frozen=True)
class Variant:
    layout: str      # a key of scripts.lib.models.engine.MEMORY_FORMATS
    precision: str   # fp32 | bf16
    compiled: bool

    @property
    def key(self) -> tuple:
        return (self.layout, self.precision, self.compiled)

    def __str__(self) -> str:
        return f"{self.layout:13s} {self.precision:4s} {'compiled' if self.compiled else 'eager':8s}"


def has_bf16(device: torch.device) -> bool:
    """bf16 autocast is worth timing: CUDA, or a CPU with bf16 instructions (AVX-512 BF16, AMX)."""
    return device.type == "cuda" or bool({"avx512_bf16", "amx_bf16"} & set(simd_flags()))


def variants(device: torch.device, compile_too: bool) -> list[Variant]:
    precisions = ["fp32", "bf16"] if has_bf16(device) else ["fp32"]
    return [Variant(layout, precision, compiled)
            for compiled, precision, layout in itertools.product([False, True] if compile_too else [False],
                                                                 precisions, MEMORY_FORMATS)]


def autocast(device: torch.device, precision: str):
    """The engine autocasts on CUDA itself; on the CPU a bf16 variant adds CPU autocast around it."""
    if precision == "bf16" and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Runner:
    """One variant's model, optimiser and data, kept across rounds (a compiled model compiles once)."""

    def __init__(self, variant: Variant, init: dict, images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device):
        self.variant, self.device = variant, device
        fmt = MEMORY_FORMATS[variant.layout]
        self.data = DeviceData(images, labels, MEAN, STD, device, fmt)
        model = build_model(10).to(device)
        model.load_state_dict(init)
        self.model = model.to(memory_format=fmt)
        self.step_model = torch.compile(self.model) if variant.compiled else self.model
        steps = -(-len(labels) // HYP.batch_size)
        # a schedule long enough for every round: the lr stays near its peak throughout
        self.opt, self.sched = make_optimizer(self.model, HYP, steps * 1000)
        self.gen = torch.Generator().manual_seed(0)

    def images_per_second(self) -> float:
        t0 = time.perf_counter()
        with autocast(self.device, self.variant.precision):
            train_one_epoch(self.step_model, self.data, self.opt, self.sched, HYP, self.gen)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return len(self.data) / (time.perf_counter() - t0)


def measure(images: int, rounds: int, threads: int, compile_too: bool = True) -> dict[tuple, list[float]]:
    """{variant key: images per second of each counted round}."""
    configure_threads(threads)
    device = select_device()
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (images,), generator=gen)
    torch.manual_seed(0)
    init = build_model(10).state_dict()
    runners = [Runner(v, init, imgs, labels, device) for v in variants(device, compile_too)]
    rates = {r.variant.key: [] for r in runners}
    for rnd in range(rounds + 1):  # round 0 warms up (oneDNN primitives, compilation)
        for r in runners:
            rate = r.images_per_second()
            if rnd > 0:
                rates[r.variant.key].append(rate)
                print(f"round {rnd}  {r.variant}  {rate:7.1f} img/s", flush=True)
    return rates


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=1280, help="images per timed pass (batches of 128)")
    p.add_argument("--rounds", type=int, default=3, help="counted rounds (plus one warm-up round)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-compile", dest="compile_too", action="store_false", help="skip the torch.compile variants")
    args = p.parse_args(argv)
    rates = measure(args.images, args.rounds, args.threads, args.compile_too)
    medians = {k: statistics.median(v) for k, v in rates.items()}
    reference = medians[REFERENCE]
    device = select_device()
    print(f"\ndevice {device}, {args.threads} thread(s), {args.images} images per pass, {args.rounds} rounds; "
          f"bf16 {'timed' if has_bf16(device) else 'skipped (no bf16 instructions)'}")
    print("layout        prec mode         img/s   vs contiguous fp32 eager (the engine before channels_last)")
    for key, rate in sorted(medians.items(), key=lambda kv: -kv[1]):
        print(f"{Variant(*key)}  {rate:7.1f}   {rate / reference:.2f}x")


if __name__ == "__main__":
    main()
