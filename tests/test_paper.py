"""The manuscript: one definition rendered to markdown and LaTeX, statements computed
from the numbers, tables and figures from the registries."""
from __future__ import annotations

import re
from dataclasses import replace

import jinja2
import pytest

from conftest import ROOT
from fake_results import MATRIX, PARAMS, PRUNABLE, paper_inputs, results_rows
from fake_results import experiments as fake_experiments
from scripts.lib.planning.registry import FIGURES, Figure
from scripts.lib.report.captions import FIGURE_CAPTIONS
from scripts.lib.report.columns import COLUMNS
from scripts.lib.report.context import build_context
from scripts.lib.report.costs import channel_speedups, speed_verdict
from scripts.lib.report.findings import schedule_comparisons, strategy_comparisons
from scripts.lib.report.formats import interval, pct, points, ratio, spread
from scripts.lib.report.inputs import Run, epoch_seconds, stage_seconds
from scripts.lib.report.manuscript import render, render_source
from scripts.lib.report.pandoc_tables import read_tables
from scripts.lib.report.phrases import DifferenceMismatch, by_points, compared, p_value, runtime_name
from scripts.lib.report.stats import paired_difference_interval, paired_test, wilson_interval

TEMPLATE = ROOT / "paper" / "templates" / "paper.md.j2"
LATEX_TEMPLATE = ROOT / "paper" / "templates" / "paper.latex"
BIBLIOGRAPHY = ROOT / "paper" / "references.bib"


def context_of(rows, inputs: dict):
    return build_context(Run(rows=rows, **inputs))


def render_both(tmp_path, rows, quick_config):
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    md, tex = tmp_path / "paper.md", tmp_path / "paper.tex"
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context_of(rows, inputs), md, tex)
    return md.read_text(), tex.read_text()


def line_starting(text: str, start: str) -> str:
    """The one paragraph (pandoc writes each on one line) that begins with `start`."""
    (line,) = [line for line in text.splitlines() if line.startswith(start)]
    return line


NO_MASKING = "No experiment of this configuration prunes by masking"
NO_CHANNELS = "No experiment of this configuration removes channels"


def numbers_in(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text))


def latex_body(tex: str) -> str:
    """The document's text: no preamble, no column-width arithmetic of pandoc's tables."""
    body = tex.split(r"\begin{document}")[1].replace("--", "\u2013")  # LaTeX's en dash (page ranges), as md writes it
    return re.sub(r"\\real\{[0-9.]+\}|\d+\\tabcolsep|\\includegraphics\[[^]]*\]", "", body)


def markdown_body(md: str) -> str:
    """The document's text: no image sizes (the LaTeX side has its own)."""
    return re.sub(r'style="width:[0-9.]+%"', "", md)


@pytest.fixture
def rows(tmp_path):
    return results_rows(tmp_path / "metrics")


def test_a_paused_epoch_does_not_count_its_pause_in_a_models_training_time():
    # A long run stopped for other work (SIGSTOP) records that epoch's wall time with the pause in it.
    steady = [{"seconds": s} for s in (60.0, 62.0, 61.0)]
    paused = {"epochs": [*steady, {"seconds": 1057.0}]}
    assert epoch_seconds(paused) == 61.5 * 4
    # Iterative jobs record epochs per step; all of them count, whichever process ran them.
    assert epoch_seconds({"steps": [{"epochs": steady[:2]}, {"epochs": steady[2:]}]}) == 61.0 * 3
    assert epoch_seconds({"epochs": []}) == 0.0


def test_both_manuscripts_state_the_same_numbers(tmp_path, rows, quick_config):
    md, tex = render_both(tmp_path, rows, quick_config)
    title = md.splitlines()[0]  # the first-level heading is LaTeX's title
    assert title.startswith("# ") and f"\\title{{{title[2:]}}}" in tex
    assert NO_MASKING not in md and NO_CHANNELS not in md  # both families are in the matrix
    md_numbers, tex_numbers = numbers_in(markdown_body(md)), numbers_in(latex_body(tex))
    assert md_numbers == tex_numbers, (md_numbers ^ tex_numbers)
    assert len(md_numbers) > 100  # the tables are in there
    # the LaTeX special characters of a label survive into both tables
    assert any(r[0] == "L1 50% & one_shot #1" for t in read_tables(tex, "latex") for r in t)
    assert any(r[0] == "L1 50% & one_shot #1" for t in read_tables(md, "markdown") for r in t)


def abstract_of(md: str) -> str:
    return md.split("## Abstract")[1].split("## 1 Introduction")[0]


def test_the_abstract_gives_three_findings_with_their_numbers_in_at_most_200_words(tmp_path, rows, quick_config):
    """Each finding of the abstract shows the numbers its comparison computed: the schedule
    comparison at the highest sparsity (both accuracies), the sparsest masked model's time range
    and sparse size, the fastest channel-removed model's speed-up range; then the deployment pick."""
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    md, _ = render_both(tmp_path, rows, quick_config)
    abstract = abstract_of(md)
    assert len(abstract.split()) <= 200
    schedule, masking, channels = context.analysis.headline
    assert [f["kind"] for f in context.analysis.headline] == ["schedule", "masking", "channels"]

    it, one = schedule["iterative"], schedule["oneshot"]
    assert (it["name"], one["name"]) == ("it_l1_90", "os_l1_90")  # the highest target, compared at equal target
    assert f"kept {pct(it['accuracy'])} % and one-shot {pct(one['accuracy'])} %" in abstract
    epochs = context.questions.iterative["epochs"]
    # the modifier sits on the iterative row, the one with the larger budget
    assert f"pruning, with {epochs['iterative'] / epochs['oneshot']:g} times the fine-tuning epochs, kept" in abstract

    sparsest = max(context.analysis.masked, key=lambda r: r["sparsity_prunable"])
    assert masking["sparsest"] is sparsest
    # its time in fp32 only: int8's quantizer keeps some of a sparse model's operators in fp32
    (fast, _), (slow, _) = range_of(sparsest, rows[0], runtimes=("pytorch", "onnxruntime"))[::-1]
    span = f"{ratio(1 / fast)}x" + (f" to {ratio(1 / slow)}x" if ratio(1 / fast) != ratio(1 / slow) else "")
    assert f"takes {span} the baseline's time in fp32" in abstract.replace("\u2019", "'")
    # like with like: the gzipped sparse export against the baseline's gzipped checkpoint, never a raw file
    assert f"{ratio(sparsest['sparse_fp32_bytes'] / rows[0]['gzip_bytes'])}x the baseline's gzipped checkpoint" in \
        abstract.replace("\u2019", "'")

    # the most accurate channel-removed model's speed, not the extreme model's
    best = max((c["row"] for c in context.analysis.channels["rows"]), key=lambda r: r["accuracy"])
    assert channels["row"] is best
    (low, _), (high, _) = range_of(best, rows[0])
    assert (f"Removing channels buys speed: the most accurate channel-removed model ({pct(best['accuracy'])} %, "
            f"{pct(best['macs_ratio'])} % of the MACs) runs {ratio(low)}x to {ratio(high)}x as fast as the baseline"
            ) in abstract
    last = context.analysis.deploy["batches"][-1]
    pick = context.analysis.deploy["picks"][last]
    assert f"{ratio(pick['speedup'][last])}x as fast as the seed's path" in abstract.replace("\u2019", "'")
    # whether a pruned or small model was a candidate at all, from the deployment options
    eligible = any(o["eligible"] and o["kind"] != "baseline" for o in context.analysis.deploy["options"])
    assert context.analysis.deploy["models_eligible"] == eligible
    assert "came that close" not in abstract  # the pick says it: a faster eligible model would be the pick


def test_a_range_whose_ends_print_alike_is_one_value(tmp_path, rows, quick_config):
    # A masked model timed exactly like the baseline in every setting: "1.00x", not "1.00x to 1.00x".
    sparsest = max((r for r in rows if r["strategy"] == "l1_unstructured"), key=lambda r: r["sparsity_prunable"])
    sparsest["latency_grid"] = [dict(cell) for cell in rows[0]["latency_grid"]]
    abstract = abstract_of(render_both(tmp_path, rows, quick_config)[0]).replace("\u2019", "'")
    assert "the sparsest masked model takes 1.00x the baseline's time in fp32," in abstract
    assert not re.search(r"(\d+\.\d+)x to \1x", abstract)


def test_an_option_row_is_never_twinned_with_a_row_whose_share_is_of_something_else(tmp_path):
    # The same number as a share of the MACs and as a share of each layer's channels are two targets.
    from scripts.lib.report.findings import option_comparisons

    rows = results_rows(tmp_path / "metrics")
    experiments = {e["name"]: e for e in fake_experiments() if "strategy" in e}
    experiments["os_rch_50"] |= {"strategy": "l2_channels", "scope": "global"}  # an option row of os_ch_50's
    rows = [r | {"strategy": "l2_channels"} if r["name"] == "os_rch_50" else r for r in rows]
    assert [c["plain"]["name"] for c in option_comparisons(rows, experiments, {})] == ["os_ch_50"]
    experiments["os_rch_50"]["target"] = "macs"
    assert option_comparisons(rows, experiments, {}) == []


def range_of(row: dict, base: dict, runtimes=None) -> tuple:
    """(speed-up, grid entry) of the row's slowest and fastest setting against the baseline (of the
    given runtimes only where named)."""
    cells = [(theirs["latency_ms"] / mine["latency_ms"], mine)
             for mine, theirs in zip(row["latency_grid"], base["latency_grid"], strict=True)
             if runtimes is None or mine["runtime"] in runtimes]
    return min(cells, key=lambda c: c[0]), max(cells, key=lambda c: c[0])


def test_prose_has_no_code_identifiers_or_python_reprs(tmp_path, rows, quick_config):
    md, tex = render_both(tmp_path, rows, quick_config)
    prose = "\n".join(line for line in md.splitlines() if not line.startswith("|"))
    for word in ("l1_unstructured", "random_unstructured", "l2_structured", "l2_channels", "random_channels",
                 "oneshot", "True", "False", "None", "{'", "synthetic(", "sha256 generated"):
        assert word not in prose, word
    # models are named by their labels, never by their file names (which the prose cannot explain)
    names = [r["name"] for r in rows if r["name"] != "baseline"]
    assert not [n for n in names if re.search(rf"\b{n}\b", prose)], names
    train = quick_config["train"]  # the baseline's optimiser, stated from its settings
    line = line_starting(prose, "- **Baseline training**")
    assert f"momentum {train['momentum']}" in line and ("Nesterov" in line) == bool(train["nesterov"])


@pytest.mark.parametrize("family_left_out", ["masking", "channels"])
def test_paper_renders_without_a_family_of_strategies(tmp_path, quick_config, family_left_out):
    channels = ("l2_channels", "random_channels")
    matrix = [m for m in MATRIX if m[2] == "none" or (m[2] in channels) == (family_left_out == "masking")]
    md, tex = render_both(tmp_path, results_rows(tmp_path / "m", matrix), quick_config)
    # the claim that a family is missing is made exactly when it is
    assert (NO_MASKING in md, NO_CHANNELS in md) == (family_left_out == "masking", family_left_out == "channels")
    if family_left_out == "masking":
        assert "masked model" not in abstract_of(md)  # the baseline is not called "the sparsest masked model"
    assert numbers_in(markdown_body(md)) == numbers_in(latex_body(tex))


