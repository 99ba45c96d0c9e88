"""End to end: snakemake runs the whole DAG on a tiny synthetic config, and the
rendered paper's tables say exactly what the metrics files say."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, merge, snakemake
from scripts.common import available_cores
from scripts.model import load_checkpoint
from scripts.prune import prunable_modules, sparsity

TINY = {
    "preset": "tiny-test",
    "data": {"source": "synthetic", "path": None, "synthetic": {"train_size": 200, "test_size": 100, "noise": 30}},
    "model": {"weights": "none"},
    "train": {"epochs": 2, "batch_size": 64},
    "prune": {"finetune": {"epochs": 1, "batch_size": 64}},
    "experiments": [
        # a label full of LaTeX specials, to prove the escaping end to end
        {"name": "os_l1_50", "label": "L1 50% & one_shot #1", "strategy": "l1_unstructured",
         "schedule": "oneshot", "sparsity": 0.5},
        {"name": "it_l1_50", "label": "Iterative L1 50%", "strategy": "l1_unstructured",
         "schedule": "iterative", "sparsity": 0.5, "steps": 2},
        {"name": "os_rnd_50", "label": "Random 50%", "strategy": "random_unstructured",
         "schedule": "oneshot", "sparsity": 0.5},
        {"name": "it_l2_30", "label": "Structured L2 30%", "strategy": "l2_structured",
         "schedule": "iterative", "sparsity": 0.3, "steps": 2},
        {"name": "os_ch_50", "label": "Channels L2 50%", "strategy": "l2_channels",
         "schedule": "oneshot", "sparsity": 0.5},
    ],
    "evaluate": {"batch_size": 50, "latency": {"batch_sizes": [1, 8], "warmup": 1, "min_run_time": 0.05}},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    with open(ROOT / "config.yaml") as f:
        config = merge(yaml.safe_load(f), TINY)
    config["results_dir"] = str(work / "results")
    config["paper_dir"] = str(work / "results" / "paper")
    configfile = work / "tiny.yaml"
    configfile.write_text(yaml.safe_dump(config))
    run = snakemake(work, "--configfile", str(configfile))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return work, config, configfile


def metrics(config, name):
    import json
    return json.loads(Path(config["results_dir"], "metrics", f"{name}.json").read_text())


def result_row(config, name):
    import json
    rows = json.loads(Path(config["results_dir"], "results.json").read_text())
    (row,) = [r for r in rows if r["name"] == name]
    return row


def is_channel_experiment(config, name):
    return any(e["name"] == name and e["strategy"].endswith("_channels") for e in config["experiments"])


def numbers(cells):
    return [float(c) for c in cells]


def expected_cells(r, target):
    """The results table's numeric columns, from a results.json row, in its own units."""
    return [target * 100, r["removed_fraction"] * 100, r["accuracy"] * 100, r["params"] / 1e6, r["macs"] / 1e6,
            r["file_bytes"] / 1e6, r["gzip_bytes"] / 1e6, r["latency_ms"]]


def check_close(shown, exact):
    # shown values are rounded to 1 or 2 decimals; exact ones come from the metrics file
    for s, e in zip(shown, exact, strict=True):
        assert abs(s - e) <= 0.051, (shown, exact)


def model_rows(config):
    return [("baseline", "Baseline (fine-tuned)", 0.0)] + [
        (e["name"], e["label"], e["sparsity"]) for e in config["experiments"]]


def test_every_output_exists(tiny_run):
    _, config, _ = tiny_run
    paper = Path(config["paper_dir"])
    for f in ["paper.md", "paper.tex", "figures/pareto.png", "figures/leaderboard.png", "figures/evolution.png",
              "figures/latency_macs.png"]:
        assert (paper / f).stat().st_size > 0, f
    for name, _, _ in model_rows(config):
        assert (paper / "figures" / "kernels" / f"{name}.png").is_file()
    assert Path(config["results_dir"], "results.csv").is_file()


def test_markdown_table_equals_metrics(tiny_run):
    _, config, _ = tiny_run
    text = Path(config["paper_dir"], "paper.md").read_text()
    assert "TINY-TEST PRESET — NOT THE PUBLISHED RESULTS" in text  # any preset but "paper" has the banner
    table = text.split("| Experiment | Target (%)")[1].split("\n\n")[0].splitlines()[2:]
    assert len(table) == len(model_rows(config))
    for line, (name, label, target) in zip(table, model_rows(config)):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == label
        r = result_row(config, name)
        assert {k: r[k] for k in ("accuracy", "params", "macs", "gzip_bytes")} == {
            k: metrics(config, name)[k] for k in ("accuracy", "params", "macs", "gzip_bytes")}
        check_close(numbers(cells[1:9]), expected_cells(r, target))
        assert abs(float(cells[9]) - r["latency_iqr_ms"]) <= 0.051


