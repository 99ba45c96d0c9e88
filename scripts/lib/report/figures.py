"""The paper's figures, from results files only (the visualise stage, scripts/figures.py).

Each figure is one function `plot_<name>` here and one entry in
scripts.lib.planning.registry.FIGURES, which says what the function is given (results rows,
iterative histories, or checkpoints) and where the paper shows it.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from scripts.lib.files import atomic_output, load_torch, read_json  # noqa: E402
from scripts.lib.mobilenet import FIRST_CONV  # noqa: E402 (torch-free: only the kernel figure needs torch)
from scripts.lib.planning.matrix import curves  # noqa: E402
from scripts.lib.planning.registry import CHANNELS, DENSE, FIGURES, SCHEDULES, STRATEGIES  # noqa: E402
from scripts.lib.report.results import grid_entry  # noqa: E402

MB = 1e6
DPI = 150
# The LaTeX paper's text width (A4, 2.2 cm margins), in inches: a figure drawn this wide with
# 8-point text shows 8-point text when LaTeX places it at the full width.
TEXT_WIDTH = 6.5
plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 8, "figure.titlesize": 9})


# tab20, tab20b and tab20c: 60 distinct colours (the published study has 30 models; tab20 alone
# gave the 21st model the baseline's colour).
PALETTE = [*plt.cm.tab20.colors, *plt.cm.tab20b.colors, *plt.cm.tab20c.colors]


def model_color(i: int):
    """One colour per model, so that no two models look alike; more models than colours is an error."""
    if i >= len(PALETTE):
        raise ValueError(f"model {i + 1}: the figures tell at most {len(PALETTE)} models apart by colour")
    return PALETTE[i]


def vector_path(path) -> Path:
    """The PDF beside a figure's PNG: the LaTeX paper shows it, paper.md the PNG."""
    return Path(path).with_suffix(".pdf")


def _save(fig, path) -> None:
    # Fixed metadata so an unchanged figure is byte-identical between runs.
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png", metadata={"Software": None})
    with atomic_output(vector_path(path)) as tmp:
        fig.savefig(tmp, bbox_inches="tight", format="pdf",
                    metadata={"Creator": None, "Producer": None, "CreationDate": None})
    plt.close(fig)


def pareto_front(points: list[tuple[float, float]], maximise_x: bool) -> list[int]:
    """Indices of points not dominated in (x, accuracy): higher accuracy and better x."""
    front = []
    for i, (x, acc) in enumerate(points):
        dominated = any(
            (a >= acc and (xx >= x if maximise_x else xx <= x)) and (a > acc or xx != x)
            for j, (xx, a) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def accuracy_error(rows) -> list[list[float]]:
    """matplotlib's yerr/xerr: distances (points) from each accuracy to its Wilson 95 % interval ends."""
    return [[(r["accuracy"] - r["accuracy_ci"][0]) * 100 for r in rows],
            [(r["accuracy_ci"][1] - r["accuracy"]) * 100 for r in rows]]


def below(fig, handles, labels) -> None:
    """A figure-wide legend under the panels, two columns: the saved (tight) figure grows downwards,
    not sideways, so its text keeps its size at the text width."""
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=2, fontsize=8, frameon=False)


