"""Stage 3, controls - the width of a small dense net: MobileNetV2 at the width multiplier whose
MACs come closest to a pruned model's, measured from that model's checkpoint.

    python -m scripts.width --job '{...}' --matched models/oneshot_channels_50.pt --out controls/x.width.json

The job (scripts.lib.planning.jobs.WidthJob): the small dense net's name, the experiment it
matches and the image size MACs are counted at. The output (JSON) names the width, its MACs,
the residual and the steps on either side; the training job (scripts.finetune --width) reads it.
"""
import argparse

from scripts.lib.files import log, setup_logging, write_json
from scripts.lib.models.network import WeightsError, load_checkpoint
from scripts.lib.models.runtime import configure_threads
from scripts.lib.planning.jobs import WidthJob
from scripts.lib.pruning.channels import count_macs
from scripts.lib.pruning.width import match_width


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=WidthJob.argument(), help="the settings (JSON)")
    p.add_argument("--matched", required=True, help="checkpoint of the experiment the width matches")
    p.add_argument("--out", required=True, help="output: the width match (JSON)")
    args = p.parse_args(argv)
    job: WidthJob = args.job
    configure_threads(1)
    try:
        model, meta = load_checkpoint(args.matched)
    except WeightsError as e:
        raise SystemExit(f"error: {e}") from None
    if meta.get("name") != job.matches:
        raise SystemExit(f"error: {args.matched} holds the model {meta.get('name')!r}, not {job.matches!r}")
    try:
        match = match_width(count_macs(model, job.image_size), meta["num_classes"], job.image_size)
    except ValueError as e:
        raise SystemExit(f"error: {job.name}: {e}") from None
    write_json({"name": job.name, "matches": job.matches, **match}, args.out)
    log.info("%s: width %g, %d MACs against %d of %s (%+.2f %%; steps %d and %d)", job.name, match["width_mult"],
             match["macs"], match["target_macs"], job.matches, 100 * match["relative_residual"],
             match["below"]["macs"], match["above"]["macs"])


if __name__ == "__main__":
    main()
