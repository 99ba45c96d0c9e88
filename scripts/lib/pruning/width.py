"""The small dense control's width: torchvision's MobileNetV2 at the width multiplier whose MACs
come closest to a pruned model's (Liu et al., ICLR 2019, "Rethinking the value of network pruning":
a network of the pruned model's size, trained from scratch).

torchvision rounds every layer's channels to a multiple of 8 (`_make_divisible`), so MACs are a
step function of the width multiplier. The two steps on either side of the target are found by
bisection, each width's MACs counted as the project counts them (`count_macs`) on the meta device
(shapes only: no memory, no arithmetic); the closer one is kept, and its width written as the
shortest decimal that builds the same layers.
"""
from __future__ import annotations

import math

import torch

from scripts.lib.models.network import architecture_spec, build_model
from scripts.lib.pruning.channels import count_macs

SEARCH = (0.05, 1.0)  # width multipliers searched (above 1 the last layer widens too)
PRECISION = 1e-6      # the bisection stops when the two bracketing widths are this close


def probe(width: float, num_classes: int, image_size: int) -> tuple[int, dict]:
    """MACs of one image and the layer widths of MobileNetV2 at `width`."""
    with torch.device("meta"):
        model = build_model(num_classes, width_mult=width)
    return count_macs(model, image_size), architecture_spec(model)


def match_width(target_macs: int, num_classes: int, image_size: int) -> dict:
    """The width multiplier whose MACs are closest to `target_macs`: `width_mult`, its `macs`,
    the `residual` (macs - target, and relative to the target), and the steps `below` and
    `above` the target (width and MACs), between which no other width's MACs lie."""
    lo, hi = SEARCH
    (macs_lo, _), (macs_hi, spec_hi) = probe(lo, num_classes, image_size), probe(hi, num_classes, image_size)
    if target_macs < macs_lo:
        raise ValueError(f"no width multiplier in {SEARCH} gives {target_macs} MACs or fewer; "
                         f"the narrowest gives {macs_lo}")
    if target_macs >= macs_hi:  # as many MACs as the full width, or more: the full width
        below = above = {"width": hi, "macs": macs_hi}
        chosen, spec = below, spec_hi
    else:
        while hi - lo > PRECISION:  # invariant: macs(lo) <= target < macs(hi)
            mid = (lo + hi) / 2
            macs, _ = probe(mid, num_classes, image_size)
            lo, macs_lo, hi, macs_hi = (mid, macs, hi, macs_hi) if macs <= target_macs else (lo, macs_lo, mid, macs)
        below, above = {"width": lo, "macs": macs_lo}, {"width": hi, "macs": macs_hi}
        chosen = below if target_macs - macs_lo <= macs_hi - target_macs else above
        spec = probe(chosen["width"], num_classes, image_size)[1]
    width = shortest_width(chosen["width"], spec, num_classes, image_size, up=chosen is above)
    return {"width_mult": width, "macs": chosen["macs"], "target_macs": target_macs,
            "residual": chosen["macs"] - target_macs, "relative_residual": (chosen["macs"] - target_macs) / target_macs,
            "below": below, "above": above}


def shortest_width(width: float, spec: dict, num_classes: int, image_size: int, up: bool) -> float:
    """`width` written with the fewest decimals that still build the same layers. It lies at one
    end of its step (the bisection's), so it is rounded away from that end: up from the lower
    end (`up`, the step above the target), down from the upper end."""
    for digits in range(1, 7):
        scale = 10 ** digits
        short = (math.ceil(width * scale) if up else math.floor(width * scale)) / scale
        if short > 0 and probe(short, num_classes, image_size)[1] == spec:
            return short
    return width
