"""Compare a reviewer's run with the published results, number by number.

    python -m scripts.compare --published paper/results/results.json --mine results/paper/results.json
    python -m scripts.compare ... --exact     # same CPU type and software: every number identical

Every registered scalar of every model is printed side by side and judged:

- exact: counts and shapes (parameters, MACs, channels, sparsity, target, steps, raw file size)
  depend only on the architecture and the targets, so they must be equal on any machine;
- accuracy columns (plain, flip TTA, fp16 export, int8): within the row's tolerance, the larger
  of the half-width of its published Wilson 95 % interval and three seed-to-seed standard
  deviations: the row's own where the published run replicated it, else the largest measured
  on any replicated row of that run (a run on another CPU trains other weights: its accuracy
  moves by about the seed-to-seed spread; the interval bounds what the test set can tell apart);
- timings and compressed sizes: shown, not judged (they depend on the machine, and gzip sizes on
  the exact weights), except with --exact.

Exit status 1 if any judged number is outside its tolerance (or a model is missing), else 0.
"""
from __future__ import annotations

import argparse
import math
import sys

from scripts.lib.files import read_json
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--published", required=True, help="the committed results.json")
    p.add_argument("--mine", required=True, help="your run's results.json")
    p.add_argument("--exact", action="store_true",
                   help="same CPU type and software: every number must be identical (timings excepted)")
    p.add_argument("--only-flagged", action="store_true", help="print only numbers outside their tolerance")
    args = p.parse_args(argv)
    lines, outside = compare(read_json(args.published), read_json(args.mine), args.exact)
    if args.exact:  # timings differ between any two runs
        lines = [ln for ln in lines if not ln[1].startswith("latency")]
        outside = sum(ln[5] == "OUTSIDE" for ln in lines)
    widths = [max(len(ln[i]) for ln in [["model", "metric", "published", "yours", "tolerance", "verdict"], *lines])
              for i in range(6)]
    for ln in [["model", "metric", "published", "yours", "tolerance", "verdict"], *lines]:
        if args.only_flagged and ln[5] != "OUTSIDE" and ln[0] != "model":
            continue
        print("  ".join(c.ljust(w) for c, w in zip(ln, widths)).rstrip())
    judged = sum(ln[5] in ("ok", "OUTSIDE") for ln in lines)
    print(f"\n{judged} numbers judged, {outside} outside their tolerance", file=sys.stderr)
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
