"""The slurm profile against a real SLURM: a single-node cluster on localhost
(workflow/cluster/local-slurm.sh, started by .ci/run).

The quick preset runs through the slurm profile - with the site block filled in for
the test cluster, as a user fills it in for theirs - and must give the same metrics
as a local run (timings aside), every compute job having run as a SLURM job. A job
that fails is reported as failed, and the same command resumes from what finished.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
QUICK = ROOT / "workflow" / "presets" / "quick.yaml"
# Metrics that depend on the clock or the machine's load, not on the computation.
TIMING_KEYS = {"latency_ms", "latency_iqr_ms", "latency_samples", "latency_grid"}
COMPUTE_RULES = {"prepare_data", "finetune_baseline", "prune_model", "prune_channels", "evaluate_model"}


def cluster_cpus() -> int | None:
    """CPUs of the test cluster's node, or None when no SLURM answers."""
    if shutil.which("sinfo") is None:
        return None
    run = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True)
    return int(run.stdout.split()[0]) if run.returncode == 0 and run.stdout.strip() else None


@pytest.fixture(scope="module")
def cpus():
    n = cluster_cpus()
    if n is None:
        reason = os.environ.get("SLURM_UNAVAILABLE")
        if os.environ.get("CI") and not reason:
            pytest.fail("CI must start the test cluster (.ci/run runs workflow/cluster/local-slurm.sh) "
                        "or say in SLURM_UNAVAILABLE why it cannot")
        pytest.skip("no SLURM cluster answers sinfo: "
                    + (reason or "start one with `workflow/cluster/local-slurm.sh install && ... start` (root)"))
    return n


def site_profile(folder: Path, cpus: int) -> Path:
    """The slurm profile with its SITE block filled in for the localhost test cluster."""
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    profile["default-resources"] = {"slurm_partition": "debug", "mem_mb": 1000, "runtime": 30}
    profile["slurm-no-account"] = True  # accounting is off on the test cluster
    profile["set-resources"] = {rule: {"gpu": 0, "mem_mb": 3000} for rule in profile["set-resources"]}
    profile["set-threads"] = {rule: cpus for rule in profile["set-threads"]}
    # No accounting: sacct never sees jobs end; squeue does while MinJobAge (300 s) keeps them.
    profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = 8
    profile["slurm-logdir"] = str(folder / "slurm-logs")
    out = folder / "profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(profile))
    return out


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(exe), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def quick_config(folder: Path, **overrides) -> Path:
    config = {**yaml.safe_load(QUICK.read_text()), "results_dir": str(folder / "results"),
              "paper_dir": str(folder / "results" / "paper"), **overrides}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def metrics(results: Path) -> dict:
    out = {}
    for f in sorted((results / "metrics").glob("*.json")):
        m = json.loads(f.read_text())
        out[f.stem] = {k: v for k, v in m.items() if k not in TIMING_KEYS}
    return out


def slurm_jobs(log_dir: Path) -> dict[str, int]:
    """SLURM job logs per rule (the plugin writes one per job under rule_<name>/)."""
    return {d.name.removeprefix("rule_"): len(list(d.rglob("*.log"))) for d in log_dir.glob("rule_*")}


@pytest.fixture(scope="module")
def runs(cpus, tmp_path_factory):
    """The quick preset through SLURM and locally; wall time of each for the record."""
    out = {}
    for mode in ("slurm", "local"):
        folder = tmp_path_factory.mktemp(mode)
        config = quick_config(folder)
        args = (["--workflow-profile", str(site_profile(folder, cpus))] if mode == "slurm"
                else ["--cores", str(cpus)])
        start = time.perf_counter()
        run = snakemake(folder, "--configfile", str(config), *args)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
        out[mode] = {"folder": folder, "seconds": time.perf_counter() - start, "log": run.stderr}
    print(f"\nquick preset wall time: SLURM {out['slurm']['seconds']:.0f} s, local {out['local']['seconds']:.0f} s")
    return out


def test_every_compute_job_ran_as_a_slurm_job(runs):
    folder = runs["slurm"]["folder"]
    jobs = slurm_jobs(folder / "slurm-logs")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    channels = sum(e["strategy"].endswith("_channels") for e in config["experiments"])
    assert jobs == {"prepare_data": 1, "finetune_baseline": 1, "prune_model": len(config["experiments"]) - channels,
                    "prune_channels": channels, "evaluate_model": len(config["experiments"]) + 1}
    assert set(jobs) == COMPUTE_RULES
    assert "SLURM jobid" in runs["slurm"]["log"]  # snakemake's own record of each submission


def test_slurm_metrics_equal_local_metrics(runs):
    slurm = metrics(runs["slurm"]["folder"] / "results")
    local = metrics(runs["local"]["folder"] / "results")
    assert slurm.keys() == local.keys() and len(slurm) > 1
    for name in slurm:
        assert slurm[name] == local[name], name
    assert (runs["slurm"]["folder"] / "results" / "paper" / "paper.md").is_file()


def test_a_failed_job_is_reported_and_the_rerun_resumes(cpus, tmp_path):
    """A prune job dies under SLURM (scancel, as when a node fails): the run ends with
    an error instead of hanging, and the same command then runs only what had not finished."""
    quick = yaml.safe_load(QUICK.read_text())
    tiny = {"data": {**quick["data"], "synthetic": {"train_size": 200, "test_size": 100, "noise": 30}},
            "train": {"epochs": 1}, "experiments": quick["experiments"][:1],
            "prune": {"finetune": {**quick["prune"]["finetune"], "epochs": 30}},  # long enough to be caught running
            "evaluate": {"batch_size": 50, "latency": {"batch_sizes": [1], "warmup": 1, "min_run_time": 0.05}}}
    config = quick_config(tmp_path, **tiny)
    command = ["--configfile", str(config), "--workflow-profile", str(site_profile(tmp_path, cpus))]
    exe = Path(sys.executable).parent / "snakemake"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([str(exe), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                             *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = None
    deadline = time.time() + 600
    while killed is None and time.time() < deadline and proc.poll() is None:
        queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True)
        for line in queue.stdout.splitlines():
            job_id, _, comment = line.partition(" ")
            if "prune_model" in comment:
                subprocess.run(["scancel", job_id], check=True)
                killed = job_id
        time.sleep(1)
    assert killed, "no prune job was seen running"
    start = time.perf_counter()
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode != 0
    assert "Error in rule prune_model" in stderr
    assert (tmp_path / "results" / "models" / "baseline.pt").is_file()  # what finished is kept
    print(f"\nSLURM job {killed} cancelled; snakemake reported the failure {time.perf_counter() - start:.0f} s later")

    resumed = snakemake(tmp_path, *command, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    stats = (resumed.stdout + resumed.stderr).split("Job stats:")[1].split("\n\n")[0]
    assert "prune_model" in stats and "finetune_baseline" not in stats and "prepare_data" not in stats
    assert (tmp_path / "results" / "results.csv").is_file()
