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

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    import torch_pruning as tp

# Strategy -> its importance, built from the torch_pruning module: only the jobs that
# remove channels import it (evaluate and masking jobs count MACs and channels only).
IMPORTANCES = {
    "l2_channels": lambda tp: tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer=None),
    "random_channels": lambda tp: tp.importance.RandomImportance(),
}


def channel_pruner(model: nn.Module, strategy: str, cumulative: list[float], image_size: int,
                   round_to: int | None, ignored: list[nn.Module]) -> tp.pruner.BasePruner:
    """A pruner whose k-th `step()` leaves each coupled group with (1 - cumulative[k-1]) of
    its original channels (rounded down to a multiple of `round_to`).

    Local (per-group) ranking, so the ratio is the same channel ratio in every layer.
    """
    if strategy not in IMPORTANCES:
        raise ValueError(f"channel strategy must be one of {sorted(IMPORTANCES)}, got {strategy!r}")
    if round_to is not None and round_to < 1:
        raise ValueError(f"round_to must be a positive integer or null, got {round_to!r}")
    import torch_pruning as tp

    device = next(model.parameters()).device
    example = torch.zeros(1, 3, image_size, image_size, device=device)
    return tp.pruner.BasePruner(
        model, example, importance=IMPORTANCES[strategy](tp), pruning_ratio=cumulative[-1],
        iterative_steps=len(cumulative),
        iterative_pruning_ratio_scheduler=lambda ratio, steps: [0.0, *cumulative],
        ignored_layers=ignored, round_to=round_to, global_pruning=False)


class ChannelPruner:
    """Channels cut out of the network along a schedule, one `step` per cumulative target.

    The one class that touches Torch-Pruning's private state: a resumed pruner replays
    the recorded removals, and must take later ratios of each group's original width
    (which Torch-Pruning notes at a group's first step), not of its pruned width.
    """

    def __init__(self, model: nn.Module, strategy: str, cumulative: list[float], image_size: int,
                 round_to: int | None, ignored: list[nn.Module]):
        self._pruner = channel_pruner(model, strategy, cumulative, image_size, round_to, ignored)

    def step(self, fraction: float) -> None:
        """Remove channels up to the next cumulative target (`fraction`, fixed at construction)."""
        self._pruner.step()

    def state(self) -> dict:
        return {"pruning_history": self._pruner.pruning_history(),
                "initial_channels": dict(self._pruner._scope_initial_channels)}

    def load_state(self, state: dict, model_state: dict, steps_done: int) -> None:
        """Replay the recorded removals on the unpruned model, so that `model_state` loads."""
        self._pruner.load_pruning_history(state["pruning_history"])
        self._pruner.current_step = steps_done
        self._pruner._scope_initial_channels.update(state["initial_channels"])


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