def plot_pareto(rows, out) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 3.0))
    panels = [("removed_fraction", "Prunable weights zeroed or removed (%)", 100, True),
              ("gzip_bytes", "Checkpoint size, gzip (MB)", 1 / MB, False)]
    markers = "osD^vP*Xhp"
    err = accuracy_error(rows)  # Wilson 95 % intervals
    for ax, (key, xlabel, scale, maximise) in zip(axes, panels):
        pts = [(r[key] * scale, r["accuracy"] * 100) for r in rows]
        for i, ((x, y), r) in enumerate(zip(pts, rows)):
            # one marker and colour per model; the legend names them (labels would overlap)
            ax.errorbar(x, y, yerr=[[err[0][i]], [err[1][i]]], fmt=markers[i % len(markers)], ms=6,
                        color=model_color(i), capsize=2, zorder=3, label=r["label"])
        front = sorted((pts[i] for i in pareto_front(pts, maximise)), key=lambda p: p[0])
        ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, label="Pareto frontier", zorder=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Top-1 test accuracy (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout()
    below(fig, handles, labels)
    _save(fig, out)


RUNTIMES = {"pytorch": ("PyTorch eager", "o"), "onnxruntime": ("ONNX Runtime", "s"),
            "onnxruntime_int8": ("ONNX Runtime int8", "^")}


def plot_latency_macs(rows, out) -> None:
    """Latency against MACs per model, one panel per batch size (all the job's threads).

    The dotted line through the baseline is latency proportional to MACs: the speed-up
    that removing arithmetic allows. Masked models sit at the baseline's MACs.
    """
    grid0 = rows[0]["latency_grid"]
    threads = max(g["latency_threads"] for g in grid0)
    batches = sorted({g["latency_batch_size"] for g in grid0})
    fig, axes = plt.subplots(1, len(batches), figsize=(TEXT_WIDTH, 3.2), squeeze=False)
    base_macs = rows[0]["macs"]
    for ax, b in zip(axes[0], batches):
        for runtime, (name, marker) in RUNTIMES.items():
            pts = []
            for i, r in enumerate(rows):
                pts.append((r["macs"] / 1e6, grid_entry(r["latency_grid"], runtime, b, threads)["latency_ms"]))
                ax.scatter(*pts[-1], marker=marker, color=model_color(i), s=40, zorder=3,
                           label=r["label"] if runtime == "pytorch" else None)
            lo = min(r["macs"] for r in rows) / base_macs
            ax.plot([base_macs / 1e6 * lo, base_macs / 1e6], [pts[0][1] * lo, pts[0][1]], ":", color="grey",
                    zorder=2)
            ax.annotate(name, pts[0], textcoords="offset points", xytext=(-10, -12), ha="right", fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, not powers of ten
            axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))  # a decade or less: label it
        ax.set_xlabel("MACs per image (millions)")
        ax.set_ylabel("Latency per batch (ms)")
        ax.set_title(f"Batch {b}, {threads} thread{'s' if threads > 1 else ''}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout()
    below(fig, handles, labels)
    _save(fig, out)


def plot_curves(rows, out) -> None:
    """Accuracy against sparsity per masking curve, against MACs per channel-removal curve."""
    # dense controls prune nothing: no target to draw a curve along
    groups = [g for g in curves(rows) if STRATEGIES[g[0]["strategy"]].family != DENSE]
    fig, (ax_sp, ax_macs) = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 2.7))
    base = rows[0]
    for i, group in enumerate(groups):
        channels = STRATEGIES[group[0]["strategy"]].family == CHANNELS
        label = f"{SCHEDULES[group[0]['schedule']].phrase} {STRATEGIES[group[0]['strategy']].phrase}"
        ax = ax_macs if channels else ax_sp
        xs = [r["macs"] / 1e6 if channels else r["removed_fraction"] * 100 for r in group]
        ax.errorbar(xs, [r["accuracy"] * 100 for r in group], yerr=accuracy_error(group), fmt="o-", capsize=2,
                    color=model_color(i), label=label)
    ax_sp.set_xlabel("Prunable weights zeroed (%)")
    ax_macs.set_xlabel("MACs per image (millions)")
    for ax, kind in ((ax_sp, "masking"), (ax_macs, "channel-removal")):
        ax.set_ylabel("Top-1 test accuracy (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.axhline(base["accuracy"] * 100, color="k", ls="--", lw=1, label="baseline")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {kind} curve in this configuration", ha="center", transform=ax.transAxes)
            ax.set_yticks([])
    fig.tight_layout()
    _save(fig, out)


def plot_leaderboard(rows, out) -> None:
    ranked = sorted(rows, key=lambda r: r["accuracy"])
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 0.3 * len(ranked) + 0.8))
    bars = ax.barh([r["label"] for r in ranked], [r["accuracy"] * 100 for r in ranked], color="tab:blue",
                   xerr=accuracy_error(ranked), capsize=2, error_kw={"lw": 0.8})
    seeded = False
    for bar, r in zip(bars, ranked):
        ax.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, f"{r['accuracy'] * 100:.1f}",
                va="center", fontsize=8)
        if r.get("accuracy_seeds"):  # the spread over seeds: every seed's accuracy as a dot
            y = bar.get_y() + bar.get_height() / 2
            ax.scatter([a * 100 for a in r["accuracy_seeds"]], [y] * len(r["accuracy_seeds"]), s=12,
                       color="black", zorder=3, label=None if seeded else "one seed")
            seeded = True
    if seeded:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("Top-1 test accuracy (%)")
    ax.set_title("Leaderboard")
    _save(fig, out)


