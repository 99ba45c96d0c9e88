"""What a channel is worth: the importance criteria of channel removal (Torch-Pruning's).

Every criterion scores each channel of a coupled group (scripts.lib.pruning.channels)
from all the group's layers, averaged over them (group_reduction="mean"):

  l2_channels        squared L2 norm of the channel's weights in every conv, linear and
                     BatchNorm layer of the group (output filters, the consumers' input
                     slices, BN scales): `GroupMagnitudeImportance(p=2)`.
  bn_scale_channels  |gamma| of the channel in the group's BatchNorm layers, Network
                     Slimming's criterion (Liu et al. 2017) without its sparsity training:
                     `BNScaleImportance`.
  taylor_channels    first-order Taylor estimate of the loss change on removal, sum of
                     |w * dL/dw| over the channel's conv and linear weights (Molchanov et
                     al. 2019), gradients from a few seeded training batches:
                     `GroupTaylorImportance`. (Torch-Pruning 1.6 leaves BatchNorm out of it.)
  random_channels    uniform noise: the control.

How scores compare across groups is the scope's (NORMALIZERS): within one group any
positive scale ranks alike, so the layer scope keeps the raw scores; the global scope
divides each group's scores by their mean (Torch-Pruning's default for global pruning),
so that layers of different fan-in compete on relative, not absolute, importance.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Strategy -> its importance, built from the torch_pruning module (only the jobs that
# remove channels import it) with the scope's normalizer.
IMPORTANCES = {
    "l2_channels": lambda tp, norm: tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean",
                                                                            normalizer=norm),
    "random_channels": lambda tp, norm: tp.importance.RandomImportance(),
    "bn_scale_channels": lambda tp, norm: tp.importance.BNScaleImportance(group_reduction="mean", normalizer=norm),
    "taylor_channels": lambda tp, norm: tp.importance.GroupTaylorImportance(group_reduction="mean", normalizer=norm),
}
NEEDS_GRADIENTS = frozenset({"taylor_channels"})  # ranked from the loss gradient of training batches
NORMALIZERS = {"layer": None, "global": "mean"}


class Floored:
    """An importance under which no group falls below its floor: the `floors[root]` best
    scores of a group are raised to +inf, which no global threshold reaches (Torch-Pruning's
    own max_pruning_ratio counts from the widths its pruner was built on, not the original ones)."""

    def __init__(self, inner, floors: dict[nn.Module, int]):
        self.inner, self.floors = inner, floors

    def __call__(self, group):
        scores = self.inner(group)
        keep = self.floors.get(group[0].dep.target.module, 0)
        if scores is None or keep == 0:
            return scores
        scores = scores.clone()
        scores[scores.argsort(descending=True)[:keep]] = math.inf
        return scores


def floors(initial: dict[nn.Module, int], max_layer_ratio: float, round_to: int | None) -> dict[nn.Module, int]:
    """The fewest channels each layer keeps: the share 1 - max_layer_ratio of its original
    width, rounded up (to a multiple of round_to, which Torch-Pruning's rounding down keeps)."""
    step = round_to or 1
    return {m: min(w0, step * math.ceil(math.ceil(w0 * (1 - max_layer_ratio)) / step)) for m, w0 in initial.items()}


def accumulate_gradients(model: nn.Module, batches) -> None:
    """Sum the cross-entropy gradients of `batches` ((images, labels) pairs) into every
    parameter's .grad, in eval mode: batch-norm statistics stay as they are."""
    was_training = model.training
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.enable_grad():
        for images, labels in batches:
            F.cross_entropy(model(images), labels).backward()
    model.train(was_training)
