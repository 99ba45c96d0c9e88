"""Figures: what each registry figure draws, read back from matplotlib's own objects.

Every plot function hands its Figure to figures._save; the tests replace _save with a
function that keeps the Figure (and, in the registry test, still writes the PNG), then
compare the axes, labels, scales, series and their data with the rows they were drawn from.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import matplotlib.colors
import matplotlib.legend
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer, ErrorbarContainer

from fake_results import MATRIX, results_rows
from scripts.lib.models.network import build_model, save_checkpoint
from scripts.lib.planning.matrix import curves
from scripts.lib.planning.registry import BASELINE, FIGURES
from scripts.lib.report import figures
from scripts.lib.report.captions import FIGURE_CAPTIONS
from scripts.lib.report.context import figure_list
from scripts.lib.report.figures import draw, pareto_front
from scripts.lib.report.results import fold_replicas
from scripts.lib.report.results import grid_entry

PNG = b"\x89PNG\r\n\x1a\n"
LITERATURE = Path(__file__).parent.parent / "paper" / "literature.yaml"


@pytest.fixture
def drawn(monkeypatch):
    """{output path: Figure} of every figure drawn in the test; nothing is written."""
    captured = {}

    def keep(fig, path):
        captured[Path(path)] = fig
        figures.plt.close(fig)  # what _save does after writing: the Figure and its artists stay readable

    monkeypatch.setattr(figures, "_save", keep)
    return captured


@pytest.fixture
def rows(tmp_path):
    return results_rows(tmp_path / "metrics")


def one(drawn: dict):
    (fig,) = drawn.values()
    return fig


def suptitle(fig) -> str:
    return fig.get_suptitle()


def errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def points(container: ErrorbarContainer) -> np.ndarray:
    """The (x, y) points an errorbar call drew."""
    return container.lines[0].get_xydata()


def bar_segments(container) -> list[np.ndarray]:
    """Each error bar's two ends, as drawn."""
    (bars,) = container.lines[2]
    return [np.asarray(s) for s in bars.get_segments()]


def ci_points(rows) -> list[tuple[float, float]]:
    return [(r["accuracy_ci"][0] * 100, r["accuracy_ci"][1] * 100) for r in rows]


def same_color(a, b) -> bool:
    return np.allclose(matplotlib.colors.to_rgba(a), matplotlib.colors.to_rgba(b))


# --- pareto ---------------------------------------------------------------------------------

def test_pareto_front_keeps_exactly_the_undominated_points():
    points_ = [(0.0, 94.0), (0.5, 93.0), (0.9, 83.0), (0.9, 51.0), (0.5, 90.0), (0.95, 10.0)]
    assert pareto_front(points_, maximise_x=True) == [0, 1, 2, 5]
    # smaller x is better (file size): only the most accurate of equal sizes, and smaller files
    assert pareto_front([(8.0, 94.0), (4.0, 93.0), (4.0, 80.0), (9.0, 95.0)], maximise_x=False) == [0, 1, 3]


# the fake study's undominated models, worked out by hand: zeroed share up and accuracy up
# (left); gzip size down and accuracy up (right), each front in the order of its x
PARETO_BY_HAND = {0: [BASELINE, "os_l1_50", "os_ch_50", "it_l1_90"], 1: ["os_ch_50", "os_l1_50", BASELINE]}


