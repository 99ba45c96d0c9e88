"""The controls: what separates pruning from the training that comes with it.

Two kinds, each paired with the pruned model it controls and compared on the same test images:
- dense fine-tunes (strategy dense): the baseline fine-tuned with a pruned row's schedule and
  budget, nothing removed (its `control_of` names that row);
- small dense nets (config key small_dense): MobileNetV2 at the width whose MACs match a
  channel-removal experiment's model, trained from scratch for the baseline's epochs plus that
  experiment's fine-tuning (Liu et al., ICLR 2019); the width match is in its history.
"""
from __future__ import annotations

from scripts.lib.planning.config import (experiments_by_name, finetune_epochs, finetune_settings, small_dense_by_name,
                                         small_dense_epochs)
from scripts.lib.planning.registry import DENSE, STRATEGIES
from scripts.lib.report.formats import mega, pct, points
from scripts.lib.report.phrases import full_label, p_value, plural
from scripts.lib.report.stats import paired_test_of
from scripts.lib.report.tables import Table


# A fall of validation accuracy during training from scratch that the paper states: well beyond
# the epoch-to-epoch wobble of a plateau (a few tenths of a point).
FALL_STATED = 0.05


def largest_fall(history: dict) -> dict | None:
    """The largest fall of validation accuracy below its best so far while a network trained:
    from `peak` (at `peak_epoch`) to `trough` (at `trough_epoch`), `fall` the difference, and the
    first later epoch back at or above the peak (`regained_epoch`, None if never); `stated`:
    whether the fall exceeds FALL_STATED. None for a history without epochs or without a fall."""
    val = [e["val_accuracy"] for e in history.get("epochs") or []]  # epoch k (from 1) at position k - 1
    best, out = None, None
    for epoch, acc in enumerate(val, 1):
        if best is None or acc >= val[best - 1]:
            best = epoch
        elif out is None or val[best - 1] - acc > out["fall"]:
            out = {"peak_epoch": best, "peak": val[best - 1], "trough_epoch": epoch, "trough": acc,
                   "fall": val[best - 1] - acc}
    if out:
        out["regained_epoch"] = next((k for k, acc in enumerate(val, 1)
                                      if k > out["trough_epoch"] and acc >= out["peak"]), None)
        out["stated"] = out["fall"] > FALL_STATED
    return out


def is_dense_control(row: dict) -> bool:
    """A row of the matrix that removes nothing (strategy dense)."""
    return row["strategy"] in STRATEGIES and STRATEGIES[row["strategy"]].family == DENSE


def _compared(row: dict, of: dict | None, correct: dict) -> dict:
    """The control against the pruned model it controls (none: no comparison)."""
    if of is None:
        return {"of": None, "delta": None, "test": None}
    return {"of": of, "delta": row["accuracy"] - of["accuracy"], "test": paired_test_of(correct, row["name"], of["name"])}


def control_findings(rows: list[dict], settings: dict, histories: dict, correct: dict) -> list[dict]:
    """Every control in table order: its row, kind, budget, and its comparison with the pruned
    model it controls (delta: control minus pruned, with the exact McNemar test)."""
    by_name = {r["name"]: r for r in rows}
    experiments, small = experiments_by_name(settings), small_dense_by_name(settings)
    out = []
    for r in rows[1:]:
        if is_dense_control(r):
            e = experiments[r["name"]]
            ft = finetune_settings(settings, e)
            # against the baseline too: more training with nothing removed tests whether it had converged
            out.append({"kind": "dense", "row": r, "epochs": finetune_epochs(settings, e), "steps": e["steps"],
                        "lr": ft["lr"], "distill": e.get("distill"), "vs_baseline": _compared(r, rows[0], correct),
                        **_compared(r, by_name[e["control_of"]] if "control_of" in e else None, correct)})
        elif r["name"] in small:
            entry = small[r["name"]]
            out.append({"kind": "small_dense", "row": r, "epochs": small_dense_epochs(settings, entry),
                        "lr": settings["train"]["lr"], "distill": None, "width": histories[r["name"]]["width"],
                        "fall": largest_fall(histories[r["name"]]),
                        # what the pruned model had and the control did not (the Limitations say so)
                        "of_distilled": bool(experiments[entry["matches"]].get("distill")),
                        **_compared(r, by_name[entry["matches"]], correct)})
    return out


