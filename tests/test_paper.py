"""Rendering: LaTeX safety, strict templates, statements computed from the numbers."""
import jinja2
import pytest

from scripts.paper import (Latex, channel_speedups, latex_environment, latex_escape, pct, points, schedule_comparisons,
                           stage_seconds, strategy_comparisons)


def test_latex_escape_covers_every_special_character():
    assert latex_escape(r"a_b 50% & $x$ #1 {y} ~ ^ \ <>") == (
        r"a\_b 50\% \& \$x\$ \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} "
        r"\textless{}\textgreater{}")


def test_latex_environment_escapes_values_but_not_marked_latex(tmp_path):
    (tmp_path / "t.tex.j2").write_text(r"\VAR{label} \VAR{path} \VAR{x|pct}" "\n%% if flag\nyes\n%% endif\n")
    env = latex_environment(tmp_path)
    out = env.get_template("t.tex.j2").render(label="L1_90% & co", path=Latex("figures/a_b.png"), x=0.5, flag=True)
    assert out == "L1\\_90\\% \\& co figures/a_b.png 50.0\nyes\n"


def test_templates_fail_on_undefined_values(tmp_path):
    (tmp_path / "t.tex.j2").write_text(r"\VAR{missing}")
    with pytest.raises(jinja2.UndefinedError):
        latex_environment(tmp_path).get_template("t.tex.j2").render()


def row(name, strategy, schedule, sparsity, accuracy):
    return {"name": name, "strategy": strategy, "schedule": schedule, "target_sparsity": sparsity,
            "accuracy": accuracy}


def test_comparisons_are_computed_from_matching_rows():
    rows = [row("baseline", "none", "none", 0.0, 0.95),
            row("it90", "l1_unstructured", "iterative", 0.9, 0.83),
            row("os90", "l1_unstructured", "oneshot", 0.9, 0.51),
            row("os50", "l1_unstructured", "oneshot", 0.5, 0.93),
            row("rnd90", "random_unstructured", "oneshot", 0.9, 0.12)]
    (sched,) = schedule_comparisons(rows)
    assert (sched["iterative"]["name"], sched["oneshot"]["name"]) == ("it90", "os90")
    assert points(sched["delta"]) == "32.0"
    (strat,) = strategy_comparisons(rows)
    assert (strat["importance"]["name"], strat["random"]["name"], points(strat["delta"])) == ("os90", "rnd90", "39.0")
    rows += [row("ch50", "l2_channels", "oneshot", 0.5, 0.90), row("rch50", "random_channels", "oneshot", 0.5, 0.80),
             row("rch30", "random_channels", "oneshot", 0.3, 0.85)]
    channel = [c for c in strategy_comparisons(rows) if c["criterion"] == "group-L2 channel"]
    assert [(c["importance"]["name"], c["random"]["name"]) for c in channel] == [("ch50", "rch50")]


def grid(*cells):
    return [{"runtime": rt, "latency_batch_size": b, "latency_threads": t, "latency_ms": ms}
            for rt, b, t, ms in cells]


def test_channel_speedups_compare_latency_with_the_macs_limit():
    base = {**row("baseline", "none", "none", 0.0, 0.9), "macs": 100, "latency_grid": grid(
        ("pytorch", 1, 1, 9.0), ("pytorch", 1, 2, 6.0), ("onnxruntime", 64, 1, 40.0), ("onnxruntime", 64, 2, 20.0))}
    ch = {**row("ch", "l2_channels", "oneshot", 0.5, 0.8), "macs_ratio": 0.25, "latency_grid": grid(
        ("pytorch", 1, 1, 8.0), ("pytorch", 1, 2, 4.0), ("onnxruntime", 64, 1, 10.0), ("onnxruntime", 64, 2, 6.25))}
    masked = {**row("m", "l1_unstructured", "oneshot", 0.5, 0.85), "latency_grid": base["latency_grid"]}
    out = channel_speedups([base, masked, ch])
    assert out["threads"] == 2  # all the job's threads
    assert out["settings"] == [{"runtime": "pytorch", "batch_size": 1}, {"runtime": "onnxruntime", "batch_size": 64}]
    (c,) = out["rows"]
    assert c["limit"] == 4.0
    assert [x["speedup"] for x in c["cells"]] == [1.5, 3.2]
    assert [x["fraction"] for x in c["cells"]] == [0.375, 0.8]
    assert pct(0.9321) == "93.2"


def test_stage_seconds_sums_benchmark_files(tmp_path):
    (tmp_path / "prune_model").mkdir()
    header = "s\th:m:s\tmax_rss\n"
    (tmp_path / "prune_model" / "a.tsv").write_text(header + "10.5\t0:00:10\t1\n")
    (tmp_path / "prune_model" / "b.tsv").write_text(header + "4.5\t0:00:04\t1\n")
    (tmp_path / "finetune_baseline.tsv").write_text(header + "100\t0:01:40\t1\n")
    files = [tmp_path / "prune_model" / "a.tsv", tmp_path / "prune_model" / "b.tsv",
             tmp_path / "finetune_baseline.tsv"]
    assert stage_seconds(files, tmp_path) == {"finetune_baseline": 100.0, "prune_model": 15.0}
