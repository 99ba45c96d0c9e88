"""Physical channel removal with Torch-Pruning, and the architecture spec that reloads it.

Masking (torch.nn.utils.prune) leaves every tensor at full size; here whole
channels are cut out of the network. Torch-Pruning's dependency graph finds the
layers coupled to each channel - in MobileNetV2 the expansion 1x1 conv, its
BatchNorm, the depthwise conv and its BatchNorm, the next layer's input slices,
and every projection tied together by a residual add - and shrinks them together.

Importance, per coupled group ("group L2"): for each channel, the squared L2 norm
of its weights in every conv/linear/BatchNorm layer of the group (output filters,
the consumer's input slices, BN scales), averaged over those layers
(`tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean")`).
The random control ranks channels by uniform noise instead.

A checkpoint of a physically pruned model keeps the stock state_dict keys; its
meta["architecture"] lists the shape of every conv, BatchNorm and linear layer,
which `scripts.lib.models.network.apply_architecture` uses to rebuild the model before
loading the weights (no pickled modules anywhere).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


# Strategy -> its importance, built from the torch_pruning module: only the jobs that
# remove channels import it (evaluate and masking jobs count MACs and channels only).
IMPORTANCES = {
    "l2_channels": lambda tp: tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer=None),
    "random_channels": lambda tp: tp.importance.RandomImportance(),
}


class ChannelPruner:
    """Channels cut out of the network along its schedule: after step k every coupled group
    keeps int(W0 * (1 - targets[k-1])) of its W0 original channels, rounded down to a
    multiple of `round_to`. Local (per-group) ranking, so the same channel ratio in every layer.

    Each step is one fresh Torch-Pruning pruner whose per-layer ratio takes the current
    width down to that count: the original widths are this class's own record, so a
    resumed job replays the recorded removals (`load_pruning_history`) and goes on, all
    through Torch-Pruning's public API.
    """

    def __init__(self, model: nn.Module, strategy: str, targets: list[float], image_size: int,
                 round_to: int | None, ignored: list[nn.Module]):
        if strategy not in IMPORTANCES:
            raise ValueError(f"channel strategy must be one of {sorted(IMPORTANCES)}, got {strategy!r}")
        if round_to is not None and round_to < 1:
            raise ValueError(f"round_to must be a positive integer or null, got {round_to!r}")
        import torch_pruning as tp

        self._tp, self.model, self.targets, self.round_to = tp, model, list(targets), round_to
        self.importance = IMPORTANCES[strategy](tp)
        self.ignored = ignored
        self.example = torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device)
        self.initial = {m: _width(m) for m in self._layers()}  # W0 of every layer a group can be ranked by
        self.done = 0
        self.history: list = []  # Torch-Pruning's record of every removal, in order

    def _layers(self) -> list[nn.Module]:
        return [m for m in self.model.modules() if isinstance(m, nn.Conv2d | nn.Linear) and m not in self.ignored]

    def _pruner(self, ratios: dict):
        return self._tp.pruner.BasePruner(
            self.model, self.example, importance=self.importance, pruning_ratio=0.0, pruning_ratio_dict=ratios,
            ignored_layers=self.ignored, round_to=self.round_to, global_pruning=False)

    def step(self, k: int | None = None) -> float:
        """Remove channels up to the k-th target (the next one by default); returns it."""
        k = self.done + 1 if k is None else k
        target = self.targets[k - 1]
        ratios = {}
        for m, w0 in self.initial.items():
            keep = int(w0 * (1 - target))
            # the share of the current width that leaves `keep` (+0.5: Torch-Pruning truncates)
            ratios[m] = max(0.0, 1 - (keep + 0.5) / _width(m))
        pruner = self._pruner(ratios)
        pruner.step()
        self.history += pruner.pruning_history()
        self.done = k
        return target

    def state(self) -> dict:
        return {"done": self.done, "pruning_history": self.history}

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
