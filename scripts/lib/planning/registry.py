"""What the study can run, declared once: strategies and schedules.

Plain data, no torch: the workflow reads this module while it plans (every
`snakemake -n`, every cluster job), the schema's enums are checked against it by
the tests, and the paper takes its prose names from it. The code of a strategy
lives in scripts/lib/pruning/masks.py (masking) or scripts/lib/pruning/channels.py (channel removal),
keyed by the same name; a test keeps the two sets equal.
"""
from __future__ import annotations

from dataclasses import dataclass

BASELINE = "baseline"  # reserved experiment name: the trained, unpruned model

MASKING = "masking"    # zeros in dense tensors (torch.nn.utils.prune)
CHANNELS = "channels"  # channels cut out of the network (Torch-Pruning)
DENSE = "dense"        # nothing removed: the controls that separate pruning from training


@dataclass(frozen=True)
class Strategy:
    name: str            # the config's `strategy` value
    family: str          # MASKING, CHANNELS or DENSE
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
    Strategy("bn_scale_channels", CHANNELS, "BN-scale channel",
             "channels whose batch-norm scales |gamma| are smallest are cut out of the network "
             "(the criterion of Network Slimming, without its sparsity training)",
             control="random_channels"),
    Strategy("taylor_channels", CHANNELS, "Taylor channel",
             "channels whose removal changes the training loss least to first order (|weight x gradient| "
             "over the coupled layers, gradients from a few training batches) are cut out of the network",
             control="random_channels"),
    # The control of every pruning row: its schedule and fine-tuning with nothing removed (sparsity 0).
    Strategy("dense", DENSE, "dense fine-tuning",
             "nothing is removed: the baseline is fine-tuned with a pruned row's schedule and budget, the control "
             "that separates what pruning does from what the extra training does"),
)}

SCHEDULES = {s.name: s for s in (
    Schedule("oneshot", "one-shot"),
    Schedule("iterative", "iterative"),
    Schedule("gradual", "gradual"),
)}


def strategies_of(family: str) -> tuple[str, ...]:
    """Names of the strategies of one family, in registry order."""
    return tuple(n for n, s in STRATEGIES.items() if s.family == family)


# --- figures -------------------------------------------------------------------------------
# A figure is one entry here plus one function `plot_<name>` in scripts/lib/report/figures.py. Its
# rule (workflow/rules/figures.smk) and its place in the paper follow from the entry.
# `inputs` says what the function is given:
#   "results":     the results table (results.json rows)          plot_<name>(rows, out)
#   "histories":   training histories (`histories` says whose)     plot_<name>(histories, out)
#   "checkpoints": every model's checkpoint, one figure of all    plot_<name>(ckpts, out, names)
FIGURE_INPUTS = ("results", "histories", "checkpoints")
# Whose histories a "histories" figure is given: every iterative experiment's, or the baseline's.
FIGURE_HISTORIES = ("iterative", "baseline")
# Where the paper shows a figure (the template places each section's figures): the main body's
# results, or the appendix.
FIGURE_SECTIONS = ("results", "appendix")


@dataclass(frozen=True)
class Figure:
    name: str            # its caption: scripts/lib/report/captions.py, beside the drawing code
    inputs: str          # one of FIGURE_INPUTS
    section: str         # one of FIGURE_SECTIONS
    width: float = 1.0   # share of the text width in the PDF
    histories: str = "iterative"  # "histories" figures: whose (one of FIGURE_HISTORIES)
    literature: bool = False      # also given the published reference points (paper/literature.yaml)

    def __post_init__(self):
        if self.histories not in FIGURE_HISTORIES:
            raise ValueError(f"figure {self.name}: histories must be one of {FIGURE_HISTORIES}, got {self.histories!r}")
        if self.inputs not in FIGURE_INPUTS:
            raise ValueError(f"figure {self.name}: inputs must be one of {FIGURE_INPUTS}, got {self.inputs!r}")
        if self.section not in FIGURE_SECTIONS:
            raise ValueError(f"figure {self.name}: section must be one of {FIGURE_SECTIONS}, got {self.section!r}")


FIGURES = {f.name: f for f in (
    # the main body's two figures at 80 % of the text width: together they fill a page, which kept
    # the main body to its 10 pages
    Figure("macs", "results", "results", width=0.8, literature=True),
    Figure("curves", "results", "results", width=0.8),
    Figure("training", "histories", "appendix", width=0.6, histories="baseline"),
    Figure("pareto", "results", "appendix"),
    Figure("leaderboard", "results", "appendix"),
    Figure("evolution", "histories", "appendix"),
    Figure("latency_macs", "results", "appendix"),
    Figure("kernels", "checkpoints", "appendix", width=0.9),  # 30 models' panels: full width runs past the page
)}
