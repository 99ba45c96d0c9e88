"""Stage 5 - visualise: one registry figure (scripts.lib.planning.registry.FIGURES), drawn from
results files only.

    python -m scripts.figures --job '{"figure": "pareto", "labels": [], "literature": []}' --results results.json --out pareto.png
    python -m scripts.figures --job '{"figure": "evolution", "labels": ["A", "B"], "literature": []}' --histories h1.json h2.json --out e.png
    python -m scripts.figures --job '{"figure": "kernels", "labels": ["A", "B"], "literature": []}' --ckpts a.pt b.pt --out kernels.png

The job (scripts.lib.planning.jobs.FigureJob): the figure, the labels of the files it is given and,
for a figure that draws them, the published reference points. Each PNG gets its PDF beside it.
"""
import argparse

from scripts.lib.files import setup_logging
from scripts.lib.planning.jobs import FigureJob
from scripts.lib.report.figures import draw


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=FigureJob.argument(), help="the settings (JSON)")
    p.add_argument("--results", help="results.json (figures of the results table)")
    p.add_argument("--histories", nargs="*", default=[], help="iterative experiments' histories")
    p.add_argument("--ckpts", nargs="*", default=[], help="checkpoints (per-model figures)")
    p.add_argument("--out", nargs="+", required=True, help="output PNG")
    args = p.parse_args(argv)
    try:
        draw(args.job.figure, args.out, args.results, args.histories, args.job.labels, args.ckpts, args.job.literature)
    except (ValueError, KeyError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
