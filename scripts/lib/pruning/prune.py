"""Stage 3 - prune: one experiment of the matrix, from the baseline checkpoint.

Three concerns kept apart, as in torch.nn.utils.prune:
  what to remove  - STRATEGIES (importance + surgery through torch.nn.utils.prune),
  how much, when  - SCHEDULES (one-shot, or the iterative S_step schedule),
  which tensors   - `prunable_modules` (layer types and exclusions from the config).

    python -m scripts.prune --baseline baseline.pt --data dataset.pt --experiment '{...}' ...
"""
from __future__ import annotations

import argparse
import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from scripts.lib.pruning.channels import IMPORTANCES, ChannelPruner, channel_counts
from scripts.lib.files import log, parse_json_arg, setup_logging, write_json
from scripts.lib.models.runtime import configure_threads, select_device
from scripts.lib.data.datasets import load_dataset
from scripts.lib.models.engine import (Distillation, TrainHyp, add_training_arguments, device_splits, duration, evaluate,
                            fit, memory_format, recalibrate_batch_norm)
from scripts.lib.mobilenet import CLASSIFIER
from scripts.lib.models.network import load_checkpoint, save_checkpoint
from scripts.lib.models.resume import ResumePoint, resume_key

LAYER_TYPES = {"Conv2d": nn.Conv2d, "Linear": nn.Linear}
RESUME_FORMAT = 2  # what a resume file holds; a file of another format is ignored, never misread


@dataclass(frozen=True)
class Experiment:
    strategy: str
    schedule: str
    sparsity: float   # target fraction of the prunable set (structured, channels: of each layer's filters)
    steps: int = 1    # pruning steps (iterative) or mask updates (gradual)
    recalibrate_bn: int = 0            # batches to re-estimate batch-norm statistics on after each step; 0 = off
    distill: Distillation | None = None  # distil the dense baseline while fine-tuning
    pruning_share: float = 0.75        # gradual: share of the fine-tune budget over which the masks grow

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {tuple(SCHEDULES)}, got {self.schedule!r}")
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity!r}")
        if self.steps < 1 or (self.schedule == "oneshot" and self.steps != 1):
            raise ValueError(f"steps must be 1 for oneshot and >= 1 otherwise, got {self.steps!r}")
        if self.recalibrate_bn < 0:
            raise ValueError(f"recalibrate_bn must be >= 0 batches, got {self.recalibrate_bn!r}")
        if not 0 < self.pruning_share <= 1:
            raise ValueError(f"pruning_share must be in (0, 1], got {self.pruning_share!r}")
        if self.schedule == "gradual" and self.strategy in CHANNEL_METHODS:
            raise ValueError("the gradual schedule updates masks during training: it is for masking strategies")

    @classmethod
    def from_dict(cls, d: dict) -> "Experiment":
        distill = d.get("distill")
        return cls(d["strategy"], d["schedule"], float(d["sparsity"]), int(d.get("steps", 1)),
                   int(d.get("recalibrate_bn", 0)), Distillation(**distill) if distill else None,
                   float(d.get("pruning_share", 0.75)))


# --- which tensors -------------------------------------------------------------

def prunable_modules(model: nn.Module, layer_types, exclude=()) -> list[tuple[str, nn.Module]]:
    unknown = set(layer_types) - set(LAYER_TYPES)
    if unknown:
        raise ValueError(f"unknown layer types {sorted(unknown)}; known: {sorted(LAYER_TYPES)}")
    types = tuple(LAYER_TYPES[t] for t in layer_types)
    names = {name for name, _ in model.named_modules()}
    missing = set(exclude) - names
    if missing:
        raise ValueError(f"excluded modules {sorted(missing)} are not in the model")
    return [(name, m) for name, m in model.named_modules() if isinstance(m, types) and name not in exclude]


# --- how much, when --------------------------------------------------------------

def step_fraction(target: float, steps: int) -> float:
    """S_step = 1 - (1 - S_target)^(1/N): the share of what is left that each step removes."""
    return 1 - (1 - target) ** (1 / steps)


def cumulative_targets(target: float, steps: int) -> list[float]:
    """Sparsity after each step: 1 - (1 - S_step)^k, ending exactly at the target."""
    s = step_fraction(target, steps)
    return [1 - (1 - s) ** k for k in range(1, steps)] + [target]


