"""The published paper's numbers beside it, and the checks that it still follows them.

    python -m scripts.publish collect --spec <results>/render.json --paper-dir <paper> --extra ...
                                                   # the publish_numbers rule: <paper>/numbers
    python -m scripts.publish check paper          # re-render paper.md/.tex from paper/numbers: no byte may change
    python -m scripts.publish recount paper        # every table number recounted from predictions and metrics
    python -m scripts.publish readme paper README.md [--check]   # the README's "Published results" block

The library is scripts.lib.report.publish; `check` renders from paper/numbers/render.json, the
render spec `collect` wrote there (the workflow's, its paths made relative to that folder).
"""
from __future__ import annotations

import argparse
import sys

from scripts.lib.report.pandoc_tables import TableReadError
from scripts.lib.report.publish import check, collect, readme_block, recount_published, update_readme
from scripts.lib.report.recount import PredictionsError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="copy a run's numbers into <paper-dir>/numbers")
    c.add_argument("--spec", required=True, help="the run's render.json, in its results folder")
    c.add_argument("--paper-dir", required=True)
    c.add_argument("--extra", nargs="*", default=[], help="further files to keep (metrics, the cross-check)")
    k = sub.add_parser("check", help="re-render the paper from <paper-dir>/numbers; exit 1 on any changed byte")
    k.add_argument("paper_dir")
    n = sub.add_parser("recount", help="recount the paper's table numbers from <paper-dir>/numbers; exit 1 on a mismatch")
    n.add_argument("paper_dir")
    r = sub.add_parser("readme", help="write (or --check) the README's published-results block")
    r.add_argument("paper_dir")
    r.add_argument("readme")
    r.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    if args.command == "collect":
        print(collect(args.spec, args.paper_dir, args.extra))
        return 0
    if args.command == "check":
        problems = check(args.paper_dir)
        for problem in problems:
            print(problem)
        print(f"{args.paper_dir}: " + ("differs from its rebuild" if problems else
                                       "paper.md and paper.tex rebuilt identical from numbers/"), file=sys.stderr)
        return 1 if problems else 0
    if args.command == "recount":
        try:
            problems, report = recount_published(args.paper_dir)
        except (PredictionsError, TableReadError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print("\n".join(report + problems))
        print(f"{args.paper_dir}: " + (f"{len(problems)} problem(s), listed above" if problems else
                                       "every table number recounted from numbers/predictions and numbers/metrics"),
              file=sys.stderr)
        return 1 if problems else 0
    same = update_readme(args.readme, readme_block(args.paper_dir), args.check)
    if args.check and not same:
        print(f"{args.readme}: the published-results block differs from {args.paper_dir}/numbers "
              f"(python -m scripts.publish readme {args.paper_dir} {args.readme})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
