"""The cross-check's numbers that need no checkpoint, on a small fake run: every accuracy
recounted from the per-image predictions, and both manuscripts' tables against the recount.
(The checkpoint half runs on a real run: tests/test_workflow.py.)"""
from __future__ import annotations

import json
import statistics

import pytest

from conftest import ROOT
from fake_results import experiments, latency_file, paper_inputs, results_rows, spread_flags
from scripts.lib.report.crosscheck import check_numbers
from scripts.lib.report.context import build_context
from scripts.lib.report.inputs import Run
from scripts.lib.report.manuscript import render
from scripts.lib.report.recount import PredictionsError, read_predictions, recount
from scripts.lib.report.results import aggregate

TEMPLATE = ROOT / "paper" / "templates" / "paper.md.j2"
LATEX_TEMPLATE = ROOT / "paper" / "templates" / "paper.latex"
BIBLIOGRAPHY = ROOT / "paper" / "references.bib"


def render_paper(folder, rows, quick_config) -> tuple[str, str]:
    """paper.md and paper.tex of these rows, as the render job writes them."""
    context = build_context(Run(rows=rows, **paper_inputs(rows, {**quick_config, "preset": "test"})))
    md, tex = folder / "paper.md", folder / "paper.tex"
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context, md, tex)
    return md.read_text(), tex.read_text()


@pytest.fixture
def run(tmp_path):
    """A fake run's metrics files, predictions and rows (results.json)."""
    rows = results_rows(tmp_path / "metrics", predictions=tmp_path / "predictions")
    return tmp_path, rows, read_predictions(sorted((tmp_path / "predictions").glob("*.json")))


def test_a_consistent_run_passes(run, quick_config):
    folder, rows, predictions = run
    problems, report = check_numbers(rows, predictions, *render_paper(folder, rows, quick_config))
    assert problems == [] and len(report) == len(rows) and all(line.endswith(": ok") for line in report)
    assert report[0] == f"baseline: {round(rows[0]['accuracy'] * 10000)} of 10000 test images right (fp32, int8 " \
                        f"{round(rows[0]['accuracy_int8'] * 10000)}): ok"


def test_a_label_with_an_apostrophe_passes_though_the_manuscripts_print_it_typographically(run, quick_config):
    """The published run's labels ("10 epochs at the seed's lr") read back from the tables with
    pandoc's typographic apostrophe; a number that differs still fails."""
    folder, rows, predictions = run
    rows[1]["label"] = "One-shot, the seed's lr"
    md, tex = render_paper(folder, rows, quick_config)
    assert "the seed\u2019s lr" in md
    problems, _ = check_numbers(rows, predictions, md, tex)
    assert problems == []
    rows[1]["label"] = "One-shot, the seed's rate"  # a different label still fails
    problems, _ = check_numbers(rows, predictions, md, tex)
    assert problems and all("the seed" in p for p in problems)


def test_an_accuracy_edited_in_a_metrics_file_fails_though_the_paper_follows_it(run, quick_config):
    """The edit goes through aggregation and rendering, as a rerun of the workflow would
    take it: results.json and both manuscripts agree with the edited number, the
    predictions do not."""
    folder, rows, predictions = run
    metrics = folder / "metrics" / "it_l1_90.json"
    m = json.loads(metrics.read_text())
    stated = m["accuracy"] + 0.01
    metrics.write_text(json.dumps({**m, "accuracy": stated}))
    edited = aggregate([folder / "metrics" / f"{e['name']}.json" for e in experiments()], experiments(), latency_file())
    problems, _ = check_numbers(edited, predictions, *render_paper(folder, edited, quick_config))
    assert f"it_l1_90: accuracy is {m['accuracy']!r} recounted from the predictions, {stated!r} in results.json" \
        in problems
    # what follows from it is named too: the interval, the fp16 change, and the paper's cells
    assert any(p.startswith("it_l1_90: accuracy_ci is") for p in problems)
    assert any(p.startswith("it_l1_90: fp16_accuracy_change is") for p in problems)
    assert any(p.startswith("paper.md, table results, it_l1_90: shows") for p in problems)
    assert any(p.startswith("paper.tex, table results, it_l1_90: shows") for p in problems)


