"""The released models: pack the published models into one archive for a public deposit, and
re-evaluate such an archive against the published accuracies (rung 4 of the README's ladder).

    python -m scripts.release pack --results results.json --provenance provenance.json \
        --data-summary data/dataset.json --evaluate-job '{...}' --root NAME \
        --model NAME CKPT ONNX INT8_ONNX PREDICTIONS [--model ...] --out models.tar.gz --sha256 models.tar.gz.sha256
    python -m scripts.release verify ARCHIVE --data dataset.pt --published paper/numbers/results.json

The library is scripts.lib.measure.release; the rules pack_release and verify_release
(workflow/rules/release.smk) run these. `verify` exits 1 if an accuracy moved by more than
its tolerance, 2 if the archive or the data is not what it should be.
"""
from __future__ import annotations

import argparse
import json
import sys

from scripts.lib.files import atomic_output, log, read_json, setup_logging, sha256_file
from scripts.lib.measure.release import TOLERANCE, ReleasedModel, ReleaseError, pack, reevaluate


def main(argv=None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("pack", help="write the archive of the published models")
    k.add_argument("--results", required=True, help="results.json: the accuracies the archive records")
    k.add_argument("--provenance", required=True, help="provenance.json: the commit and config hash")
    k.add_argument("--data-summary", required=True, help="data/dataset.json: the data's source and content hash")
    k.add_argument("--evaluate-job", required=True, type=json.loads, help="the evaluate jobs' settings (JSON)")
    k.add_argument("--root", required=True, help="the folder every member lies in")
    k.add_argument("--model", nargs=5, action="append", required=True,
                   metavar=("NAME", "CKPT", "ONNX", "INT8_ONNX", "PREDICTIONS"))
    k.add_argument("--out", required=True, help="output: the archive (tar.gz)")
    k.add_argument("--sha256", required=True, help="output: the archive's sha256, as sha256sum writes it")
    v = sub.add_parser("verify", help="check an archive's files and re-evaluate its models")
    v.add_argument("archive")
    v.add_argument("--data", required=True, help="dataset.pt of the data stage (the same data source)")
    v.add_argument("--published", required=True, help="the published results.json (paper/numbers/results.json)")
    v.add_argument("--threads", type=int, default=1, help="CPU threads (capped at the machine's cores)")
    v.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help=f"largest accepted change of an accuracy off the run's CPU type (default {TOLERANCE})")
    args = p.parse_args(argv)
    try:
        if args.command == "pack":
            models = [ReleasedModel(*m) for m in args.model]
            record = pack(models, read_json(args.results), read_json(args.provenance), read_json(args.data_summary),
                          args.evaluate_job, args.out, args.root)
            with atomic_output(args.sha256) as tmp:
                tmp.write_text(f"{sha256_file(args.out)}  {args.root}.tar.gz\n")
            log.info("%s: %d models of commit %s", args.out, len(record["models"]), record["commit"][:12])
            return 0
        from scripts.lib.data.datasets import load_dataset
        from scripts.lib.models.runtime import configure_threads

        threads = configure_threads(args.threads)
        record, lines, outside, identical = reevaluate(args.archive, load_dataset(args.data), read_json(args.published),
                                            threads, args.tolerance)
    except ReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"release of commit {record['commit'][:12]}: every file's sha256 and the test labels as in its manifest")
    print("\n".join(lines))
    print(f"{len(lines)} models re-evaluated, {outside} outside the published accuracies "
          f"(identical expected on the run's CPU type and software, within {args.tolerance * 100:.2f} points elsewhere); "
          f"{identical} of {len(lines)} checkpoints are the published ones (sha256 as in the published results)")
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
