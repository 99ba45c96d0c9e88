"""Torch's side of a job: device, threads and seeds.

torch is imported inside each function: the modules that import these helpers
are imported by jobs that may never touch a tensor.
"""
from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

from scripts.lib.files import log

if TYPE_CHECKING:
    import torch


def select_device() -> torch.device:
    """CUDA when present, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def configure_threads(threads: int) -> int:
    """Use the cores the scheduler gave this job, but never more than the machine has.

    `snakemake --cores 4` on a 2-core machine would otherwise oversubscribe it.
    Returns the thread count in use.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    import torch

    used = min(threads, available_cores())
    if used < threads:
        log.warning("job was given %d threads; this machine has %d cores, using %d", threads, used, used)
    torch.set_num_threads(used)
    return used


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