def cubic_targets(target: float, steps: int) -> list[float]:
    """Zhu & Gupta (2017): s_k = s_f (1 - (1 - k/N)^3), k = 1..N; ends exactly at the target."""
    return [target * (1 - (1 - k / steps) ** 3) for k in range(1, steps)] + [target]


# Schedules (scripts.registry names them): (target, steps) -> the sparsity after each step.
# oneshot and iterative fine-tune after each step; gradual updates the masks during one
# continuous fine-tune (run_gradual).
SCHEDULES = {
    "oneshot": lambda target, steps: [target],
    "iterative": cumulative_targets,
    "gradual": cubic_targets,
}


# --- what to remove -----------------------------------------------------------------

def _mask(module: nn.Module) -> torch.Tensor:
    return getattr(module, "weight_mask", torch.ones_like(module.weight))


def apportion(count: int, capacity: list[int]) -> list[int]:
    """Split `count` over layers in proportion to `capacity`, exactly (largest remainder).

    Each share is within one of count * capacity / sum(capacity) and never above capacity.
    """
    total = sum(capacity)
    if not 0 <= count <= total:
        raise ValueError(f"cannot take {count} of {total}")
    if total == 0:
        return [0] * len(capacity)
    exact = [count * c / total for c in capacity]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(capacity)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[:count - sum(shares)]:
        shares[i] += 1
    return shares


def prune_unstructured(modules, method, fraction: float, scope: str = "layer") -> None:
    """Mask weights until exactly round(fraction * N) of the N prunable weights are masked.

    scope "layer": every layer loses the same share of the weights it still has
    (largest-remainder rounding keeps the total exact); the importance ranking is
    within each layer. scope "global": one ranking over all prunable weights
    (torch's global_unstructured). In both, an integer amount applies only to the
    weights still unmasked, so iterative steps compound on what is left.
    """
    total = sum(m.weight.numel() for m in modules)
    remaining = [int(_mask(m).sum()) for m in modules]
    increment = round(fraction * total) - (total - sum(remaining))
    if scope == "global":
        prune.global_unstructured([(m, "weight") for m in modules], pruning_method=method, amount=increment)
    elif scope == "layer":
        for m, k in zip(modules, apportion(increment, remaining)):
            method.apply(m, "weight", amount=k)
    else:
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")


def prune_structured(modules, norm_order: int, fraction: float) -> None:
    """Mask, in every layer, the output filters with the smallest L`norm_order` norm up to
    `fraction` of them."""
    for m in modules:
        filters = m.weight.shape[0]
        mask = _mask(m)
        already = int((mask.flatten(1).sum(1) == 0).sum())
        prune.ln_structured(m, "weight", amount=round(fraction * filters) - already, n=norm_order, dim=0)


def refresh_masked_weights(modules) -> None:
    """weight = weight_orig * weight_mask, now. torch.nn.utils.prune recomputes it only in
    the next forward pass, and ranks by it: after load_state_dict (the best epoch, a
    resumed job) it would still hold the weights of the last forward pass."""
    with torch.no_grad():
        for m in modules:
            for hook in m._forward_pre_hooks.values():
                if isinstance(hook, prune.BasePruningMethod):
                    setattr(m, hook._tensor_name, hook.apply_mask(m))


# Masking strategies (scripts.registry names them): (modules, cumulative fraction, scope) -> None.
MASKING_METHODS = {
    "l1_unstructured": lambda modules, fraction, scope: prune_unstructured(modules, prune.L1Unstructured,
                                                                           fraction, scope),
    "random_unstructured": lambda modules, fraction, scope: prune_unstructured(modules, prune.RandomUnstructured,
                                                                               fraction, scope),
    # whole output filters by L2 norm, the same share in every layer (scope does not apply)
    "l2_structured": lambda modules, fraction, scope: prune_structured(modules, 2, fraction),
}
CHANNEL_METHODS = tuple(IMPORTANCES)  # physically removed channels (scripts.channels)
STRATEGIES = (*MASKING_METHODS, *CHANNEL_METHODS)