def test_pareto_draws_every_model_with_its_interval_and_the_front_of_each_panel(rows, drawn, tmp_path):
    figures.plot_pareto(rows, tmp_path / "p.png")
    fig = one(drawn)
    assert len(fig.axes) == 2
    assert not suptitle(fig)  # the paper's caption names the figure
    panels = [("removed_fraction", 100, True, "Prunable weights zeroed or removed (%)"),
              ("gzip_bytes", 1e-6, False, "Checkpoint size, gzip (MB)")]
    by_name = {r["name"]: r for r in rows}
    for p, (ax, (key, scale, maximise, xlabel)) in enumerate(zip(fig.axes, panels)):
        assert (ax.get_xlabel(), ax.get_ylabel()) == (xlabel, "Top-1 test accuracy (%)")
        assert ax.get_xscale() == ax.get_yscale() == "linear"
        expected = [(r[key] * scale, r["accuracy"] * 100) for r in rows]
        bars = errorbars(ax)
        assert len(bars) == len(rows), "one errorbar series per model"
        for bar, r, (x, y), (lo, hi), i in zip(bars, rows, expected, ci_points(rows), range(len(rows))):
            assert np.allclose(points(bar), [(x, y)]), r["name"]
            (segment,) = bar_segments(bar)  # the Wilson interval, vertical, at the model's x
            assert np.allclose(segment, [(x, lo), (x, hi)]), r["name"]
            assert bar.get_label() == r["label"]
            assert same_color(bar.lines[0].get_color(), figures.model_color(i))
        assert len({b.lines[0].get_marker() for b in bars}) == len(rows), "one marker per model"
        (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto frontier"]
        assert front.get_linestyle() == "--"
        on_front = sorted((expected[i] for i in pareto_front(expected, maximise)), key=lambda q: q[0])
        assert np.allclose(front.get_xydata(), on_front)
        by_hand = [(by_name[n][key] * scale, by_name[n]["accuracy"] * 100) for n in PARETO_BY_HAND[p]]
        assert np.allclose(front.get_xydata(), by_hand)
    (legend,) = fig.legends  # one legend for both panels, below them
    assert [t.get_text() for t in legend.get_texts()] == ["Pareto frontier"] + [r["label"] for r in rows]


# --- latency against MACs -------------------------------------------------------------------

def test_latency_macs_has_a_log_log_panel_per_batch_size_with_every_model_in_every_runtime(rows, drawn, tmp_path):
    figures.plot_latency_macs(rows, tmp_path / "l.png")
    fig = one(drawn)
    batches, threads = [1, 64], 2  # the fake timing grid's
    assert len(fig.axes) == len(batches)
    assert not suptitle(fig)  # the paper's caption names the figure
    base = rows[0]
    lo = min(r["macs"] for r in rows) / base["macs"]
    for ax, b in zip(fig.axes, batches):
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("MACs per image (millions)", "Latency per batch (ms)")
        assert ax.get_title().startswith(f"Batch {b}, {threads} threads")
        scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert len(scatters) == len(figures.RUNTIMES) * len(rows)
        k = 0
        for runtime in figures.RUNTIMES:
            for i, r in enumerate(rows):
                ms = grid_entry(r["latency_grid"], runtime, b, threads)["latency_ms"]
                assert np.allclose(scatters[k].get_offsets(), [(r["macs"] / 1e6, ms)]), (runtime, r["name"])
                assert same_color(scatters[k].get_facecolor()[0], figures.model_color(i))
                k += 1
        # one dotted line per runtime: latency proportional to MACs, through the baseline's point
        dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert len(dotted) == len(figures.RUNTIMES)
        for line, runtime in zip(dotted, figures.RUNTIMES):
            ms = grid_entry(base["latency_grid"], runtime, b, threads)["latency_ms"]
            assert np.allclose(line.get_xydata(), [(base["macs"] / 1e6 * lo, ms * lo), (base["macs"] / 1e6, ms)])
        names = {t.get_text(): t.xy for t in ax.texts}
        assert set(names) == {name for name, _ in figures.RUNTIMES.values()}
        for runtime, (name, _) in figures.RUNTIMES.items():  # each runtime named at its baseline point
            ms = grid_entry(base["latency_grid"], runtime, b, threads)["latency_ms"]
            assert np.allclose(names[name], (base["macs"] / 1e6, ms))
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [r["label"] for r in rows]  # each model once


# --- curves ---------------------------------------------------------------------------------

# two masking curves (L1, random), one channel curve, a model on no curve; out of target order
CURVE_MATRIX = [MATRIX[0],
                ("os_l1_90", "One-shot L1 90%", "l1_unstructured", "oneshot", 0.9, 1, 0.5123, 0.1, 1.0),
                ("os_l1_30", "One-shot L1 30%", "l1_unstructured", "oneshot", 0.3, 1, 0.9101, 0.7, 1.0),
                ("os_rnd_30", "One-shot random 30%", "random_unstructured", "oneshot", 0.3, 1, 0.6012, 0.7, 1.0),
                ("it_l1_90", "Iterative L1 90%", "l1_unstructured", "iterative", 0.9, 3, 0.8277, 0.1, 0.99),
                ("os_rnd_90", "One-shot random 90%", "random_unstructured", "oneshot", 0.9, 1, 0.1161, 0.1, 1.0),
                ("os_ch_50", "One-shot channels 50%", "l2_channels", "oneshot", 0.5, 1, 0.8555, 0.5, 0.6),
                ("os_ch_30", "One-shot channels 30%", "l2_channels", "oneshot", 0.3, 1, 0.8811, 0.7, 0.8)]


def test_curves_draw_each_curve_on_its_panel_sorted_by_target_with_intervals(tmp_path, drawn):
    rows = results_rows(tmp_path / "metrics", CURVE_MATRIX)
    figures.plot_curves(rows, tmp_path / "c.png")
    fig = one(drawn)
    ax_sp, ax_macs = fig.axes
    assert not suptitle(fig)  # the paper's caption names the figure
    assert ax_sp.get_xlabel() == "Prunable weights zeroed (%)"
    assert ax_macs.get_xlabel() == "MACs per image (millions)"
    by_name = {r["name"]: r for r in rows}
    expected = {ax_sp: [("one-shot L1 magnitude", ["os_l1_30", "os_l1_90"]),
                        ("one-shot random", ["os_rnd_30", "os_rnd_90"])],
                ax_macs: [("one-shot group-L2 channel", ["os_ch_30", "os_ch_50"])]}
    assert sum(len(v) for v in expected.values()) == len(curves(rows))
    for ax, drawn_curves in expected.items():
        assert ax.get_ylabel() == "Top-1 test accuracy (%)"
        bars = errorbars(ax)
        assert [b.get_label() for b in bars] == [label for label, _ in drawn_curves]
        for bar, (label, names) in zip(bars, drawn_curves):
            group = [by_name[n] for n in names]
            xs = [r["macs"] / 1e6 if ax is ax_macs else r["removed_fraction"] * 100 for r in group]
            assert np.allclose(points(bar), list(zip(xs, [r["accuracy"] * 100 for r in group]))), label
            assert bar.lines[0].get_linestyle() == "-", "a curve joins its points"
            assert np.allclose(bar_segments(bar), [[(x, lo), (x, hi)] for x, (lo, hi) in zip(xs, ci_points(group))])
        (baseline,) = [line for line in ax.get_lines() if line.get_label() == "baseline"]
        assert np.allclose(baseline.get_ydata(), rows[0]["accuracy"] * 100) and baseline.get_linestyle() == "--"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["baseline"] + [lab for lab, _ in drawn_curves]
    assert not fig.axes[0].texts and not fig.axes[1].texts
    colours = {matplotlib.colors.to_hex(b.lines[0].get_color()) for ax in fig.axes for b in errorbars(ax)}
    assert len(colours) == 3, "one colour per curve"


def test_curves_say_so_on_a_panel_without_a_curve(rows, drawn, tmp_path):
    figures.plot_curves(rows, tmp_path / "c.png")  # the plain fake study: one L1 curve, no channel curve
    ax_sp, ax_macs = one(drawn).axes
    assert [b.get_label() for b in errorbars(ax_sp)] == ["one-shot L1 magnitude"]
    assert not errorbars(ax_macs) and ax_macs.get_legend() is None and not ax_macs.get_lines()
    assert [t.get_text() for t in ax_macs.texts] == ["no channel-removal curve in this configuration"]


# --- leaderboard ----------------------------------------------------------------------------

def test_leaderboard_ranks_every_model_with_its_interval_value_and_seeds(rows, drawn, tmp_path):
    fold_replicas(rows, [{"name": "os_l1_50_seed1", "replica_of": "os_l1_50", "seed": 1, "accuracy": 0.8712},
                         {"name": "os_l1_50_seed2", "replica_of": "os_l1_50", "seed": 2, "accuracy": 0.9056}], 0)
    figures.plot_leaderboard(rows, tmp_path / "b.png")
    fig = one(drawn)
    (ax,) = fig.axes
    assert (ax.get_title(), ax.get_xlabel(), ax.get_xlim()) == ("Leaderboard", "Top-1 test accuracy (%)", (0, 105))
    ranked = sorted(rows, key=lambda r: r["accuracy"])
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_width() for b in bars] == pytest.approx([r["accuracy"] * 100 for r in ranked])
    centres = [b.get_y() + b.get_height() / 2 for b in bars]
    fig.draw_without_rendering()  # the category axis names its ticks when drawn
    ticks = {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    assert [ticks[round(c)] for c in centres] == [r["label"] for r in ranked]
    assert np.allclose(bar_segments(bars.errorbar), [[(lo, c), (hi, c)] for (lo, hi), c in zip(ci_points(ranked), centres)])
    assert [t.get_text() for t in ax.texts] == [f"{r['accuracy'] * 100:.1f}" for r in ranked]
    assert [t.get_position()[1] for t in ax.texts] == pytest.approx(centres)
    (dots,) = [c for c in ax.collections if isinstance(c, PathCollection)]  # the one seeded row's seeds
    seeded = [r["name"] for r in ranked].index("os_l1_50")
    assert np.allclose(dots.get_offsets(), [(a, centres[seeded]) for a in (90.12, 87.12, 90.56)])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["one seed"]


def test_leaderboard_without_seeds_has_no_dots_and_no_legend(rows, drawn, tmp_path):
    figures.plot_leaderboard(rows, tmp_path / "b.png")
    (ax,) = one(drawn).axes
    assert not [c for c in ax.collections if isinstance(c, PathCollection)] and ax.get_legend() is None


def test_every_model_of_a_large_study_has_a_colour_of_its_own():
    colours = [figures.model_color(i) for i in range(60)]
    assert len(set(colours)) == 60  # the published study has 30 models; tab20 alone repeated from the 21st
    with pytest.raises(ValueError, match="at most 60 models"):
        figures.model_color(60)


# --- evolution ------------------------------------------------------------------------------

def history(label: str, steps: int, drop: float, strategy: str = "l1_unstructured") -> dict:
    return {"label": label, "experiment": {"strategy": strategy},
            "steps": [{"step": k, "val_accuracy": 0.9 - drop * k, "val_accuracy_pruned": 0.8 - drop * k,
                       "sparsity": 0.9 * (1 - 0.5 ** k)} for k in range(1, steps + 1)]}


def test_evolution_draws_both_accuracies_and_the_sparsity_of_every_step(drawn, tmp_path):
    histories = [history("Iterative L1 90%", 3, 0.05), history("Iterative L2 30%", 2, 0.1, "l2_structured")]
    # a dense fine-tune along an iterative schedule prunes nothing: not drawn as pruning steps
    figures.plot_evolution(histories + [history("Dense, iterative budget", 3, 0.0, "dense")], tmp_path / "e.png")
    fig = one(drawn)
    ax_acc, ax_sp = fig.axes
    assert ax_acc.get_title().startswith("Validation accuracy per step")
    assert ax_sp.get_title() == "Prunable weights zeroed or removed, per step"
    assert [a.get_xlabel() for a in fig.axes] == ["Pruning step"] * 2
    assert (ax_acc.get_ylabel(), ax_sp.get_ylabel()) == ("Validation accuracy (%)", "Zeroed or removed (%)")
    acc_lines, sp_lines = ax_acc.get_lines(), ax_sp.get_lines()
    assert len(acc_lines) == 2 * len(histories) and len(sp_lines) == len(histories)
    for k, h in enumerate(histories):
        steps = [s["step"] for s in h["steps"]]
        tuned, pruned, sp = acc_lines[2 * k], acc_lines[2 * k + 1], sp_lines[k]
        assert np.allclose(tuned.get_xydata(), [(s["step"], s["val_accuracy"] * 100) for s in h["steps"]])
        assert np.allclose(pruned.get_xydata(), [(s["step"], s["val_accuracy_pruned"] * 100) for s in h["steps"]])
        assert np.allclose(sp.get_xydata(), list(zip(steps, [s["sparsity"] * 100 for s in h["steps"]])))
        assert (tuned.get_marker(), pruned.get_marker()) == ("o", "x")  # as the caption says
        assert same_color(tuned.get_color(), pruned.get_color()), "one colour per experiment"
    assert not same_color(acc_lines[0].get_color(), acc_lines[2].get_color())
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [h["label"] for h in histories]
        assert all(float(t).is_integer() for t in ax.xaxis.get_major_locator()()), "steps are whole numbers"


def test_evolution_without_iterative_experiments_says_so(drawn, tmp_path):
    figures.plot_evolution([], tmp_path / "e.png")
    ax_acc, ax_sp = one(drawn).axes
    assert not ax_acc.get_lines() and not ax_sp.get_lines() and ax_acc.get_legend() is None
    assert [t.get_text() for t in ax_acc.texts] == ["no iterative experiment in this configuration"]


# --- kernels --------------------------------------------------------------------------------

def test_kernels_draw_every_model_in_one_figure_one_tile_per_filter_on_one_colour_scale(tmp_path, drawn):
    torch.manual_seed(0)
    model = build_model(10)
    with torch.no_grad():
        model.features[0][0].weight[:4] = 0  # four pruned filters
    full = tmp_path / "full.pt"
    save_checkpoint(model, full, {"num_classes": 10, "name": "full"})
    narrow = tmp_path / "narrow.pt"  # a channel-pruned stem: 20 filters, larger weights
    w20 = torch.randn(20, 3, 3, 3) * 3
    w20[5, 1] = 0  # one input channel of one filter zeroed
    torch.save({"state_dict": {"features.0.0.weight": w20}, "meta": {}}, narrow)
    out = tmp_path / "kernels.png"
    figures.plot_kernels([full, narrow], out, ["Full", "Narrow"])
    assert list(drawn) == [out]  # one figure for all models
    fig = drawn[out]
    w32 = model.features[0][0].weight.detach()
    vmax = max(w32.abs().max().item(), w20.abs().max().item())
    assert vmax == w20.abs().max().item()  # the narrow model sets the scale of both
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(panels) == figures.KERNEL_COLUMNS  # one row of panels holds both models
    assert [len(a.images) for a in panels] == [1, 1] + [0] * (len(panels) - 2)
    for ax, w, label, zeros in ((panels[0], w32, "Full", 4 / 32), (panels[1], w20, "Narrow", 1 / 60)):
        (image,) = ax.images
        mosaic = np.asarray(image.get_array().filled(np.nan))
        n = w.shape[0]
        rows = -(-n // figures.FILTERS_PER_ROW)
        assert mosaic.shape == (rows * 4 - 1, figures.FILTERS_PER_ROW * 10 - 1)  # 3x9 tiles, one blank cell apart
        for i in range(n):
            r, c = divmod(i, figures.FILTERS_PER_ROW)
            tile = mosaic[r * 4:r * 4 + 3, c * 10:c * 10 + 9]
            assert np.allclose(tile, np.concatenate(list(w[i].abs().numpy()), axis=1)), (label, i)
        assert np.isnan(mosaic[3, 0]) and np.isnan(mosaic[0, 9])  # the gaps between tiles
        assert image.get_clim() == pytest.approx((0, vmax)) and image.get_cmap().name.startswith("magma")
        assert ax.get_title() == f"{label}\n{n} filters, {zeros * 100:.1f} % zeros"
        assert not ax.axison
    assert (np.asarray(panels[0].images[0].get_array())[0:3, 0:9] == 0).all(), "pruned filters are black"
    (colorbar,) = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert colorbar.get_xlabel() == "|w|"  # one scale for all, under the panels


# --- the registry: every figure, through draw(), to a PNG -----------------------------------

def test_the_paper_and_the_report_caption_each_figure_from_the_report_code():
    """Captions live with the drawing code (scripts/lib/report/captions.py): one per registry figure."""
    listed = [item for items in figure_list({n: f"figures/{n}.png" for n in FIGURES}).values() for item in items]
    assert {item["name"]: item["caption"] for item in listed} == FIGURE_CAPTIONS
    assert all(f"![{item['caption']}](figures/{item['name']})" in item["markdown"] for item in listed)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def test_every_registry_figure_draws_its_declared_inputs_into_pngs_of_its_size(tmp_path, monkeypatch):
    captured = {}
    real = figures._save

    def keep_and_save(fig, path):
        captured[Path(path)] = fig
        real(fig, path)

    monkeypatch.setattr(figures, "_save", keep_and_save)
    rows = results_rows(tmp_path / "metrics")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(rows))
    h = tmp_path / "h.json"
    h.write_text(json.dumps({k: history("It", 3, 0.1)[k] for k in ("experiment", "steps")}))  # as a prune job writes
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(baseline_history()))
    ckpts = []
    for name in ("a", "b"):
        model = build_model(10)
        with torch.no_grad():
            model.features[0][0].weight[:4] = 0  # pruned filters
        ckpts.append(tmp_path / f"{name}.pt")
        save_checkpoint(model, ckpts[-1], {"num_classes": 10, "name": name})
    expected_axes = {"macs": 1, "curves": 2, "training": 1, "pareto": 2, "leaderboard": 1, "evolution": 2,
                     "latency_macs": 2, "kernels": figures.KERNEL_COLUMNS + 1}
    assert set(expected_axes) == set(FIGURES)
    for name, figure in FIGURES.items():
        outs = [tmp_path / f"{name}.png"]
        labels = ["It"] if figure.inputs == "histories" else ["A", "B"]
        given = [baseline] if figure.histories == BASELINE else [h]
        draw(name, outs, results=results, histories=given, labels=labels, ckpts=ckpts,
             literature=figures.read_literature(LITERATURE))
        for out in outs:
            fig = captured.pop(out)
            assert len(fig.axes) == expected_axes[name], name
            width, height = png_size(out)
            # the figure's size at the DPI, give or take what the tight bounding box trims or
            # adds (long tick labels reach out of the leaderboard's figure)
            fw, fh = fig.get_size_inches() * figures.DPI
            assert 0.5 < width / fw < 1.5 and 0.5 < height / fh < 1.5, (name, width, height, fw, fh)
            assert figures.vector_path(out).read_bytes()[:5] == b"%PDF-"  # the LaTeX paper's copy
        assert not captured, name  # nothing else drawn
    with pytest.raises(ValueError, match="same number"):
        draw("kernels", outs, labels=["A"], ckpts=ckpts)


