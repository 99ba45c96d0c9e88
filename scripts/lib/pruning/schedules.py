"""Pruning schedules: how much is removed at each step (the registry names them).

oneshot and iterative fine-tune after each step; gradual updates the masks during one
continuous fine-tune (scripts.lib.pruning.experiment.run_gradual).
"""
from __future__ import annotations


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


# Schedules (scripts.lib.planning.registry names them): (target, steps) -> the sparsity after each step.
# oneshot and iterative fine-tune after each step; gradual updates the masks during one
# continuous fine-tune (run_gradual).
SCHEDULES = {
    "oneshot": lambda target, steps: [target],
    "iterative": cumulative_targets,
    "gradual": cubic_targets,
}


def gradual_update_steps(total_steps: int, updates: int, pruning_share: float) -> list[int]:
    """The SGD steps before which the masks are updated: `updates` evenly spaced over the
    first `pruning_share` of the training, the first at step 0."""
    span = round(pruning_share * total_steps)
    steps = [round(k * span / updates) for k in range(updates)]
    if len(set(steps)) != updates or steps[-1] >= total_steps:
        raise ValueError(f"{updates} mask updates do not fit in {span} of {total_steps} SGD steps")
    return steps
