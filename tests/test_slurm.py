"""The slurm profile against a real SLURM: a single-node cluster on localhost
(workflow/cluster/local-slurm.sh, started by .ci/run).

The quick preset (three of its rows and its seed replica: every compute rule) runs
through the slurm profile - with the site block filled in for the test cluster, as a
user fills it in for theirs. One of its prune jobs is
cancelled mid-way (scancel, as when a node fails): the run must report it as failed
rather than hang, and the same command must then resume from what finished. The
result must equal a local run of the preset (timings aside), every compute job
having run as a SLURM job.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, metrics_without_timings as metrics, snakemake, snakemake_command
from scripts.lib.planning.matrix import replicas

pytestmark = [pytest.mark.slow, pytest.mark.whole_run]  # python -m pytest -m "not slow" leaves them out

SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
QUICK = ROOT / "workflow" / "presets" / "quick.yaml"


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
    # prune and evaluate jobs on one core each, two side by side on the node, as the quick preset
    # runs them locally (jobs.exclusive: false); the baseline and the timing job take the node
    profile["set-threads"] = {rule: 1 if rule in SIDE_BY_SIDE else cpus for rule in profile["set-threads"]}
    # No accounting: sacct never sees jobs end; squeue does while MinJobAge (300 s) keeps them.
    profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = 8
    profile["slurm-logdir"] = str(folder / "slurm-logs")
    out = folder / "profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(profile))
    return out


# Four of the quick preset's rows cover every compute rule (masking and channel pruning, a
# seed replica, the long gradual job that is cancelled); all of them made this test run the
# preset three times over, most of CI's time.
SLURM_ROWS = ["oneshot_l1_70", "oneshot_channels_50", "gradual_l1_70"]
SIDE_BY_SIDE = ("prune_model", "prune_channels", "evaluate_model")


def quick_config(folder: Path, **overrides) -> Path:
    quick = yaml.safe_load(QUICK.read_text())
    rows = [e for e in quick["experiments"] if e["name"] in SLURM_ROWS]
    assert len(rows) == len(SLURM_ROWS) and set(quick["seeds_experiments"]) <= set(SLURM_ROWS)
    config = {**quick, "experiments": rows, "ablation": [], "results_dir": str(folder / "results"),
              "paper_dir": str(folder / "results" / "paper"), **overrides}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def slurm_jobs(log_dir: Path) -> dict[str, int]:
    """Jobs per rule that ran under SLURM: the plugin writes each job's log under
    rule_<name>/[<wildcards>/]<slurm id>.log; a job run twice (cancelled, rerun) counts once."""
    return {d.name.removeprefix("rule_"): len({log.parent for log in d.rglob("*.log")})
            for d in log_dir.glob("rule_*")}


def cancel_a_running_job(proc: subprocess.Popen, rule: str, wildcard: str, timeout: float = 900) -> str | None:
    """scancel the job of `rule` for `wildcard` once it is seen running (as when its node
    fails); its SLURM id. A long job is named so that it cannot finish between squeue and
    scancel (a one-shot quick job takes seconds; that race once let the run succeed)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True)
        for line in queue.stdout.splitlines():
            job_id, _, comment = line.partition(" ")
            if comment.startswith(f"rule_{rule}") and wildcard in comment:
                subprocess.run(["scancel", job_id], check=True)
                return job_id
        time.sleep(1)
    return None


@pytest.fixture(scope="module")
def runs(cpus, tmp_path_factory):
    """The quick preset through SLURM - with one prune job cancelled mid-way, reported
    as failed, and the same command run again - and the quick preset locally."""
    out = {}
    folder = tmp_path_factory.mktemp("slurm")
    command, env = snakemake_command(folder, "--configfile", str(quick_config(folder)),
                                     "--workflow-profile", str(site_profile(folder, cpus)))
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    cancelled = cancel_a_running_job(proc, "prune_model", "gradual_l1_70")  # the quick preset's longest prune job
    cancelled_at = time.perf_counter()
    stdout, stderr = proc.communicate(timeout=1200)
    out["failed"] = {"returncode": proc.returncode, "log": stdout + stderr, "cancelled": cancelled,
                     "report_seconds": time.perf_counter() - cancelled_at}
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-6000:]
    out["slurm"] = {"folder": folder, "seconds": time.perf_counter() - start, "log": resumed.stdout + resumed.stderr}

    folder = tmp_path_factory.mktemp("local")
    start = time.perf_counter()
    # The same thread counts as the SLURM jobs (thread counts change the last bits): one per
    # prune and evaluate job (the preset's jobs.exclusive: false), every core for the baseline.
    run = snakemake(folder, "--configfile", str(quick_config(folder)), cores=cpus, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    out["local"] = {"folder": folder, "seconds": time.perf_counter() - start}
    print(f"\nquick preset wall time: SLURM {out['slurm']['seconds']:.0f} s (with one job cancelled and the "
          f"rerun), local {out['local']['seconds']:.0f} s; the cancelled job's failure was reported after "
          f"{out['failed']['report_seconds']:.0f} s, the failed run exited after the jobs that did not need it")
    return out


def test_a_cancelled_job_is_reported_as_failed(runs):
    failed = runs["failed"]
    assert failed["cancelled"], "no prune job was seen running"
    assert failed["returncode"] != 0
    assert "Error in rule prune_model" in failed["log"]


def test_the_rerun_resumes_from_what_finished(runs):
    stats = runs["slurm"]["log"].split("Job stats:")[1].split("\n\n")[0]
    assert "prune_model" in stats
    assert "finetune_baseline" not in stats and "prepare_data" not in stats


def test_every_compute_job_ran_as_a_slurm_job(runs):
    folder = runs["slurm"]["folder"]
    config = yaml.safe_load((folder / "config.yaml").read_text())
    pruned = config["experiments"] + replicas({"seed": 0, **config})  # the quick preset replicates one row
    channels = sum(e["strategy"].endswith("_channels") for e in pruned)
    jobs = slurm_jobs(folder / "slurm-logs")
    assert jobs == {"prepare_data": 1, "finetune_baseline": 1, "prune_model": len(pruned) - channels,
                    "prune_channels": channels, "evaluate_model": len(pruned) + 1, "time_models": 1,
                    "crosscheck_paper": 1}  # it loads every checkpoint: not on the login node
    assert "SLURM jobid" in runs["slurm"]["log"]  # snakemake's own record of each submission


def test_slurm_metrics_equal_local_metrics(runs):
    slurm = metrics(runs["slurm"]["folder"] / "results")
    local = metrics(runs["local"]["folder"] / "results")
    assert slurm.keys() == local.keys() and len(slurm) > 1
    for name in slurm:
        assert slurm[name] == local[name], name
    assert (runs["slurm"]["folder"] / "results" / "crosscheck.txt").read_text().endswith("all numbers match\n")
