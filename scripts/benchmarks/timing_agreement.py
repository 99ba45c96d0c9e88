"""Two runs of the timing job on the same models: every speed-up over the baseline side by side.

    python -m scripts.benchmarks.timing_agreement results/paper/latency.json other/latency.json

A speed-up is baseline latency / model latency at one runtime, batch size and thread count
(median over all rounds and passes of its run). The spread of a speed-up is
|run 2 / run 1 - 1|; the goal of the timing protocol is every spread within 5 %.
Printed, never asserted: it depends on the machine it ran on.
"""
from __future__ import annotations

import argparse
import statistics

from scripts.lib.files import read_json
from scripts.lib.planning.config import BASELINE

GOAL = 0.05


def speedups(latency: dict) -> dict[tuple, float]:
    """(model, runtime, batch, threads) -> speed-up over the baseline, from one latency file."""
    grids = latency["models"]
    base = {(g["runtime"], g["latency_batch_size"], g["latency_threads"]): g["latency_ms"] for g in grids[BASELINE]}
    return {(name, g["runtime"], g["latency_batch_size"], g["latency_threads"]):
            base[(g["runtime"], g["latency_batch_size"], g["latency_threads"])] / g["latency_ms"]
            for name, grid in grids.items() if name != BASELINE for g in grid}


def agreement(a: dict, b: dict) -> list[dict]:
    sa, sb = speedups(a), speedups(b)
    if sa.keys() != sb.keys():
        raise SystemExit("the two latency files time different models or settings")
    return [{"key": k, "first": sa[k], "second": sb[k], "spread": abs(sb[k] / sa[k] - 1)} for k in sa]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first")
    p.add_argument("second")
    args = p.parse_args(argv)
    rows = agreement(read_json(args.first), read_json(args.second))
    print(f"{'model':<40} {'runtime':<17} {'batch':>5} {'thr':>3} {'run 1':>7} {'run 2':>7} {'spread':>7}")
    for r in rows:
        name, runtime, b, t = r["key"]
        print(f"{name:<40} {runtime:<17} {b:>5} {t:>3} {r['first']:>6.2f}x {r['second']:>6.2f}x {r['spread']:>6.1%}")
    spreads = [r["spread"] for r in rows]
    within = sum(s <= GOAL for s in spreads)
    print(f"\n{len(rows)} speed-ups: median spread {statistics.median(spreads):.1%}, max {max(spreads):.1%}; "
          f"{within} of {len(rows)} within {GOAL:.0%} (goal: all)")


if __name__ == "__main__":
    main()