def test_latex_table_equals_metrics(tiny_run):
    _, config, _ = tiny_run
    tex = Path(config["paper_dir"], "paper.tex").read_text()
    assert "TINY-TEST PRESET --- NOT THE PUBLISHED RESULTS" in tex
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == len(model_rows(config))
    for line, (name, label, target) in zip(body, model_rows(config)):
        cells = [c.strip() for c in line.removesuffix(r"\\").split(" & ")]
        assert cells[0] == label.replace("%", r"\%").replace("&", r"\&").replace("_", r"\_").replace("#", r"\#")
        check_close(numbers(cells[1:9]), expected_cells(result_row(config, name), target))


def test_storage_table_equals_metrics(tiny_run):
    _, config, _ = tiny_run
    text = Path(config["paper_dir"], "paper.md").read_text()
    table = text.split("| Model | Sparsity (%) | Dense file (MB)")[1].split("\n\n")[0].splitlines()[2:]
    assert len(table) == len(model_rows(config))
    for line, (name, label, _) in zip(table, model_rows(config)):
        cells = [c.strip().removesuffix(" %") for c in line.strip("|").split("|")]
        m = metrics(config, name)
        assert cells[0] == label
        check_close(numbers(cells[1:8]), [m["sparsity_prunable"] * 100, m["file_bytes"] / 1e6,
                                          m["gzip_bytes"] / 1e6, m["sparse_fp32_bytes"] / 1e6,
                                          m["sparse_fp32_bytes"] / m["file_bytes"] * 100,
                                          m["sparse_fp16_bytes"] / 1e6, m["sparse_fp16_bytes"] / m["file_bytes"] * 100])
    exports = Path(config["results_dir"], "exports")
    assert sorted(p.name for p in exports.iterdir()) == sorted(
        f"{n}.{v}" for n, _, _ in model_rows(config) for v in ("fp16.sparse.pt.gz", "fp32.sparse.pt.gz", "onnx"))


def test_seed_style_masked_checkpoints_are_kept_and_measured(tiny_run):
    _, config, _ = tiny_run
    for e in config["experiments"]:
        m = metrics(config, e["name"])
        masked = Path(config["results_dir"], "models", "masked", f"{e['name']}.pt")
        if is_channel_experiment(config, e["name"]):  # no masks: channels were cut out
            assert m["masked_file_bytes"] is None and not masked.exists()
            continue
        assert m["masked_file_bytes"] == masked.stat().st_size > m["file_bytes"]
        keys = torch.load(masked, weights_only=True)["state_dict"].keys()
        assert any(k.endswith("weight_orig") for k in keys) and any(k.endswith("weight_mask") for k in keys)
    assert metrics(config, "baseline")["masked_gzip_bytes"] is None


def test_latency_covers_both_runtimes_and_onnx_matches(tiny_run):
    _, config, _ = tiny_run
    for name, _, _ in model_rows(config):
        m = metrics(config, name)
        settings = {(g["runtime"], g["latency_batch_size"], g["latency_threads"]) for g in m["latency_grid"]}
        threads = {1, min(2, available_cores())}  # the run used --cores 2
        assert settings == {(rt, b, t) for rt in ("pytorch", "onnxruntime") for b in (1, 8) for t in threads}
        assert m["onnx_max_abs_diff"] < 1e-3


def test_reported_sparsity_matches_the_checkpoints(tiny_run):
    _, config, _ = tiny_run
    baseline_prunable = None
    for name, _, target in model_rows(config):
        model, _ = load_checkpoint(Path(config["results_dir"], "models", f"{name}.pt"))
        modules = [m for _, m in prunable_modules(model, config["prune"]["layer_types"], config["prune"]["exclude"])]
        counted = sparsity(m.weight for m in modules)
        nonzero = sum(int((m.weight != 0).sum()) for m in modules)
        baseline_prunable = baseline_prunable or sum(m.weight.numel() for m in modules)
        assert counted == metrics(config, name)["sparsity_prunable"]
        assert result_row(config, name)["removed_fraction"] == 1 - nonzero / baseline_prunable
        if is_channel_experiment(config, name):
            assert counted < 0.01  # what is left is dense
            assert abs(result_row(config, name)["channels_ratio"] - (1 - target)) < 0.02
            assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
        else:
            assert abs(counted - target) < 0.01


def test_pdf_compiles(tiny_run):
    _, config, _ = tiny_run
    pdf = Path(config["paper_dir"], "paper.pdf")
    if shutil.which("latexmk") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install latexmk (see .ci/run) so that the PDF is tested")
        pytest.skip("latexmk not installed: the workflow skips paper.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_second_run_has_nothing_to_do(tiny_run):
    work, _, configfile = tiny_run
    run = snakemake(work, "--configfile", str(configfile), "--dry-run")
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr


def test_bad_config_fails_before_any_job(tmp_path):
    with open(ROOT / "config.yaml") as f:
        config = yaml.safe_load(f)
    config["experiments"][0]["sparsity"] = 1.5
    config["results_dir"] = str(tmp_path / "results")
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "--configfile", str(configfile))
    assert run.returncode != 0
    assert "config key experiments[0].sparsity: 1.5 is greater than or equal to the maximum" in run.stdout + run.stderr
    assert not (tmp_path / "results").exists()


