"""The reviewer's comparison tool: an identical run passes, a tampered number fails."""
from __future__ import annotations

import copy
import json

import pytest

from fake_results import results_rows
from scripts.compare import main
from scripts.lib.report.compare import accuracy_tolerance, study_seed_std


@pytest.fixture
def published(tmp_path):
    rows = results_rows(tmp_path / "metrics")
    path = tmp_path / "published.json"
    path.write_text(json.dumps(rows))
    return rows, path


def run(tmp_path, rows, *flags):
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(rows))
    return main(["--published", str(tmp_path / "published.json"), "--mine", str(mine), *flags])


def test_identical_run_passes_in_both_modes(tmp_path, published, capsys):
    rows, _ = published
    assert run(tmp_path, rows) == 0
    assert run(tmp_path, rows, "--exact") == 0
    assert "0 outside their tolerance" in capsys.readouterr().err


def test_the_summary_counts_the_numbers_that_are_identical_not_only_within_tolerance(tmp_path, published, capsys):
    rows, _ = published
    assert run(tmp_path, rows) == 0
    judged = int(capsys.readouterr().err.split(" numbers judged")[0].split()[-1])
    near = copy.deepcopy(rows)
    near[2]["accuracy"] += accuracy_tolerance(rows[2]) * 0.5
    assert run(tmp_path, near) == 0
    assert f"{judged} numbers judged, {judged - 1} identical, 0 outside" in capsys.readouterr().err


def test_accuracy_within_its_interval_passes_and_beyond_it_fails(tmp_path, published, capsys):
    rows, _ = published
    tol = accuracy_tolerance(rows[2])
    assert 0 < tol < 0.05  # the Wilson half-width over 10,000 images
    near, far = copy.deepcopy(rows), copy.deepcopy(rows)
    near[2]["accuracy"] += tol * 0.9
    far[2]["accuracy"] += tol * 1.1
    assert run(tmp_path, near) == 0
    assert run(tmp_path, near, "--exact") == 1  # same CPU and software: identical or wrong
    assert run(tmp_path, far) == 1
    out = capsys.readouterr().out
    assert any(line.startswith(rows[2]["name"]) and " accuracy " in line and line.endswith("OUTSIDE")
               for line in out.splitlines())


def test_seed_spread_widens_the_tolerance(published):
    rows, _ = published
    row = {**rows[2], "accuracy_std": 0.02, "seeds_run": 3}
    assert accuracy_tolerance(row) == pytest.approx(0.06)
    assert accuracy_tolerance(row, study_std=0.001) == pytest.approx(0.06)  # its own spread first


def test_rows_without_seeds_take_the_largest_spread_the_run_measured(tmp_path):
    rows = results_rows(tmp_path / "metrics")
    rows[2].update(accuracy_std=0.02, seeds_run=3, seeds=[0, 1, 2])
    rows[3].update(accuracy_std=0.005, seeds_run=3, seeds=[0, 1, 2])
    assert study_seed_std(rows) == 0.02
    (tmp_path / "published.json").write_text(json.dumps(rows))
    assert accuracy_tolerance(rows[1], study_seed_std(rows)) == pytest.approx(0.06)
    near, far = copy.deepcopy(rows), copy.deepcopy(rows)
    near[1]["accuracy"] += 0.055  # beyond its interval, within 3 x the run's largest spread
    far[1]["accuracy"] += 0.065
    assert run(tmp_path, near) == 0
    assert run(tmp_path, far) == 1


def test_a_tampered_count_or_a_missing_model_fails_but_timings_are_only_shown(tmp_path, published):
    rows, _ = published
    macs = copy.deepcopy(rows)
    macs[1]["macs"] += 1
    assert run(tmp_path, macs) == 1
    slow = copy.deepcopy(rows)
    for r in slow:
        r["latency_ms"] *= 3
        r["gzip_bytes"] += 100
    assert run(tmp_path, slow) == 0
    assert run(tmp_path, slow, "--exact") == 1  # gzip sizes are exact on the same CPU; timings never are
    assert run(tmp_path, rows[:-1]) == 1