def test_a_column_and_a_figure_added_through_the_registries_reach_both_manuscripts(
        tmp_path, rows, quick_config, monkeypatch):
    monkeypatch.setitem(COLUMNS, "nonzero_params", replace(COLUMNS["nonzero_params"], tables=("results",)))
    monkeypatch.setitem(FIGURES, "sparsity_hist", Figure("sparsity_hist", "results", "results"))
    monkeypatch.setitem(FIGURE_CAPTIONS, "sparsity_hist", "Where the zeros are.")
    md, tex = render_both(tmp_path, rows, quick_config)
    for tables in (read_tables(md, "markdown"), read_tables(tex, "latex")):
        (results,) = [t for t in tables if t[0][0] == "Model" and "Target (%)" in t[0]]
        column = results[0].index("Non-zero params (M)")
        assert [r[column] for r in results[1:]] == [f"{r['nonzero_params'] / 1e6:.2f}" for r in rows]
    assert "figures/sparsity_hist.png" in md and "Where the zeros are." in md
    # LaTeX is given the name without its extension: graphicx takes the PDF beside the PNG
    assert "{figures/sparsity_hist}" in tex and r"\caption{Where the zeros are.}" in tex


def test_templates_fail_on_undefined_values(tmp_path):
    (tmp_path / "t.md.j2").write_text("{{ missing }}")
    with pytest.raises(jinja2.UndefinedError):
        render_source(tmp_path / "t.md.j2", {})


def test_comparisons_are_computed_from_matching_rows(rows):
    experiments = {e["name"]: e for e in fake_experiments()}
    (sched,) = schedule_comparisons(rows, experiments)
    assert (sched["iterative"]["name"], sched["oneshot"]["name"]) == ("it_l1_90", "os_l1_90")
    assert points(sched["delta"]) == "+31.5"
    # a share of the MACs is not a share of the weights, however alike the numbers
    assert schedule_comparisons(rows, experiments | {"it_l1_90": experiments["it_l1_90"] | {"target": "macs"}}) == []
    masking, channel = strategy_comparisons(rows, experiments)
    assert (masking["importance"]["name"], masking["random"]["name"], points(masking["delta"])) == (
        "os_l1_90", "os_rnd_90", "+39.6")
    assert (channel["importance"]["name"], channel["random"]["name"], channel["channels"]) == (
        "os_ch_50", "os_rch_50", True)


def test_a_criterion_meets_the_random_control_of_its_whole_recipe_and_no_other(rows):
    # The published study's channel criteria: ranked across layers to a MAC target, like their random
    # control. A random row at the same share but another fine-tune measures more than the ranking.
    experiments = {e["name"]: e for e in fake_experiments()}
    for name in ("os_ch_50", "os_rch_50"):
        experiments[name] |= {"target": "macs", "scope": "global"}
    experiments["os_rch_50"]["sweep"] = True  # where a row was declared changes nothing in how it trains
    (channel,) = [c for c in strategy_comparisons(rows, experiments) if c["channels"]]
    assert (channel["random"]["name"], channel["macs_target"], channel["global_ranking"]) == ("os_rch_50", True, True)
    experiments["os_rch_50"]["finetune"] = {"epochs": 5}
    assert [c["importance"]["name"] for c in strategy_comparisons(rows, experiments)] == ["os_l1_90"]


def grid(*cells):
    return [{"runtime": rt, "latency_batch_size": b, "latency_threads": t, "latency_ms": ms}
            for rt, b, t, ms in cells]


def test_channel_speedups_compare_latency_with_the_macs_limit():
    cells = [("pytorch", 1, 1, 9.0), ("pytorch", 1, 2, 6.0), ("onnxruntime", 1, 1, 3.0), ("onnxruntime", 1, 2, 2.0),
             ("pytorch", 64, 1, 90.0), ("pytorch", 64, 2, 60.0), ("onnxruntime", 64, 1, 40.0),
             ("onnxruntime", 64, 2, 20.0)]
    base = {"name": "baseline", "strategy": "none", "macs": 100, "latency_grid": grid(*cells)}
    halved = [(rt, b, t, ms / 2) for rt, b, t, ms in cells[:2]] + [(rt, b, t, ms / 4) for rt, b, t, ms in cells[2:]]
    ch = {"name": "ch", "strategy": "l2_channels", "macs_ratio": 0.25, "latency_grid": grid(*halved)}
    masked = {"name": "m", "strategy": "l1_unstructured", "latency_grid": base["latency_grid"]}
    out = channel_speedups([base, masked, ch])
    assert out["threads"] == 2  # the most threads timed
    assert out["settings"] == [("pytorch", 1), ("pytorch", 64), ("onnxruntime", 1), ("onnxruntime", 64)]
    (c,) = out["rows"]  # the masked model is not a channel model
    assert c["limit"] == 4.0
    assert [x["speedup"] for x in c["cells"]] == [2.0, 4.0, 4.0, 4.0]
    assert [x["fraction"] for x in c["cells"]] == [0.5, 1.0, 1.0, 1.0]


def test_stage_seconds_sums_benchmark_files(tmp_path):
    (tmp_path / "prune_model").mkdir()
    header = "s\th:m:s\tmax_rss\n"
    (tmp_path / "prune_model" / "a.tsv").write_text(header + "10.5\t0:00:10\t1\n")
    (tmp_path / "prune_model" / "b.tsv").write_text(header + "4.5\t0:00:04\t1\n")
    (tmp_path / "finetune_baseline.tsv").write_text(header + "100\t0:01:40\t1\n")
    files = [tmp_path / "prune_model" / "a.tsv", tmp_path / "prune_model" / "b.tsv",
             tmp_path / "finetune_baseline.tsv"]
    assert stage_seconds(files, tmp_path) == [{"stage": "pruning by masking", "jobs": 2, "seconds": 15.0},
                                              {"stage": "baseline training", "jobs": 1, "seconds": 100.0}]


def test_ablation_and_recovery_tables_come_from_the_config(tmp_path, rows, quick_config):
    """The ablation rows, in config order, with each one's change over the row before and
    over the first; the recovery table states each departing experiment's options; a row
    with an option is never paired in the schedule comparisons."""
    from fake_results import experiments

    exps = [e for e in experiments() if "strategy" in e]
    by_name = {e["name"]: e for e in exps}
    by_name["os_l1_90"].update(scope="global", exclude=["features.0.0"], distill={"weight": 0.5, "temperature": 4})
    # channel rows: ranked globally with the schema's layer cap (0.6), or an own one; per layer
    by_name["os_ch_50"].update(scope="global", recalibrate_bn=10)
    by_name["os_rch_50"].update(scope="global", max_layer_ratio=0.45, recalibrate_bn=10)
    by_name["it_l1_90"].update(scope="layer")
    settings = {**quick_config, "experiments": exps, "sweeps": [], "ablation": ["it_l1_90", "os_l1_90", "os_rnd_90"]}
    inputs = paper_inputs(rows, {**settings, "preset": "test"})
    context = context_of(rows, inputs)
    md, tex = tmp_path / "paper.md", tmp_path / "paper.tex"
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context, md, tex)
    tables = read_tables(md.read_text(), "markdown")
    (ablation,) = [t for t in tables if t[0][0] == "Model" and "Over the first (points)" in t[0]]
    acc = {m[0]: m[6] for m in MATRIX}
    assert [r[0] for r in ablation[1:]] == ["Iterative L1 90%", "One-shot L1 90%", "One-shot random 90%"]
    epochs = quick_config["prune"]["finetune"]["epochs"]
    assert [r[1] for r in ablation[1:]] == [str(3 * epochs), str(epochs), str(epochs)]
    assert ablation[2][4] == points(acc["os_l1_90"] - acc["it_l1_90"])
    assert ablation[3][4] == points(acc["os_rnd_90"] - acc["os_l1_90"])
    assert ablation[3][6] == points(acc["os_rnd_90"] - acc["it_l1_90"])
    correct = inputs["correct"]
    assert ablation[2][5] == p_value(paired_test(correct["it_l1_90"], correct["os_l1_90"])["p_value"])
    assert ablation[1][5] == "reference"
    (recovery,) = [t for t in tables if "Distillation" in t[0]]
    (own,) = [r for r in recovery if r[0] == "One-shot L1 90%"]
    assert own[4:] == ["global", "features.0.0", "no", "weight 0.5, T 4"]
    ranked = {r[0]: r[4] for r in recovery[1:]}
    assert ranked["One-shot channels 50%"] == "global, at most 60 % of a layer"
    assert ranked["One-shot random channels 50%"] == "global, at most 45 % of a layer"
    assert ranked["Iterative L1 90%"] == "per layer"
    assert not any(c["oneshot"]["name"] == "os_l1_90" for c in context.analysis.schedule)
    plain = context_of(rows, paper_inputs(rows, {**settings, "experiments": experiments()[1:], "preset": "test"}))
    assert any(c["oneshot"]["name"] == "os_l1_90" for c in plain.analysis.schedule)  # without the options, paired


def section_of(md: str, heading: str, next_heading: str) -> str:
    return md.split(heading)[1].split(next_heading)[0]


def schedule_sentence(md: str, c: dict) -> str:
    return line_starting(section_of(md, "## 4 Results", "### 4.2"), f"At {pct(c['sparsity'])} % sparsity, iterative")


@pytest.mark.parametrize("iterative_accuracy", [0.8277, 0.40])  # ahead of one-shot's 51.2 %, and behind
def test_a_comparison_states_its_direction_and_its_test(tmp_path, quick_config, iterative_accuracy):
    """Every comparison sentence carries its exact McNemar p-value and both accuracies; a
    supported difference is named by its sign (beat/trailed) and size, one the test does not
    support at 5 % is stated as no difference, with no direction word."""
    matrix = [m[:6] + (iterative_accuracy,) + m[7:] if m[0] == "it_l1_90" else m for m in MATRIX]
    rows = results_rows(tmp_path / "metrics", matrix)
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    context = context_of(rows, inputs)
    (it,) = [c for c in context.analysis.schedule if c["iterative"]["name"] == "it_l1_90"]
    assert it["test"]["significant"] and it["test"] == paired_test(inputs["correct"]["it_l1_90"],
                                                                    inputs["correct"]["os_l1_90"])
    assert it["delta"] == it["iterative"]["accuracy"] - it["oneshot"]["accuracy"]
    md = render_source(TEMPLATE, context)
    line = schedule_sentence(md, it)
    # the test is named once, before the comparisons; each comparison gives its p-value
    assert md.count("Each comparison below is an exact McNemar test on the same test images") == 1
    direction = re.findall(r"\b(beat|trailed|matched)\b", line)
    assert direction == [compared(it["delta"])] == ["beat" if iterative_accuracy > 0.5123 else "trailed"]
    assert f"by **{by_points(it['delta'])} points**" in line and p_value(it["test"]["p_value"]) in line
    assert f"({pct(it['iterative']['accuracy'])} % against {pct(it['oneshot']['accuracy'])} %" in line
    assert "did not differ" not in line
    # with the interval of the difference, iterative minus one-shot as the sentence states it
    a, b = inputs["correct"]["it_l1_90"], inputs["correct"]["os_l1_90"]
    counts = [sum(1 for x, y in zip(a, b) if (x, y) == pair) for pair in (("1", "1"), ("1", "0"), ("0", "1"), ("0", "0"))]
    low, high = paired_difference_interval(*counts)
    assert low < it["delta"] < high and f"95 % CI {points(low)} to {points(high)}, p" in line
    # a test paired the other way round would print the interval of the opposite difference: an error
    flipped = {**it, "test": paired_test(b, a)}
    with pytest.raises(DifferenceMismatch, match="the sentence's first model first"):
        render_source(TEMPLATE, replace(context, analysis=replace(context.analysis, schedule=[flipped])))
    # the same two models made to agree on almost every image: no longer a supported difference
    near = dict(inputs["correct"])
    near["os_l1_90"] = near["it_l1_90"][:-3] + "000"
    near_rows = [{**r, "accuracy": near[r["name"]].count("1") / len(near[r["name"]])} if r["name"] == "os_l1_90" else r
                 for r in rows]  # the row's accuracy as its per-image results give it
    context = context_of(near_rows, {**inputs, "correct": near})
    (it,) = [c for c in context.analysis.schedule if c["iterative"]["name"] == "it_l1_90"]
    assert not it["test"]["significant"]
    line = schedule_sentence(render_source(TEMPLATE, context), it)
    assert not re.search(r"\b(beat|trailed|matched)\b", line) and "did not differ significantly" in line
    assert p_value(it["test"]["p_value"]) in line and f"{points(it['delta'])} points" in line


