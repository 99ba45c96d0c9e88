"""Stage 4 - time: every model in one process, in interleaved rounds; one latency file.

    python -m scripts.timing --job '{...}' --model baseline models/baseline.pt exports/baseline.onnx \
        exports/baseline.int8.onnx --model ... [--sparse-probe models/x.pt] --threads 2 --out latency.json

The job (scripts.lib.planning.jobs.TimingJob): the config's evaluate.timing and the image size.
"""
import argparse

from scripts.lib.files import log, setup_logging, write_json
from scripts.lib.measure.timing import TimingSettings, measure
from scripts.lib.models.runtime import configure_threads
from scripts.lib.planning.jobs import TimingJob


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=TimingJob.argument(), help="the settings (JSON)")
    p.add_argument("--model", action="append", nargs="+", required=True, metavar="NAME CKPT ONNX [INT8]",
                   help="a model to time (repeat for each)")
    p.add_argument("--sparse-probe", help="a masked checkpoint whose pointwise convolutions the CSR probe uses")
    p.add_argument("--threads", type=int, default=1, help="the most threads; every setting is also timed on 1")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    job: TimingJob = args.job
    t = job.timing
    settings = TimingSettings(tuple(t["batch_sizes"]), configure_threads(args.threads), t["warmup"], t["rounds"],
                              t["block_time"], t["passes"])
    result = measure(args.model, settings, job.image_size, args.sparse_probe)
    write_json(result, args.out)
    a = result["agreement"]
    log.info("timed %d models; passes agree within %.1f %% on every speed-up (median %.1f %%)", len(result["models"]),
             100 * a.get("max_spread", 0), 100 * a.get("median_spread", 0))


if __name__ == "__main__":
    main()