# --- accuracy against MACs, and the baseline's training ---------------------------------------

def baseline_history(best: int = 2) -> dict:
    return {"best_epoch": best, "epochs": [{"epoch": e, "train_accuracy": 0.3 * e, "val_accuracy": 0.25 * e + 0.1}
                                           for e in (1, 2, 3)]}


def test_macs_draws_every_model_at_its_macs_and_each_quoted_point_as_published(tmp_path, drawn):
    rows = results_rows(tmp_path / "metrics")
    literature = figures.read_literature(LITERATURE)
    figures.plot_macs(rows, literature, tmp_path / "m.png")
    (ax,) = drawn[tmp_path / "m.png"].axes
    drawn_points = {(round(x, 6), round(y, 6)) for line in ax.lines for x, y in zip(line.get_xdata(), line.get_ydata())
                    if len(line.get_xdata()) == 1 or line.get_linestyle() == "None"}
    for r in rows:  # every model, at its MACs and accuracy
        assert (round(r["macs"] / 1e6, 6), round(r["accuracy"] * 100, 6)) in drawn_points, r["name"]
    stock = [p for p in literature if p["network"] == "stock"]
    for p in stock:  # the same network: at the baseline's MACs
        assert (round(rows[0]["macs"] / 1e6, 6), round(p["accuracy"] * 100, 6)) in drawn_points
    lines = [line for line in ax.lines if line.get_linestyle() in (":", "-.")]
    assert sorted(line.get_ydata()[0] for line in lines) == sorted(
        p["accuracy"] * 100 for p in literature if p["network"] == "cifar_stem")
    labels = [t.get_text() for legend in ax.findobj(matplotlib.legend.Legend) for t in legend.get_texts()]
    for p in literature:  # each quoted point is marked as published and names its source
        assert f"published: {p['label']} ({p['source']})" in labels
    # as the caption says: the baseline a star, random-ranking controls crosses, every other model a circle
    markers = {c.get_label(): c.lines[0].get_marker() for c in ax.containers if isinstance(c, ErrorbarContainer)}
    assert markers.pop(rows[0]["label"]) == "*"
    assert {label: "x" if label.endswith(", random control") else "o" for label in markers} == markers
    assert sum(label.endswith(", random control") for label in markers) == 2  # the matrix's two random strategies
    control = dict(rows[1], name="dense_ft", strategy="dense_finetune", macs=rows[0]["macs"])
    figures.plot_macs([*rows, control], literature, tmp_path / "c.png")  # a strategy outside the registry
    labels = [t.get_text() for legend in drawn[tmp_path / "c.png"].axes[0].findobj(matplotlib.legend.Legend)
              for t in legend.get_texts()]
    assert "dense_finetune" in labels


