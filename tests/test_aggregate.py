"""The results table: metrics files aggregated in table order, ratios to the baseline."""
from __future__ import annotations

import json

import pytest

from fake_results import MATRIX, experiments, latency_file, results_rows
from scripts.lib.report.results import aggregate, write_table
from scripts.lib.report.columns import COLUMNS


def test_rows_carry_settings_metrics_and_ratios_to_the_baseline(tmp_path):
    rows = results_rows(tmp_path)
    base = rows[0]
    assert [r["name"] for r in rows] == [m[0] for m in MATRIX]
    assert base["params_ratio"] == base["macs_ratio"] == 1.0 and base["removed_fraction"] == 0.0
    ch = next(r for r in rows if r["name"] == "os_ch_50")
    assert (ch["strategy"], ch["schedule"], ch["target_sparsity"]) == ("l2_channels", "oneshot", 0.5)
    assert ch["macs_ratio"] == ch["macs"] / base["macs"] and ch["params_ratio"] == ch["params"] / base["params"]
    assert ch["removed_fraction"] == 1 - ch["prunable_nonzero"] / base["prunable_params"]
    l1 = next(r for r in rows if r["name"] == "it_l1_90")
    assert l1["removed_fraction"] == pytest.approx(0.9, abs=1e-6)
    # like with like: the gzipped sparse export against the checkpoint under the same gzip
    assert l1["sparse_fp32_ratio"] == l1["sparse_fp32_bytes"] / l1["gzip_bytes"]
    assert l1["fp16_accuracy_change"] == pytest.approx(-0.0003)


def test_csv_has_every_registered_column_and_json_every_field(tmp_path):
    rows = results_rows(tmp_path / "m")
    write_table(rows, tmp_path / "results.csv", tmp_path / "results.json")
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert header == list(COLUMNS)
    assert json.loads((tmp_path / "results.json").read_text())[0]["latency_grid"] == rows[0]["latency_grid"]


def test_wrong_order_or_wrong_file_is_named(tmp_path):
    results_rows(tmp_path)
    files = [tmp_path / f"{m[0]}.json" for m in MATRIX]
    exps = experiments()
    with pytest.raises(ValueError, match="holds metrics of 'baseline', expected 'os_l1_50'"):
        aggregate(files[:2], [exps[1], exps[0]], latency_file())
    with pytest.raises(ValueError, match="the first model must be the 'baseline'"):
        aggregate(files[1:3], exps[1:3], latency_file())
    untimed = latency_file()
    del untimed["models"]["os_l1_50"]
    with pytest.raises(ValueError, match="no timings of 'os_l1_50'"):
        aggregate(files[:2], exps[:2], untimed)


def test_the_table_latency_is_pytorch_at_the_largest_batch_on_the_most_threads(tmp_path):
    rows = results_rows(tmp_path)
    for r in rows:
        (g,) = [g for g in r["latency_grid"] if (g["runtime"], g["latency_batch_size"], g["latency_threads"])
                == ("pytorch", 64, 2)]
        assert (r["latency_ms"], r["latency_iqr_ms"], r["latency_batch_size"], r["latency_threads"]) == (
            g["latency_ms"], g["latency_iqr_ms"], 64, 2)
