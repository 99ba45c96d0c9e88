"""Stage 6 - cross-check: the paper's numbers recomputed from the checkpoints and recounted from
the per-image predictions, against results.json and both manuscripts; a mismatch fails the job.

    python -m scripts.crosscheck --job '{...}' --results results.json --models-dir models \
        --predictions predictions/*.json --md paper.md --tex paper.tex --out crosscheck.txt

The job (scripts.lib.planning.jobs.CrosscheckJob): the image size and the paper's prunable set.
"""
import argparse
from pathlib import Path

from scripts.lib.files import atomic_output, read_json, setup_logging
from scripts.lib.planning.jobs import CrosscheckJob
from scripts.lib.report.crosscheck import CrossCheckError, crosscheck
from scripts.lib.report.pandoc_tables import TableReadError
from scripts.lib.report.recount import PredictionsError, read_predictions


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=CrosscheckJob.argument(), help="the settings (JSON)")
    p.add_argument("--results", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--predictions", required=True, nargs="+",
                   help="predictions/<model>.json of every model and seed replica (the evaluate jobs')")
    p.add_argument("--md", required=True, help="paper.md")
    p.add_argument("--tex", required=True, help="paper.tex")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    job: CrosscheckJob = args.job
    try:
        report = crosscheck(read_json(args.results), read_predictions(args.predictions), Path(args.models_dir),
                            Path(args.md).read_text(), Path(args.tex).read_text(), job.image_size,
                            job.prunable["layer_types"], job.prunable["exclude"])
    except (CrossCheckError, PredictionsError, TableReadError) as e:
        raise SystemExit(f"error: {e}") from None
    with atomic_output(args.out) as tmp:
        Path(tmp).write_text("\n".join(report) + "\nall numbers match\n")


if __name__ == "__main__":
    main()
