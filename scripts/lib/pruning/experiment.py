"""One pruning experiment: its settings, and the run that prunes and fine-tunes along its schedule.

Three concerns kept apart, as in torch.nn.utils.prune:
  what to remove  - the strategy's pruner (scripts.lib.pruning.pruners),
  how much, when  - the schedule (scripts.lib.pruning.schedules),
  which tensors   - the prunable set (scripts.lib.pruning.masks.prunable_modules).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from scripts.lib.files import log
from scripts.lib.models.engine import Distillation, TrainHyp, duration, evaluate, fit, recalibrate_batch_norm
from scripts.lib.models.resume import ResumePoint
from scripts.lib.pruning.channel_importance import NEEDS_GRADIENTS
from scripts.lib.pruning.channels import MAX_LAYER_RATIO, TARGETS, channel_counts
from scripts.lib.pruning.masks import prunable_modules, removed_fraction
from scripts.lib.pruning.pruners import CHANNEL_METHODS, DENSE_METHODS, STRATEGIES, make_pruner
from scripts.lib.pruning.schedules import SCHEDULES, cubic_targets, gradual_update_steps

RESUME_FORMAT = 3  # what a resume file holds; a file of another format is ignored, never misread


# The optional scalar fields of an experiment row and their types (distill is a mapping of its own).
FIELD_TYPES = {"steps": int, "recalibrate_bn": int, "pruning_share": float, "target": str,
               "max_layer_ratio": float, "gradient_batches": int}


@dataclass(frozen=True)
class Experiment:
    strategy: str
    schedule: str
    sparsity: float   # target fraction of the prunable set (structured: of each layer's filters; channels: of the channels, or of the MACs with target "macs")
    steps: int = 1    # pruning steps (iterative) or mask updates (gradual)
    recalibrate_bn: int = 0            # batches to re-estimate batch-norm statistics on after each step; 0 = off
    distill: Distillation | None = None  # distil the dense baseline while fine-tuning
    pruning_share: float = 0.75        # gradual: share of the fine-tune budget over which the masks grow
    target: str = "channels"           # channel strategies: what `sparsity` is a share of - channels or MACs
    max_layer_ratio: float = MAX_LAYER_RATIO  # channel strategies, global scope: most of a layer's channels removed
    gradient_batches: int = 4          # taylor_channels: training batches whose loss gradient ranks channels

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
        if self.schedule == "gradual" and self.strategy in (*CHANNEL_METHODS, *DENSE_METHODS):
            raise ValueError("the gradual schedule updates masks during training: it is for masking strategies "
                             "(the dense control of a gradual row is one-shot, with the gradual row's fine-tune)")
        if self.strategy in DENSE_METHODS and self.sparsity != 0:
            raise ValueError(f"the dense control removes nothing: its sparsity must be 0, got {self.sparsity!r}")
        if self.target not in TARGETS or (self.target != "channels" and self.strategy not in CHANNEL_METHODS):
            raise ValueError(f"target must be one of {TARGETS} (macs: channel strategies only), got {self.target!r}")
        if not 0 < self.max_layer_ratio < 1:
            raise ValueError(f"max_layer_ratio must be in (0, 1), got {self.max_layer_ratio!r}")
        if self.gradient_batches < 1:
            raise ValueError(f"gradient_batches must be >= 1, got {self.gradient_batches!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "Experiment":
        """An experiment row; the keys it leaves out take the defaults above (one place)."""
        kwargs = {k: cast(d[k]) for k, cast in FIELD_TYPES.items() if k in d}
        if d.get("distill"):
            kwargs["distill"] = Distillation(**d["distill"])
        return cls(d["strategy"], d["schedule"], float(d["sparsity"]), **kwargs)

    def channel_options(self, train, batch_size: int, seed: int) -> dict | None:
        """ChannelPruner's options (None for masking): the gradient batches of step k are the
        first gradient_batches of the training split shuffled with seed + k, without augmentation."""
        if self.strategy not in CHANNEL_METHODS:
            return None
        def batches(k: int):
            return itertools.islice(train.batches(batch_size, torch.Generator().manual_seed(seed + k)),
                                    self.gradient_batches)
        return {"target": self.target, "max_layer_ratio": self.max_layer_ratio,
                "gradient_batches": batches if self.strategy in NEEDS_GRADIENTS else None}


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
    pruner = make_pruner(model, exp.strategy, settings, SCHEDULES[exp.schedule](exp.sparsity, exp.steps),
                         splits["val"].images.shape[-1], exp.channel_options(splits["train"], hyp.batch_size, seed))
    history = []
    saved = resume.load() if resume else None
    if saved:
        pruner.load_state(saved["pruner"], saved["model"])
        model.load_state_dict(saved["model"])
        history = saved["history"]
    for step in range(pruner.done + 1, len(pruner.targets) + 1):  # after the interruption, if any
        t0 = time.perf_counter()
        torch.manual_seed(seed + step)  # the random strategies draw from the global generator
        fraction = pruner.step()
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
    steps_per_epoch = math.ceil(len(splits["train"]) / hyp.batch_size)
    update_at = dict(zip(gradual_update_steps(hyp.epochs * steps_per_epoch, exp.steps, exp.pruning_share),
                         range(1, exp.steps + 1)))
    pruner = make_pruner(model, exp.strategy, settings, cubic_targets(exp.sparsity, exp.steps),
                         splits["val"].images.shape[-1])  # a masking pruner: Experiment checks it

    def before_step(step: int) -> None:
        if step not in update_at:
            return
        k = update_at[step]
        torch.manual_seed(seed + k)  # the random strategies draw from the global generator
        pruner.step(k)
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
             "mask_updates": [{"update": k, "sgd_step": step, "target_sparsity": pruner.targets[k - 1]}
                              for step, k in update_at.items()]}]