def _memory_format(module: nn.Module) -> torch.memory_format:
    """The layout `module`'s weight is stored in (its weight_orig once it is masked)."""
    weight = getattr(module, "weight_orig", module.weight)
    if weight.dim() == 4 and not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def prune_step(modules, strategy: str, fraction: float, scope: str = "layer") -> None:
    """Mask the prunable `modules` up to the cumulative `fraction` with a masking strategy.

    torch.nn.utils.prune ranks weights through .view(-1), which a channels_last weight
    refuses: the masks are computed in NCHW order, then every module gets its layout back
    (the same Parameter objects, so an optimiser holding them goes on as before)."""
    formats = [_memory_format(m) for m in modules]
    for m in modules:
        m.to(memory_format=torch.contiguous_format)
    refresh_masked_weights(modules)
    MASKING_METHODS[strategy](modules, fraction, scope)
    for m, fmt in zip(modules, formats):
        m.to(memory_format=fmt)


def sparsity(tensors) -> float:
    """Exact zeros over elements."""
    tensors = list(tensors)
    total = sum(t.numel() for t in tensors)
    return sum(int((t == 0).sum()) for t in tensors) / total


def make_permanent(modules) -> None:
    """prune.remove: fold each mask into a plain weight tensor before saving."""
    for m in modules:
        if prune.is_pruned(m):
            prune.remove(m, "weight")


# --- the stage ------------------------------------------------------------------

def removed_fraction(modules, baseline_weights: int) -> float:
    """Share of the baseline's prunable weights that are gone: zeroed, or cut out with
    their channel. For masking strategies this is the sparsity."""
    return 1 - sum(int((m.weight != 0).sum()) for m in modules) / baseline_weights


def restore_masks(named, state: dict) -> None:
    """Re-attach the masks a saved state_dict carries (weight_orig + weight_mask), so that
    the state loads into the model and pruning goes on from it."""
    for name, m in named:
        if f"{name}.weight_mask" in state and not prune.is_pruned(m):
            prune.custom_from_mask(m, "weight", state[f"{name}.weight_mask"].to(m.weight.device))


class MaskPruner:
    """Pruning by masking (torch.nn.utils.prune), one `step` per cumulative target.
    Same interface as scripts.lib.pruning.channels.ChannelPruner."""

    def __init__(self, model: nn.Module, strategy: str, settings: dict):
        if strategy not in MASKING_METHODS:
            raise ValueError(f"masking strategy must be one of {sorted(MASKING_METHODS)}, got {strategy!r}")
        self.model, self.strategy, self.settings = model, strategy, settings

    def _named(self):
        return prunable_modules(self.model, self.settings["layer_types"], self.settings["exclude"])

    def step(self, fraction: float) -> None:
        prune_step([m for _, m in self._named()], self.strategy, fraction, self.settings["scope"])

    def state(self) -> dict:
        return {}  # the masks travel in the model's state_dict

    def load_state(self, state: dict, model_state: dict, steps_done: int) -> None:
        restore_masks(self._named(), model_state)


def make_pruner(model: nn.Module, exp: Experiment, settings: dict, targets: list[float], image_size: int):
    """The pruner of an experiment's strategy: masking or channel removal."""
    if exp.strategy in CHANNEL_METHODS:
        ignored = [model.get_submodule(n) for n in (CLASSIFIER, *settings["exclude"])]
        return ChannelPruner(model, exp.strategy, targets, image_size, settings.get("round_to"), ignored)
    return MaskPruner(model, exp.strategy, settings)