def plot_evolution(histories, out) -> None:
    # A dense fine-tune of an iterative schedule (a control) removes nothing: its steps are not pruning steps.
    histories = [h for h in histories if STRATEGIES[h["experiment"]["strategy"]].family != DENSE]
    fig, (ax_acc, ax_sp) = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 3.0))
    for h in histories:
        steps = [s["step"] for s in h["steps"]]
        line, = ax_acc.plot(steps, [s["val_accuracy"] * 100 for s in h["steps"]], "o-", label=h["label"])
        ax_acc.plot(steps, [s["val_accuracy_pruned"] * 100 for s in h["steps"]], "x:", color=line.get_color())
        ax_sp.plot(steps, [s["sparsity"] * 100 for s in h["steps"]], "o-", label=h["label"])
    if not histories:
        ax_acc.text(0.5, 0.5, "no iterative experiment in this configuration", ha="center", transform=ax_acc.transAxes)
    ax_acc.set_title("Validation accuracy per step\n(x: right after pruning, o: after fine-tuning)", fontsize=9)
    ax_acc.set_xlabel("Pruning step")
    ax_acc.set_ylabel("Validation accuracy (%)")
    ax_sp.set_title("Prunable weights zeroed or removed, per step", fontsize=9)
    ax_sp.set_xlabel("Pruning step")
    ax_sp.set_ylabel("Zeroed or removed (%)")
    for ax in (ax_acc, ax_sp):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(alpha=0.3)
        if histories:
            ax.legend(fontsize=8)
    _save(fig, out)


def strategy_family(row: dict) -> str:
    """A row's family of strategies; a strategy outside the registry (a control such as a dense
    fine-tune) is its own."""
    return STRATEGIES[row["strategy"]].family if row["strategy"] in STRATEGIES else row["strategy"]


def is_control(strategy: str) -> bool:
    """A strategy that is another's random control (the registry says whose)."""
    return any(s.control == strategy for s in STRATEGIES.values())


# Legend names; "none" is the strategy of the rows that prune nothing and are not the baseline:
# the small dense nets (scripts.lib.report.results).
FAMILY_NAMES = {"masking": "masked", CHANNELS: "channels removed", DENSE: "dense fine-tune (control)",
                "none": "small dense, from scratch (control)"}


def plot_macs(rows, literature: list[dict], out) -> None:
    """Accuracy against MACs: every model, one colour per family (controls hollow-crossed), and
    the published reference points, open markers (same network) or dotted lines (other MACs)."""
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.0))
    base = rows[0]
    families = list(dict.fromkeys(strategy_family(r) for r in rows[1:]))
    err = accuracy_error(rows)
    ax.errorbar(base["macs"] / 1e6, base["accuracy"] * 100, yerr=[[err[0][0]], [err[1][0]]], fmt="*", ms=11,
                color="black", capsize=2, zorder=4, label=base["label"])
    for k, fam in enumerate(families):
        for control in (False, True):
            idx = [i for i, r in enumerate(rows) if i and strategy_family(r) == fam
                   and is_control(r["strategy"]) == control]
            if idx:
                ax.errorbar([rows[i]["macs"] / 1e6 for i in idx], [rows[i]["accuracy"] * 100 for i in idx],
                            yerr=[[err[0][i] for i in idx], [err[1][i] for i in idx]], fmt="x" if control else "o",
                            ms=5, capsize=2, color=plt.cm.tab10(k), zorder=3, ls="none",
                            label=f"{FAMILY_NAMES.get(fam, fam)}{', random control' if control else ''}")
    stock = [p for p in literature if p["network"] == "stock"]
    for j, p in enumerate(stock):
        ax.plot(base["macs"] / 1e6, p["accuracy"] * 100, ["s", "D", "^", "v"][j % 4], mfc="none", ms=7,
                color="tab:gray", ls="none", label=f"published: {p['label']} ({p['source']})")
    for j, p in enumerate(q for q in literature if q["network"] == "cifar_stem"):
        ax.axhline(p["accuracy"] * 100, color="tab:gray", ls=[":", "-."][j % 2], lw=1,
                   label=f"published: {p['label']} ({p['source']})")
    ax.set_xlabel("MACs per image (millions)")
    ax.set_ylabel("Top-1 test accuracy (%)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    ours = [i for i, lab in enumerate(labels) if not lab.startswith("published")]
    theirs = [i for i, lab in enumerate(labels) if lab.startswith("published")]
    ax.add_artist(ax.legend([handles[i] for i in ours], [labels[i] for i in ours], loc="lower center",
                            title="this study", fontsize=8))
    if theirs:  # below the axes: the quoted points' labels name their sources
        ax.legend([handles[i] for i in theirs], [labels[i] for i in theirs], loc="upper left",
                  bbox_to_anchor=(0, -0.15), frameon=False, fontsize=8)
    _save(fig, out)


def plot_training(histories, out) -> None:
    """Training and validation accuracy per epoch of each history given (the baseline's)."""
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH * FIGURES["training"].width, 2.3))
    for h in histories:
        epochs = [e["epoch"] for e in h["epochs"]]
        train, = ax.plot(epochs, [e["train_accuracy"] * 100 for e in h["epochs"]], "-", label="training batches")
        val, = ax.plot(epochs, [e["val_accuracy"] * 100 for e in h["epochs"]], "-", label="validation")
        best = h["epochs"][[e["epoch"] for e in h["epochs"]].index(h["best_epoch"])]
        ax.plot(best["epoch"], best["val_accuracy"] * 100, "o", color=val.get_color(), label="kept epoch")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Accuracy (%)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if histories:
        ax.legend(loc="lower right")
    _save(fig, out)