def test_seed_table_appears_only_with_seeds(tmp_path, rows, quick_config):
    """Without seeds no seed table; with two seeds of one experiment, its per-seed accuracies
    and mean +- std in both manuscripts."""
    md, _ = render_both(tmp_path, rows, quick_config)
    assert not [t for t in read_tables(md, "markdown") if "Mean ± std (%)" in t[0]]
    from scripts.lib.report.results import fold_replicas
    seeded = [dict(r) for r in rows]
    fold_replicas(seeded, [{"name": "os_l1_50_seed1", "replica_of": "os_l1_50", "seed": 1, "accuracy": 0.8912}], 0)
    row = next(r for r in seeded if r["name"] == "os_l1_50")
    assert row["accuracy_seeds"] == [0.9012, 0.8912] and row["accuracy_std"] == pytest.approx(0.00707, abs=1e-5)
    md, tex = render_both(tmp_path, seeded, quick_config)
    expected = [row["label"], "0, 1", ", ".join(pct(a) for a in row["accuracy_seeds"]),
                f"{pct(row['accuracy_mean'])} ± {spread(row['accuracy_std'])}"]
    for text, tables in ((md, read_tables(md, "markdown")), (tex, read_tables(tex, "latex"))):
        (seeds,) = [t for t in tables if t[0][0] == "Model" and "Mean ± std (%)" in t[0]]
        assert seeds[1:] == [expected]


def test_the_sparse_probe_sentence_follows_the_measurement(tmp_path, rows, quick_config):
    """CSR against dense over every setting of the probe, the slowest and the fastest with their
    settings (no one setting stands for all), and in how many CSR won, from the measurements."""
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    probe = inputs["timing"]["sparse_probe"]
    for p, share in zip(probe, (14 / 9, 0.5, 1.2, 0.8), strict=True):  # CSR slower, faster, slower, faster
        p["csr_ms"] = p["dense_ms"] * share
    md = render_source(TEMPLATE, context_of(rows, inputs))
    line = line_starting(md, "On that model (")
    speed = sorted(probe, key=lambda p: p["dense_ms"] / p["csr_ms"])
    lo, hi = speed[0], speed[-1]

    def setting(p):
        return f"batch {p['batch_size']}, {p['threads']} thread{'s' if p['threads'] > 1 else ''}"

    span = (f"compressed sparse rows ran {ratio(lo['dense_ms'] / lo['csr_ms'])}x ({setting(lo)}) to "
            f"{ratio(hi['dense_ms'] / hi['csr_ms'])}x ({setting(hi)}) as fast as")
    assert span in line and span in questions_section(md)
    assert "They beat the dense ones in 2 of the 4 settings" in line
    for p in probe:
        p["csr_ms"] = p["dense_ms"] * 2
    assert "They are slower in every setting timed." in line_starting(render_source(TEMPLATE, context_of(rows, inputs)),
                                                                     "On that model (")


STRUCTURED_90 = ("it_l2_90", "Iterative structured L2 90%", "l2_structured", "iterative", 0.9, 3, 0.1001, 0.1, 1.0)


def questions_section(md: str) -> str:
    return section_of(md, "## 5 Discussion", "## 6 Limitations")


def test_the_seed_questions_are_answered_from_the_numbers(tmp_path, quick_config):
    rows = results_rows(tmp_path / "metrics", MATRIX + [STRUCTURED_90])
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    q = context.questions
    it = q.iterative
    assert (it["iterative"]["name"], it["oneshot"]["name"]) == ("it_l1_90", "os_l1_90")
    assert it["step_fraction"] == pytest.approx(1 - 0.1 ** (1 / 3))
    assert it["oneshot_pruned_val"] == pytest.approx(0.4123) and it["epochs"] == {"iterative": 6, "oneshot": 2}
    s = q.structured
    assert s["class_rows_masked"] == 9 and s["most_classes"] == 2  # 90 % of 10 classifier rows; one bias wins
    assert s["within_cap"]  # 10.0 % measured, within the 20 % cap: the cap is the stated cause
    lo, hi = rows[-1]["accuracy_ci"]
    assert lo <= 0.1 <= hi and s["chance_in_interval"]  # 10.01 % over 10,000 images
    assert s["widest"]["name"] == "os_ch_50"  # the better of the two 50 % channel rows
    assert s["test"]["p_value"] < 0.05  # 85.6 % against 10.0 % on the same 10,000 images
    text = questions_section(render_source(TEMPLATE, context))
    one, two, three, four = (line_starting(text, f"**{n}.") for n in (1, 2, 3, 4))
    for number in (pct(it["baseline_val"]), pct(it["oneshot_pruned_val"]), pct(it["step_fraction"]),
                   pct(min(it["iterative_pruned_val"])), f"{it['epochs']['iterative']} epochs"):
        assert number in one, number
    numbers = numbers_in(two)
    assert {str(s["class_rows_masked"]), str(s["classes"]), str(s["most_classes"]),
            pct(s["most_classes"] / s["classes"]), pct(s["chance"])} <= numbers
    assert f"95 % interval {interval(rows[-1]['accuracy_ci'])}" in two
    # the channel models as one range, not one clause each; the one with the fewest MACs tested
    accs, macs = [r["accuracy"] for r in s["channels"]], [r["macs_ratio"] for r in s["channels"]]
    assert (f"the {len(accs)} channel-removed models keep {pct(min(accs))} % to {pct(max(accs))} % accuracy at "
            f"{pct(min(macs))} % to {pct(max(macs))} % of the MACs") in two
    assert sum(r["label"] in two for r in s["channels"]) == 1
    claim = re.search(r"which (contains|does not contain) chance", two).group(1)
    assert (claim == "contains") == s["chance_in_interval"]
    assert f"{ratio(q.speed['latency_ratio'])}x the baseline's time" in three
    assert f"{ratio(q.paradox['masked_ratio'])}x the baseline's file" in four


def test_a_dense_classifier_removes_the_class_rows_sentence(tmp_path, quick_config):
    rows = results_rows(tmp_path / "metrics", MATRIX + [STRUCTURED_90])
    settings = {**quick_config, "preset": "test", "prune": {**quick_config["prune"], "exclude": ["classifier.1"]}}
    context = context_of(rows, paper_inputs(rows, settings))
    assert context.questions.structured["class_rows_masked"] == 0
    two = line_starting(questions_section(render_source(TEMPLATE, context)), "**2.")
    assert "rows are zero" not in two and "classes keep only their bias" not in two  # the cause is not claimed


@pytest.mark.parametrize("oneshot_accuracy", [0.8270, 0.7000])  # iterative: 0.8277
def test_the_first_answer_compares_the_schedules_at_equal_budget(tmp_path, quick_config, oneshot_accuracy):
    # The seed's iterative row had 10x the one-shot row's epochs: the one-shot row given the same
    # epochs at the same peak learning rate tells the schedule from its budget.
    equal = ("os_l1_90_ft", "One-shot L1 90%, 6 epochs", "l1_unstructured", "oneshot", 0.9, 1, oneshot_accuracy, 0.1, 1.0)
    other_lr = ("os_l1_90_hi", "One-shot L1 90%, 6 epochs, lr 0.1", "l1_unstructured", "oneshot", 0.9, 1, 0.9, 0.1, 1.0)
    rows = results_rows(tmp_path / "metrics", MATRIX + [equal, other_lr])
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    epochs = 3 * quick_config["prune"]["finetune"]["epochs"]  # the iterative row: 3 steps
    for e in inputs["settings"]["experiments"]:
        if e["name"] == "os_l1_90_ft":
            e["finetune"] = {"epochs": epochs}
        elif e["name"] == "os_l1_90_hi":
            e["finetune"] = {"epochs": epochs, "lr": 0.1}  # another peak learning rate: not the same budget
    context = context_of(rows, inputs)
    (eq,) = context.questions.iterative["equal_budget"]
    assert (eq["row"]["name"], eq["oneshot"]["name"], eq["epochs"]) == ("it_l1_90", "os_l1_90_ft", epochs)
    one = line_starting(questions_section(render_source(TEMPLATE, context)), "**1.")
    assert f"Given the same fine-tuning epochs at the same peak learning rate, Iterative L1 90% ({epochs} epochs) " in one
    md = render_source(TEMPLATE, context)
    # the abstract gives the equal-budget control after the unequal comparison, in the same words
    abstract = abstract_of(md)
    clause = (", not significantly different" if not eq["test"]["significant"]
              else ", within what retraining alone moves" if context.analysis.within_retraining(eq["delta"], eq["row"])
              else "")
    assert f"; given the same epochs, one-shot kept {pct(oneshot_accuracy)} %{clause}." in abstract
    assert len(abstract.split()) <= 200
    conclusion = section_of(md, "## 7 Conclusion", "## References")
    given = f"Given one-shot pruning the same {epochs} epochs at the same learning rate, "
    if eq["test"]["significant"]:
        assert oneshot_accuracy == 0.7000
        assert given + "the iterative schedule still kept more accuracy." in conclusion
    else:
        # the 1-epoch comparison favoured iterative (82.8 % against 51.2 %): at equal epochs, no longer
        assert given + "the paired test does not tell the two schedules apart: the seed's comparison measured the " \
                       "budget." in conclusion.replace("\u2019", "'")


def test_the_masked_classifier_is_the_cause_only_when_the_accuracy_is_within_its_cap(tmp_path, quick_config):
    # 90 % of the classifier's rows masked caps the accuracy at 20 %: a model measured above it
    # collapsed (if it did) for another reason, and the paper does not name that cause.
    above = STRUCTURED_90[:6] + (0.53,) + STRUCTURED_90[7:]
    rows = results_rows(tmp_path / "metrics", MATRIX + [above])
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    assert context.questions.structured["most_classes"] == 2 and not context.questions.structured["within_cap"]
    two = line_starting(questions_section(render_source(TEMPLATE, context)), "**2.")
    assert "The cause is mechanical" not in two and "at most 20.0 % accuracy" not in two


def test_without_the_rows_a_question_is_left_out(tmp_path, quick_config):
    rows = results_rows(tmp_path / "metrics")  # no structured masking row
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    assert context.questions.structured is None
    text = questions_section(render_source(TEMPLATE, context))
    assert "**2." not in text and "**1." in text


def test_p_values_never_print_as_zero():
    assert p_value(0.0) == "p below 1e-300" and p_value(3.2e-12) == "p = 3.2e-12" and p_value(0.41) == "p = 0.41"


def test_the_memory_format_is_stated_when_provenance_records_it(tmp_path, rows, quick_config):
    """Runs since engine.memory_format record it; the published run, older, does not, and its
    paper must rebuild byte for byte, so the line is left out there."""
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    md, tex = tmp_path / "paper.md", tmp_path / "paper.tex"
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context_of(rows, inputs), md, tex)
    assert "Memory format" not in md.read_text()
    inputs["provenance"] = {**inputs["provenance"], "engine": {"memory_format": "channels_last"}}
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context_of(rows, inputs), md, tex)
    for text in (md.read_text(), tex.read_text()):
        (line,) = [line for line in text.splitlines() if "Memory format" in line]
        assert "channels last" in line  # the recorded format, in words


