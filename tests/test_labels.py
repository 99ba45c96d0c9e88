"""Labels that carry measured values: config placeholders filled by the results stage."""
import re

import pytest

from fake_results import MATRIX, experiments, results_rows
from scripts.lib.planning.config import ConfigError, load_schema, validate_config
from scripts.lib.planning.jobs import figure_job
from scripts.lib.planning.labels import LABEL_FIELDS, fill_label, label_before_results
from scripts.lib.planning.matrix import sweep_label
from scripts.lib.report.results import aggregate

LABEL = "One-shot L2, 50% of channels (<macs_removed> % of MACs) removed"


def test_the_results_stage_fills_a_label_from_the_measured_reduction(tmp_path):
    matrix = [m if m[0] != "os_ch_50" else (m[0], LABEL, *m[2:]) for m in MATRIX]
    rows = results_rows(tmp_path, matrix)
    (row,) = [r for r in rows if r["name"] == "os_ch_50"]
    removed = 1 - row["macs"] / rows[0]["macs"]
    assert row["label"] == f"One-shot L2, 50% of channels ({removed * 100:.0f} % of MACs) removed"
    assert "75 %" in row["label"]  # half the channels of both sides of a layer: a quarter of the MACs kept


def test_every_placeholder_is_filled_and_an_unknown_one_refused():
    row = {"name": "x", "macs_ratio": 0.27, "removed_fraction": 0.741, "params_ratio": 0.3, "channels_ratio": 0.52}
    text = fill_label(" ".join(f"(<{k}>)" for k in LABEL_FIELDS), row)
    assert text == "(73) (74) (70) (48)"
    with pytest.raises(ValueError, match=r"unknown placeholder.*'flops_removed'"):
        fill_label("x (<flops_removed>)", row)


def test_the_schema_accepts_exactly_the_known_placeholders_inside_brackets(base_config):
    pattern = load_schema()["properties"]["experiments"]["items"]["properties"]["label"]["pattern"]
    for name in LABEL_FIELDS:  # the schema's list and the filler's agree
        assert re.search(pattern, f"L2 (<{name}> % removed)")
    for bad in ("L2 <macs_removed> %", "L2 (<unknown>)", "L2 (a (b))", "L2 >", "L2 ({macs_removed})"):
        assert not re.search(pattern, bad), bad
    config = {**base_config, "experiments": [{**base_config["experiments"][0], "label": "L1 <macs_removed>"}],
              "ablation": [], "seeds_experiments": [], "small_dense": []}
    with pytest.raises(ConfigError, match=r"experiments\[0\]\.label"):
        validate_config(config)


def test_the_shipped_channel_rows_say_what_they_remove(base_config, quick_config):
    for config in (base_config, quick_config):
        validate_config(config)
        channels = [e for e in config["experiments"] if e["strategy"].endswith("_channels")]
        assert channels and all("<macs_removed>" in e["label"] for e in channels)
    assert "<macs_removed>" in sweep_label("l2_channels", "oneshot", 0.3)
    assert "<" not in sweep_label("l1_unstructured", "oneshot", 0.3)


def test_figures_drawn_before_the_results_leave_the_measured_part_out(base_config):
    assert label_before_results(LABEL) == "One-shot L2, 50% of channels removed"
    assert label_before_results("Gradual L1 90%, lr rewound") == "Gradual L1 90%, lr rewound"
    labels = figure_job(base_config, "kernels").labels
    assert not any("<" in label for label in labels) and "One-shot L2, 50% of channels removed" in labels


def test_aggregate_refuses_an_unknown_placeholder(tmp_path):
    rows_dir = tmp_path / "m"
    results_rows(rows_dir)  # writes the metrics files
    exps = experiments()
    exps[1]["label"] = "L1 (<nonsense>)"
    from fake_results import latency_file
    with pytest.raises(ValueError, match="nonsense"):
        aggregate([rows_dir / f"{e['name']}.json" for e in exps], exps, latency_file())
