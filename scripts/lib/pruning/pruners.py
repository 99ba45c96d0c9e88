"""The pruner interface: a strategy bound to a model and to its schedule.

Masking (torch.nn.utils.prune) and channel removal (Torch-Pruning) alike: `step()`
prunes up to the next cumulative target of `targets` (or up to the k-th with
`step(k)`), `done` counts the targets reached, and `state()` / `load_state()` carry
what a resumed job needs beyond the model's own state_dict.
"""
from __future__ import annotations

from typing import Protocol

from torch import nn

from scripts.lib.mobilenet import CLASSIFIER
from scripts.lib.pruning.channels import IMPORTANCES, ChannelPruner
from scripts.lib.pruning.masks import MASKING_METHODS, prunable_modules, prune_step, restore_masks

CHANNEL_METHODS = tuple(IMPORTANCES)  # physically removed channels
DENSE_METHODS = ("dense",)  # nothing removed: the fine-tuning alone, the control of every pruning row
STRATEGIES = (*MASKING_METHODS, *CHANNEL_METHODS, *DENSE_METHODS)


class Pruner(Protocol):
    targets: list[float]  # the fraction removed after each step
    done: int             # targets reached so far

    def step(self, k: int | None = None) -> float: ...
    def state(self) -> dict: ...
    def load_state(self, state: dict, model_state: dict) -> None: ...


class MaskPruner:
    """Pruning by masking: the prunable set (settings: layer_types, exclude, scope) masked
    up to each cumulative target in turn."""

    def __init__(self, model: nn.Module, strategy: str, settings: dict, targets: list[float]):
        if strategy not in MASKING_METHODS:
            raise ValueError(f"masking strategy must be one of {sorted(MASKING_METHODS)}, got {strategy!r}")
        self.model, self.strategy, self.settings, self.targets, self.done = model, strategy, settings, list(targets), 0

    def _named(self):
        return prunable_modules(self.model, self.settings["layer_types"], self.settings["exclude"])

    def step(self, k: int | None = None) -> float:
        """Mask up to the k-th target (the next one by default); returns it."""
        k = self.done + 1 if k is None else k
        prune_step([m for _, m in self._named()], self.strategy, self.targets[k - 1], self.settings["scope"])
        self.done = k
        return self.targets[k - 1]

    def state(self) -> dict:
        return {"done": self.done}  # the masks travel in the model's state_dict

    def load_state(self, state: dict, model_state: dict) -> None:
        restore_masks(self._named(), model_state)
        self.done = state["done"]


class DensePruner:
    """Removes nothing: each step leaves the model as it is, so that the schedule's fine-tunes run
    on the dense model alone (the control of a pruning row at its budget)."""

    def __init__(self, targets: list[float]):
        if any(targets):
            raise ValueError(f"the dense control removes nothing: its targets must be 0, got {targets}")
        self.targets, self.done = list(targets), 0

    def step(self, k: int | None = None) -> float:
        self.done = self.done + 1 if k is None else k
        return 0.0

    def state(self) -> dict:
        return {"done": self.done}

    def load_state(self, state: dict, model_state: dict) -> None:
        self.done = state["done"]


def make_pruner(model: nn.Module, strategy: str, settings: dict, targets: list[float], image_size: int,
                channel_options: dict | None = None) -> Pruner:
    """The pruner of a strategy: masking, channel removal (the classifier's outputs, the
    classes, and the excluded modules keep their channels; `channel_options`: ChannelPruner's
    target, max_layer_ratio and gradient_batches, its defaults where absent), or none (the
    dense control)."""
    if strategy in DENSE_METHODS:
        if channel_options:
            raise ValueError(f"the dense control removes nothing: the channel options {sorted(channel_options)} "
                             "are not for it")
        return DensePruner(targets)
    if strategy in CHANNEL_METHODS:
        ignored = [model.get_submodule(n) for n in (CLASSIFIER, *settings["exclude"])]
        return ChannelPruner(model, strategy, targets, image_size, settings.get("round_to"), ignored,
                             scope=settings["scope"], **(channel_options or {}))
    if channel_options:
        raise ValueError(f"{strategy} masks weights: the channel options {sorted(channel_options)} are not for it")
    return MaskPruner(model, strategy, settings, targets)
