"""Pruning by masking (torch.nn.utils.prune): which tensors, what to remove, and the masks' upkeep.

Masking keeps every tensor at full size and zeros weights through a mask; the
strategies differ in what they rank (single weights by |w|, at random, or whole
output filters by their L2 norm). Channel removal, which cuts tensors down, is
scripts.lib.pruning.channels.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

LAYER_TYPES = {"Conv2d": nn.Conv2d, "Linear": nn.Linear}


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


# Masking strategies (scripts.lib.planning.registry names them): (modules, cumulative fraction, scope) -> None.
MASKING_METHODS = {
    "l1_unstructured": lambda modules, fraction, scope: prune_unstructured(modules, prune.L1Unstructured,
                                                                           fraction, scope),
    "random_unstructured": lambda modules, fraction, scope: prune_unstructured(modules, prune.RandomUnstructured,
                                                                               fraction, scope),
    # whole output filters by L2 norm, the same share in every layer (scope does not apply)
    "l2_structured": lambda modules, fraction, scope: prune_structured(modules, 2, fraction),
}


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
