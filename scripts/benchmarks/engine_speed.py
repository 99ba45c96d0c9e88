"""Training throughput: this project's engine against a seed-style data pipeline.

Both train the same MobileNetV2 (same initial weights, same optimiser) on the
same images, in interleaved rounds so that drift of the machine hits both:

  engine  - uint8 tensors resident on the device, batched crop/flip/normalise
            (scripts.engine.DeviceData), no DataLoader;
  seed    - torchvision ImageFolder + PIL transforms (RandomCrop(32, padding=4),
            RandomHorizontalFlip, ToTensor, Normalize) + DataLoader(num_workers=2).

    python -m scripts.benchmarks.engine_speed                      # synthetic images
    python -m scripts.benchmarks.engine_speed --imagefolder ../shared/data/cifar10-jpeg.tar.gz

Prints images per second of each and their ratio (engine / seed).
"""
from __future__ import annotations

import argparse
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms
from torchvision.io import encode_png

from scripts.common import available_cores, select_device
from scripts.data import make_synthetic, read_imagefolder
from scripts.engine import DeviceData
from scripts.model import build_model

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def write_synthetic_imagefolder(root: Path, n: int) -> None:
    splits, classes = make_synthetic(n, 10, 10, 32, 30.0, seed=0)
    for split in ("train", "test"):
        images, labels = splits[split]
        for i, (img, y) in enumerate(zip(images, labels)):
            d = root / split / classes[y]
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{i:05d}.png").write_bytes(encode_png(img).numpy().tobytes())


def train_steps(model, opt, batches, device) -> int:
    """One SGD step per batch; returns the number of images seen."""
    model.train()
    seen = 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen


def limited(iterable, n):
    for i, item in enumerate(iterable):
        if i == n:
            return
        yield item


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--imagefolder", help="ImageFolder directory or .tar.gz (default: synthetic images)")
    p.add_argument("--images", type=int, default=5000, help="training images used by both pipelines")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=15, help="timed batches per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the seed pipeline")
    args = p.parse_args(argv)

    device = select_device()
    threads = available_cores()
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.imagefolder is None:
            write_synthetic_imagefolder(root, args.images)
        elif Path(args.imagefolder).is_dir():
            root = Path(args.imagefolder)
        else:
            with tarfile.open(args.imagefolder) as tar:
                tar.extractall(root, filter="data")
        seed_set = datasets.ImageFolder(str(root / "train"), transform=transforms.Compose([
            transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
            transforms.ToTensor(), transforms.Normalize(MEAN, STD)]))
        g = torch.Generator().manual_seed(0)
        subset = torch.randperm(len(seed_set), generator=g)[:args.images]
        seed_loader = DataLoader(Subset(seed_set, subset.tolist()), batch_size=args.batch_size, shuffle=True,
                                 num_workers=args.workers, persistent_workers=args.workers > 0,
                                 pin_memory=device.type == "cuda")
        splits, _ = read_imagefolder(root)
        images, labels = splits["train"]
        engine_data = DeviceData(images[subset], labels[subset], MEAN, STD, device)

        torch.manual_seed(0)
        init = build_model(10).state_dict()
        pipelines = {
            "engine": lambda: engine_data.batches(args.batch_size, torch.Generator().manual_seed(1), augment=True),
            "seed": lambda: iter(seed_loader),
        }
        rates = {name: [] for name in pipelines}
        for r in range(args.rounds + 1):  # round 0 warms up both (oneDNN kernels, worker start)
            for name, make_batches in pipelines.items():
                model = build_model(10).to(device)
                model.load_state_dict(init)
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                t0 = time.perf_counter()
                seen = train_steps(model, opt, limited(make_batches(), args.batches), device)
                rate = seen / (time.perf_counter() - t0)
                if r > 0:
                    rates[name].append(rate)
                    print(f"round {r} {name:6s} {rate:8.1f} img/s", flush=True)
    engine, seed = statistics.median(rates["engine"]), statistics.median(rates["seed"])
    print(f"device {device}, {threads} threads, batch {args.batch_size}, {args.batches} batches x {args.rounds} rounds")
    print(f"engine {engine:.1f} img/s   seed-style {seed:.1f} img/s   ratio engine/seed {engine / seed:.2f}x")


if __name__ == "__main__":
    main()
