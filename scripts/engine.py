"""The training engine: data resident on the device as uint8, batched augmentation.

No PIL and no DataLoader worker on the hot path: random crop (zero pad 4) and
horizontal flip run as tensor ops on a whole batch, so the job's cores all go to
the convolutions. On CUDA the data lives on the GPU and the forward pass runs in
bfloat16 autocast.
"""
from __future__ import annotations

import argparse
import copy
import math
import time
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from scripts.common import log, parse_json_arg
from scripts.resume import ResumePoint, rng_state, set_rng_state

PAD = 4  # pixels of zero padding for the random crop


@dataclass(frozen=True)
class TrainHyp:
    epochs: int              # passes over the training split
    batch_size: int          # images per SGD step
    lr: float                # peak learning rate; cosine decay to 0 after warm-up
    momentum: float          # SGD momentum
    weight_decay: float      # L2 penalty, applied to every parameter
    nesterov: bool           # Nesterov momentum
    label_smoothing: float   # cross-entropy label smoothing
    warmup_epochs: float     # linear warm-up length, in epochs

    @classmethod
    def from_dict(cls, d: dict) -> "TrainHyp":
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise ValueError(f"training settings: expected keys {sorted(names)}, got {sorted(d)}")
        return cls(**d)


class DeviceData:
    """One split as uint8 images and labels on `device`, served in normalised batches."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std, device: torch.device):
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.device = device
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.labels)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std

    def augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Random crop with zero padding PAD, then random horizontal flip, per image."""
        b, c, h, w = x.shape
        padded = F.pad(x, (PAD, PAD, PAD, PAD))
        dy = torch.randint(0, 2 * PAD + 1, (b,), generator=gen).to(x.device)
        dx = torch.randint(0, 2 * PAD + 1, (b,), generator=gen).to(x.device)
        flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        rows = dy[:, None] + torch.arange(h, device=x.device)[None]
        cols = dx[:, None] + torch.arange(w, device=x.device)[None]
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        return padded[torch.arange(b, device=x.device)[:, None, None, None],
                      torch.arange(c, device=x.device)[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]

    def batches(self, batch_size: int, gen: torch.Generator | None = None, augment: bool = False):
        """Yield (normalised float images, labels); shuffled and augmented when `gen` is given."""
        n = len(self)
        order = torch.randperm(n, generator=gen).to(self.device) if gen is not None else None
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            x, y = self.images[idx], self.labels[idx]
            if augment:
                x = self.augment(x, gen)
            yield self.normalise(x), y


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.inference_mode()
def evaluate(model: nn.Module, data: DeviceData, batch_size: int) -> dict:
    """Top-1 accuracy and mean cross-entropy over a whole split."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for x, y in data.batches(batch_size):
        with _autocast(data.device):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return {"accuracy": correct / len(data), "loss": loss_sum / len(data)}


def make_optimizer(model: nn.Module, hyp: TrainHyp, steps_per_epoch: int):
    opt = torch.optim.SGD(model.parameters(), lr=hyp.lr, momentum=hyp.momentum,
                          weight_decay=hyp.weight_decay, nesterov=hyp.nesterov and hyp.momentum > 0)
    total = hyp.epochs * steps_per_epoch
    warmup = round(hyp.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_one_epoch(model, data: DeviceData, opt, sched, hyp: TrainHyp, gen: torch.Generator) -> dict:
    model.train()
    seen, correct, loss_sum = 0, 0, 0.0
    for x, y in data.batches(hyp.batch_size, gen, augment=True):
        with _autocast(data.device):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=hyp.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        seen += len(y)
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
    return {"loss": loss_sum / seen, "accuracy": correct / seen}


def fit(model: nn.Module, train: DeviceData, val: DeviceData, hyp: TrainHyp, seed: int,
        eval_batch_size: int, tag: str = "", resume: ResumePoint | None = None) -> list[dict]:
    """Train for hyp.epochs; leave the model at its best validation epoch; return the history.

    With `resume`, the state after every epoch is saved there, and a killed run started
    again continues after its last finished epoch, exactly as if it had not stopped.
    """
    gen = torch.Generator().manual_seed(seed)
    steps = math.ceil(len(train) / hyp.batch_size)
    opt, sched = make_optimizer(model, hyp, steps)
    history, best_acc, best_state, start = [], -1.0, None, 1
    saved = resume.load() if resume else None
    if saved:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        gen.set_state(saved["gen"])
        set_rng_state(saved["rng"])
        history, best_acc, best_state = saved["history"], saved["best_acc"], saved["best_state"]
        start = len(history) + 1
    for epoch in range(start, hyp.epochs + 1):
        t0 = time.perf_counter()
        tr = train_one_epoch(model, train, opt, sched, hyp, gen)
        va = evaluate(model, val, eval_batch_size)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                        "val_loss": va["loss"], "val_accuracy": va["accuracy"], "seconds": seconds})
        log.info("%sepoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  %.1fs (%.0f img/s)",
                 tag, epoch, hyp.epochs, tr["loss"], tr["accuracy"], va["loss"], va["accuracy"],
                 seconds, len(train) / seconds)
        if va["accuracy"] > best_acc:
            best_acc, best_state = va["accuracy"], copy.deepcopy(model.state_dict())
        if resume:
            resume.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "gen": gen.get_state(), "rng": rng_state(), "history": history, "best_acc": best_acc,
                         "best_state": best_state}, f"{tag}epoch {epoch}/{hyp.epochs}")
    model.load_state_dict(best_state)
    return history


def device_splits(dataset: dict, mean, std, device: torch.device) -> dict[str, DeviceData]:
    """The cached dataset's train / val / test splits as DeviceData on `device`."""
    tr, va = dataset["train_index"], dataset["val_index"]
    images, labels = dataset["train_images"], dataset["train_labels"]
    return {
        "train": DeviceData(images[tr], labels[tr], mean, std, device),
        "val": DeviceData(images[va], labels[va], mean, std, device),
        "test": DeviceData(dataset["test_images"], dataset["test_labels"], mean, std, device),
    }


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line arguments every training stage (fine-tune, prune) takes."""
    parser.add_argument("--data", required=True, help="dataset.pt from the data stage")
    parser.add_argument("--hyp", required=True, type=parse_json_arg, help="training settings (JSON)")
    parser.add_argument("--mean", required=True, type=float, nargs=3, help="normalisation mean (RGB)")
    parser.add_argument("--std", required=True, type=float, nargs=3, help="normalisation std (RGB)")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--eval-batch-size", required=True, type=int)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (capped at the machine's cores)")
    parser.add_argument("--ckpt", required=True, help="output checkpoint")
    parser.add_argument("--history", required=True, help="output JSON history")