def test_counts_of_images_and_parameters_read_with_thousands_separators(tmp_path, rows, quick_config):
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    inputs["data"] = {**inputs["data"], "train": 45000, "val": 5000, "test": 10000}
    md = render_source(TEMPLATE, context_of(rows, inputs))
    assert "45,000 training images, 5,000 held out for validation and 10,000 test images" in md
    assert f"{PRUNABLE:,} of the model’s {PARAMS:,} parameters" in md.replace("'", "’")


def test_the_paper_names_the_machine_that_timed_the_models(tmp_path, rows, quick_config):
    """On a cluster the timing job runs on a compute node, provenance on the host that planned
    the run: the latencies are stated on the timing job's machine. A latency file from before
    the timing job recorded it falls back to provenance's host, where every job then ran."""
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    node = {"cpu": "Compute Node CPU 9000", "cores": 64, "simd": ["avx512f"], "gpu": None}
    inputs["timing"] = {**inputs["timing"], "machine": node}
    md, tex = tmp_path / "paper.md", tmp_path / "paper.tex"
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context_of(rows, inputs), md, tex)
    text = md.read_text()
    assert "latency of one forward pass on Compute Node CPU 9000" in text and "64 cores" in text
    assert "Test CPU" not in text and "on a CPU with avx512f" in text
    inputs["timing"] = {k: v for k, v in inputs["timing"].items() if k != "machine"}
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context_of(rows, inputs), md, tex)
    assert "latency of one forward pass on Test CPU" in md.read_text()


def test_citations_resolve_in_both_manuscripts_and_an_unknown_key_fails_the_render(tmp_path):
    """pandoc's citeproc formats a cited key and lists it under References in md and tex alike;
    a key the bibliography lacks is an error, not a '(missing?)' in print."""
    from scripts.lib.report.manuscript import to_latex, to_markdown

    source = "# T\n\nAs in @renda2020comparing.\n\n## References\n\n::: {#refs}\n:::\n"
    md, tex = to_markdown(source, BIBLIOGRAPHY), to_latex(source, LATEX_TEMPLATE, BIBLIOGRAPHY)
    for text in (md, tex):
        assert "Renda et al. (2020)" in text
        assert "Comparing Rewinding and Fine-Tuning in Neural Network Pruning" in text
    with pytest.raises(RuntimeError, match="nokey2099"):
        to_markdown(source.replace("renda2020comparing", "nokey2099"), BIBLIOGRAPHY)


def sweep_bullet(md: str, batch: int, threads: int) -> str:
    return line_starting(md, f"- Batch {batch}, {threads} thread{'s' if threads != 1 else ''}: CSR beat the dense product")


def test_break_even_needs_csr_to_win_from_there_on():
    from scripts.lib.report.sweep import break_even
    curve = [{"sparsity": s, "dense_ms": 1.0, "csr_ms": c} for s, c in
             ((0.5, 0.9), (0.7, 1.2), (0.9, 0.95), (0.99, 0.5))]  # a noisy win at 50 % is not a break-even
    assert break_even(curve) == 0.9
    assert break_even([{"sparsity": 0.9, "dense_ms": 1.0, "csr_ms": 2.0}]) is None


@pytest.mark.parametrize("expansion", ["never", "from 90", "always"])
def test_the_sweep_sentences_follow_the_measured_break_even(tmp_path, rows, quick_config, expansion):
    """The break-even of each layer and setting is computed from the sweep's cells: flipping
    the expansion layer's CSR times flips its sentence and its table cell, the others stay."""
    from fake_results import sparse_sweep, sweep_csr_ms

    def csr_ms(role, b, level):
        if role != "expansion" or b != 1:
            return sweep_csr_ms(role, b, level)
        return {"never": 1.4, "from 90": 0.7 if level >= 0.9 else 1.4, "always": 0.7}[expansion]

    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    inputs["timing"] = {**inputs["timing"], "sparse_sweep": sparse_sweep(csr_ms)}
    context = context_of(rows, inputs)
    md = render_source(TEMPLATE, context)
    words = {"never": "at no level swept (up to 99 % zeros) on the expansion",
             "from 90": "from 90 % zeros on the expansion",
             "always": "at every level swept (from 50 % zeros, the lowest) on the expansion"}[expansion]
    for t in (1, 2):
        assert words in sweep_bullet(md, 1, t)
        assert "at no level swept (up to 99 % zeros) on the classifier" in sweep_bullet(md, 1, t)
        assert "from 99 % zeros on the expansion" in sweep_bullet(md, 64, t)  # batch 64: unchanged
    (table,) = [t for t in read_tables(md, "markdown") if t[0][-1] == "CSR faster from (% zeros)"]
    assert table[0][3:6] == ["50 %", "90 %", "99 %"]  # the levels swept, from the file
    expansion_b1 = [r for r in table[1:] if r[0].startswith("expansion") and r[1] == "1"]
    assert [r[-1] for r in expansion_b1] == [{"never": "none", "from 90": "90", "always": "50"}[expansion]] * 2
    assert "overtakes" not in md  # the old sentence, from a re-pruned sparse layer, is gone


def test_a_sweep_that_misses_a_level_fails_the_render(tmp_path, rows, quick_config):
    from fake_results import sparse_sweep
    sweep = sparse_sweep()
    sweep["cells"] = [c for c in sweep["cells"] if not (c["role"] == "projection" and c["sparsity"] == 0.9)]
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    with pytest.raises(ValueError, match="does not cover its levels"):
        context_of(rows, {**inputs, "timing": {**inputs["timing"], "sparse_sweep": sweep}})


OPTION_ROWS = [("os_l1_90_dense", "One-shot L1 90%, stem and classifier dense", "l1_unstructured", "oneshot", 0.9, 1,
                0.4923, 0.1, 1.0),
               ("os_l1_90_recal", "One-shot L1 90%, batch norm recalibrated", "l1_unstructured", "oneshot", 0.9, 1,
                0.5183, 0.1, 1.0)]


def option_settings(quick_config):
    from fake_results import experiments
    exps = [e for e in experiments(MATRIX + OPTION_ROWS) if "strategy" in e]
    for e in exps:
        if e["name"] == "os_l1_90_dense":
            e["exclude"] = ["features.0.0", "classifier.1"]
        if e["name"] == "os_l1_90_recal":
            e["recalibrate_bn"] = 100
    return {**quick_config, "preset": "test", "experiments": exps, "sweeps": [], "ablation": []}


@pytest.mark.parametrize("only_gains", [False, True])
def test_each_option_row_is_tested_against_the_row_it_modifies(tmp_path, quick_config, only_gains):
    """Dense layers and batch-norm recalibration each get the exact McNemar test against the plain
    one-shot row at the same target; the sentence states a direction only when the test supports it."""
    rows = results_rows(tmp_path / "metrics", MATRIX + OPTION_ROWS)
    inputs = paper_inputs(rows, option_settings(quick_config))
    if only_gains:  # the same +0.6 points, but all of them images the plain row got wrong: a supported gain
        plain = inputs["correct"]["os_l1_90"]
        wrong = [i for i, c in enumerate(plain) if c == "0"][:60]
        inputs["correct"]["os_l1_90_recal"] = "".join("1" if i in set(wrong) else c for i, c in enumerate(plain))
        assert inputs["correct"]["os_l1_90_recal"].count("1") == round(0.5183 * 10000)
    context = context_of(rows, inputs)
    by_name = {c["option"]["name"]: c for c in context.analysis.options}
    assert set(by_name) == {"os_l1_90_dense", "os_l1_90_recal"}
    assert all(c["plain"]["name"] == "os_l1_90" for c in by_name.values())
    assert by_name["os_l1_90_dense"]["options"] == ["exclude"] and by_name["os_l1_90_recal"]["options"] == ["recalibrate_bn"]
    md = render_source(TEMPLATE, context)
    for name, words in (("os_l1_90_dense", "layers kept dense"), ("os_l1_90_recal", "batch-norm recalibration")):
        c = by_name[name]
        assert c["test"] == paired_test(inputs["correct"][name], inputs["correct"]["os_l1_90"])
        line = line_starting(md, f"{c['option']['label']}, which adds {words} to One-shot L1 90%, ")
        assert p_value(c["test"]["p_value"]) in line
        direction = re.findall(r"\b(beat|trailed|matched)\b", line)
        if c["test"]["significant"]:
            assert direction == [compared(c["delta"])] and f"by **{by_points(c['delta'])} points**" in line
        else:
            assert not direction and "did not differ significantly" in line
    assert by_name["os_l1_90_dense"]["test"]["significant"]  # -2.0 points on spread-out images
    # +0.6 points: not supported where the two models disagree on thousands of images, supported where
    # the 60 images are all gains
    assert by_name["os_l1_90_recal"]["test"]["significant"] == only_gains


@pytest.mark.parametrize("faster", ["nowhere", "somewhere", "everywhere"])
def test_masking_is_said_to_bring_no_speed_only_when_none_was_measured(tmp_path, quick_config, faster):
    """The abstract's "not speed" holds while the sparsest masked model's best speed-up stays
    within how far the timing passes disagree; one setting measured clearly faster changes it,
    and "in some settings" is said only while some setting is not."""
    rows = results_rows(tmp_path / "metrics")
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    inputs["timing"] = {**inputs["timing"], "agreement": {**inputs["timing"]["agreement"], "max_spread": 0.05}}
    sparsest = max((r for r in rows if r["strategy"].endswith("_unstructured")), key=lambda r: r["sparsity_prunable"])
    for cell in {"nowhere": [], "somewhere": sparsest["latency_grid"][3:4], "everywhere": sparsest["latency_grid"]}[faster]:
        cell["latency_ms"] = grid_of(rows[0], cell)["latency_ms"] / 2  # twice as fast in that setting
    context = context_of(rows, inputs)
    gap = context.analysis.gap
    assert gap["sparsest"] is sparsest and (gap["faster"], gap["faster_everywhere"]) == {
        "nowhere": (False, False), "somewhere": (True, False), "everywhere": (True, True)}[faster]
    md = render_source(TEMPLATE, context)
    abstract, conclusion = abstract_of(md), section_of(md, "## 7 Conclusion", "## References")
    assert ("and in some settings speed" in abstract) == (faster == "somewhere")
    assert ("Masking buys storage, and speed:" in abstract) == (faster == "everywhere")
    assert ("not speed" in abstract) == ("masking buys storage, not speed" in conclusion) == (faster == "nowhere")
    assert ("runs faster than the baseline only in some settings" in md) == (faster == "somewhere")
    assert ("runs faster than the baseline in every setting timed" in md) == (faster == "everywhere")
    if faster == "somewhere":
        assert f"takes {ratio(0.5)}x to" in abstract  # the fastest setting's time, stated
    # what storage masking buys, from the numbers: gzip and the sparse export against the baseline's gzip
    assert (f"compressed (gzip: {ratio(gap['gzip_ratio'])}x the baseline's) or stored sparse ("
            f"{ratio(sparsest['sparse_fp32_bytes'] / rows[0]['gzip_bytes'])}x)") in conclusion


def test_a_channel_speed_up_within_the_timing_noise_is_no_speed(tmp_path, quick_config):
    # The same threshold as for the masked model: a speed-up no larger than the passes' disagreement.
    rows = results_rows(tmp_path / "metrics")
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    inputs["timing"] = {**inputs["timing"], "agreement": {**inputs["timing"]["agreement"], "max_spread": 0.05}}
    for r in (r for r in rows if r["strategy"].endswith("_channels")):
        for cell in r["latency_grid"]:
            cell["latency_ms"] = grid_of(rows[0], cell)["latency_ms"] / 1.04  # 1.04x: within 5 %
    context = context_of(rows, inputs)
    (channels,) = [f for f in context.analysis.headline if f["kind"] == "channels"]
    assert not channels["faster"] and channels["range"]["high"]["speedup"] > 1
    md = render_source(TEMPLATE, context)
    assert "Even removing channels brings no speed here" in abstract_of(md)
    assert "Even removing channels brought no speed in the settings timed" in md


