"""Latency: every model in one process, in interleaved rounds; one latency file (the timing stage,
scripts/timing.py).

Timings taken in separate jobs on a shared machine drift (medians up to 1.5x apart
between jobs). Here every model is timed in the same process, round-robin: each round
times every model once per setting (runtime x batch size x threads), in an order that
rotates from round to round, so a slow spell of the machine touches all models alike.
The whole round-robin runs `passes` times in a row; the speed-up ratios of the passes
are compared (the `agreement` block), which is how the paper knows how far to trust them.

Runtimes: PyTorch eager (the checkpoint), ONNX Runtime fp32 and ONNX Runtime int8 (QDQ).
The sparse sweep times the one sparse path a stock CPU install has, CSR matrix products
(torch.sparse.mm), against dense ones (torch.mm) on DENSE layers of the baseline (a 1x1
expansion, a 1x1 projection, the classifier), each magnitude-pruned to every SWEEP_LEVELS
sparsity, round-robin like the models; the paper computes the break-even sparsities from its
cells. The probe (`--sparse-probe`) times a masked model's own pointwise convolutions the same two ways.
"""
from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass

import torch

from scripts.lib.files import log
from scripts.lib.planning.config import BASELINE

# Runtime key -> what it runs. The key is what latency grids, tables and figures name.
RUNTIMES = {"pytorch": "checkpoint", "onnxruntime": "onnx", "onnxruntime_int8": "onnx_int8"}


@dataclass(frozen=True)
class TimingSettings:
    batch_sizes: tuple[int, ...]
    threads: int          # the most threads; every setting is also timed on 1 thread
    warmup: int           # untimed calls before each block
    rounds: int           # round-robin rounds per pass
    block_time: float     # seconds of timed calls per model, setting and round
    passes: int           # whole round-robins, one after the other


def latency_settings(batch_sizes, threads: int) -> list[tuple[int, int]]:
    """(batch size, threads) pairs to time: every batch size with 1 thread and with `threads`;
    the largest batch with the most threads comes last (the results table's latency)."""
    return [(b, t) for b in sorted(batch_sizes) for t in sorted({1, threads})]


def onnx_session(path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Runner:
    """One forward pass of one model, in one runtime, at one batch size and thread count.

    ONNX Runtime fixes its threads when a session opens, so a session is kept per thread
    count; PyTorch's thread count is set before each block (torch.set_num_threads)."""

    def __init__(self, runtime: str, model, image_size: int, device: torch.device):
        self.runtime, self.model, self.image_size, self.device = runtime, model, image_size, device
        self.sessions = {}

    def call(self, batch_size: int, threads: int):
        x = torch.randn(batch_size, 3, self.image_size, self.image_size)
        if self.runtime == "pytorch":
            x = x.to(self.device)
            sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)

            def run():
                with torch.inference_mode():
                    self.model(x)
                sync()
            return run
        if threads not in self.sessions:
            self.sessions[threads] = onnx_session(self.model, threads)
        session, feed = self.sessions[threads], {"images": x.numpy()}
        return lambda: session.run(None, feed)