def run_experiment(model: nn.Module, exp: Experiment, settings: dict, splits, hyp: TrainHyp, seed: int,
                   eval_batch_size: int, tag: str = "", resume: ResumePoint | None = None,
                   teacher: nn.Module | None = None) -> list[dict]:
    """Prune `model` in place along the schedule, fine-tuning after each step (or, for the
    gradual schedule, while fine-tuning).

    `settings` holds layer_types, exclude, scope and round_to (the config's prune keys);
    `teacher` is the dense model distilled from when the experiment asks for it.
    With `resume`, the state after every step is saved there, and a killed run started
    again goes on after its last finished step. Each step seeds its own randomness, so
    the resumed run ends exactly where an uninterrupted one would.
    """
    if (exp.distill is not None) != (teacher is not None):
        raise ValueError("an experiment that distils needs the teacher, and only it")
    if exp.schedule == "gradual":
        return run_gradual(model, exp, settings, splits, hyp, seed, eval_batch_size, tag, resume, teacher)

    def prunable():  # fresh each time: removing channels replaces the pruned layers
        return [m for _, m in prunable_modules(model, settings["layer_types"], settings["exclude"])]

    baseline_weights = sum(m.weight.numel() for m in prunable())
    baseline_channels = channel_counts(model)
    targets = SCHEDULES[exp.schedule](exp.sparsity, exp.steps)
    pruner = make_pruner(model, exp, settings, targets, splits["val"].images.shape[-1])
    history = []
    saved = resume.load() if resume else None
    if saved:
        pruner.load_state(saved["pruner"], saved["model"], len(saved["history"]))
        model.load_state_dict(saved["model"])
        history = saved["history"]
    for step, fraction in enumerate(targets, start=1):
        if step <= len(history):
            continue  # done before the interruption
        t0 = time.perf_counter()
        torch.manual_seed(seed + step)  # the random strategies draw from the global generator
        pruner.step(fraction)
        if exp.recalibrate_bn:
            recalibrate_batch_norm(model, splits["train"], exp.recalibrate_bn, hyp.batch_size,
                                   torch.Generator().manual_seed(seed + step))
        achieved = removed_fraction(prunable(), baseline_weights)
        pruned = evaluate(model, splits["val"], eval_batch_size)
        epochs = fit(model, splits["train"], splits["val"], hyp, seed + step, eval_batch_size,
                     tag=f"{tag}step {step}/{exp.steps} ", teacher=teacher, distill=exp.distill)
        tuned = max(e["val_accuracy"] for e in epochs)
        history.append({"step": step, "target_sparsity": fraction, "sparsity": achieved,
                        "channels_kept": channel_counts(model) / baseline_channels,
                        "val_accuracy_pruned": pruned["accuracy"], "val_accuracy": tuned,
                        "seconds": time.perf_counter() - t0, "epochs": epochs})
        mean = sum(h["seconds"] for h in history) / len(history)
        log.info("%sstep %d/%d: sparsity %.4f (target %.4f)  val acc %.4f after pruning, %.4f after fine-tuning; "
                 "about %s left in this job", tag, step, exp.steps, achieved, fraction, pruned["accuracy"], tuned,
                 duration(mean * (exp.steps - step)))
        if resume:
            resume.save({"model": model.state_dict(), "history": history, "pruner": pruner.state()},
                        f"{tag}step {step}/{exp.steps}")
    return history


def gradual_update_steps(total_steps: int, updates: int, pruning_share: float) -> list[int]:
    """The SGD steps before which the masks are updated: `updates` evenly spaced over the
    first `pruning_share` of the training, the first at step 0."""
    span = round(pruning_share * total_steps)
    steps = [round(k * span / updates) for k in range(updates)]
    if len(set(steps)) != updates or steps[-1] >= total_steps:
        raise ValueError(f"{updates} mask updates do not fit in {span} of {total_steps} SGD steps")
    return steps