def test_without_per_image_results_no_comparison_is_given_a_direction(tmp_path, rows, quick_config):
    # A comparison the paired test could not check is stated as a difference, never as beat or trailed.
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    inputs["correct"] = {}
    context = context_of(rows, inputs)
    assert not context.analysis.all_tested
    md = render_source(TEMPLATE, context)
    assert "its models compared on the same images" in abstract_of(md)
    comparisons = line_starting(section_of(md, "## 4 Results", "## 5 Discussion"), "At 90.0 % sparsity, iterative")
    assert "differed from one-shot by" in comparisons and "not tested" in comparisons
    assert " beat " not in comparisons and " trailed " not in comparisons
    assert "every comparison tested" in abstract_of(render_source(TEMPLATE, context_of(rows, paper_inputs(
        rows, {**quick_config, "preset": "test"}))))


def test_the_method_states_the_baselines_last_validation_epochs(tmp_path, rows, quick_config):
    inputs = paper_inputs(rows, {**quick_config, "preset": "test", "train": {**quick_config["train"], "epochs": 40}})
    vals = [0.5 + 0.01 * min(e, 30) for e in range(1, 41)]  # rising, then flat from epoch 30
    vals[-3] = 0.812
    inputs["histories"]["baseline"] = {"best_epoch": 38, "best_val_accuracy": 0.812,
                                       "epochs": [{"val_accuracy": v, "seconds": 60.0} for v in vals]}
    md = render_source(TEMPLATE, context_of(rows, inputs))
    assert "is kept (38 of 40; over the last 10 epochs validation accuracy stayed between 80.0 % and 81.2 %)" in md


# 0.52: below the worst iterative cut (0.5277) but within the validation set's noise of it
@pytest.mark.parametrize("one_shot_cut", [0.30, 0.52, 0.95])
def test_the_first_answer_says_iterative_steps_start_less_damaged_only_when_measured(rows, quick_config, one_shot_cut):
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    inputs["histories"]["os_l1_90"]["steps"][0]["val_accuracy_pruned"] = one_shot_cut
    context = context_of(rows, inputs)
    q = context.questions.iterative
    assert q["oneshot"]["name"] == "os_l1_90" and q["oneshot_pruned_val"] == one_shot_cut
    worst, n = min(q["iterative_pruned_val"]), q["val_images"]
    md = render_source(TEMPLATE, context)
    answer = line_starting(md, "**1. Does iterative pruning beat one-shot, and why?**")
    # less damaged only beyond the validation set's noise: the two 95 % intervals apart
    apart = wilson_interval(round(worst * n), n)[0] > wilson_interval(round(one_shot_cut * n), n)[1]
    assert q["less_damaged"] == apart
    assert ("starts from a less damaged network" in answer) == apart
    assert (f"within the noise of the one-shot cut's {pct(one_shot_cut)} %" in answer) == (not apart)


def test_the_headline_schedule_comparison_is_chosen_by_its_sparsity_never_by_its_outcome():
    from scripts.lib.report.findings import headline_schedule

    small_gain = {"sparsity": 0.9, "delta": 0.01, "channels": False, "strategy": "l1_unstructured"}
    large_gain = {"sparsity": 0.9, "delta": 0.20, "channels": False, "strategy": "l2_structured"}
    channels = {"sparsity": 0.95, "delta": 0.30, "channels": True, "strategy": "l2_channels"}
    lower = {"sparsity": 0.5, "delta": 0.40, "channels": False, "strategy": "l1_unstructured"}
    assert headline_schedule([lower, small_gain, large_gain, channels]) is small_gain  # first at the top sparsity
    assert headline_schedule([channels]) is channels and headline_schedule([]) is None


def grid_of(row: dict, cell: dict) -> dict:
    (g,) = [g for g in row["latency_grid"] if (g["runtime"], g["latency_batch_size"], g["latency_threads"])
            == (cell["runtime"], cell["latency_batch_size"], cell["latency_threads"])]
    return g


def test_a_timing_file_without_the_sweep_renders_and_says_so(tmp_path, rows, quick_config):
    """Runs timed before the sweep of dense layers (the published numbers until they are
    re-run) still render: the sweep's table and sentences give way to one sentence."""
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    inputs["timing"] = {k: v for k, v in inputs["timing"].items() if k != "sparse_sweep"}
    md = render_source(TEMPLATE, context_of(rows, inputs))
    assert "This run's timing file has no sweep of dense layers" in md
    assert "CSR beat the dense product" not in md


# --- the controls: rows that remove nothing ------------------------------------------------------

# A dense fine-tune at the iterative row's schedule, one at its budget with distillation, and a
# small dense net matched to the one-shot channel row (name, label, strategy, schedule, target, steps,
# accuracy, kept, latency scale, as MATRIX).
CONTROLS = [
    ("dense_it", "Dense, iterative schedule", "dense", "iterative", 0.0, 3, 0.9301, 1.0, 1.0),
    ("dense_kd", "Dense, one fine-tune, distilled", "dense", "oneshot", 0.0, 1, 0.8301, 1.0, 1.0),
    ("small_ch", "Small dense, MACs of channels 50%", "none", "none", 0.0, 0, 0.8401, 0.5, 0.6),
]


def controls_settings(quick_config) -> dict:
    """A valid configuration whose matrix is MATRIX's rows and the controls."""
    from scripts.lib.planning.config import validate_config

    epochs = quick_config["prune"]["finetune"]["epochs"]
    rows = [{"name": n, "label": label, "strategy": s, "schedule": sch, "sparsity": t, "steps": steps}
            for n, label, s, sch, t, steps, *_ in MATRIX[1:] + CONTROLS[:2]]
    rows[-2]["control_of"] = "it_l1_90"
    rows[-1].update(control_of="it_l1_90", finetune={"epochs": 3 * epochs, "lr": 0.05},
                    distill={"weight": 0.5, "temperature": 4})
    return validate_config({**quick_config, "preset": "test", "experiments": rows, "sweeps": [], "ablation": [],
                            "seeds_experiments": [], "small_dense": [{"name": "small_ch", "label": CONTROLS[2][1],
                                                                      "matches": "os_ch_50"}]})


def test_controls_are_tabled_beside_the_rows_they_control_and_kept_out_of_the_pruning_comparisons(
        tmp_path, quick_config):
    from scripts.lib.report.crosscheck import check_numbers
    from scripts.lib.report.recount import read_predictions

    rows = results_rows(tmp_path / "m", MATRIX + CONTROLS, predictions=tmp_path / "p")
    settings = controls_settings(quick_config)
    by_name = {r["name"]: r for r in rows}
    inputs = paper_inputs(rows, settings)
    inputs["correct"] = {n: p["correct"] for n, p in read_predictions(sorted((tmp_path / "p").glob("*.json"))).items()}
    width = {"name": "small_ch", "matches": "os_ch_50", "width_mult": 0.4, "macs": by_name["small_ch"]["macs"],
             "target_macs": by_name["os_ch_50"]["macs"], "residual": 12, "relative_residual": 0.0123,
             "below": {"width": 0.3999, "macs": 1_500_000}, "above": {"width": 0.4001, "macs": 1_600_000}}
    inputs["histories"]["small_ch"] = {"best_epoch": 1, "epochs": [{"epoch": 1, "seconds": 9.0, "val_accuracy": 0.8}],
                                       "width": width}
    context = context_of(rows, inputs)
    md, tex = (tmp_path / "paper.md"), (tmp_path / "paper.tex")
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context, md, tex)
    md, tex = md.read_text(), tex.read_text()
    assert numbers_in(markdown_body(md)) == numbers_in(latex_body(tex))

    a = context.analysis
    assert [c["row"]["name"] for c in a.controls] == ["dense_it", "dense_kd", "small_ch"]
    assert [r["name"] for r in a.experiments] == [m[0] for m in MATRIX[1:]]  # the pruned models only
    # the schedule and strategy comparisons pair pruned rows only, as without the controls
    assert [(c["iterative"]["name"], c["oneshot"]["name"]) for c in a.schedule] == [("it_l1_90", "os_l1_90")]
    assert all(c["importance"]["strategy"] != "dense" for c in a.strategy)
    # nor do the option comparisons: no control's label in the recovery table
    assert context.tables.recovery is not None
    assert not {c[1] for c in CONTROLS} & {r[0] for r in context.tables.recovery.rows}

    (table,) = [t for t in read_tables(md, "markdown") if t[0][0] == "Control"]
    assert [r[0] for r in table[1:]] == [c[1] for c in CONTROLS]
    small = table[3]
    epochs = 3 * quick_config["prune"]["finetune"]["epochs"]  # the iterative row's budget
    assert small[1] == f"{a.controls[2]['epochs']} epochs from scratch at width 0.4, lr {quick_config['train']['lr']:g}"
    assert small[2] == "One-shot channels 50%"
    assert small[3:5] == [f"{by_name['small_ch']['macs'] / 1e6:.2f}", f"{by_name['os_ch_50']['macs'] / 1e6:.2f}"]
    assert table[1][1].startswith(f"{epochs} epochs in 3 steps, lr ") and "distilled" not in table[1][1]
    assert table[2][1].endswith(", lr 0.05, distilled (weight 0.5, T 4)")
    for c in a.controls:
        row = table[1 + a.controls.index(c)]
        assert row[7] == points(c["row"]["accuracy"] - c["of"]["accuracy"])
        assert row[8] == p_value(c["test"]["p_value"]).removeprefix("p = ").removeprefix("p ")
    # one paragraph: each pruned row against its dense control trained alike, then the small dense net
    controls = line_starting(md, "Against its dense control trained alike (same schedule, budget and peak learning rate, ")
    dense = controls.split(". ")[0]
    # the range of the costs, their values being the table's (no list repeating it)
    costs = [by_name[c["of"]["name"]]["accuracy"] - by_name[c["row"]["name"]]["accuracy"] for c in a.dense_controls]
    if max(costs) < 0:  # every pruned model below its control: the gap, unsigned, as the table's column reads
        assert (f"each pruned model trailed it, by {points(-max(costs)).lstrip('+')} to {points(-min(costs)).lstrip('+')}"
                " points (the table’s last ") in dense
    else:
        assert (f"each pruned model differed from it by {points(min(costs))} to {points(max(costs))} points "
                "(pruned less control) (the table’s last ") in dense
    significant = sum(c["test"]["significant"] for c in a.dense_controls)
    assert f": {significant} of the 2 differences significant at 5 %" in controls
    # the dense fine-tunes against the baseline itself: more training alone, a test of its convergence
    converged = controls.split("Against the baseline itself, a test of its convergence, the dense fine-tunes changed "
                               "test accuracy by ")[1]
    assert converged.startswith("+1.8, -8.2 points (p ")
    assert [c["row"]["name"] for c in a.convergence["raised"]] == ["dense_it"]
    assert "1 of the 2 raised it significantly, so part of what a pruned model recovers" in converged
    small_line = controls.split("Small dense, MACs of channels 50%, at width 0.4, ")[1]
    assert small_line.startswith(f"computes {by_name['small_ch']['macs'] / 1e6:.2f} M MACs per image")
    assert "(+1.2 %; the widths on either side give 1.50 M and 1.60 M)" in small_line
    # the conclusion weighs the channel-removed model against the network trained small (Liu et al. 2019)
    conclusion = section_of(md, "## 7 Conclusion", "## References")
    small = a.small_controls[0]
    verdict = ("training small from scratch beat pruning at these MACs" if small["test"]["significant"] and small["delta"] > 0
               else "pruning beat training small from scratch at these MACs" if small["test"]["significant"]
               else "at these MACs the paired test does not tell pruning from training small apart")
    assert "A network trained from scratch at about the same MACs " in conclusion
    assert verdict in conclusion
    assert "**Controls** remove nothing" in md and "Liu et al. (2019)" in md
    # each bold lead-in starts its own paragraph: the Method's Measurements had run on after the Controls
    assert not re.search(r"[^\s-](\n| )\*\*[A-Z][a-z ]+\.\*\* ", md)
    # every figure stands alone as a captioned figure, none glued into the paragraph before it
    assert "](figures/" not in md and md.count("<figure>") == md.count("<figcaption") > 0
    # the controls' rows reach the per-model tables, which the cross-check reads back cell by cell
    problems, _ = check_numbers(rows, read_predictions(sorted((tmp_path / "p").glob("*.json"))), md, tex)
    assert problems == []


