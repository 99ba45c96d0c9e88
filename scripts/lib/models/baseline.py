"""The baseline: MobileNetV2 from its initial weights (random, ImageNet or a file), trained on
the data set (the fine-tune stage, scripts/finetune.py)."""
from __future__ import annotations

import time

from scripts.lib.models.runtime import seed_everything, select_device
from scripts.lib.models.engine import TrainHyp, device_splits, fit, memory_format
from scripts.lib.models.network import build_model
from scripts.lib.models.resume import ResumePoint


def finetune(dataset: dict, weights: str | None, hyp: TrainHyp, mean, std, seed: int,
             eval_batch_size: int, fmt: str, resume: ResumePoint | None = None, width_mult: float = 1.0,
             tag: str = "baseline "):
    """Return (model at its best validation epoch, history dict); `fmt` is the memory format
    the model and its batches compute in (engine.memory_format); `width_mult` < 1 trains a
    narrower MobileNetV2 (a small dense control); `tag` starts every log line."""
    device = select_device()
    seed_everything(seed)
    model = build_model(len(dataset["classes"]), weights, width_mult).to(device)
    splits = device_splits(dataset, mean, std, device, memory_format(fmt))
    t0 = time.perf_counter()
    epochs = fit(model, splits["train"], splits["val"], hyp, seed, eval_batch_size, tag=tag, resume=resume)
    best = max(epochs, key=lambda e: e["val_accuracy"])
    history = {"weights": weights or "none", "device": str(device), "memory_format": fmt, "seconds": time.perf_counter() - t0,
               "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"], "epochs": epochs}
    return model.cpu(), history
