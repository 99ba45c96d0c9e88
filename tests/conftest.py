"""Shared fixtures: small data and models the tests make themselves (no network, no ../shared)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items):
    """The files marked whole_run first, each in its own order (pytest.ini says why)."""
    items.sort(key=lambda item: item.get_closest_marker("whole_run") is None)  # stable: the rest keep theirs


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # tests share 2 cores with whatever else runs


@pytest.fixture
def base_config() -> dict:
    with open(ROOT / "config.yaml") as f:
        return yaml.safe_load(f)


@pytest.fixture
def quick_config(base_config) -> dict:
    """config.yaml with the quick preset merged over it, as snakemake --configfile does."""
    with open(ROOT / "workflow" / "presets" / "quick.yaml") as f:
        return merge(base_config, yaml.safe_load(f))


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def random_splits(n: int = 96) -> dict:
    """n seeded random 32x32 images with labels 0-9 in turn, as both training and validation split:
    enough for a training or pruning run to execute, not to learn anything."""
    from scripts.lib.models.engine import DeviceData

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    d = DeviceData(images, torch.arange(n) % 10, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    return {"train": d, "val": d}


@pytest.fixture
def step_learning_rates(monkeypatch) -> list[float]:
    """The learning rate of every optimizer step the engine takes in the test, in order."""
    from scripts.lib.models import engine

    lrs, real = [], engine.make_optimizer

    def recording(model, hyp, steps_per_epoch):
        opt, sched = real(model, hyp, steps_per_epoch)
        # a step pre-hook, not a replaced opt.step (the scheduler warns when its wrapper is gone)
        opt.register_step_pre_hook(lambda o, args, kwargs: lrs.append(o.param_groups[0]["lr"]))
        return opt, sched
    monkeypatch.setattr(engine, "make_optimizer", recording)
    return lrs


# Metrics that depend on the clock or the machine's load, not on the computation.
TIMING_KEYS = {"latency_ms", "latency_iqr_ms", "latency_samples", "latency_grid"}


def snakemake_command(workdir: Path, *args: str, snakefile: Path = ROOT / "Snakefile") -> tuple[list[str], dict]:
    """The command line and environment of this virtual environment's snakemake on the workflow."""
    exe = Path(sys.executable).parent / "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return [str(exe), "--snakefile", str(snakefile), "--directory", str(workdir), *args], env


def snakemake(workdir: Path, *args: str, snakefile: Path = ROOT / "Snakefile", cores: int = 2,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """The workflow's snakemake of this virtual environment, run in `workdir`."""
    command, env = snakemake_command(workdir, "--cores", str(cores), *args, snakefile=snakefile)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def metrics_without_timings(results: Path) -> dict:
    """Every model's metrics file, by model name, timings left out."""
    return {f.stem: {k: v for k, v in json.loads(f.read_text()).items() if k not in TIMING_KEYS}
            for f in sorted((results / "metrics").glob("*.json"))}