def test_the_baselines_convergence_is_its_last_validation_epochs_and_the_dense_fine_tunes_against_it():
    from scripts.lib.report.controls import baseline_convergence

    history = {"best_epoch": 53, "epochs": [{"val_accuracy": 0.5 + 0.005 * min(e, 50)} for e in range(1, 61)]}
    dense = [{"kind": "dense", "vs_baseline": {"delta": d, "test": {"significant": sig}}}
             for d, sig in ((0.004, False), (-0.02, True))]
    cv = baseline_convergence(history, dense + [{"kind": "small_dense"}])
    assert (cv["last"], cv["low"], cv["high"], cv["raised"], len(cv["dense"])) == (10, 0.75, 0.75, [], 2)
    # a significant gain from more training alone is said; a short run's epochs show no plateau
    gain = {"kind": "dense", "vs_baseline": {"delta": 0.01, "test": {"significant": True}}}
    assert baseline_convergence(history, [gain])["raised"] == [gain]
    assert baseline_convergence({"best_epoch": 3, "epochs": history["epochs"][:3]}, [])["last"] == 0


def test_a_small_dense_net_is_a_deployment_option_and_named_as_such_when_it_wins(tmp_path, quick_config):
    # Accurate within the tolerance and the fastest network timed: a deployment takes it, however it was made.
    small = ("small_ch", "Small dense, MACs of channels 50%", "none", "none", 0.0, 0, 0.9100, 0.5, 0.3)
    rows = results_rows(tmp_path / "m", MATRIX + CONTROLS[:2] + [small])
    inputs = paper_inputs(rows, controls_settings(quick_config))
    by_name = {r["name"]: r for r in rows}
    inputs["histories"]["small_ch"] = {"best_epoch": 1, "epochs": [{"epoch": 1, "seconds": 9.0, "val_accuracy": 0.8}], "width": {
        "name": "small_ch", "matches": "os_ch_50", "width_mult": 0.4, "macs": by_name["small_ch"]["macs"],
        "target_macs": by_name["os_ch_50"]["macs"], "residual": 12, "relative_residual": 0.0123,
        "below": {"width": 0.3999, "macs": 1_500_000}, "above": {"width": 0.4001, "macs": 1_600_000}}}
    context = context_of(rows, inputs)
    deploy = context.analysis.deploy
    assert {o["kind"] for o in deploy["options"] if o["row"]["name"] == "small_ch"} == {"small_dense"}
    assert [o["row"]["name"] for o in deploy["options"] if o["kind"] == "pruned"] == ["os_ch_50"] * 3 + ["os_rch_50"] * 3
    assert all(p["row"]["name"] == "small_ch" for p in deploy["picks"].values())
    md, tex = tmp_path / "paper.md", tmp_path / "paper.tex"
    render(TEMPLATE, LATEX_TEMPLATE, BIBLIOGRAPHY, context, md, tex)
    md = md.read_text()
    (table,) = [t for t in read_tables(md, "markdown") if t[0][:2] == ["Model", "Accuracy (%)"]]
    assert [r[0] for r in table[1:]] == ["Baseline (trained)", "One-shot channels 50%", "One-shot random channels 50%",
                                         "Small dense, MACs of channels 50%"]
    assert "a network trained small from scratch and the runtime together make the difference" in md
    # each pick's speed-up split into what its runtime gives the dense baseline and what the model adds
    for n, pick in deploy["picks"].items():
        assert pick["runtime_gain"][n] * pick["model_gain"][n] == pytest.approx(pick["speedup"][n])
        assert (f"the dense baseline in {runtime_name(pick['runtime'])} alone runs {ratio(pick['runtime_gain'][n])}x as "
                f"fast as the seed's path, and the small dense net runs {ratio(pick['model_gain'][n])}x as fast again"
                ) in md.replace("\u2019", "'")
    # the text that opens the table and its caption name the same models
    shown = "the dense baseline, each channel-removed model and each small dense net trained from scratch"
    assert f"what can be deployed: {shown} (the controls of Section 4.1)" in md
    assert f"Deployment options on {deploy['threads']} thread" in md and f"thread: {shown}, its time" in md.replace("threads:", "thread:")


def test_int8_against_fp32_is_faster_or_slower_only_beyond_the_timing_passes_disagreement(rows, quick_config):
    """Speed by the paper's one rule at every batch size; accuracy by the paired test of the
    baseline's int8 and fp32 per-image results, stated with it."""
    same = "as fast within the timing passes' disagreement"
    assert [speed_verdict(s, 0.1) for s in (1.2, 1.05, 0.95, 0.8)] == ["faster", same, same, "slower"]
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    context = context_of(rows, inputs)
    int8 = context.analysis.deploy["int8"]
    assert list(int8["batches"]) == context.analysis.deploy["batches"]
    assert all(q["verdict"] == speed_verdict(1 / q["ratio"], context.analysis.noise) for q in int8["batches"].values())
    base = rows[0]
    assert int8["accuracy_change"] == pytest.approx(base["accuracy_int8"] - base["accuracy"], abs=1e-12)
    assert int8["test"] == paired_test(inputs["correct_int8"][base["name"]], inputs["correct"][base["name"]])
    assert int8["test"]["difference"] == pytest.approx(int8["accuracy_change"], abs=1e-12)
    line = line_starting(render_source(TEMPLATE, context).replace("\u2019", "'"), "- **int8 against fp32**")
    assert ", ".join(f"{ratio(q['ratio'])}x the fp32 time at batch {n} ({q['verdict']})"
                     for n, q in int8["batches"].items()) in line
    assert f"({pct(base['accuracy_int8'])} % against {pct(base['accuracy'])} %," in line
    assert p_value(int8["test"]["p_value"]) in line
    # without per-image int8 results the change is stated as not tested
    untested = context_of(rows, {**inputs, "correct_int8": {}})
    assert untested.analysis.deploy["int8"]["test"] is None
    assert "not tested" in line_starting(render_source(TEMPLATE, untested), "- **int8 against fp32**")


def test_int8_of_the_other_deployment_models_is_stated_as_their_range(rows, quick_config):
    """The baseline's int8 speed-up need not hold for thinner models: the options' other models get
    their own range, per batch size, with how many int8 made slower beyond the passes' disagreement."""
    from scripts.lib.report.costs import int8_of_models

    def option(name, runtime, kind, ms, nodes):
        return {"row": {"name": name, "int8_fp32_nodes": ["node"] * nodes}, "kind": kind, "runtime": runtime,
                "latency": {1: ms[0], 64: ms[1]}}

    options = [option("base", "onnxruntime", "baseline", (1.0, 10.0), 0),
               option("base", "onnxruntime_int8", "baseline", (0.5, 5.0), 0),
               option("a", "onnxruntime", "pruned", (1.0, 10.0), 3), option("a", "onnxruntime_int8", "pruned", (0.7, 20.0), 3),
               option("b", "pytorch", "small_dense", (3.0, 30.0), 30),
               option("b", "onnxruntime", "small_dense", (1.0, 10.0), 30),
               option("b", "onnxruntime_int8", "small_dense", (1.02, 10.5), 30)]
    m = int8_of_models(options, [1, 64], noise=0.1)
    assert m["count"] == 2 and m["fp32_nodes"] == (3, 30)
    assert m["ratio"][1] == pytest.approx((0.7, 1.02)) and m["ratio"][64] == pytest.approx((1.05, 2.0))
    assert m["slower"] == {1: 0, 64: 1}  # 1.02x and 1.05x are within the disagreement, 2x is not
    assert int8_of_models(options[:2], [1, 64]) is None  # the baseline alone: nothing to state

    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    m = context.analysis.deploy["int8"]["models"]
    others = [o for o in context.analysis.deploy["options"] if o["kind"] != "baseline" and o["runtime"] == "onnxruntime"]
    assert m["count"] == len(others) > 0
    md = render_source(TEMPLATE, context).replace("\u2019", "'")
    line = line_starting(md, f"**int8 against fp32, the deployment table's other {m['count']} models** (Section 4.3)")
    assert "(the other models: Appendix C)." in line_starting(md, "- **int8 against fp32** in ONNX Runtime")
    for n, (low, high) in m["ratio"].items():
        span = f"{ratio(low)}x" + (f" to {ratio(high)}x" if ratio(low) != ratio(high) else "")
        assert f"{span} the fp32 time at batch {n} (slower beyond the timing passes' disagreement for {m['slower'][n]})" \
            in line
    low, high = m["fp32_nodes"]
    assert f"the quantizer left {low}{f' to {high}' if high != low else ''} of their operators in fp32." in line


def test_a_fall_of_validation_accuracy_while_training_from_scratch_is_stated_where_it_bears(tmp_path, quick_config):
    """The baseline's and a small dense net's training: a fall of validation accuracy below its best
    so far beyond controls.FALL_STATED is stated in the Limitations, beside the small net's
    comparison with pruning and in the Conclusion's verdict on it; a steady training is not."""
    from scripts.lib.report.controls import FALL_STATED, largest_fall

    assert largest_fall({"epochs": [{"val_accuracy": v} for v in (0.5, 0.6, 0.3, 0.55, 0.62, 0.61)]}) == {
        "peak_epoch": 2, "peak": 0.6, "trough_epoch": 3, "trough": 0.3, "fall": pytest.approx(0.3),
        "regained_epoch": 5, "stated": True}
    assert largest_fall({"epochs": [{"val_accuracy": v} for v in (0.5, 0.6, 0.7)]}) is None
    small = largest_fall({"epochs": [{"val_accuracy": v} for v in (0.6, 0.6 - FALL_STATED / 2, 0.59)]})
    assert not small["stated"] and small["regained_epoch"] is None
    rows = results_rows(tmp_path / "m", MATRIX + CONTROLS)
    by_name = {r["name"]: r for r in rows}
    width = {"name": "small_ch", "matches": "os_ch_50", "width_mult": 0.4, "macs": by_name["small_ch"]["macs"],
             "target_macs": by_name["os_ch_50"]["macs"], "residual": 12, "relative_residual": 0.0123,
             "below": {"width": 0.3999, "macs": 1_500_000}, "above": {"width": 0.4001, "macs": 1_600_000}}

    def paper(small_net_val):
        inputs = paper_inputs(rows, controls_settings(quick_config))
        inputs["histories"]["small_ch"] = {"best_epoch": 5, "width": width, "epochs": [
            {"epoch": k, "seconds": 9.0, "val_accuracy": v} for k, v in enumerate(small_net_val, 1)]}
        return render_source(TEMPLATE, context_of(rows, inputs)).replace("\u2019", "'")

    md = paper((0.5, 0.6, 0.3, 0.55, 0.62))
    limitation = line_starting(md, "- **Unstable training from scratch.**")
    assert ("its validation accuracy fell by more than 5 points below its best so far: Small dense, MACs of "
            "channels 50%: from 60.0 % (epoch 2) to 30.0 % (epoch 3), back by epoch 5.") in limitation
    assert "the baseline: from" not in limitation  # its fake training rose steadily
    assert "While it trained, its validation accuracy fell from 60.0 % (epoch 2) to 30.0 % (epoch 3) (Section 6)." in md
    assert "(it trained unstably: Section 6)." in md.split("## 7 Conclusion")[1]
    md = paper((0.5, 0.6, 0.62))
    assert "Unstable training" not in md and "While it trained" not in md and "trained unstably" not in md


