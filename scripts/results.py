"""Stage 4, last step - the results table: every model's metrics and timings in one table.

    python -m scripts.results --job '{...}' --metrics a.json b.json --latency latency.json \
        --csv results.csv --json results.json

The job (scripts.lib.planning.jobs.ResultsJob): the rows in table order and the seed.
Torch-free (JSON in, CSV and JSON out), so the job starts in a second: it sits on the
paper's critical path, after the timing job and before every figure.
"""
import argparse

from scripts.lib.files import read_json, setup_logging
from scripts.lib.planning.jobs import ResultsJob
from scripts.lib.report.results import aggregate, write_table


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=ResultsJob.argument(), help="the settings (JSON)")
    p.add_argument("--metrics", required=True, nargs="+", help="metrics/<model>.json of the evaluate jobs")
    p.add_argument("--latency", required=True, help="latency.json from the timing job")
    p.add_argument("--csv", required=True)
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    write_table(aggregate(args.metrics, args.job.rows, read_json(args.latency), args.job.seed), args.csv, args.json)


if __name__ == "__main__":
    main()
