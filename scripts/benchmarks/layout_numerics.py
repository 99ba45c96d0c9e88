"""How exactly each memory format computes one training step, against float64.

The same MobileNetV2, the same batch (seeded augmentation, dropout seeded the same),
one forward and backward pass in float64 (the reference, contiguous) and in float32
in each layout of scripts.lib.models.engine.MEMORY_FORMATS. Prints, per layout, the loss's
absolute error and the relative error ||g - g_ref|| / ||g_ref|| of every conv and
linear weight gradient (median and worst layers).

    python -m scripts.benchmarks.layout_numerics                        # generated images
    python -m scripts.benchmarks.layout_numerics --data results/paper/data/dataset.pt

It measures, it does not judge: the engine's choice of layout rests on speed
(engine_speed) and on the accuracy of whole runs.
"""
from __future__ import annotations

import argparse
import copy
import statistics

import torch
import torch.nn.functional as F

from scripts.benchmarks.engine_speed import MEAN, STD
from scripts.lib.models.engine import MEMORY_FORMATS, DeviceData
from scripts.lib.models.network import build_model


def batch(data_path: str | None, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented, normalised training batch (NCHW), seeded."""
    if data_path:
        from scripts.lib.data.datasets import load_dataset

        ds = load_dataset(data_path)
        images, labels = ds["train_images"][ds["train_index"]], ds["train_labels"][ds["train_index"]]
    else:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (size, 3, 32, 32), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (size,), generator=g)
    data = DeviceData(images, labels, MEAN, STD, torch.device("cpu"))
    return next(data.batches(size, torch.Generator().manual_seed(0), augment=True))


def gradients(model, x, y, dtype, fmt) -> tuple[dict, float]:
    m = copy.deepcopy(model).to(dtype).to(memory_format=fmt).train()
    torch.manual_seed(1)  # the same dropout mask in every run
    loss = F.cross_entropy(m(x.to(dtype).contiguous(memory_format=fmt)).double(), y, label_smoothing=0.1)
    loss.backward()
    return {n: p.grad.double().contiguous() for n, p in m.named_parameters()
            if n.endswith("weight") and p.dim() > 1}, loss.item()


def measure(data_path: str | None = None, size: int = 128, threads: int = 1) -> dict:
    """{layout: {"loss_error": float, "grad_errors": {layer: relative error}}}."""
    torch.set_num_threads(threads)
    x, y = batch(data_path, size)
    torch.manual_seed(0)
    model = build_model(10)
    ref, ref_loss = gradients(model, x, y, torch.float64, torch.contiguous_format)
    out = {}
    for name, fmt in MEMORY_FORMATS.items():
        grads, loss = gradients(model, x, y, torch.float32, fmt)
        out[name] = {"loss_error": abs(loss - ref_loss),
                     "grad_errors": {n: ((grads[n] - ref[n]).norm() / ref[n].norm()).item() for n in ref}}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="dataset.pt of the data stage (default: generated images)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    for name, r in measure(args.data, args.batch_size, args.threads).items():
        errors = r["grad_errors"]
        worst = sorted(errors, key=errors.get, reverse=True)[:3]
        print(f"{name:13s} loss error {r['loss_error']:.1e}; weight gradients, relative error: "
              f"median {statistics.median(errors.values()):.2%}, worst "
              + ", ".join(f"{n} {errors[n]:.2%}" for n in worst))


if __name__ == "__main__":
    main()
