"""The library beneath the stage programs of scripts/.

Grouped by what it is about; a lower group never imports a higher one:

    planning   the experiment matrix, the config, the registries, code hashes, job settings (torch-free)
    data       CIFAR-10 and its sources, splits, the dataset file
    models     MobileNetV2's facts, the network, training and evaluation (the engine), checkpoints
    pruning    masks, channel removal, schedules, the pruners
    measure    what a model costs: storage, latency, int8, the machine that measured
    report     the results table, statistics, tables, figures, the manuscript, cross-check, publishing

The programs the workflow runs (scripts/*.py) read a job's inputs and settings,
call the library and write outputs; none imports another.
"""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout whose code the jobs run
