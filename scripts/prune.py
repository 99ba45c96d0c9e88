"""Stage 3 - prune: one experiment of the matrix, from the baseline checkpoint.

Three concerns kept apart, as in torch.nn.utils.prune:
  what to remove  - STRATEGIES (importance + surgery through torch.nn.utils.prune),
  how much, when  - `cumulative_targets` (one-shot, or iterative S_step schedule),
  which tensors   - `prunable_modules` (layer types and exclusions from the config).

    python -m scripts.prune --baseline baseline.pt --data dataset.pt --experiment '{...}' ...
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from scripts.channels import IMPORTANCES, channel_counts, channel_pruner
from scripts.common import configure_threads, log, parse_json_arg, select_device, setup_logging, write_json
from scripts.data import load_dataset
from scripts.engine import TrainHyp, add_training_arguments, device_splits, evaluate, fit
from scripts.model import load_checkpoint, save_checkpoint
from scripts.resume import ResumePoint, resume_key

LAYER_TYPES = {"Conv2d": nn.Conv2d, "Linear": nn.Linear}
UNSTRUCTURED = {"l1_unstructured": prune.L1Unstructured, "random_unstructured": prune.RandomUnstructured}
STRUCTURED = {"l2_structured": 2}  # strategy -> norm order over each output filter (masked)
CHANNELS = tuple(IMPORTANCES)  # physically removed channels (scripts.channels, Torch-Pruning)
STRATEGIES = (*UNSTRUCTURED, *STRUCTURED, *CHANNELS)
SCHEDULES = ("oneshot", "iterative")


@dataclass(frozen=True)
class Experiment:
    strategy: str
    schedule: str
    sparsity: float   # target fraction of the prunable set (structured, channels: of each layer's filters)
    steps: int = 1

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity!r}")
        if self.steps < 1 or (self.schedule == "oneshot" and self.steps != 1):
            raise ValueError(f"steps must be 1 for oneshot and >= 1 for iterative, got {self.steps!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "Experiment":
        return cls(d["strategy"], d["schedule"], float(d["sparsity"]), int(d.get("steps", 1)))


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


def prune_structured(modules, norm: int, fraction: float) -> None:
    """Mask, in every layer, the output filters with the smallest Ln norm up to `fraction` of them."""
    for m in modules:
        filters = m.weight.shape[0]
        mask = _mask(m)
        already = int((mask.flatten(1).sum(1) == 0).sum())
        prune.ln_structured(m, "weight", amount=round(fraction * filters) - already, n=norm, dim=0)


def refresh_masked_weights(modules) -> None:
    """weight = weight_orig * weight_mask, now. torch.nn.utils.prune recomputes it only in
    the next forward pass, and ranks by it: after load_state_dict (the best epoch, a
    resumed job) it would still hold the weights of the last forward pass."""
    with torch.no_grad():
        for m in modules:
            for hook in m._forward_pre_hooks.values():
                if isinstance(hook, prune.BasePruningMethod):
                    setattr(m, hook._tensor_name, hook.apply_mask(m))


def prune_step(modules, strategy: str, fraction: float, scope: str = "layer") -> None:
    refresh_masked_weights(modules)
    if strategy in UNSTRUCTURED:
        prune_unstructured(modules, UNSTRUCTURED[strategy], fraction, scope)
    else:
        prune_structured(modules, STRUCTURED[strategy], fraction)


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


def run_experiment(model: nn.Module, exp: Experiment, prunable: dict, splits, hyp: TrainHyp, seed: int,
                   eval_batch_size: int, tag: str = "", resume: ResumePoint | None = None) -> list[dict]:
    """Prune `model` in place along the schedule, fine-tuning after each step.

    `prunable` holds layer_types, exclude, scope and round_to (the config's prune keys).
    With `resume`, the state after every step is saved there, and a killed run started
    again goes on after its last finished step. Each step seeds its own randomness, so
    the resumed run ends exactly where an uninterrupted one would.
    """
    named = prunable_modules(model, prunable["layer_types"], prunable["exclude"])
    baseline_weights = sum(m.weight.numel() for _, m in named)
    baseline_channels = channel_counts(model)
    targets = cumulative_targets(exp.sparsity, exp.steps)
    pruner = None
    if exp.strategy in CHANNELS:
        image_size = splits["val"].images.shape[-1]
        ignored = [model.get_submodule(n) for n in ("classifier.1", *prunable["exclude"])]
        pruner = channel_pruner(model, exp.strategy, targets, image_size, prunable.get("round_to"), ignored)
    history = []
    saved = resume.load() if resume else None
    if saved:
        if pruner is not None:  # replay the recorded channel removals on the unpruned model
            pruner.load_pruning_history(saved["pruning_history"])
            pruner.current_step = len(saved["history"])
            # Torch-Pruning notes each group's unpruned width at its first step and takes
            # later ratios of it; a resumed pruner must not take the pruned width instead.
            pruner._scope_initial_channels.update(saved["initial_channels"])
        else:
            restore_masks(named, saved["model"])
        model.load_state_dict(saved["model"])
        named = prunable_modules(model, prunable["layer_types"], prunable["exclude"])
        history = saved["history"]
    for step, fraction in enumerate(targets, start=1):
        if step <= len(history):
            continue  # done before the interruption
        t0 = time.perf_counter()
        torch.manual_seed(seed + step)  # the random strategies draw from the global generator
        if pruner is not None:
            pruner.step()  # replaces the pruned layers' weights: the module list is stale after it
            named = prunable_modules(model, prunable["layer_types"], prunable["exclude"])
        else:
            prune_step([m for _, m in named], exp.strategy, fraction, prunable["scope"])
        modules = [m for _, m in named]
        achieved = removed_fraction(modules, baseline_weights)
        pruned = evaluate(model, splits["val"], eval_batch_size)
        epochs = fit(model, splits["train"], splits["val"], hyp, seed + step, eval_batch_size,
                     tag=f"{tag}step {step}/{exp.steps} ")
        tuned = max(e["val_accuracy"] for e in epochs)
        history.append({"step": step, "target_sparsity": fraction, "sparsity": achieved,
                        "channels_kept": channel_counts(model) / baseline_channels,
                        "val_accuracy_pruned": pruned["accuracy"], "val_accuracy": tuned,
                        "seconds": time.perf_counter() - t0, "epochs": epochs})
        log.info("%sstep %d/%d: sparsity %.4f (target %.4f)  val acc %.4f after pruning, %.4f after fine-tuning",
                 tag, step, exp.steps, achieved, fraction, pruned["accuracy"], tuned)
        if resume:
            resume.save({"model": model.state_dict(), "history": history,
                         "pruning_history": pruner.pruning_history() if pruner is not None else [],
                         "initial_channels": dict(pruner._scope_initial_channels) if pruner is not None else {}},
                        f"{tag}step {step}/{exp.steps}")
    return history


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
    except (ValueError, KeyError) as e:
        raise SystemExit(f"error: experiment {args.name}: {e}") from None
    device = select_device()
    model, meta = load_checkpoint(args.baseline)
    model.to(device)
    if (exp.strategy in CHANNELS) == bool(args.masked_ckpt):
        raise SystemExit(f"error: experiment {args.name}: --masked-ckpt is for masking strategies only "
                         f"(strategy {exp.strategy})")
    splits = device_splits(load_dataset(args.data), args.mean, args.std, device)
    settings = {k: v for k, v in vars(args).items() if k not in ("threads", "ckpt", "masked_ckpt", "history")}
    resume = ResumePoint(f"{args.ckpt}.resume", resume_key(settings, [args.baseline, args.data]))
    t0 = time.perf_counter()
    steps = run_experiment(model, exp, args.prunable, splits, hyp, args.seed, args.eval_batch_size,
                           tag=f"{args.name} ", resume=resume)
    meta = {**meta, "name": args.name, "experiment": args.experiment}
    if exp.strategy in CHANNELS:
        save_checkpoint(model.cpu(), args.ckpt, meta, architecture=True)
    else:
        # The seed's way of saving, kept once on purpose: masks still attached
        # (weight_orig + weight_mask), which is why its file sizes did not move.
        save_checkpoint(model, args.masked_ckpt, meta)
        make_permanent([m for _, m in prunable_modules(model, args.prunable["layer_types"],
                                                       args.prunable["exclude"])])
        save_checkpoint(model.cpu(), args.ckpt, meta)
    write_json({"name": args.name, "experiment": args.experiment, "device": str(device),
                "seconds": time.perf_counter() - t0, "steps": steps}, args.history)
    resume.done()


if __name__ == "__main__":
    main()
