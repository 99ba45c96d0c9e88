"""End to end: snakemake runs the whole DAG on a tiny synthetic config, and the
rendered paper's tables say exactly what the metrics files say."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, TIMING_KEYS, merge, snakemake, snakemake_command
from scripts.lib.models.runtime import available_cores
from scripts.lib.models.network import load_checkpoint
from scripts.lib.planning.labels import fill_label
from scripts.lib.planning.registry import FIGURES
from scripts.lib.pruning.masks import prunable_modules, sparsity
from scripts.lib.report.captions import figure_caption
from scripts.lib.report.columns import COLUMNS, TABLES, cell, table_columns
from scripts.lib.report.pandoc_tables import find_table, read_tables

pytestmark = [pytest.mark.slow, pytest.mark.whole_run]  # python -m pytest -m "not slow" leaves them out

TINY = {
    "preset": "tiny-test",
    "data": {"source": "synthetic", "path": None, "synthetic": {"train_size": 200, "test_size": 100, "noise": 30}},
    "model": {"weights": "none"},
    # warm-up 1 epoch of 2: config.yaml's 5 would keep the tiny baseline below its peak lr throughout
    "train": {"epochs": 2, "batch_size": 64, "warmup_epochs": 1},
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
        {"name": "os_ch_50", "label": "L2, 50% of channels (<macs_removed> % of MACs) removed", "strategy": "l2_channels",
         "schedule": "oneshot", "sparsity": 0.5},
        # every recovery option at once: the cubic schedule with a rewound learning rate,
        # batch-norm recalibration, distillation, a fine-tune budget of its own
        {"name": "gr_l1_60", "label": "Gradual L1 60%", "strategy": "l1_unstructured", "schedule": "gradual",
         "sparsity": 0.6, "steps": 3, "recalibrate_bn": 1, "distill": {"weight": 0.5, "temperature": 2.0},
         "finetune": {"epochs": 2, "lr": 0.05}, "scope": "global", "exclude": ["features.0.0"]},
        # the dense control of it_l1_50: its two fine-tunes, nothing removed
        {"name": "dense_it_50", "label": "Dense, iterative budget", "strategy": "dense", "schedule": "iterative",
         "sparsity": 0, "steps": 2, "control_of": "it_l1_50"},
    ],
    # a small dense net at the width whose MACs match os_ch_50's, trained from scratch
    "small_dense": [{"name": "small_ch_50", "label": "Small dense, MACs of channels 50%", "matches": "os_ch_50"}],
    "ablation": ["os_l1_50", "it_l1_50", "gr_l1_60"],
    # one new row (30 %); its 50 % row is os_l1_50, trained once
    "sweeps": [{"strategies": ["l1_unstructured"], "sparsities": [0.3, 0.5], "schedule": "oneshot"}],
    # one experiment replicated with a second seed, which also trains a second baseline
    "seeds": [0, 1], "seeds_experiments": ["os_l1_50"], "baseline_seeds": [0, 1],
    "evaluate": {"batch_size": 50, "timing": {"batch_sizes": [1, 8], "warmup": 1, "rounds": 2, "block_time": 0.02,
                                              "passes": 2},
                 "int8": {"calibration_images": 64}},
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
    (work / "run.log").write_text(run.stderr)  # Snakemake's account of the run: when each job started
    return work, config, configfile


def job_events(log: str) -> list[tuple[str, str]]:
    """("start" | "finish", job) in the order Snakemake logged them; a job is its rule and, for the
    training jobs (which print a message), the model it makes, e.g. "prune_channels os_ch_50"."""
    events, rules, models, block = [], {}, {}, None
    for line in log.splitlines():
        if m := re.match(r"^Job (\d+): (?:Training (?:the small dense net |the )?|Pruning |Fine-tuning )(\S+)", line):
            events.append(("start", m[1]))
            models[m[1]] = m[2]
        elif m := re.match(r"^(?:local)?rule (\w+):$", line):
            block = m[1]
        elif block and (m := re.match(r"^\s+jobid: (\d+)$", line)):
            events.append(("start", m[1]))
            rules[m[1]], block = block, None
        elif m := re.match(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", line):
            events.append(("finish", m[1]))
            rules[m[1]] = m[2]
    return [(kind, " ".join(filter(None, (rules.get(jobid, "?"), models.get(jobid))))) for kind, jobid in events]


def started_after(events, finished: str) -> list[str]:
    """The jobs in start order after `finished` finished."""
    (at,) = [i for i, (kind, job) in enumerate(events) if kind == "finish" and job == finished]
    return [job for kind, job in events[at:] if kind == "start"]


def next_batch(events, finished: str) -> list[str]:
    """The jobs Snakemake started together when it next chose jobs after `finished` finished
    (the finishes logged before that choice freed their cores for it too)."""
    (at,) = [i for i, (kind, job) in enumerate(events) if kind == "finish" and job == finished]
    batch = []
    for kind, job in events[at + 1:]:
        if kind == "start":
            batch.append(job)
        elif batch:
            break
    return batch


def test_the_long_chains_start_first_after_the_baseline(tiny_run):
    """After the seed-0 baseline, the free cores go first to the jobs that lead the longest chains
    of training (priorities in workflow/rules/common.smk): the second baseline seed and the row
    the small dense net is matched to; then the width match and the net itself as soon as each
    can run. Among equal priorities Snakemake's order is arbitrary, and a long chain started
    last would finish alone with a core idle."""
    work, config, _ = tiny_run
    events = job_events((work / "run.log").read_text())
    (small,) = config["small_dense"]
    (second,) = [f"baseline_seed{s}" for s in config["baseline_seeds"] if s != 0]
    chain_heads = {f"train_baseline_replica {second}", f"prune_channels {small['matches']}"}
    # both outrank every other ready job, so no job starts before them (nothing else runs beside
    # the baseline but, maybe, a one-core provenance job: then they start one after the other)
    assert set(started_after(events, "finetune_baseline baseline")[:2]) == chain_heads, events
    assert "match_width" in next_batch(events, f"prune_channels {small['matches']}"), events
    assert f"train_small_dense {small['name']}" in next_batch(events, "match_width"), events


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


def is_dense_control(config, name):
    return any(e["name"] == name and e["strategy"] == "dense" for e in config["experiments"])


def model_rows(config):
    from scripts.lib.planning.matrix import all_experiments
    return [("baseline", "Baseline (trained from scratch)", 0.0)] + [
        (e["name"], e["label"], e["sparsity"]) for e in all_experiments(config)] + [
        (e["name"], e["label"], 0.0) for e in config.get("small_dense", [])]


def planned_names(config):
    return [name for name, _, _ in model_rows(config)]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk comes first)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    assert data[-12:-4] == b"\x00\x00\x00\x00IEND", f"{path}: cut short"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def pdf_pages(data: bytes) -> int:
    """Page objects of a PDF, those in compressed object streams included (pdfTeX's default)."""
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass  # an image or font stream under another filter
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", b"\n".join(chunks)))


def test_results_hold_the_planned_models_with_accuracies_recounted_from_their_predictions(tiny_run):
    _, config, _ = tiny_run
    results = Path(config["results_dir"])
    rows = json.loads((results / "results.json").read_text())
    assert [r["name"] for r in rows] == planned_names(config)
    labels_sha = set()
    for row, (name, _, target) in zip(rows, model_rows(config)):
        assert row["target_sparsity"] == target, name
        assert row["test_images"] == TINY["data"]["synthetic"]["test_size"], name
        for key in ("accuracy", "accuracy_fp16_export", "accuracy_int8", "accuracy_flip_tta"):
            assert 0 <= row[key] <= 1, (name, key)
        lo, hi = row["accuracy_ci"]
        assert 0 <= lo <= row["accuracy"] <= hi <= 1, name
        predictions = json.loads((results / "predictions" / f"{name}.json").read_text())
        assert predictions["name"] == name
        correct, correct_int8 = predictions["correct"], predictions["correct_int8"]
        assert len(correct) == len(correct_int8) == row["test_images"] and set(correct + correct_int8) <= {"0", "1"}
        assert correct.count("1") / len(correct) == pytest.approx(row["accuracy"], abs=1e-12), name
        assert correct_int8.count("1") / len(correct_int8) == pytest.approx(row["accuracy_int8"], abs=1e-12), name
        labels_sha.add(predictions["test_labels_sha256"])
        if not is_channel_experiment(config, name):  # masking: the share of prunable weights zeroed
            assert abs(row["sparsity_prunable"] - target) < 0.01, name
    assert len(labels_sha) == 1, "every model was tested on the same labels"
    with open(results / "results.csv", newline="") as f:  # the CSV is the same table, registered columns only
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(COLUMNS)
    assert [r["name"] for r in table] == planned_names(config)
    for line, row in zip(table, rows):
        assert float(line["accuracy"]) == row["accuracy"] and int(line["macs"]) == row["macs"], row["name"]


def test_every_figure_is_a_png_the_paper_shows_and_every_model_is_named(tiny_run):
    _, config, _ = tiny_run
    paper = Path(config["paper_dir"])
    md, tex = (paper / "paper.md").read_text(), (paper / "paper.tex").read_text()
    for name in FIGURES:  # every registry figure was drawn, and both manuscripts show it
        f = paper / "figures" / f"{name}.png"
        width, height = png_size(f)
        assert 300 <= width <= 4000 and 150 <= height <= 4000, (f, width, height)
        assert f.stat().st_size > 5000, f  # not an empty canvas
        assert f.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", f  # the LaTeX paper's vector copy
        stem = f.relative_to(paper).with_suffix("").as_posix()  # LaTeX takes the PDF, paper.md the PNG
        assert f'src="{stem}.png"' in md and f"{{{stem}}}" in tex, stem
    named = {row[0] for table in read_tables(md, "markdown") for row in table[1:]}  # each table row's label
    assert {fill_label(label, result_row(config, name)) for name, label, _ in model_rows(config)} <= named


@pytest.mark.parametrize("manuscript", ["paper.md", "paper.tex"])
def test_every_table_shows_the_metrics_in_the_registry_format(tiny_run, manuscript):
    _, config, _ = tiny_run
    text = Path(config["paper_dir"], manuscript).read_text()
    assert "TINY-TEST PRESET: NOT THE PUBLISHED RESULTS" in text  # any preset but "paper" has the banner
    tables = read_tables(text, "markdown" if manuscript.endswith(".md") else "latex")
    rows = json.loads(Path(config["results_dir"], "results.json").read_text())
    # each label as the results stage filled it (a placeholder becomes the model's measured value)
    assert [r["label"] for r in rows] == [fill_label(label, r) for (_, label, _), r in zip(model_rows(config), rows)]
    for row in rows:  # results.json carries each metrics file unchanged
        m = metrics(config, row["name"])
        assert {k: row[k] for k in m} == m
    for table in TABLES:
        columns = table_columns(table)
        shown = find_table(tables, [c.header for c in columns], manuscript)
        assert shown == [[cell(c, row) for c in columns] for row in rows], table


def test_exports_of_every_model_decode_to_its_checkpoint(tiny_run):
    """The sparse exports read back to the checkpoint's tensors (fp32 exactly, fp16 rounded),
    their sizes are the metrics', and both ONNX files run a batch of two in ONNX Runtime."""
    from scripts.lib.measure.storage import read_sparse_export
    from scripts.lib.measure.timing import onnx_session
    from scripts.lib.planning.matrix import baseline_replicas, replicas

    _, config, _ = tiny_run
    results = Path(config["results_dir"])
    exports = results / "exports"
    names = planned_names(config) + [r["name"] for r in replicas(config) + baseline_replicas(config)]
    assert sorted(p.name for p in exports.iterdir()) == sorted(
        f"{n}.{v}" for n in names for v in ("fp16.sparse.pt.gz", "fp32.sparse.pt.gz", "onnx", "int8.onnx"))
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for name in names:
        m = metrics(config, name)
        ckpt = torch.load(results / "models" / f"{name}.pt", weights_only=True)
        state = ckpt["state_dict"]
        for dtype, key in ((torch.float32, "sparse_fp32_bytes"), (torch.float16, "sparse_fp16_bytes")):
            path = exports / f"{name}.{'fp32' if dtype == torch.float32 else 'fp16'}.sparse.pt.gz"
            assert path.stat().st_size == m[key], (name, key)
            back, meta = read_sparse_export(path)
            assert meta == ckpt["meta"] and back.keys() == state.keys(), name
            for k, v in state.items():
                expected = v.to(dtype).to(v.dtype) if v.is_floating_point() else v
                assert back[k].dtype == v.dtype and torch.equal(back[k], expected), (name, k)
        assert (exports / f"{name}.onnx").stat().st_size == m["onnx_bytes"]
        assert (exports / f"{name}.int8.onnx").stat().st_size == m["int8_bytes"]
        model, _ = load_checkpoint(results / "models" / f"{name}.pt")
        with torch.inference_mode():
            expected = model.eval()(images).numpy()
        (logits,) = onnx_session(exports / f"{name}.onnx", 1).run(None, {"images": images.numpy()})
        assert logits.shape == (2, 10) and abs(logits - expected).max() < 1e-3, name
        (logits,) = onnx_session(exports / f"{name}.int8.onnx", 1).run(None, {"images": images.numpy()})
        assert logits.shape == (2, 10) and np.isfinite(logits).all(), name


def test_seed_style_masked_checkpoints_are_kept_and_measured(tiny_run):
    _, config, _ = tiny_run
    for e in config["experiments"]:
        m = metrics(config, e["name"])
        masked = Path(config["results_dir"], "models", "masked", f"{e['name']}.pt")
        if is_channel_experiment(config, e["name"]) or is_dense_control(config, e["name"]):
            assert m["masked_file_bytes"] is None and not masked.exists()  # no masks: cut out, or none at all
            continue
        assert m["masked_file_bytes"] == masked.stat().st_size > m["file_bytes"]
        keys = torch.load(masked, weights_only=True)["state_dict"].keys()
        assert any(k.endswith("weight_orig") for k in keys) and any(k.endswith("weight_mask") for k in keys)
    assert metrics(config, "baseline")["masked_gzip_bytes"] is None


def test_one_timing_job_times_every_model_in_three_runtimes(tiny_run):
    _, config, _ = tiny_run
    latency = json.loads(Path(config["results_dir"], "latency.json").read_text())
    threads = {1, min(2, available_cores())}  # the run used --cores 2
    names = [name for name, _, _ in model_rows(config)]
    assert list(latency["models"]) == names
    for name in names:
        m = metrics(config, name)
        assert not TIMING_KEYS & set(m), "evaluate jobs time nothing"
        grid = latency["models"][name]
        assert {(g["runtime"], g["latency_batch_size"], g["latency_threads"]) for g in grid} == {
            (rt, b, t) for rt in ("pytorch", "onnxruntime", "onnxruntime_int8") for b in (1, 8) for t in threads}
        assert all(g["latency_samples"] == 4 and len(g["latency_pass_ms"]) == 2 for g in grid)  # 2 rounds x 2 passes
        assert all(g["latency_ms"] > 0 and g["latency_iqr_ms"] >= 0 and min(g["latency_pass_ms"]) > 0
                   and g["latency_device"] == "cpu" for g in grid), name
        assert result_row(config, name)["latency_grid"] == grid  # the table reads the timing job's file
        assert m["onnx_max_abs_diff"] < 1e-3
        assert 0 <= m["accuracy_int8"] <= 1 and m["int8_bytes"] < m["onnx_bytes"]
    assert latency["agreement"]["passes_compared"] == 2
    from scripts.lib.planning.matrix import all_experiments
    l1 = [e for e in all_experiments(config) if e["strategy"] == "l1_unstructured"]
    sparsest = max(l1, key=lambda e: e["sparsity"])
    # the CSR probe read the sparsest L1 model: its pointwise weights are about that sparse
    assert all(abs(p["sparsity"] - sparsest["sparsity"]) < 0.1 for p in latency["sparse_probe"])
    assert all(p["dense_ms"] > 0 and p["csr_ms"] > 0 for p in latency["sparse_probe"])
    assert [(p["batch_size"], p["threads"]) for p in latency["sparse_probe"]] == sorted(
        (b, t) for b in (1, 8) for t in threads)
    # the CSR sweep pruned the baseline's own dense layers to each level: each matrix holds that share of zeros
    sweep = latency["sparse_sweep"]
    assert [l["role"] for l in sweep["layers"]] == ["expansion", "projection", "classifier"]
    assert all(l["zeros"] < 0.01 for l in sweep["layers"])
    assert all(abs(c["zeros"] - c["sparsity"]) < 1e-3 for c in sweep["cells"])
    assert {(c["batch_size"], c["threads"]) for c in sweep["cells"]} == {(b, t) for b in (1, 8) for t in threads}


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
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF")
    pages = pdf_pages(data)
    # what pdfTeX said it wrote (its last pass): the same pages and bytes
    log = Path(config["results_dir"], "logs", "compile_pdf.log").read_text().replace("\n", "")
    written = re.findall(r"Output written on \S*paper\.pdf \((\d+) pages?, (\d+) bytes\)", log)
    assert written and written[-1] == (str(pages), str(len(data))), (pages, len(data), written)
    assert pages >= 3  # title and tables, figures, appendix: not a one-page error report


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
        command, env = snakemake_command(work, "--cores", "2", *targets, "--configfile", str(configfile))
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        killed, deadline = False, time.time() + 600
        while not killed and proc.poll() is None and time.time() < deadline:
            if (work / "results" / "models" / "it_l1_50.pt.resume").exists():  # step 1 of 2 saved
                pids = subprocess.run(["pgrep", "-f", f"scripts.prune .*{work}.*models/it_l1_50[.]pt"],
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

    for name in compared:
        first, again = (json.loads(Path(runs[m], "results", "metrics", f"{name}.json").read_text())
                        for m in ("uninterrupted", "killed"))
        assert {k: v for k, v in again.items() if k not in TIMING_KEYS} == {k: v for k, v in first.items()
                                                                        if k not in TIMING_KEYS}, name
        a, b = (torch.load(Path(runs[m], "results", "models", f"{name}.pt"), weights_only=True)["state_dict"]
                for m in ("uninterrupted", "killed"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_crosscheck_recomputes_the_tables_of_both_manuscripts(tiny_run, tmp_path):
    from scripts.lib.report.crosscheck import CrossCheckError, crosscheck
    from scripts.lib.report.recount import read_predictions

    _, config, _ = tiny_run
    results = Path(config["results_dir"])
    assert (results / "crosscheck.txt").read_text().endswith("all numbers match\n")  # the workflow ran it
    rows = json.loads((results / "results.json").read_text())
    predictions = read_predictions(sorted((results / "predictions").glob("*.json")))  # the seed replica's too
    md = Path(config["paper_dir"], "paper.md").read_text()
    tex = Path(config["paper_dir"], "paper.tex").read_text()
    args = (32, config["prune"]["layer_types"], config["prune"]["exclude"])
    models = results / "models"
    assert len(crosscheck(rows, predictions, models, md, tex, *args)) == 2 * len(rows) + 1
    it = rows[2]  # "Iterative L1 50%": a label with nothing to escape
    macs = cell(COLUMNS["macs"], it)
    # one number typed by hand into either manuscript is caught
    line = next(l for l in md.splitlines() if l.startswith(f"| {it['label']} ") and f" {macs} " in l)
    with pytest.raises(CrossCheckError, match=f"paper.md, table results, {it['name']}"):
        crosscheck(rows, predictions, models, md.replace(line, line.replace(f" {macs} ", " 9.99 ")), tex, *args)
    line = next(l for l in tex.splitlines() if f" & {macs} " in l and l.startswith(it["label"].replace("%", r"\%")))
    with pytest.raises(CrossCheckError, match=f"paper.tex, table results, {it['name']}"):
        crosscheck(rows, predictions, models, md, tex.replace(line, line.replace(f" & {macs} ", " & 9.99 ")), *args)
    # so is an accuracy that is not what the model's predictions count, and the seed replica's
    edited = json.loads(json.dumps(rows))
    edited[2]["accuracy_int8"] += 0.01
    (replicated,) = [r for r in edited if "seeds" in r and r["name"] != "baseline"]
    replicated["accuracy_seeds"][1] += 0.01
    with pytest.raises(CrossCheckError) as caught:
        crosscheck(edited, predictions, models, md, tex, *args)
    assert f"{it['name']}: accuracy_int8 is {rows[2]['accuracy_int8']!r} recounted" in str(caught.value)
    assert f"{replicated['name']}: accuracy_seeds is" in str(caught.value)
    # and so is a checkpoint that is not the one measured
    shutil.copy(models / f"{rows[1]['name']}.pt", tmp_path / f"{rows[0]['name']}.pt")
    for r in rows[1:]:
        shutil.copy(models / f"{r['name']}.pt", tmp_path / f"{r['name']}.pt")
    with pytest.raises(CrossCheckError, match="baseline"):
        crosscheck(rows, predictions, tmp_path, md, tex, *args)


def test_imagenet_preset_fine_tunes_from_a_weights_file_offline(tmp_path):
    """The seed's setting, one switch away: the preset with an ImageNet-shaped state_dict that
    the test writes where the download would put it (no network), on tiny synthetic data."""
    from scripts.lib.mobilenet import IMAGENET_WEIGHTS_FILE
    from scripts.lib.models.network import build_model

    weights = tmp_path / "resources" / "weights" / IMAGENET_WEIGHTS_FILE
    weights.parent.mkdir(parents=True)
    torch.manual_seed(1)
    imagenet = build_model(1000).state_dict()
    torch.save(imagenet, weights)
    preset = yaml.safe_load((ROOT / "workflow" / "presets" / "imagenet.yaml").read_text())
    assert preset["model"]["weights"] == "imagenet"
    override = {**TINY, "preset": "imagenet", "model": preset["model"],
                "train": {**preset["train"], "epochs": 1, "lr": 1e-6}, "results_dir": str(tmp_path / "results"),
                "paper_dir": str(tmp_path / "results" / "paper")}
    configfile = tmp_path / "over.yaml"
    configfile.write_text(yaml.safe_dump(override))
    target = str(tmp_path / "results" / "models" / "baseline.pt")
    run = snakemake(tmp_path, target, "--configfile", str(ROOT / "workflow" / "presets" / "imagenet.yaml"),
                    str(configfile))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "fetch_imagenet_weights" not in run.stdout + run.stderr  # the file was there: nothing downloaded
    model, _ = load_checkpoint(target)
    # the features started from the file (a learning rate of 1e-6 barely moves them); the head is new
    state = model.state_dict()
    assert torch.allclose(state["features.0.0.weight"], imagenet["features.0.0.weight"], atol=1e-4)
    assert state["classifier.1.weight"].shape == (10, 1280)


def test_ablation_recovery_and_paired_tests_reach_the_paper(tiny_run):
    """The ablation table, the recovery table (global ranking, the stem kept dense) and a
    McNemar p-value per comparison, from the run's own per-image results; the row that
    kept its stem dense has it dense in its checkpoint."""
    import json

    _, config, _ = tiny_run
    md = Path(config["paper_dir"], "paper.md").read_text()
    tables = read_tables(md, "markdown")
    (ablation,) = [t for t in tables if "Over the first (points)" in t[0]]
    assert [r[0] for r in ablation[1:]] == ["L1 50% & one_shot #1", "Iterative L1 50%", "Gradual L1 60%"]
    (recovery,) = [t for t in tables if "Distillation" in t[0] and "Control" not in t[0]]
    (gradual,) = [r for r in recovery if r[0] == "Gradual L1 60%"]
    assert gradual[4:6] == ["global", "features.0.0"]
    assert "exact McNemar test on the same test images" in md
    # a p-value per comparison, significant or not, after the interval of its difference
    assert re.search(r"(%|points), 95 % CI [-+][\d.]+ to [-+][\d.]+, p (=|below) ", md)
    correct = json.loads(Path(config["results_dir"], "predictions", "gr_l1_60.json").read_text())["correct"]
    assert correct.count("1") == round(result_row(config, "gr_l1_60")["accuracy"] * len(correct))
    state = torch.load(Path(config["results_dir"], "models", "gr_l1_60.pt"), weights_only=True)["state_dict"]
    assert (state["features.0.0.weight"] != 0).all()


def test_a_second_seed_trains_another_model_and_folds_into_its_row(tiny_run):
    """seeds: [0, 1] for os_l1_50, baseline_seeds: [0, 1]: the baseline trained again with seed 1
    (baseline_seed1), and a replica of os_l1_50 pruned from it with seed 1; both evaluated, then
    folded into their rows (per-seed accuracies, mean, sample std) and the paper's seed table;
    neither is timed nor has a row of its own."""
    import statistics
    _, config, _ = tiny_run
    results = Path(config["results_dir"])
    for pair in (("os_l1_50", "os_l1_50_seed1"), ("baseline", "baseline_seed1")):
        a, b = (torch.load(results / "models" / f"{n}.pt", weights_only=True) for n in pair)
        assert a["state_dict"].keys() == b["state_dict"].keys()
        assert not all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])  # another model
        assert b["meta"]["name"] == pair[1]
    # the seed-1 replica was pruned from the seed-1 baseline: its dense stem's weights are that baseline's
    stem = "features.0.0.weight"
    replica = torch.load(results / "models" / "os_l1_50_seed1.pt", weights_only=True)["state_dict"][stem]
    baselines = {n: torch.load(results / "models" / f"{n}.pt", weights_only=True)["state_dict"][stem]
                 for n in ("baseline", "baseline_seed1")}
    kept = replica != 0
    assert (baselines["baseline_seed1"].sign() == replica.sign())[kept].float().mean() > 0.9
    assert (baselines["baseline"].sign() == replica.sign())[kept].float().mean() < 0.75
    rows = json.loads((results / "results.json").read_text())
    for name, replica_name in (("os_l1_50", "os_l1_50_seed1"), ("baseline", "baseline_seed1")):
        accuracies = [metrics(config, n)["accuracy"] for n in (name, replica_name)]
        row = result_row(config, name)
        assert row["seeds"] == [0, 1] and row["accuracy_seeds"] == accuracies and row["seeds_run"] == 2
        assert row["accuracy_mean"] == statistics.fmean(accuracies)
        assert row["accuracy_std"] == statistics.stdev(accuracies)
        assert replica_name not in {r["name"] for r in rows}
        assert replica_name not in json.loads((results / "latency.json").read_text())["models"]
    assert all("seeds" not in r for r in rows if r["name"] not in ("os_l1_50", "baseline"))
    md = Path(config["paper_dir"], "paper.md").read_text()
    assert "Models run with several seeds (the baseline trained from scratch with seeds 0, 1;" in md  # Appendix B
    for name in ("os_l1_50", "baseline"):
        row = result_row(config, name)
        assert f"{row['accuracy_mean'] * 100:.1f} ± {row['accuracy_std'] * 100:.2f}" in md
    bill = config["train"]["epochs"]
    assert f"{2 * bill} for the baseline ({bill} for each of its 2 seeds)" in md
    baseline = result_row(config, "baseline")
    assert (f"**Two baselines.** Every model of the main tables starts from the baseline of seed 0; trained again "
            f"with seed 1, the baseline reached {baseline['accuracy_seeds'][1] * 100:.1f} % (seed 0: "
            f"{baseline['accuracy'] * 100:.1f} %)") in md  # Limitations


def test_snakemake_report_has_every_figure_table_and_the_configuration(tiny_run):
    """`snakemake --report`: every registry figure with its caption, the results table, the
    timing file, the paper, the provenance and the effective configuration, grouped by stage."""
    work, config, configfile = tiny_run
    report = work / "report.html"
    run = snakemake(work, "--configfile", str(configfile), "--report", str(report))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "WARNING" not in run.stderr, run.stderr[-3000:]  # e.g. a caption's reStructuredText
    html = report.read_text()
    for category in ("4 Evaluation", "5 Figures - results", "5 Figures - appendix", "6 Paper", "7 Provenance"):
        assert category in html, category
    for name in FIGURES:
        assert " ".join(figure_caption(name).split()[:4]) in html, name
    for name in ("results.csv", "latency.json", "paper.pdf", "paper.md", "provenance.json", "crosscheck.txt"):
        assert name in html, name
    assert "effective configuration" in html and "seeds_experiments" in html


def test_the_published_numbers_rebuild_the_paper_byte_for_byte(tiny_run, tmp_path):
    """publish_numbers copies the paper's inputs beside it: the paper folder alone (numbers and
    figures, no checkpoint) rebuilds paper.md and paper.tex identical, a changed number is
    caught, and the README's published-results block is written from it."""
    from scripts.lib.report import publish
    from scripts.lib.report.formats import pct
    from scripts.publish import main

    _, config, _ = tiny_run
    paper = tmp_path / "paper"
    shutil.copytree(config["paper_dir"], paper)  # away from the results folder it came from
    data = paper / publish.NUMBERS
    spec = publish.published_spec(paper)  # the workflow's render spec, its paths relative to numbers/
    assert not [f for f in paper.rglob("*") if f.suffix in (".pt", ".onnx")]
    results = Path(config["results_dir"])
    copies = {f.relative_to(data).as_posix() for f in data.rglob("*")
              if f.is_file() and not f.name.startswith(".snakemake")} - {"render.json"}
    assert {"crosscheck.txt", "results.json", "latency.json", "metrics/os_l1_50_seed1.json"} <= copies
    for f in copies:  # every number the paper folder keeps is the run's own file, unchanged
        assert (data / f).read_bytes() == (results / f).read_bytes(), f
    assert len(spec.numbers.correct) == len(spec.numbers.histories) == len(model_rows(config))
    assert spec.settings["preset"] == config["preset"]  # the effective config travels in the spec
    assert all(Path(f).resolve().is_relative_to(paper.resolve()) for files in spec.figures.values() for f in files)
    assert main(["check", str(paper)]) == 0

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{publish.README_START}\nstale\n{publish.README_END}\nafter\n")
    assert main(["readme", str(paper), str(readme), "--check"]) == 1
    assert main(["readme", str(paper), str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{publish.README_END}\nafter\n") and "stale" not in text
    assert main(["readme", str(paper), str(readme), "--check"]) == 0
    rows = json.loads(Path(spec.numbers.results).read_text())
    table = find_table(read_tables(text, "markdown"), publish.results_table(rows).headers, "README")
    assert [r[2] for r in table] == [pct(r["accuracy"]) for r in rows]

    rows[1]["accuracy"] += 0.01  # a number changed after rendering: the paper no longer follows
    Path(spec.numbers.results).write_text(json.dumps(rows))
    assert main(["check", str(paper)]) == 1


# --- the verification ladder's rungs 1, 2 and 4 on the tiny run --------------------------------

def test_rungs_1_and_2_rebuild_the_paper_and_recount_every_table_number_from_the_published_files(tiny_run, tmp_path):
    """`snakemake verify_published`: the paper re-rendered byte for byte from <paper>/numbers, then
    every per-model table number recounted from the published predictions (the seed replicas'
    included) and metrics files. A copy with one metric edited, or a replica's record missing, fails."""
    work, config, configfile = tiny_run
    run = snakemake(work, "verify_published", "--configfile", str(configfile))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    shown = run.stdout + run.stderr  # on the terminal, and in its log
    assert "rebuilt identical from numbers/" in shown and "every table number recounted" in shown
    log = Path(config["results_dir"], "logs", "verify_published.log").read_text()
    assert "rebuilt identical from numbers/" in log and "every table number recounted" in log
    published = Path(config["paper_dir"]) / "numbers"
    assert {"os_l1_50_seed1.json", "baseline_seed1.json"} <= {p.name for p in (published / "predictions").iterdir()}

    def recount(paper):
        return subprocess.run([sys.executable, "-m", "scripts.publish", "recount", str(paper)],
                              capture_output=True, text=True, cwd=ROOT)

    copy = tmp_path / "paper"
    shutil.copytree(config["paper_dir"], copy)
    assert recount(copy).returncode == 0
    metrics_file = copy / "numbers" / "metrics" / "os_l1_50.json"
    edited = json.loads(metrics_file.read_text())
    edited["macs"] += 1
    metrics_file.write_text(json.dumps(edited))
    run = recount(copy)
    assert run.returncode == 1 and "os_l1_50: macs is" in run.stdout and "in its metrics file" in run.stdout
    shutil.copyfile(published / "metrics" / "os_l1_50.json", metrics_file)
    (copy / "numbers" / "predictions" / "os_l1_50_seed1.json").unlink()
    run = recount(copy)
    assert run.returncode == 1 and "no predictions file of its seed replica(s) ['os_l1_50_seed1']" in run.stdout


def test_the_released_models_pack_into_one_archive_that_re_evaluates_to_the_published_accuracies(tiny_run, tmp_path):
    """`snakemake release` packs every tabled model (checkpoint, ONNX, int8 ONNX) with a manifest of
    checksums and accuracies, the same bytes when packed again; `snakemake verify_release` (rung 4)
    re-evaluates it against the paper's results.json: identical on this machine. A damaged
    member, a moved accuracy and a missing archive each fail with their reason."""
    import hashlib
    import tarfile

    work, config, configfile = tiny_run
    results = Path(config["results_dir"])
    run = snakemake(work, "release", "--configfile", str(configfile))
    assert run.returncode == 0, run.stderr[-3000:]
    archive = results / "release" / "models.tar.gz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (results / "release" / "models.tar.gz.sha256").read_text() == f"{digest}  {config['preset']}-models.tar.gz\n"
    rows = json.loads((results / "results.json").read_text())
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile(f"{config['preset']}-models/MANIFEST.json").read())
        names = set(tar.getnames())
    assert [m["name"] for m in manifest["models"]] == [r["name"] for r in rows]  # the tabled models, no replica
    assert manifest["commit"] == json.loads((results / "provenance.json").read_text())["commit"]
    for m in manifest["models"]:
        assert {f"{config['preset']}-models/{f['path']}" for f in m["files"].values()} <= names
    rerun = snakemake(work, "release", "--forcerun", "pack_release", "--configfile", str(configfile))
    assert rerun.returncode == 0 and hashlib.sha256(archive.read_bytes()).hexdigest() == digest  # reproducible bytes

    verify = snakemake(work, "verify_release", "--configfile", str(configfile), "--config", f"release_archive={archive}")
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    shown = verify.stdout + verify.stderr
    assert f"{len(rows)} models re-evaluated, 0 outside the published accuracies" in shown
    assert shown.count(": identical") == len(rows)
    assert shown.count(": the published checkpoint;") == len(rows)
    assert f"{len(rows)} of {len(rows)} checkpoints are the published ones" in shown

    dataset, published = results / "data" / "dataset.pt", Path(config["paper_dir"]) / "numbers" / "results.json"

    def check(archive_path, published_path=published):
        return subprocess.run([sys.executable, "-m", "scripts.release", "verify", str(archive_path), "--data",
                               str(dataset), "--published", str(published_path)], capture_output=True, text=True,
                              cwd=ROOT)

    moved = json.loads(published.read_text())
    moved[1]["accuracy_int8"] += 0.01
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    run = check(archive, tmp_path / "moved.json")
    assert run.returncode == 1 and f"{moved[1]['name']}: " in run.stdout and ": OUTSIDE" in run.stdout

    other = json.loads(published.read_text())
    other[0]["ckpt_sha256"] = "0" * 64  # the archive's first model is not the published one: said, not judged
    (tmp_path / "other.json").write_text(json.dumps(other))
    run = check(archive, tmp_path / "other.json")
    assert run.returncode == 0 and f"{other[0]['name']}: NOT the published checkpoint" in run.stdout
    assert f"{len(rows) - 1} of {len(rows)} checkpoints are the published ones" in run.stdout

    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    member = unpacked / f"{config['preset']}-models" / manifest["models"][0]["files"]["onnx_int8"]["path"]
    member.write_bytes(member.read_bytes()[:-1] + bytes([member.read_bytes()[-1] ^ 1]))
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        tar.add(unpacked / f"{config['preset']}-models", arcname=f"{config['preset']}-models")
    run = check(damaged)
    assert run.returncode == 2 and "does not match its sha256 in the manifest" in run.stderr

    run = check(tmp_path / "absent.tar.gz")
    assert run.returncode == 2 and "snakemake --cores 2 release" in run.stderr