def time_block(run, threads: int, warmup: int, block_time: float, min_calls: int = 3) -> float:
    """Median seconds of single calls over at least `block_time` seconds (and `min_calls` calls)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            run()
        times, start = [], time.perf_counter()
        while time.perf_counter() - start < block_time or len(times) < min_calls:
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    return statistics.median(times)


def schedule(names: list[str], settings: list[tuple], rounds: int) -> list[tuple[int, tuple, str]]:
    """(round, setting, model) in timing order: per round, per setting, every model once,
    the model order rotated by one each round."""
    order = []
    for r in range(rounds):
        for s in settings:
            k = r % len(names)
            order.extend((r, s, name) for name in names[k:] + names[:k])
    return order


def time_models(runners: dict[str, dict[str, Runner]], settings: TimingSettings) -> dict:
    """Block medians (ms) per model, runtime, batch and threads, per pass: {model: {key: [[pass 1], [pass 2]]}}
    where key is (runtime, batch, threads)."""
    grid = [(rt, b, t) for rt in RUNTIMES for b, t in latency_settings(settings.batch_sizes, settings.threads)]
    names = list(runners)
    samples = {n: {key: [[] for _ in range(settings.passes)] for key in grid if key[0] in runners[n]}
               for n in names}
    for p in range(settings.passes):
        log.info("timing pass %d of %d: %d models x %d settings x %d rounds", p + 1, settings.passes, len(names),
                 len(grid), settings.rounds)
        for _, key, name in schedule(names, grid, settings.rounds):
            runtime, b, t = key
            if runtime not in runners[name]:
                continue
            run = runners[name][runtime].call(b, t)
            samples[name][key][p].append(1e3 * time_block(run, t, settings.warmup, settings.block_time))
    return samples


def summarise(samples: dict, device: str) -> dict[str, list[dict]]:
    """Each model's latency grid: median and IQR over every round of every pass, and each pass's median."""
    out = {}
    for name, per_key in samples.items():
        grid = []
        for (runtime, b, t), passes in per_key.items():
            pooled = [ms for p in passes for ms in p]
            q1, _, q3 = statistics.quantiles(pooled, n=4) if len(pooled) > 1 else (pooled[0],) * 3
            grid.append({"runtime": runtime, "latency_ms": statistics.median(pooled), "latency_iqr_ms": q3 - q1,
                         "latency_samples": len(pooled), "latency_batch_size": b, "latency_threads": t,
                         "latency_device": device if runtime == "pytorch" else "cpu",
                         "latency_pass_ms": [statistics.median(p) for p in passes]})
        out[name] = grid
    return out


def pass_agreement(grids: dict[str, list[dict]], reference: str = BASELINE) -> dict:
    """How far the passes disagree on each speed-up over `reference` (reference latency / model
    latency, same runtime, batch and threads): |ratio in pass i / ratio in pass 1 - 1|."""
    ref = {(g["runtime"], g["latency_batch_size"], g["latency_threads"]): g["latency_pass_ms"]
           for g in grids[reference]}
    spreads = []
    for name, grid in grids.items():
        if name == reference:
            continue
        for g in grid:
            key = (g["runtime"], g["latency_batch_size"], g["latency_threads"])
            if key not in ref:
                continue
            ratios = [r / m for r, m in zip(ref[key], g["latency_pass_ms"])]
            spreads.extend({"model": name, "runtime": key[0], "batch_size": key[1], "threads": key[2],
                            "spread": abs(x / ratios[0] - 1)} for x in ratios[1:])
    if not spreads:
        return {"passes_compared": 0}
    worst = max(spreads, key=lambda s: s["spread"])
    return {"passes_compared": len(grids[reference][0]["latency_pass_ms"]), "ratios": len(spreads),
            "max_spread": worst["spread"], "median_spread": statistics.median(s["spread"] for s in spreads),
            "within_5_percent": sum(s["spread"] <= 0.05 for s in spreads) / len(spreads), "worst": worst}


# --- the sparse-kernel probe and sweep --------------------------------------------------------------

# The magnitude sparsities the sweep prunes each dense layer of the baseline to (the paper reads
# them from the latency file, never from here).
SWEEP_LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def csr(w: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return w.to_sparse_csr()


def product_pair(w: torch.Tensor, x: torch.Tensor) -> tuple:
    """Dense (torch.mm) and CSR (torch.sparse.mm) products of the out x in matrix `w` with the
    in x columns activations `x`: the one sparse path a stock CPU install of PyTorch has."""
    sparse = csr(w)
    return (lambda: torch.mm(w, x)), (lambda: torch.sparse.mm(sparse, x))


def pointwise_inputs(model, image_size: int) -> list[tuple[str, torch.Tensor, int]]:
    """(name, weight as an out x in matrix, output pixels per image) of every 1x1 convolution
    (groups 1) and every Linear layer, in forward order."""
    pixels, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) or (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
                                              and m.groups == 1):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: pixels.__setitem__(name, out[0, 0].numel() if out.dim() == 4 else 1)))
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    return [(name, modules[name].weight.detach().cpu().flatten(1), n) for name, n in pixels.items()]


def sparse_probe(model, image_size: int, batch_size: int, threads: int, settings: TimingSettings) -> dict:
    """Dense against CSR products of a masked model's own pointwise (1x1) convolution weights
    with the activations of a batch, summed over the layers."""
    modules = dict(model.named_modules())
    layers = [(w, n) for name, w, n in pointwise_inputs(model, image_size)
              if isinstance(modules[name], torch.nn.Conv2d)]
    torch.manual_seed(0)
    model_dense = model_sparse = 0.0
    zeros = total = 0
    for w, pixels in layers:
        dense, sparse = product_pair(w, torch.randn(w.shape[1], batch_size * pixels))
        d, s = [], []
        for _ in range(settings.rounds):  # interleaved, as the models are
            d.append(time_block(dense, threads, settings.warmup, settings.block_time / 4))
            s.append(time_block(sparse, threads, settings.warmup, settings.block_time / 4))
        model_dense, model_sparse = model_dense + 1e3 * statistics.median(d), model_sparse + 1e3 * statistics.median(s)
        zeros, total = zeros + int((w == 0).sum()), total + w.numel()
    return {"batch_size": batch_size, "threads": threads, "layers": len(layers), "sparsity": zeros / total,
            "dense_ms": model_dense, "csr_ms": model_sparse}


def sweep_layers(model, image_size: int) -> list[dict]:
    """The layer shapes the sweep prunes, from a dense model: the 1x1 expansion convolution and
    the 1x1 projection of an inverted-residual block with the most MACs (torchvision's
    InvertedResidual; the network's last 1x1 convolution belongs to neither), and the
    classifier (the last Linear layer), each as an out x in matrix."""
    from torchvision.models.mobilenetv2 import InvertedResidual

    in_blocks = {id(sub) for m in model.modules() if isinstance(m, InvertedResidual) for sub in m.modules()}
    modules = dict(model.named_modules())
    layers = pointwise_inputs(model, image_size)
    convs = [l for l in layers if isinstance(modules[l[0]], torch.nn.Conv2d) and id(modules[l[0]]) in in_blocks]
    roles = {"expansion": [l for l in convs if l[1].shape[0] > l[1].shape[1]],
             "projection": [l for l in convs if l[1].shape[0] < l[1].shape[1]],
             "classifier": [l for l in layers if isinstance(modules[l[0]], torch.nn.Linear)][-1:]}
    out = []
    for role, candidates in roles.items():
        if candidates:
            name, w, pixels = max(candidates, key=lambda l: l[1].numel() * l[2])
            out.append({"role": role, "layer": name, "weight": w, "pixels": pixels})
    return out


def magnitude_pruned(w: torch.Tensor, level: float) -> torch.Tensor:
    """`w` with its round(level * numel) smallest |w| set to zero."""
    k = int(round(level * w.numel()))
    pruned = w.clone().flatten()
    pruned[pruned.abs().argsort()[:k]] = 0
    return pruned.view_as(w)


def sparse_sweep(model, image_size: int, settings: TimingSettings, levels=SWEEP_LEVELS) -> dict:
    """Dense against CSR on DENSE layers (the baseline's), each magnitude-pruned to every level,
    at every batch size and thread count of the latency grid. Timed as the models are: in
    `rounds` rounds, each timing every (layer, level, kernel) once per setting in an order that
    rotates from round to round. The cells record the zeros each pruned matrix really holds."""
    torch.manual_seed(0)
    layers = sweep_layers(model, image_size)
    matrices = {(l["role"], level): magnitude_pruned(l["weight"], level) for l in layers for level in levels}
    pixels = {l["role"]: l["pixels"] for l in layers}
    items = [(role, level, kernel) for role, level in matrices for kernel in ("dense", "csr")]
    settings_bt = latency_settings(settings.batch_sizes, settings.threads)
    inputs = {(b, role): torch.randn(matrices[(role, levels[0])].shape[1], b * pixels[role])
              for b in settings.batch_sizes for role in pixels}
    runs = {}
    for b, t in settings_bt:
        for (role, level), w in matrices.items():
            runs[(b, t, role, level, "dense")], runs[(b, t, role, level, "csr")] = product_pair(w, inputs[(b, role)])
    samples = {key: [] for key in runs}
    log.info("sparse sweep: %d layers x %d levels x 2 kernels x %d settings x %d rounds", len(layers), len(levels),
             len(settings_bt), settings.rounds)
    for _, (b, t), item in schedule(items, settings_bt, settings.rounds):
        key = (b, t, *item)
        samples[key].append(1e3 * time_block(runs[key], t, settings.warmup, settings.block_time / 4))
    cells = [{"role": role, "batch_size": b, "threads": t, "sparsity": level,
              "zeros": float((matrices[(role, level)] == 0).float().mean()),
              "dense_ms": statistics.median(samples[(b, t, role, level, "dense")]),
              "csr_ms": statistics.median(samples[(b, t, role, level, "csr")])}
             for b, t in settings_bt for role, level in matrices]
    return {"levels": list(levels),
            "layers": [{"role": l["role"], "layer": l["layer"], "shape": list(l["weight"].shape),
                        "pixels": l["pixels"], "zeros": float((l["weight"] == 0).float().mean())} for l in layers],
            "cells": cells}


# --- the job ---------------------------------------------------------------------------------------


def load_runners(models: list[list[str]], image_size: int, device: torch.device) -> dict[str, dict[str, Runner]]:
    """name -> runtime -> Runner, from --model NAME CKPT ONNX [INT8_ONNX]."""
    from scripts.lib.models.network import load_checkpoint

    runners = {}
    for spec in models:
        if len(spec) not in (3, 4):
            raise ValueError(f"--model {' '.join(spec)}: expected NAME CHECKPOINT ONNX [INT8_ONNX]")
        name, ckpt, onnx, *int8 = spec
        model = load_checkpoint(ckpt)[0].to(device).eval()
        runners[name] = {"pytorch": Runner("pytorch", model, image_size, device),
                         "onnxruntime": Runner("onnxruntime", onnx, image_size, device)}
        if int8:
            runners[name]["onnxruntime_int8"] = Runner("onnxruntime_int8", int8[0], image_size, device)
    if BASELINE not in runners:
        raise ValueError(f"the timing job needs the {BASELINE!r} (speed-ups are against it); got {list(runners)}")
    return runners


def measure(models: list[list[str]], settings: TimingSettings, image_size: int, sparse_probe_ckpt: str | None) -> dict:
    """The latency file's content: every model's grid, the passes' agreement, the CSR probe,
    and the machine that measured (the paper names it, whatever machine planned the run)."""
    from scripts.lib.measure.provenance import hardware
    from scripts.lib.models.network import load_checkpoint

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    grids = summarise(time_models(load_runners(models, image_size, device), settings), str(device))
    result = {"settings": {"batch_sizes": list(settings.batch_sizes), "warmup": settings.warmup,
                           "rounds": settings.rounds, "block_time": settings.block_time, "passes": settings.passes,
                           "threads": settings.threads, "device": str(device), "torch": torch.__version__},
              "machine": hardware(), "models": grids, "agreement": pass_agreement(grids)}
    baseline = load_checkpoint({m[0]: m[1] for m in models}[BASELINE])[0].eval()
    result["sparse_sweep"] = sparse_sweep(baseline, image_size, settings)
    if sparse_probe_ckpt:
        probe_model, meta = load_checkpoint(sparse_probe_ckpt)
        result["sparse_probe_model"] = meta["name"]  # which model the probe read, for the reader of this file
        result["sparse_probe"] = [sparse_probe(probe_model.eval(), image_size, b, t, settings)
                                  for b, t in latency_settings(settings.batch_sizes, settings.threads)]
    return result
