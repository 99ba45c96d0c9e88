"""Physical channel removal with Torch-Pruning, and the architecture spec that reloads it.

Masking (torch.nn.utils.prune) leaves every tensor at full size; here whole
channels are cut out of the network. Torch-Pruning's dependency graph finds the
layers coupled to each channel - in MobileNetV2 the expansion 1x1 conv, its
BatchNorm, the depthwise conv and its BatchNorm, the next layer's input slices,
and every projection tied together by a residual add - and shrinks them together.

Which channels go is the strategy's importance (scripts.lib.pruning.channel_importance);
how many, per layer, is the scope's:
  layer   every coupled group loses the same share of its original channels (ranked within it);
  global  one ranking over every group's channels (Torch-Pruning's global_pruning), so widths
          differ per layer; no layer loses more than max_layer_ratio of its original channels.
What the target counts is `target`: "channels" (the share of channels removed) or "macs"
(the share of multiply-accumulates of one forward pass removed, counted by count_macs).
A target the ratio alone does not reach exactly - global, or MACs - is approached in small
steps of at most SEARCH_STEP of the channels, each a fresh Torch-Pruning pruner, stopping at the
first that reaches it: it ends at most one such step past it.

A checkpoint of a physically pruned model keeps the stock state_dict keys; its
meta["architecture"] lists the shape of every conv, BatchNorm and linear layer,
which `scripts.lib.models.network.apply_architecture` uses to rebuild the model before
loading the weights (no pickled modules anywhere).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from scripts.lib.pruning.channel_importance import (IMPORTANCES, NEEDS_GRADIENTS, NORMALIZERS, Floored,
                                                    accumulate_gradients, floors)


SEARCH_STEP = 0.01  # share of the channels each small step of a searched target removes
TARGETS = ("channels", "macs")
# Global scope: the most of a layer's original channels removed. One-shot to 3.5x fewer MACs
# on the 40-epoch CIFAR-10 baseline, 0.6 kept more accuracy than 0.9 for group L2 and Taylor
# (validation, after batch-norm recalibration: 28.4 % and 31.4 % against 11.3 % and 25.4 %; Taylor
# after one fine-tune epoch: 67.6 % against 53.5 %): 0.9 let the ranking cut whole stages to 8 channels.
MAX_LAYER_RATIO = 0.6


class ChannelPruner:
    """Channels cut out of the network along its schedule, up to targets[k-1] after step k.

    scope "layer", target "channels" (the original behaviour): every coupled group keeps
    int(W0 * (1 - target)) of its W0 original channels, rounded down to a multiple of
    `round_to`. Otherwise the target is searched in small steps (see the module's docstring).
    Strategies in NEEDS_GRADIENTS rank from the loss gradient of `gradient_batches(k)`, the
    (images, labels) batches of step k, taken once before the step.

    Each step is fresh Torch-Pruning pruners: the original widths, MACs and channels are this
    class's own record, so a resumed job replays the recorded removals (`load_pruning_history`)
    and goes on, all through Torch-Pruning's public API.
    """

    def __init__(self, model: nn.Module, strategy: str, targets: list[float], image_size: int,
                 round_to: int | None, ignored: list[nn.Module], scope: str = "layer", target: str = "channels",
                 max_layer_ratio: float = MAX_LAYER_RATIO, gradient_batches: Callable[[int], Iterable] | None = None):
        if strategy not in IMPORTANCES:
            raise ValueError(f"channel strategy must be one of {sorted(IMPORTANCES)}, got {strategy!r}")
        if round_to is not None and round_to < 1:
            raise ValueError(f"round_to must be a positive integer or null, got {round_to!r}")
        if scope not in NORMALIZERS:
            raise ValueError(f"scope must be one of {sorted(NORMALIZERS)}, got {scope!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if not 0 < max_layer_ratio < 1:
            raise ValueError(f"max_layer_ratio must be in (0, 1), got {max_layer_ratio!r}")
        if (strategy in NEEDS_GRADIENTS) != (gradient_batches is not None):
            raise ValueError(f"{strategy} {'needs' if strategy in NEEDS_GRADIENTS else 'takes no'} training batches")
        import torch_pruning as tp

        self._tp, self.model, self.targets, self.round_to = tp, model, list(targets), round_to
        self.strategy, self.scope, self.target, self.gradient_batches = strategy, scope, target, gradient_batches
        self.importance = IMPORTANCES[strategy](tp, NORMALIZERS[scope])
        self.ignored = ignored
        self.image_size = image_size
        self.example = torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device)
        self.initial = {m: _width(m) for m in self._layers()}  # W0 of every layer a group can be ranked by
        self.floored = Floored(self.importance, floors(self.initial, max_layer_ratio, round_to))
        self.start = self._measure()
        self.done = 0
        self.history: list = []  # Torch-Pruning's record of every removal, in order

    def _layers(self) -> list[nn.Module]:
        return [m for m in self.model.modules() if isinstance(m, nn.Conv2d | nn.Linear) and m not in self.ignored]

    def _measure(self) -> int:
        return count_macs(self.model, self.image_size) if self.target == "macs" else channel_counts(self.model)

    def _pruner(self, ratios: dict):
        return self._tp.pruner.BasePruner(
            self.model, self.example, importance=self.importance, pruning_ratio=0.0, pruning_ratio_dict=ratios,
            ignored_layers=self.ignored, round_to=self.round_to, global_pruning=False)

    def _run(self, pruner) -> bool:
        """One Torch-Pruning step, recorded; whether it removed anything."""
        pruner.step()
        removed = pruner.pruning_history()
        self.history += removed
        return bool(removed)

    def _uniform(self, share: float) -> bool:
        """Every layer down to int(W0 * (1 - share)) channels (none that is there already)."""
        ratios = {}
        for m, w0 in self.initial.items():
            keep = int(w0 * (1 - share))
            # the share of the current width that leaves `keep` (+0.5: Torch-Pruning truncates)
            ratios[m] = max(0.0, 1 - (keep + 0.5) / _width(m))
        if self.target != "channels" and not any(ratios.values()):
            return False  # a search step that moves no layer: no pruner to build
        return self._run(self._pruner(ratios))

    def _global(self, share: float) -> bool:
        """`share` of the channels, ranked over every group, each group kept above its floor."""
        return self._run(self._tp.pruner.BasePruner(
            self.model, self.example, importance=self.floored, pruning_ratio=share, global_pruning=True,
            ignored_layers=self.ignored, round_to=self.round_to))

    def _search(self, target: float) -> None:
        """Small steps until the measure is at most (1 - target) of the original's. Global steps
        shrink near the goal: a share of the channels can hold far more than that share of the
        MACs (channels at high resolution), so each step takes half the remaining gap at the rate
        of the step before (at most SEARCH_STEP, at least a 20th of it)."""
        goal, share, now = self.start * (1 - target), SEARCH_STEP, self._measure()
        uniform = 0.0
        while now > goal:
            if self.scope == "global":
                moved = self._global(share)
                if not moved and share < SEARCH_STEP:  # too small a step to take a whole channel
                    share = min(SEARCH_STEP, 2 * share)
                    continue
                before, now = now, self._measure()
                if moved and now < before and now > goal:
                    rate = (before - now) / before / share
                    share = min(SEARCH_STEP, max(SEARCH_STEP / 20, 0.5 * (now - goal) / now / rate))
            else:  # the next uniform share; one that moves no layer yet is skipped
                uniform += SEARCH_STEP
                moved = uniform < 1
                if moved:
                    self._uniform(uniform)
                    now = self._measure()
            if not moved:
                raise ValueError(f"{self.strategy} ({self.scope}) cannot remove {target:.4f} of the {self.target}: "
                                 f"{now / self.start:.4f} of them are left when no layer can lose more "
                                 "(max_layer_ratio, round_to)")

    def step(self, k: int | None = None) -> float:
        """Remove channels up to the k-th target (the next one by default); returns it."""
        k = self.done + 1 if k is None else k
        target = self.targets[k - 1]
        if self.gradient_batches is not None:
            accumulate_gradients(self.model, self.gradient_batches(k))  # Torch-Pruning cuts .grad with the weights
        if self.scope == "layer" and self.target == "channels":
            self._uniform(target)
        else:
            self._search(target)
        self.model.zero_grad(set_to_none=True)
        self.done = k
        return target

    def state(self) -> dict:
        return {"done": self.done, "pruning_history": list(self.history)}  # a copy: later steps extend ours

    def load_state(self, state: dict, model_state: dict) -> None:
        """Replay the recorded removals on the unpruned model, so that `model_state` loads."""
        self._pruner({}).load_pruning_history(state["pruning_history"])
        self.history, self.done = list(state["pruning_history"]), state["done"]


def _width(m: nn.Module) -> int:
    return m.out_channels if isinstance(m, nn.Conv2d) else m.out_features


def count_macs(model: nn.Module, image_size: int) -> int:
    """Multiply-accumulates of one forward pass of one image (convolutions and matmuls;
    FlopCounterMode counts 2 FLOPs per MAC). Masked zeros still count: a dense kernel
    multiplies them."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size, device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2


def channel_counts(model: nn.Module) -> int:
    """Output channels summed over every conv layer."""
    return sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))