def baseline_convergence(history: dict, controls: list[dict], last: int = 10) -> dict:
    """Had the baseline converged? Its validation accuracy over its last `last` epochs (at most a
    quarter of them: a short run's early epochs say nothing of a plateau), and each
    dense fine-tune (more training, nothing removed) against it on the same test images.
    `raised`: some dense fine-tune beat the baseline significantly, so that part of what a pruned
    row recovers at that budget may be training the baseline lacked."""
    epochs = history["epochs"]
    tail = [e["val_accuracy"] for e in epochs[len(epochs) - min(last, len(epochs) // 4):]]
    dense = [c for c in controls if c["kind"] == "dense"]
    raised = [c for c in dense if c["vs_baseline"]["test"] and c["vs_baseline"]["test"]["significant"]
              and c["vs_baseline"]["delta"] > 0]
    tested = all(c["vs_baseline"]["test"] for c in dense)  # "did not raise it" needs every test
    return {"epochs": len(epochs), "last": len(tail), "low": min(tail, default=None), "high": max(tail, default=None),
            "best_epoch": history["best_epoch"], "dense": dense, "raised": raised, "tested": tested,
            "fall": largest_fall(history)}


def training_cell(c: dict) -> str:
    """A control's training in one cell: epochs, steps or width, peak lr, distillation."""
    lr = f"lr {c['lr']:g}"
    if c["kind"] == "small_dense":
        return f"{plural(c['epochs'], 'epoch')} from scratch at width {c['width']['width_mult']:g}, {lr}"
    distill = f", distilled (weight {c['distill']['weight']:g}, T {c['distill']['temperature']:g})" if c["distill"] else ""
    return f"{plural(c['epochs'], 'epoch')} in {plural(c['steps'], 'step')}, {lr}{distill}"


def p_cell(p: float) -> str:
    """A p-value in a column headed 'McNemar p': '0.35', '3.8e-115', 'below 1e-300'."""
    return p_value(p).removeprefix("p = ").removeprefix("p ")


def controls_table(controls: list[dict], chain: list[dict]) -> Table | None:
    """Each control beside the pruned model it controls: training, MACs, accuracies, the test.
    Nine columns: twelve (kind, epochs, lr and distillation apart) squeezed their headers into
    one another on the LaTeX page. A controlled ablation step is named with the steps before it (`chain`)."""
    if not controls:
        return None
    body = []
    for c in controls:
        r, of = c["row"], c["of"]
        test = (p_cell(c["test"]["p_value"]) if c["test"] else "n/a") if of else ""
        body.append([r["label"], training_cell(c), full_label(of, chain) if of else "none", mega(r["macs"]),
                     mega(of["macs"]) if of else "", pct(r["accuracy"]), pct(of["accuracy"]) if of else "",
                     points(c["delta"]) if of else "", test])
    return Table(["Control", "Training", "Controls", "MACs (M)", "Its MACs (M)", "Accuracy (%)", "Its accuracy (%)",
                  "Difference (points)", "McNemar p"], body,
                 [False, False, False, True, True, True, True, True, True],
                 "Controls that remove nothing, beside the pruned model each controls: dense fine-tunes of the "
                 "baseline at a pruned row's schedule and budget, and small dense networks trained from scratch "
                 "at the width whose MACs come closest to a channel-removed model's. Training: the fine-tuning of a "
                 "dense fine-tune, the training from scratch of a small dense net, with its peak learning rate. "
                 "Difference: the control's accuracy less the pruned model's; the exact McNemar test compares the "
                 "two on the same test images.")
