"""What the study can run, declared once: strategies and schedules.

Plain data, no torch: the workflow reads this module while it plans (every
`snakemake -n`, every cluster job), the schema's enums are checked against it by
the tests, and the paper takes its prose names from it. The code of a strategy
lives in scripts/prune.py (masking) or scripts/channels.py (channel removal),
keyed by the same name; a test keeps the two sets equal.
"""
from __future__ import annotations

from dataclasses import dataclass

BASELINE = "baseline"  # reserved experiment name: the trained, unpruned model

MASKING = "masking"    # zeros in dense tensors (torch.nn.utils.prune)
CHANNELS = "channels"  # channels cut out of the network (Torch-Pruning)


@dataclass(frozen=True)
class Strategy:
    name: str            # the config's `strategy` value
    family: str          # MASKING or CHANNELS
    phrase: str          # how the paper names it in a sentence
    description: str     # one sentence for the paper's setup section
    control: str | None = None  # the random control of this importance criterion, if any


@dataclass(frozen=True)
class Schedule:
    name: str            # the config's `schedule` value
    phrase: str          # how the paper names it in a sentence


STRATEGIES = {s.name: s for s in (
    Strategy("l1_unstructured", MASKING, "L1 magnitude",
             "unstructured L1 magnitude: the weights with the smallest |w| are zeroed",
             control="random_unstructured"),
    Strategy("random_unstructured", MASKING, "random",
             "unstructured random: weights zeroed uniformly at random, the sanity baseline"),
    Strategy("l2_structured", MASKING, "structured L2",
             "structured L2 (the seed's): whole output filters with the smallest L2 norm are zeroed"),
    Strategy("l2_channels", CHANNELS, "group-L2 channel",
             "channels with the smallest group L2 norm are cut out of the network",
             control="random_channels"),
    Strategy("random_channels", CHANNELS, "random channel",
             "channels chosen at random are cut out of the network, the control of group L2"),
)}

SCHEDULES = {s.name: s for s in (
    Schedule("oneshot", "one-shot"),
    Schedule("iterative", "iterative"),
)}


def strategies_of(family: str) -> tuple[str, ...]:
    """Names of the strategies of one family, in registry order."""
    return tuple(n for n, s in STRATEGIES.items() if s.family == family)
