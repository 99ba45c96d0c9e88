"""Provenance: what produced the numbers (code, config, software, the machine), for the
provenance stage (scripts/provenance.py) and the timing job (`hardware`).

The workflow reruns this job when the config or the code of a stage the paper
shows changes (their hashes are its params, scripts.lib.planning.codehash), not on every
commit. So the commit recorded here is the one checked out when that code last
changed: with a clean tree, it holds exactly the code that produced every
output. The per-stage code hashes are recorded beside it; `python -m
scripts.deps MODULE` recomputes them for any checkout.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

from scripts.lib import REPO
from scripts.lib.files import sha256_file
from scripts.lib.models.runtime import available_cores


PACKAGES = ["torch", "torchvision", "torch-pruning", "snakemake", "jinja2", "matplotlib", "numpy", "onnx", "onnxruntime"]


def git_state(repo=".") -> dict:
    """Commit and dirtiness of the working tree; 'unknown' outside a git checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                                text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": False}
    return {"commit": commit, "dirty": bool(status.strip())}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Instruction-set extensions that decide fp32 and int8 kernel speed (e.g. VNNI/AMX for int8).
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def simd_flags() -> list[str]:
    """The SIMD_FLAGS this CPU reports in /proc/cpuinfo (empty where there is none to read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in SIMD_FLAGS if flag in present]
    except OSError:
        pass
    return []


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def hardware() -> dict:
    import torch  # here, not at the top: the workflow imports git_state while it plans

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": available_cores(), "simd": simd_flags(), "os": platform.platform(), "gpu": gpu}


def collect(config_hash: str, code: dict, weights: str = "none", weights_file=None, repo=REPO,
            engine: dict | None = None) -> dict:
    """`code`: module -> code hash of each stage; `weights`: the config's model.weights;
    `weights_file`: the file it resolved to, if any; `engine`: the config's engine settings
    (the memory format the models were trained and evaluated in: its numbers differ from the
    other format's in the last bits, so a reproduction must use the same one)."""
    return {**git_state(repo), "code": code, "config_sha256": config_hash, "engine": engine or {},
            "weights": {"setting": weights, "file": str(weights_file) if weights_file else None,
                        "sha256": sha256_file(weights_file) if weights_file else None},
            "versions": versions(), "hardware": hardware(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