def test_kill_9_mid_job_then_the_same_command_resumes_to_the_same_numbers(tiny_run, tmp_path_factory):
    """kill -9 of an iterative prune job after its first step; the same snakemake command
    again completes, and the checkpoints and metrics (timings aside) equal those of an
    uninterrupted run of the same config - which also shows two runs are identical.
    Only the baseline and that experiment run, with 4 fine-tuning epochs per step so
    that the job is surely caught between its steps."""
    import json
    import signal
    import time

    config = merge(tiny_run[1], {"prune": {"finetune": {"epochs": 4}}})
    compared = ["baseline", "it_l1_50"]
    runs = {}
    for mode in ("uninterrupted", "killed"):
        work = tmp_path_factory.mktemp(mode)
        cfg = {**config, "results_dir": str(work / "results"), "paper_dir": str(work / "results" / "paper")}
        configfile = work / "config.yaml"
        configfile.write_text(yaml.safe_dump(cfg))
        targets = [str(work / "results" / "metrics" / f"{name}.json") for name in compared]
        runs[mode] = work
        if mode == "uninterrupted":
            run = snakemake(work, *targets, "--configfile", str(configfile))  # --configfile takes many
            assert run.returncode == 0, run.stderr[-5000:]
            continue
        exe = Path(sys.executable).parent / "snakemake"
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.Popen([str(exe), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work),
                                 "--cores", "2", *targets, "--configfile", str(configfile)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        killed, deadline = False, time.time() + 600
        while not killed and proc.poll() is None and time.time() < deadline:
            if (work / "results" / "models" / "it_l1_50.pt.resume").exists():  # step 1 of 2 saved
                pids = subprocess.run(["pgrep", "-f", f"scripts.prune .*{work}.*--name it_l1_50"],
                                      capture_output=True, text=True).stdout.split()
                for pid in pids:
                    os.kill(int(pid), signal.SIGKILL)
                killed = bool(pids)
            time.sleep(0.05)
        proc.communicate(timeout=600)
        assert killed, "the prune job was not caught between its steps"
        assert proc.returncode != 0
        assert not (work / "results" / "models" / "it_l1_50.pt").exists()  # no half-written output
        resumed = snakemake(work, *targets, "--configfile", str(configfile))
        assert resumed.returncode == 0, resumed.stderr[-5000:]
        assert "resuming from" in (work / "results" / "logs" / "prune_model" / "it_l1_50.log").read_text()

    timing = {"latency_ms", "latency_iqr_ms", "latency_samples", "latency_grid"}
    for name in compared:
        first, again = (json.loads(Path(runs[m], "results", "metrics", f"{name}.json").read_text())
                        for m in ("uninterrupted", "killed"))
        assert {k: v for k, v in again.items() if k not in timing} == {k: v for k, v in first.items()
                                                                        if k not in timing}, name
        a, b = (torch.load(Path(runs[m], "results", "models", f"{name}.pt"), weights_only=True)["state_dict"]
                for m in ("uninterrupted", "killed"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_crosscheck_recomputes_the_table_from_the_checkpoints(tiny_run, tmp_path):
    from scripts.crosscheck import CrossCheckError, crosscheck
    import json

    _, config, _ = tiny_run
    results = Path(config["results_dir"])
    assert (results / "crosscheck.txt").read_text().endswith("all numbers match\n")  # the workflow ran it
    rows = json.loads((results / "results.json").read_text())
    paper = Path(config["paper_dir"], "paper.md").read_text()
    args = (results / "models", 32, config["prune"]["layer_types"], config["prune"]["exclude"])
    assert len(crosscheck(rows, args[0], paper, *args[1:])) == len(rows)
    # one number typed by hand into the paper is caught
    line = next(l for l in paper.splitlines() if l.startswith(f"| {rows[1]['label']} |"))
    cells = line.split("|")
    cells[6] = " 9.99 "  # the MACs column
    with pytest.raises(CrossCheckError, match=rows[1]["name"]):
        crosscheck(rows, args[0], paper.replace(line, "|".join(cells)), *args[1:])
    # and so is a checkpoint that is not the one measured
    shutil.copy(results / "models" / f"{rows[1]['name']}.pt", tmp_path / f"{rows[0]['name']}.pt")
    for r in rows[1:]:
        shutil.copy(results / "models" / f"{r['name']}.pt", tmp_path / f"{r['name']}.pt")
    with pytest.raises(CrossCheckError, match="baseline"):
        crosscheck(rows, tmp_path, paper, *args[1:])
