"""Stage 2 - fine-tune: MobileNetV2 from its initial weights into the baseline.

    python -m scripts.finetune --data dataset.pt --weights none --hyp '{...}' ...
"""
from __future__ import annotations

import argparse
import time

from scripts.lib.files import log, setup_logging, write_json
from scripts.lib.models.runtime import configure_threads, seed_everything, select_device
from scripts.lib.data.datasets import load_dataset
from scripts.lib.models.engine import TrainHyp, add_training_arguments, device_splits, fit, memory_format
from scripts.lib.models.network import WeightsError, build_model, save_checkpoint
from scripts.lib.models.resume import ResumePoint, resume_key


def finetune(dataset: dict, weights: str | None, hyp: TrainHyp, mean, std, seed: int,
             eval_batch_size: int, fmt: str, resume: ResumePoint | None = None):
    """Return (model at its best validation epoch, history dict); `fmt` is the memory format
    the model and its batches compute in (engine.memory_format)."""
    device = select_device()
    seed_everything(seed)
    model = build_model(len(dataset["classes"]), weights).to(device)
    splits = device_splits(dataset, mean, std, device, memory_format(fmt))
    t0 = time.perf_counter()
    epochs = fit(model, splits["train"], splits["val"], hyp, seed, eval_batch_size, tag="baseline ", resume=resume)
    best = max(epochs, key=lambda e: e["val_accuracy"])
    history = {"weights": weights or "none", "device": str(device), "memory_format": fmt, "seconds": time.perf_counter() - t0,
               "best_epoch": best["epoch"], "best_val_accuracy": best["val_accuracy"], "epochs": epochs}
    return model.cpu(), history


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(p)
    p.add_argument("--weights", required=True, help="state_dict file, or 'none' for random init")
    args = p.parse_args(argv)
    configure_threads(args.threads)
    dataset = load_dataset(args.data)
    weights = None if args.weights == "none" else args.weights
    settings = {k: v for k, v in vars(args).items() if k not in ("threads", "ckpt", "history")}
    resume = ResumePoint(f"{args.ckpt}.resume", resume_key(settings, [args.data] + ([weights] if weights else [])))
    try:
        model, history = finetune(dataset, weights, TrainHyp.from_dict(args.hyp), args.mean, args.std,
                                  args.seed, args.eval_batch_size, args.memory_format, resume)
    except WeightsError as e:
        raise SystemExit(f"error: {e}") from None
    save_checkpoint(model, args.ckpt, {"num_classes": len(dataset["classes"]), "name": "baseline",
                                       "classes": dataset["classes"]})
    write_json(history, args.history)
    resume.done()
    log.info("baseline: best val accuracy %.4f at epoch %d", history["best_val_accuracy"], history["best_epoch"])


if __name__ == "__main__":
    main()
