"""What the end-to-end tests share: running Snakemake on this repository's workflow,
and reading a run's metrics without the numbers that depend on the clock."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# Metrics that depend on the clock or the machine's load, not on the computation.
TIMING_KEYS = {"latency_ms", "latency_iqr_ms", "latency_samples", "latency_grid"}


def snakemake_command(workdir: Path, *args: str) -> tuple[list[str], dict]:
    """The command line and environment of `snakemake` from this venv, on this workflow."""
    exe = Path(sys.executable).parent / "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return [str(exe), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args], env


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    command, env = snakemake_command(workdir, *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def metrics_without_timings(results: Path) -> dict:
    """Every model's metrics file, by model name, timings left out."""
    return {f.stem: {k: v for k, v in json.loads(f.read_text()).items() if k not in TIMING_KEYS}
            for f in sorted((results / "metrics").glob("*.json"))}
