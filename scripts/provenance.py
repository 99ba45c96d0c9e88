"""Stage 6 - provenance: the commit, code hashes, config hash, software versions and engine.

    python -m scripts.provenance --job '{...}' [--weights-file FILE] --out provenance.json

The job (scripts.lib.planning.jobs.ProvenanceJob). This job runs on the machine that
plans the workflow; the machine that measured latency is recorded by the timing job.
"""
import argparse

from scripts.lib.files import setup_logging, write_json
from scripts.lib.measure.provenance import collect
from scripts.lib.planning.jobs import ProvenanceJob


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=ProvenanceJob.argument(), help="the settings (JSON)")
    p.add_argument("--weights-file", help="the initial-weights file model.weights resolved to")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    job: ProvenanceJob = args.job
    write_json(collect(job.config_sha256, job.code, job.weights, args.weights_file, engine=job.engine), args.out)


if __name__ == "__main__":
    main()