def first_conv_weights(ckpt_path):
    return load_torch(ckpt_path)["state_dict"][f"{FIRST_CONV}.weight"].float()  # load_torch imports torch


KERNEL_COLUMNS = 4  # models per row of the kernel figure
FILTERS_PER_ROW = 8  # filters per row of one model's panel


def kernel_mosaic(w, per_row: int = FILTERS_PER_ROW):
    """One model's first-conv filters as one image: each filter a 3x9 tile (|w| of its R, G and B
    kernels side by side), `per_row` tiles a row, one blank (NaN) cell between tiles."""
    import numpy as np

    n, _, kh, kw = w.shape
    rows = -(-n // per_row)
    mosaic = np.full((rows * (kh + 1) - 1, per_row * (3 * kw + 1) - 1), np.nan)
    for i in range(n):
        r, c = divmod(i, per_row)
        mosaic[r * (kh + 1):r * (kh + 1) + kh, c * (3 * kw + 1):c * (3 * kw + 1) + 3 * kw] = \
            np.concatenate(list(w[i].abs().numpy()), axis=1)
    return mosaic


def plot_kernels(ckpt_paths, out, labels) -> None:
    """Every model's first-conv filters in one figure, one panel per model, on one colour scale.

    Zero weights are black, so pruned weights show as black cells; a channel-removed model's
    panel shows only the filters it kept.
    """
    weights = [first_conv_weights(p) for p in ckpt_paths]
    vmax = max(w.abs().max().item() for w in weights)
    rows = -(-len(weights) // KERNEL_COLUMNS)
    fig, axes = plt.subplots(rows, KERNEL_COLUMNS, figsize=(TEXT_WIDTH, 1.0 * rows + 0.5), squeeze=False,
                             layout="constrained")  # the titles get their room
    cmap = plt.get_cmap("magma").with_extremes(bad="white")
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(weights):
            w = weights[i]
            image = ax.imshow(kernel_mosaic(w), cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            zeros = (w == 0).float().mean().item() * 100
            title = textwrap.fill(labels[i], 22)
            ax.set_title(f"{title}\n{w.shape[0]} filters, {zeros:.1f} % zeros", fontsize=8)
    fig.colorbar(image, ax=axes.ravel().tolist(), orientation="horizontal", shrink=0.3, aspect=30, label="|w|")
    _save(fig, out)


LITERATURE_NETWORKS = ("stock", "cifar_stem")


def check_literature(points: list[dict], where) -> list[dict]:
    """Published reference points (paper/literature.yaml's `points`), each with its source."""
    for p in points:
        missing = {"label", "accuracy", "network", "source"} - set(p)
        if missing or p["network"] not in LITERATURE_NETWORKS or not 0 <= p["accuracy"] <= 1:
            raise ValueError(f"{where}: reference point {p!r} needs label, accuracy (0-1), source and a network "
                             f"of {LITERATURE_NETWORKS}")
    return points


def read_literature(path) -> list[dict]:
    """The checked points of a literature file."""
    import yaml

    with open(path) as f:
        return check_literature(yaml.safe_load(f)["points"], path)


def plot_function(name: str):
    """The function that draws registry figure `name`."""
    try:
        return globals()[f"plot_{name}"]
    except KeyError:
        raise LookupError(f"figure {name!r} is registered but scripts.lib.report.figures has no plot_{name}") from None


def draw(name: str, out, results=None, histories=(), labels=(), ckpts=(), literature=()) -> None:
    """Draw registry figure `name` from the inputs its entry declares (`literature`: the
    published reference points, for a figure whose entry asks for them)."""
    figure, plot = FIGURES[name], plot_function(name)
    if figure.literature:
        if not literature:
            raise ValueError(f"figure {name} needs the published reference points (paper/literature.yaml)")
        plot(read_json(results), check_literature(literature, name), out[0])
    elif figure.inputs == "results":
        plot(read_json(results), out[0])
    elif figure.inputs == "histories":
        plot([{**read_json(h), "label": lab} for h, lab in zip(histories, labels, strict=True)], out[0])
    else:
        if len(ckpts) != len(labels) or len(out) != 1:
            raise ValueError("--ckpts and --labels need the same number of entries, and --out one file")
        plot(ckpts, out[0], labels)