def run_gradual(model: nn.Module, exp: Experiment, settings: dict, splits, hyp: TrainHyp, seed: int,
                eval_batch_size: int, tag: str = "", resume: ResumePoint | None = None,
                teacher: nn.Module | None = None) -> list[dict]:
    """Gradual magnitude pruning (Zhu & Gupta 2017) with learning-rate rewinding (Renda et al.
    2020): one fine-tune of hyp.epochs whose learning rate restarts at its peak and decays to
    zero over the whole budget, the masks growing along the cubic schedule at exp.steps
    updates over its first exp.pruning_share. The kept checkpoint is the best validation
    epoch after the last update, so it has the full target sparsity."""
    named = prunable_modules(model, settings["layer_types"], settings["exclude"])
    modules = [m for _, m in named]
    baseline_weights = sum(m.weight.numel() for m in modules)
    for m in modules:  # masks from the start, so that a resumed job's state loads
        if not prune.is_pruned(m):
            prune.identity(m, "weight")
    targets = cubic_targets(exp.sparsity, exp.steps)
    steps_per_epoch = math.ceil(len(splits["train"]) / hyp.batch_size)
    update_at = dict(zip(gradual_update_steps(hyp.epochs * steps_per_epoch, exp.steps, exp.pruning_share),
                         range(1, exp.steps + 1)))
    pruner = MaskPruner(model, exp.strategy, settings)

    def before_step(step: int) -> None:
        if step not in update_at:
            return
        k = update_at[step]
        torch.manual_seed(seed + k)  # the random strategies draw from the global generator
        pruner.step(targets[k - 1])
        if exp.recalibrate_bn:
            recalibrate_batch_norm(model, splits["train"], exp.recalibrate_bn, hyp.batch_size,
                                   torch.Generator().manual_seed(seed + k))

    last_update_epoch = max(update_at) // steps_per_epoch + 1
    t0 = time.perf_counter()
    epochs = fit(model, splits["train"], splits["val"], hyp, seed, eval_batch_size, tag=f"{tag}gradual ",
                 resume=resume, teacher=teacher, distill=exp.distill, before_step=before_step,
                 keep_from_epoch=last_update_epoch)
    achieved = removed_fraction(modules, baseline_weights)
    log.info("%sgradual: %d mask updates, sparsity %.4f (target %.4f), best val acc %.4f after epoch %d",
             tag, exp.steps, achieved, exp.sparsity,
             max(e["val_accuracy"] for e in epochs[last_update_epoch - 1:]), last_update_epoch)
    return [{"step": 1, "target_sparsity": exp.sparsity, "sparsity": achieved, "channels_kept": 1.0,
             "val_accuracy_pruned": None, "val_accuracy": max(e["val_accuracy"] for e in epochs[last_update_epoch - 1:]),
             "seconds": time.perf_counter() - t0, "epochs": epochs,
             "mask_updates": [{"update": k, "sgd_step": step, "target_sparsity": targets[k - 1]}
                              for step, k in update_at.items()]}]


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(p)
    p.add_argument("--baseline", required=True, help="baseline checkpoint")
    p.add_argument("--name", required=True)
    p.add_argument("--experiment", required=True, type=parse_json_arg, help="strategy, schedule, sparsity, steps")
    p.add_argument("--prunable", required=True, type=parse_json_arg, help="layer_types, exclude, scope, round_to")
    p.add_argument("--masked-ckpt", help="output: the state_dict before prune.remove (masking strategies)")
    args = p.parse_args(argv)
    configure_threads(args.threads)
    try:
        exp = Experiment.from_dict(args.experiment)
        hyp = TrainHyp.from_dict(args.hyp)
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: experiment {args.name}: {e}") from None
    device = select_device()
    model, meta = load_checkpoint(args.baseline)
    model.to(device)
    if (exp.strategy in CHANNEL_METHODS) == bool(args.masked_ckpt):
        raise SystemExit(f"error: experiment {args.name}: --masked-ckpt is for masking strategies only "
                         f"(strategy {exp.strategy})")
    splits = device_splits(load_dataset(args.data), args.mean, args.std, device, memory_format(args.memory_format))
    settings = {k: v for k, v in vars(args).items() if k not in ("threads", "ckpt", "masked_ckpt", "history")}
    settings["resume_format"] = RESUME_FORMAT
    resume = ResumePoint(f"{args.ckpt}.resume", resume_key(settings, [args.baseline, args.data]))
    t0 = time.perf_counter()
    teacher = copy.deepcopy(model) if exp.distill else None  # the dense baseline
    steps = run_experiment(model, exp, args.prunable, splits, hyp, args.seed, args.eval_batch_size,
                           tag=f"{args.name} ", resume=resume, teacher=teacher)
    meta = {**meta, "name": args.name, "experiment": args.experiment}
    if exp.strategy in CHANNEL_METHODS:
        save_checkpoint(model.cpu(), args.ckpt, meta, architecture=True)
    else:
        # The seed's way of saving, kept once on purpose: masks still attached
        # (weight_orig + weight_mask), which is why its file sizes did not move.
        save_checkpoint(model, args.masked_ckpt, meta)
        make_permanent([m for _, m in prunable_modules(model, args.prunable["layer_types"],
                                                       args.prunable["exclude"])])
        save_checkpoint(model.cpu(), args.ckpt, meta)
    write_json({"name": args.name, "experiment": args.experiment, "device": str(device),
                "memory_format": args.memory_format,
                "seconds": time.perf_counter() - t0, "steps": steps}, args.history)
    resume.done()


if __name__ == "__main__":
    main()
