"""A reviewer's run against the published results, number by number (the compare program,
scripts/compare.py, says how each number is judged)."""
from __future__ import annotations

import math

from scripts.lib.report.columns import COLUMNS

EXACT = ("target_sparsity", "steps", "sparsity_prunable", "sparsity_all", "params", "nonzero_params",
         "prunable_params", "prunable_nonzero", "macs", "channels", "params_ratio", "macs_ratio",
         "channels_ratio", "removed_fraction", "file_bytes", "test_images")
ACCURACY = ("accuracy", "accuracy_flip_tta", "accuracy_fp16_export", "accuracy_int8")
SEED_STDS = 3  # an accuracy may move by this many seed-to-seed standard deviations


def study_seed_std(rows: list[dict]) -> float:
    """The largest seed-to-seed standard deviation measured on any replicated row (0 if none)."""
    return max((r.get("accuracy_std") or 0.0 for r in rows), default=0.0)


def accuracy_tolerance(row: dict, study_std: float = 0.0) -> float:
    """`study_std`: the run's spread, for rows it did not replicate (study_seed_std)."""
    lo, hi = row["accuracy_ci"]
    std = row.get("accuracy_std") if row.get("seeds_run", 1) > 1 else study_std
    return max((hi - lo) / 2, SEED_STDS * (std or 0.0))


def judge(key: str, published, mine, row: dict, exact: bool, study_std: float = 0.0) -> tuple[str, str]:
    """(verdict, tolerance): verdict is 'ok', 'OUTSIDE' or 'shown'."""
    if published is None or mine is None:
        return ("ok" if published == mine else "OUTSIDE"), "both absent"
    if not isinstance(published, (int, float)) or isinstance(published, bool):
        same = published == mine
        return ("ok" if same else "OUTSIDE") if exact or key in EXACT else "shown", "equal"
    if exact or key in EXACT:
        return ("ok" if math.isclose(published, mine, rel_tol=1e-9, abs_tol=1e-12) else "OUTSIDE"), "equal"
    if key in ACCURACY:
        tol = accuracy_tolerance(row, study_std)
        return ("ok" if abs(mine - published) <= tol else "OUTSIDE"), f"+-{tol * 100:.2f} pts"
    return "shown", "not judged"


def compare(published: list[dict], mine: list[dict], exact: bool) -> tuple[list[list[str]], int]:
    """Rows of the side-by-side report, and how many judged numbers fall outside."""
    theirs = {r["name"]: r for r in mine}
    study_std = study_seed_std(published)
    lines, outside = [], 0
    for row in published:
        other = theirs.get(row["name"])
        if other is None:
            lines.append([row["name"], "(model)", "present", "MISSING", "", "OUTSIDE"])
            outside += 1
            continue
        for key in COLUMNS:
            if key in ("name", "label", "ckpt_sha256") or key not in row:
                continue  # the checkpoint hash differs with any weight; its sizes are compared instead
            verdict, tol = judge(key, row[key], other.get(key), row, exact, study_std)
            outside += verdict == "OUTSIDE"
            lines.append([row["name"], key, fmt(row[key]), fmt(other.get(key)), tol, verdict])
    extra = sorted(set(theirs) - {r["name"] for r in published})
    for name in extra:
        lines.append([name, "(model)", "absent", "present", "", "shown"])
    return lines, outside


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
