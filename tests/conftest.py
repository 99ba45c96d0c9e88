"""Shared fixtures: small data and models the tests make themselves (no network, no ../shared)."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent


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


def snakemake(workdir: Path, *args: str, snakefile: Path = ROOT / "Snakefile", cores: int = 2,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """The workflow's snakemake of this virtual environment, run in `workdir`."""
    exe = Path(sys.executable).parent / "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(exe), "--snakefile", str(snakefile), "--directory", str(workdir),
                           "--cores", str(cores), *args], capture_output=True, text=True, timeout=timeout, env=env)