def test_an_int8_accuracy_edited_in_results_json_fails(run, quick_config):
    folder, rows, predictions = run
    md, tex = render_paper(folder, rows, quick_config)
    edited = json.loads(json.dumps(rows))
    edited[1]["accuracy_int8"] -= 0.02
    problems, _ = check_numbers(edited, predictions, md, tex)
    assert problems == [f"{rows[1]['name']}: accuracy_int8 is {rows[1]['accuracy_int8']!r} recounted from the "
                        f"predictions, {edited[1]['accuracy_int8']!r} in results.json"]


def test_a_paper_that_does_not_follow_the_predictions_fails(run, quick_config):
    """A paper rendered from an edited results.json, checked against the true one."""
    folder, rows, predictions = run
    edited = json.loads(json.dumps(rows))
    edited[2]["accuracy_int8"] += 0.05
    problems, _ = check_numbers(rows, predictions, *render_paper(folder, edited, quick_config))
    assert [p.split(": shows")[0] for p in problems] == [f"paper.md, table deployment, {rows[2]['name']}",
                                                         f"paper.tex, table deployment, {rows[2]['name']}"]


def test_seed_replicas_are_recounted(run):
    """A replicated experiment's per-seed accuracies, mean and std come from each seed's model."""
    folder, rows, predictions = run
    row = rows[1]
    replica = {"name": f"{row['name']}_seed1", "test_labels_sha256": "5" * 64,
               "correct": spread_flags(10000, 8000, 7), "correct_int8": spread_flags(10000, 7900, 7)}
    (folder / "predictions" / f"{replica['name']}.json").write_text(json.dumps(replica))
    predictions = read_predictions(sorted((folder / "predictions").glob("*.json")))
    seeds = [row["accuracy"], 0.8]
    row.update(seeds=[0, 1], seeds_run=2, accuracy_seeds=seeds, accuracy_mean=statistics.fmean(seeds),
               accuracy_std=statistics.stdev(seeds))
    expected, problems, _ = recount(rows, predictions)
    assert problems == [] and expected[1]["accuracy_seeds"] == seeds
    row["accuracy_std"] += 0.001
    assert recount(rows, predictions)[1] == [f"{row['name']}: accuracy_std is {statistics.stdev(seeds)!r} "
                                             f"recounted from the predictions, {row['accuracy_std']!r} in results.json"]
    del predictions[replica["name"]]
    assert recount(rows, predictions)[1] == [f"{row['name']}: no predictions file of its seed replica(s) "
                                             f"['{replica['name']}']"]


def test_a_model_without_predictions_fails(run):
    _, rows, predictions = run
    del predictions["os_ch_50"]
    assert recount(rows, predictions)[1] == ["os_ch_50: no predictions file (predictions/os_ch_50.json)"]


def test_a_tabled_int8_accuracy_without_its_per_image_results_fails(run):
    # The table states an int8 accuracy: a predictions file without 'correct_int8' cannot check it.
    _, rows, predictions = run
    predictions["os_ch_50"] = {k: v for k, v in predictions["os_ch_50"].items() if k != "correct_int8"}
    assert recount(rows, predictions)[1] == [
        "os_ch_50: its predictions file has no ['correct_int8'] to recount the table's accuracy from"]


@pytest.mark.parametrize("change, message", [
    (lambda r: {**r, "name": "other"}, "not the predictions of model 'baseline'"),
    (lambda r: {**r, "correct_int8": r["correct_int8"][:-1]}, "'correct_int8' must be one '0' or '1' per test image"),
    (lambda r: {**r, "correct": r["correct"].replace("0", "x")}, "'correct' must be one '0' or '1'"),
    (lambda r: {k: v for k, v in r.items() if k != "correct"}, "no 'correct'"),
    (lambda r: {**r, "test_labels_sha256": "6" * 64}, "over different test images"),
])
def test_a_malformed_predictions_file_is_named(run, change, message):
    folder, _, _ = run
    path = folder / "predictions" / "baseline.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    with pytest.raises(PredictionsError, match=message):
        read_predictions(sorted((folder / "predictions").glob("*.json")))