def test_the_small_dense_controls_computation_is_stated_beside_its_epochs(tmp_path, quick_config):
    """Matched in epochs and MACs, the small net spends less arithmetic than the pruned model, whose
    budget includes the baseline's full-width epochs: the Limitations state both, with the lead."""
    rows = results_rows(tmp_path / "m", MATRIX + CONTROLS)
    by_name = {r["name"]: r for r in rows}
    settings = controls_settings(quick_config)
    inputs = paper_inputs(rows, settings)
    inputs["histories"]["small_ch"] = {"best_epoch": 1, "epochs": [{"epoch": 1, "seconds": 9.0, "val_accuracy": 0.8}],
                                       "width": {"name": "small_ch", "matches": "os_ch_50", "width_mult": 0.4,
                                                 "macs": by_name["small_ch"]["macs"],
                                                 "target_macs": by_name["os_ch_50"]["macs"], "residual": 12,
                                                 "relative_residual": 0.0123,
                                                 "below": {"width": 0.3999, "macs": 1_500_000},
                                                 "above": {"width": 0.4001, "macs": 1_600_000}}}
    context = context_of(rows, inputs)
    (c,) = [c for c in context.analysis.small_controls if c["of"]]
    md = render_source(TEMPLATE, context).replace("\u2019", "'")
    item = line_starting(md, "- **A control matched in epochs, not in computation.**")
    small, base = by_name["small_ch"], rows[0]
    assert (f"The small dense net's {c['epochs']} epochs cost about {round(c['epochs'] * small['macs'] / base['macs'])} "
            f"of the baseline's in arithmetic; the pruned model also had the baseline's {settings['train']['epochs']} "
            "at full width.") in item  # os_ch_50 was not distilled
    lead = "may narrow pruning's lead" if c["delta"] < 0 else "may widen its lead"
    assert f"{lead} of {by_points(c['delta'])} points; neither was tried." in item
    assert "The small dense nets are compared with pruning at this recipe" not in md  # said here instead


def test_without_controls_the_paper_says_nothing_of_them(tmp_path, rows, quick_config):
    md, _ = render_both(tmp_path, rows, quick_config)
    assert "**Controls.**" not in md and "**Controls** remove nothing" not in md and "dense control" not in md


# --- the paper's structure: the main table's rule, plurals, the conclusion's guards -----------

def test_the_main_table_picks_its_rows_by_the_stated_rule(tmp_path, quick_config):
    """The baseline, the seed's experiments, per family the most accurate non-control model at the
    target most experiments share, and the random control there; every other model only in the
    appendix's full table."""
    from scripts.lib.report.paper_tables import MAIN_ROWS, main_rows
    extra = [("os_l1_90_b", "One-shot L1 90% b", "l1_unstructured", "oneshot", 0.9, 1, 0.6, 0.1, 1.0),
             ("os_ch_30", "One-shot channels 30%", "l2_channels", "oneshot", 0.3, 1, 0.95, 0.7, 0.8)]
    rows = results_rows(tmp_path / "metrics", MATRIX + extra)
    seed = {"accuracy": {"baseline": 0.944, "os_l1_50": 0.93}}
    why = {r["name"]: w for r, w in main_rows(rows, seed)}
    # masking: 90 % is the most-run target and it_l1_90 its most accurate model; channels: 50 %
    # (two models) beats 30 % (one), so the more accurate 30 % row is not "best at 50 %"
    assert why == {"baseline": "baseline", "os_l1_50": "seed study", "it_l1_90": "best masking at 90.0 %",
                   "os_rnd_90": "random control", "os_ch_50": "best channel removal at 50.0 %",
                   "os_rch_50": "random control"}
    assert [r["name"] for r, _ in main_rows(rows, seed)] == [r["name"] for r in rows if r["name"] in why]
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    md = render_source(TEMPLATE, context)
    (main,) = [t for t in read_tables(md, "markdown") if "Shown as" in t[0]]
    assert len(main) - 1 <= MAIN_ROWS
    seed_column = main[0].index("Seed study (%)")
    by_label = {r["label"]: r for r in rows}
    for cells in main[1:]:  # the seed's accuracy beside ours, where it reported the experiment
        r = by_label[cells[0].replace("\\&", "&")]
        assert cells[seed_column] == (pct(context.study.seed["accuracy"][r["name"]])
                                      if r["name"] in context.study.seed["accuracy"] else "")
    # each row's budget: the baseline's epochs, plus the row's fine-tuning (one per step; gradual: one)
    epochs_column, settings = main[0].index("Epochs"), context.study.settings
    ft, train = settings["prune"]["finetune"]["epochs"], settings["train"]["epochs"]
    steps = {e["name"]: e.get("steps", 1) for e in settings["experiments"]}
    budgets = {by_label[c[0].replace("\\&", "&")]["name"]: int(c[epochs_column]) for c in main[1:]}
    assert budgets["baseline"] == train and budgets["os_rnd_90"] == train + ft
    assert budgets["it_l1_90"] == train + ft * steps["it_l1_90"] > budgets["os_rnd_90"]
    # a strategy outside the registry's families (a control such as a dense fine-tune) is shown as such
    control = dict(rows[1], name="dense_ft", strategy="dense_finetune", target_sparsity=0.0)
    assert dict((r["name"], w) for r, w in main_rows([*rows, control], seed))["dense_ft"] == "control"
    # of the dense fine-tunes (the registry's dense strategy), the most accurate, the one pruning must beat
    dense = [dict(rows[1], name=f"dense_{k}", strategy="dense", target_sparsity=0.0, accuracy=acc)
             for k, acc in enumerate((0.91, 0.93))]
    picked = dict((r["name"], w) for r, w in main_rows([*rows, *dense], seed))
    assert picked["dense_1"] == "most accurate dense control" and "dense_0" not in picked
    many = [(f"os_l1_{k}", f"L1 {k}", "l1_unstructured", "oneshot", 0.9, 1, 0.5, 0.1, 1.0) for k in range(20)]
    rows = results_rows(tmp_path / "many", MATRIX + many)
    with pytest.raises(ValueError, match="more than 15"):
        main_rows(rows, {"accuracy": {r[0]: 0.5 for r in many}})


def test_an_ablation_step_is_named_with_the_steps_before_it_when_read_alone():
    from scripts.lib.report.phrases import full_label
    chain = [{"row": {"name": n, "label": lab}} for n, lab in
             (("it", "Iterative L1 90%"), ("gr", "Gradual L1 90%"), ("glob", "+ global ranking"), ("kd", "+ distillation"))]
    assert full_label({"name": "kd", "label": "+ distillation"}, chain) == \
        "Gradual L1 90% + global ranking + distillation"
    assert full_label({"name": "gr", "label": "Gradual L1 90%"}, chain) == "Gradual L1 90%"
    assert full_label({"name": "x", "label": "+ y"}, chain) == "+ y"  # not in the chain: as labelled


def test_plurals_follow_the_count_and_small_counts_read_as_words():
    from scripts.lib.report.phrases import plural, words
    assert [plural(1, "epoch"), plural(2, "epoch"), plural(0.5, "epoch"), plural(1.0, "epoch")] == \
        ["1 epoch", "2 epochs", "0.5 epochs", "1 epoch"]
    assert plural(3, "pass", "passes") == "3 passes" and plural(1, "pass", "passes") == "1 pass"
    assert [words(0), words(2), words(10), words(11)] == ["zero", "two", "ten", "11"]


def test_no_template_artefacts_and_numbered_sections(tmp_path, rows, quick_config):
    md, tex = render_both(tmp_path, rows, quick_config)
    assert not re.search(r"\w\((s|es)\)", md)  # "epoch(s)", "pass(es)"
    assert not re.search(r"\b1 (steps|epochs|threads|passes|times)\b", md)
    assert not re.search(r"[a-z%)]\.[A-Z]", md)  # a block tag ate the line break between two sentences
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:9] == ["## Abstract", "## 1 Introduction", "## 2 Related work", "## 3 Method", "## 4 Results",
                            "## 5 Discussion", "## 6 Limitations", "## 7 Conclusion", "## References"]
    assert all(h.startswith("## Appendix ") for h in headings[9:]) and len(headings) > 9


@pytest.mark.parametrize("iterative_accuracy", [0.8277, 0.40, 0.5130])  # one-shot: 0.5123
def test_the_conclusion_states_the_schedule_finding_in_its_direction(tmp_path, quick_config, iterative_accuracy):
    matrix = [m[:6] + (iterative_accuracy,) + m[7:] if m[0] == "it_l1_90" else m for m in MATRIX]
    rows = results_rows(tmp_path / "metrics", matrix)
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    md = render_source(TEMPLATE, context)
    conclusion = section_of(md, "## 7 Conclusion", "## References")
    (finding,) = [f for f in context.analysis.headline if f["kind"] == "schedule"]
    tested_apart = finding["test"]["significant"]
    assert tested_apart == (iterative_accuracy != 0.5130)  # 7 of 10,000 images apart: no direction to state
    assert ("kept more accuracy than one-shot" in conclusion) == (tested_apart and iterative_accuracy > 0.5123)
    assert ("kept no more accuracy than one-shot" in conclusion) == (tested_apart and iterative_accuracy < 0.5123)
    assert ("kept accuracies the paired test does not tell apart at 90.0 % sparsity" in conclusion) == (not tested_apart)


