"""Resume points for long jobs: a job killed mid-way (kill -9, a SLURM time limit)
and started again continues from its last finished epoch or pruning step, and
ends with the same numbers as a run that was never interrupted.

A resume file sits next to the job's output (`<output>.resume`), which Snakemake
neither declares nor deletes. It holds plain tensors and lists only (loaded with
weights_only=True) and a key: a hash of everything the job's result depends on
(its settings, input files). A file with another key - left by a job with other
settings - is ignored and replaced, never trusted. The job deletes it when done.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from scripts.lib.files import load_torch, log, save_torch, sha256_file


def resume_key(settings: dict, input_files=()) -> str:
    """sha256 of the job's settings (JSON) and of its input files' contents."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in input_files:
        h.update(sha256_file(path).encode())
    return h.hexdigest()


def rng_state() -> dict:
    """Global generators: dropout and the random strategies draw from them."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumePoint:
    """Where a job's progress is saved: `save` after each unit of work, `load` at start."""

    def __init__(self, path, key: str):
        self.path = Path(path)
        self.key = key

    def load(self) -> dict | None:
        """The saved progress, or None when there is none for this job."""
        if not self.path.exists():
            return None
        try:
            state = load_torch(self.path)
        except Exception as e:  # a torn or foreign file is not progress: start afresh
            log.warning("ignoring unreadable resume file %s (%s: %s)", self.path, type(e).__name__, e)
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            log.warning("ignoring resume file %s: it belongs to a job with other settings or inputs", self.path)
            return None
        log.info("resuming from %s (%s)", self.path, state.get("where", "?"))
        return state["progress"]

    def save(self, progress: dict, where: str) -> None:
        save_torch({"key": self.key, "where": where, "progress": progress}, self.path)

    def done(self) -> None:
        self.path.unlink(missing_ok=True)
