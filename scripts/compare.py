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
import argparse
import sys

from scripts.lib.files import read_json
from scripts.lib.report.compare import compare


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--published", required=True, help="the committed results.json")
    p.add_argument("--mine", required=True, help="your run's results.json")
    p.add_argument("--exact", action="store_true",
                   help="same CPU type and software: every number must be identical (timings excepted)")
    p.add_argument("--only-flagged", action="store_true", help="print only numbers outside their tolerance")
    args = p.parse_args(argv)
    published, mine = read_json(args.published), read_json(args.mine)
    lines, outside = compare(published, mine, args.exact)
    if args.exact:  # timings differ between any two runs
        lines = [ln for ln in lines if not ln[1].startswith("latency")]
        outside = sum(ln[5] == "OUTSIDE" for ln in lines)
    widths = [max(len(ln[i]) for ln in [["model", "metric", "published", "yours", "tolerance", "verdict"], *lines])
              for i in range(6)]
    for ln in [["model", "metric", "published", "yours", "tolerance", "verdict"], *lines]:
        if args.only_flagged and ln[5] != "OUTSIDE" and ln[0] != "model":
            continue
        print("  ".join(c.ljust(w) for c, w in zip(ln, widths)).rstrip())
    judged = [ln for ln in lines if ln[5] in ("ok", "OUTSIDE")]
    theirs, yours = ({r["name"]: r for r in rows} for rows in (published, mine))
    # identical, not only within tolerance: what the same CPU type and software give
    identical = sum(ln[0] in yours and theirs[ln[0]].get(ln[1]) == yours[ln[0]].get(ln[1]) for ln in judged)
    print(f"\n{len(judged)} numbers judged, {identical} identical, {outside} outside their tolerance", file=sys.stderr)
    return 1 if outside else 0



if __name__ == "__main__":
    sys.exit(main())