def test_when_nothing_beats_the_seed_path_the_abstract_and_conclusion_say_so(tmp_path, quick_config):
    """Every other option made slower than the dense baseline in PyTorch eager: the deployment
    sentences name no faster option."""
    rows = results_rows(tmp_path / "metrics")
    base = {(g["runtime"], g["latency_batch_size"], g["latency_threads"]): g["latency_ms"]
            for g in rows[0]["latency_grid"]}
    for r in rows:
        for g in r["latency_grid"]:
            seed_path = base[("pytorch", g["latency_batch_size"], g["latency_threads"])]
            if r is not rows[0] or g["runtime"] != "pytorch":
                g["latency_ms"] = seed_path * 2
    md = render_source(TEMPLATE, context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"})))
    assert "no option within" in abstract_of(md) and "as fast as the seed's path" not in abstract_of(md)
    assert "No pruned model or runtime beat the seed's path" in section_of(md, "## 7 Conclusion", "## References")
    # the fastest channel-removed model is now slower everywhere: no "buys speed"
    assert "Removing channels buys speed" not in md and "Even removing channels brings no speed here" in md
    assert "Even removing channels brought no speed" in section_of(md, "## 7 Conclusion", "## References")
    assert "Neither removing channels nor changing the runtime brought speed here" in questions_section(md)


def test_the_method_describes_only_the_strategies_the_run_used(tmp_path, rows, quick_config):
    """The registry knows more strategies than a run uses; the Method names only those with a row."""
    from scripts.lib.planning.registry import STRATEGIES

    source = render_source(TEMPLATE, context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"})))
    used = {r["strategy"] for r in rows}
    for name, s in STRATEGIES.items():
        assert (s.description in source) == (name in used), name


def test_the_int8_method_follows_the_settings(tmp_path, rows, quick_config):
    """The appendix states the quantization the config asked for, not a fixed one."""
    signed = {**quick_config, "evaluate": {**quick_config["evaluate"], "int8": {
        **quick_config["evaluate"]["int8"], "activations": "int8", "fp32_gain": None, "format": "qdq"}}}
    md, _ = render_both(tmp_path, rows, signed)
    assert "(QDQ format, per-channel signed 8-bit weights, activation ranges calibrated by MinMax" in md
    assert "unsigned" not in md and "noise gain exceeds" not in md
    u8 = {**signed, "evaluate": {**signed["evaluate"], "int8": {**signed["evaluate"]["int8"], "activations": "uint8",
                                                                   "fp32_gain": 40, "format": "qoperator"}}}
    md, tex = render_both(tmp_path, rows, u8)
    for text in (md, tex):
        assert "QOperator format, per-channel signed 8-bit weights, unsigned 8-bit activations" in text
        assert "every convolution whose noise gain exceeds 40, with the layers that compute its input, kept in fp32" \
            in text


def test_the_limitations_count_the_paired_tests_the_paper_reports(tmp_path, rows, quick_config):
    # The fake run tests iterative against one-shot L1 at 90 %, L1 against random at 90 % and group-L2
    # channels against random at 50 %: three pairs, each once however often the text names it.
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    assert [(c["iterative"]["name"], c["oneshot"]["name"]) for c in context.analysis.schedule] == [("it_l1_90", "os_l1_90")]
    assert [(c["importance"]["name"], c["random"]["name"]) for c in context.analysis.strategy] == [
        ("os_l1_90", "os_rnd_90"), ("os_ch_50", "os_rch_50")]
    tested = [c["test"] for c in [*context.analysis.schedule, *context.analysis.strategy, *context.analysis.options]]
    assert context.tests["count"] == 3 + len(context.analysis.options) == len(tested)
    assert context.tests["significant"] == sum(t["significant"] for t in tested)
    md = render_source(TEMPLATE, context)
    assert f"The {context.tests['count']} paired tests are each at the 5 % level, uncorrected" in md
    # the fake run's differences are large: Holm's correction keeps every one
    assert max(t["p_value"] for t in tested if t["significant"]) < 0.05 / len(tested) and not context.tests["lost"]
    assert f"Holm's correction over all {len(tested)} [@holm1979simple] keeps all {context.tests['significant']} significant " \
           "differences." in md
    # one it would not keep is named, with its p-value
    weak = {**context.analysis.schedule[0]["test"], "p_value": 0.04}
    lost = {**context.tests, "holm": context.tests["significant"] - 1,
            "lost": [(context.analysis.schedule[0]["iterative"], context.analysis.schedule[0]["oneshot"], weak)]}
    md = render_source(TEMPLATE, replace(context, tests=lost))
    assert f"keeps {lost['holm']} of the {context.tests['significant']} significant differences; not kept: " \
           "Iterative L1 90% against One-shot L1 90% (p = 0.04)." in md


def test_the_results_say_what_retraining_alone_moves_beside_the_paired_tests(tmp_path, rows, quick_config):
    rows[2] |= {"seeds": [0, 1, 2], "seeds_run": 3, "accuracy_seeds": [0.50, 0.52, 0.55], "accuracy_mean": 0.5233,
                "accuracy_std": 0.0252}
    seeds = [rows[0]["accuracy"], rows[0]["accuracy"] - 0.011]
    rows[0] |= {"seeds": [0, 1], "seeds_run": 2, "accuracy_seeds": seeds, "accuracy_mean": sum(seeds) / 2,
                "accuracy_std": 0.0078}
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    spread = context.analysis.seed_spread
    assert spread["widest"] is rows[2] and spread["baseline_range"] == pytest.approx(0.011)
    md = render_source(TEMPLATE, context)
    assert (f"retrained with other seeds, 1 model varied by up to 2.52 points of standard deviation ({rows[2]['label']}, "
            "3 seeds), and the baseline's 2 seeds ended 1.1 points apart;") in md.replace("\u2019", "'")
    rows[2].pop("seeds_run")
    rows[0].pop("seeds_run")
    assert context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"})).analysis.seed_spread is None


def test_the_first_answer_sums_up_the_ablation_by_its_tests(tmp_path, rows, quick_config):
    settings = {**quick_config, "preset": "test", "ablation": ["it_l1_90", "os_l1_90", "os_rnd_90"]}
    context = context_of(rows, paper_inputs(rows, settings))
    steps = context.questions.iterative["chain"][1:]
    moved = [x for x in steps if x["test"]["significant"]]
    # each step's test pairs it with the row before, in that order: its difference is the step's change
    assert all(x["test"]["difference"] == pytest.approx(x["delta"], abs=1e-12) for x in steps)
    text = questions_section(render_source(TEMPLATE, context))
    one = text[text.index("**1."):].split("\n\n")[0]  # the answer's paragraph
    listed = ", ".join(f'"{x["row"]["label"]}" {points(x["delta"])} points' for x in moved)
    assert (f"In the ablation at the iterative row's budget (Section 4.2), {len(moved)} of its "
            f"2 changes moved accuracy significantly{f' ({listed})' if moved else ''}. Its best row") in \
        one.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')


@pytest.mark.parametrize("classes", [10, 64])
def test_openvinos_sparse_weights_are_ruled_out_by_the_classifiers_width(tmp_path, quick_config, classes):
    """OpenVINO decompresses sparse int8 weights only in matrix multiplications with channels in
    multiples of 64: the appendix says whether the classifier, the one such layer, qualifies."""
    rows = results_rows(tmp_path / "metrics")
    settings = {**quick_config, "preset": "test", "data": {**quick_config["data"], "num_classes": classes}}
    md = render_source(TEMPLATE, context_of(rows, paper_inputs(rows, settings)))
    verdict = "are not a multiple of 64" if classes % 64 else "are a multiple of 64"
    assert f"only the classifier is a matrix multiplication, and its {classes} outputs {verdict}" in md
    assert "OpenVINO's sparse weights serve only int8 matrix multiplications" in md.replace("\u2019", "'")


def test_a_models_budget_is_the_baselines_epochs_and_its_own_training(quick_config):
    """The main table's Epochs: a pruned row adds its fine-tuning to the baseline's epochs; a small
    dense net trained from scratch spends what its matched row does in all."""
    from scripts.lib.report.paper_tables import budget_epochs
    settings = {**quick_config, "small_dense": [{"name": "small", "matches": "iterative_channels_50"}]}
    rows = [{"name": "baseline"}, {"name": "iterative_channels_50"}, {"name": "small"}]
    train, ft = settings["train"]["epochs"], settings["prune"]["finetune"]["epochs"]
    assert budget_epochs(rows[0], rows, settings) == train
    assert budget_epochs(rows[1], rows, settings) == train + 2 * ft  # two steps
    assert budget_epochs(rows[2], rows, settings) == budget_epochs(rows[1], rows, settings)
    with pytest.raises(KeyError):  # a model the config does not name has no budget to state
        budget_epochs({"name": "unknown"}, rows, settings)


def test_an_ablation_step_that_also_raises_the_learning_rate_says_so(tmp_path, quick_config):
    """A step that changes the peak learning rate with its schedule does not credit the schedule alone."""
    hi = ("os_l1_90_hi", "One-shot L1 90%, lr 0.1", "l1_unstructured", "oneshot", 0.9, 1, 0.85, 0.1, 1.0)
    rows = results_rows(tmp_path / "metrics", MATRIX + [hi])
    inputs = paper_inputs(rows, {**quick_config, "preset": "test", "ablation": ["os_l1_90", "os_l1_90_hi"]})
    base_lr = quick_config["prune"]["finetune"]["lr"]
    for e in inputs["settings"]["experiments"]:
        if e["name"] == "os_l1_90_hi":
            e["finetune"] = {"lr": 0.1}
    context = context_of(rows, inputs)
    assert [x["lr"] for x in context.analysis.chain] == [base_lr, 0.1]
    one = questions_section(render_source(TEMPLATE, context))
    assert f"; the first also raises the peak learning rate from {base_lr:g} to 0.1" in one


def test_the_conclusion_credits_quantization_where_the_pick_is_int8(tmp_path, rows, quick_config):
    """The dense baseline in ONNX Runtime int8 is a faster runtime and a quantized model: the
    Conclusion says both, with what the runtime gives in fp32 alone."""
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    deploy = context.analysis.deploy
    last = deploy["batches"][-1]
    pick = deploy["picks"][last]
    conclusion = section_of(render_source(TEMPLATE, context), "## 7 Conclusion", "## References")
    assert pick["kind"] == "baseline" and pick["runtime"] == "onnxruntime_int8"  # the fixture's fastest
    (fp32,) = [o for o in deploy["options"] if o["kind"] == "baseline" and o["runtime"] == "onnxruntime"]
    assert (f"the runtime and its 8-bit quantization make the difference (ONNX Runtime in fp32 alone: "
            f"{ratio(fp32['speedup'][last])}x).") in conclusion
    assert "the runtime alone makes" not in conclusion


def test_a_mac_target_comparison_states_the_shares_each_model_reached(tmp_path, rows, quick_config):
    """Ranked to a MAC target, a criterion and its random control land near it, not on it: where
    their measured shares differ by more than half a point, the comparison states both."""
    inputs = paper_inputs(rows, {**quick_config, "preset": "test"})
    for e in inputs["settings"]["experiments"]:
        if e["name"] in ("os_ch_50", "os_rch_50"):
            e.update(target="macs", scope="global")
    by_name = {r["name"]: r for r in rows}
    by_name["os_ch_50"]["macs_ratio"], by_name["os_rch_50"]["macs_ratio"] = 0.286, 0.267
    line = line_starting(render_source(TEMPLATE, context_of(rows, inputs)), "At 50.0 % of the MACs removed")
    assert "; measured, it removed 71.4 % of the MACs and its control 73.3 %." in line
    by_name["os_rch_50"]["macs_ratio"] = 0.284  # within half a point: nothing to add
    line = line_starting(render_source(TEMPLATE, context_of(rows, inputs)), "At 50.0 % of the MACs removed")
    assert "measured, it removed" not in line


def test_a_masked_models_int8_times_are_set_beside_its_operators_left_in_fp32(tmp_path, rows, quick_config):
    """The abstract states a masked model's fp32 times; the appendix gives its int8 times with the
    operators the quantizer left in fp32, which the baseline's int8 model does not have."""
    sparsest = max((r for r in rows if r["strategy"].endswith("_unstructured")), key=lambda r: r["sparsity_prunable"])
    sparsest["int8_fp32_nodes"] = ["/a/Conv", "/b/Conv", "/c/Clip"]
    context = context_of(rows, paper_inputs(rows, {**quick_config, "preset": "test"}))
    g = context.analysis.gap
    (fast, _), (slow, _) = range_of(sparsest, rows[0], runtimes=("onnxruntime_int8",))[::-1]
    span = f"{ratio(1 / fast)}x" + (f" to {ratio(1 / slow)}x" if ratio(1 / fast) != ratio(1 / slow) else "")
    assert g["int8_time_range"]["low"]["ratio"] == pytest.approx(1 / fast)
    line = line_starting(render_source(TEMPLATE, context).replace("\u2019", "'"), "**int8 and a masked model.**")
    assert f"In ONNX Runtime int8 the sparsest masked model ({sparsest['label']}) takes {span} the baseline's time" in line
    assert f"the quantizer left 3 of its operators in fp32 (the baseline: {len(rows[0]['int8_fp32_nodes'])})" in line