def test_controls_draw_no_curve_and_are_named_as_controls(tmp_path, drawn):
    """Two dense fine-tunes with the same settings form a planner's curve along no target: the
    curves figure leaves them out; the MACs figure names both kinds of control in its legend."""
    controls = [("dense_a", "Dense A", "dense", "oneshot", 0.0, 1, 0.90, 1.0, 1.0),
                ("dense_b", "Dense B", "dense", "oneshot", 0.0, 1, 0.91, 1.0, 1.0),
                ("small_ch", "Small dense", "none", "none", 0.0, 0, 0.80, 0.5, 0.3)]
    rows = results_rows(tmp_path / "metrics", CURVE_MATRIX + controls)
    assert any(g[0]["strategy"] == "dense" for g in curves(rows))
    figures.plot_curves(rows, tmp_path / "c.png")
    labels = [b.get_label() for ax in drawn[tmp_path / "c.png"].axes for b in errorbars(ax)]
    assert labels == ["one-shot L1 magnitude", "one-shot random", "one-shot group-L2 channel"]
    figures.plot_macs(rows, figures.read_literature(LITERATURE), tmp_path / "m.png")
    legend = [t.get_text() for lg in drawn[tmp_path / "m.png"].axes[0].findobj(matplotlib.legend.Legend)
              for t in lg.get_texts()]
    assert {"dense fine-tune (control)", "small dense, from scratch (control)"} <= set(legend)
    assert "none" not in legend and "dense" not in legend


def test_reference_points_without_a_source_are_refused(tmp_path):
    bad = tmp_path / "lit.yaml"
    bad.write_text("points:\n  - {label: x, accuracy: 0.9, network: stock}\n")
    with pytest.raises(ValueError, match="source"):
        figures.read_literature(bad)
    with pytest.raises(ValueError, match="reference points"):
        draw("macs", [tmp_path / "m.png"], results=tmp_path / "r.json")
    from scripts.lib.planning.jobs import JobError, figure_job
    with pytest.raises(JobError, match="reference points"):  # the workflow must give them to the job
        figure_job({"experiments": []}, "macs")


def test_training_draws_train_and_validation_accuracy_per_epoch_and_the_kept_epoch(tmp_path, drawn):
    h = baseline_history(best=2)
    figures.plot_training([h], tmp_path / "t.png")
    (ax,) = drawn[tmp_path / "t.png"].axes
    train, val, kept = ax.lines
    assert list(train.get_ydata()) == pytest.approx([30, 60, 90]) and list(val.get_ydata()) == pytest.approx([35, 60, 85])
    assert (kept.get_xdata()[0], kept.get_ydata()[0]) == (2, pytest.approx(60))
