"""The controls: what separates pruning from the training that comes with it.

Two kinds, each paired with the pruned model it controls and compared on the same test images:
- dense fine-tunes (strategy dense): the baseline fine-tuned with a pruned row's schedule and
  budget, nothing removed (its `control_of` names that row);
- small dense nets (config key small_dense): MobileNetV2 at the width whose MACs match a
  channel-removal experiment's model, trained from scratch for the baseline's epochs plus that
  experiment's fine-tuning (Liu et al., ICLR 2019); the width match is in its history.
"""
from __future__ import annotations

from scripts.lib.planning.config import experiments_by_name, finetune_epochs, small_dense_by_name, small_dense_epochs
from scripts.lib.planning.registry import DENSE, STRATEGIES
from scripts.lib.report.formats import mega, pct, points
from scripts.lib.report.phrases import p_value, plural
from scripts.lib.report.stats import paired_test_of
from scripts.lib.report.tables import Table


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
            ft = {**settings["prune"]["finetune"], **e.get("finetune", {})}
            out.append({"kind": "dense", "row": r, "epochs": finetune_epochs(settings, e), "steps": e["steps"],
                        "lr": ft["lr"], "distill": e.get("distill"),
                        **_compared(r, by_name.get(e.get("control_of")), correct)})
        elif r["name"] in small:
            entry = small[r["name"]]
            out.append({"kind": "small_dense", "row": r, "epochs": small_dense_epochs(settings, entry),
                        "lr": settings["train"]["lr"], "distill": None, "width": histories[r["name"]]["width"],
                        **_compared(r, by_name.get(entry["matches"]), correct)})
    return out


def controls_table(controls: list[dict]) -> Table | None:
    """Each control beside the pruned model it controls: budget, MACs, accuracies, the test."""
    if not controls:
        return None
    body = []
    for c in controls:
        r, of = c["row"], c["of"]
        kind = f"dense fine-tune, {plural(c['steps'], 'step')}" if c["kind"] == "dense" else \
            f"small dense from scratch, width {c['width']['width_mult']:g}"
        distill = f"weight {c['distill']['weight']:g}, T {c['distill']['temperature']:g}" if c["distill"] else "no"
        test = (p_value(c["test"]["p_value"]) if c["test"] else "n/a") if of else ""
        body.append([r["label"], kind, of["label"] if of else "none", str(c["epochs"]), f"{c['lr']:g}", distill,
                     mega(r["macs"]), mega(of["macs"]) if of else "", pct(r["accuracy"]),
                     pct(of["accuracy"]) if of else "", points(c["delta"]) if of else "", test])
    return Table(["Control", "Kind", "Controls", "Training epochs", "Peak lr", "Distillation", "MACs (M)",
                  "Its MACs (M)", "Accuracy (%)", "Its accuracy (%)", "Difference (points)", "McNemar"], body,
                 [False, False, False, True, True, False, True, True, True, True, True, True],
                 "Controls that remove nothing, beside the pruned model each controls: dense fine-tunes of the "
                 "baseline at a pruned row's schedule and budget, and small dense networks trained from scratch "
                 "at the width whose MACs come closest to a channel-removed model's. Training epochs: fine-tuning "
                 "for a dense fine-tune, training from scratch for a small dense net. Difference: the control's "
                 "accuracy less the pruned model's; the exact McNemar test compares the two on the same test images.")
