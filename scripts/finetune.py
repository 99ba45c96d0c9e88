"""Stage 2 - fine-tune: MobileNetV2 from its initial weights into the baseline.

    python -m scripts.finetune --job '{...}' --data dataset.pt [--weights FILE] --ckpt baseline.pt --history h.json

The job (scripts.lib.planning.jobs.TrainJob): the config's train section, seed and engine.
Without --weights the network starts from random initialisation. With --width (the file of
scripts.width) it trains a small dense control instead: MobileNetV2 at that width multiplier,
named as the file says. A killed job resumes from its last finished epoch (<ckpt>.resume) when
rerun with the same settings and inputs.
"""
import argparse

from scripts.lib.data.datasets import load_dataset
from scripts.lib.files import log, read_json, setup_logging, write_json
from scripts.lib.models.baseline import finetune
from scripts.lib.models.engine import TrainHyp
from scripts.lib.models.network import WeightsError, save_checkpoint
from scripts.lib.models.resume import ResumePoint, resume_key
from scripts.lib.models.runtime import configure_threads
from scripts.lib.planning.jobs import TrainJob


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=TrainJob.argument(), help="the settings (JSON)")
    p.add_argument("--data", required=True, help="dataset.pt from the data stage")
    p.add_argument("--weights", help="initial state_dict (ImageNet's or a file); random initialisation without")
    p.add_argument("--width", help="a small dense control's width match (JSON of scripts.width); the baseline without")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (capped at the machine's cores)")
    p.add_argument("--ckpt", required=True, help="output checkpoint")
    p.add_argument("--history", required=True, help="output JSON history")
    args = p.parse_args(argv)
    job: TrainJob = args.job
    configure_threads(args.threads)
    dataset = load_dataset(args.data)
    width = read_json(args.width) if args.width else None
    if width and width["name"] != job.name:
        raise SystemExit(f"error: --width {args.width} matches the width of {width['name']!r}, the job trains {job.name!r}")
    inputs = [args.data] + [f for f in (args.weights, args.width) if f]  # the baseline's key as before
    resume = ResumePoint(f"{args.ckpt}.resume", resume_key({"job": job.to_json(), "weights": args.weights}, inputs))
    try:
        model, history = finetune(dataset, args.weights, TrainHyp.from_dict(job.hyp), job.engine.mean,
                                  job.engine.std, job.seed, job.engine.eval_batch_size, job.engine.memory_format,
                                  resume, width["width_mult"] if width else 1.0, tag=f"{job.name} ")
    except WeightsError as e:
        raise SystemExit(f"error: {e}") from None
    meta = {"num_classes": len(dataset["classes"]), "name": job.name, "classes": dataset["classes"]}
    if width:  # rebuilt at this width by network.model_from_state
        meta["width_mult"], history["width"] = width["width_mult"], width
    save_checkpoint(model, args.ckpt, meta)
    write_json(history, args.history)
    resume.done()
    log.info("%s: best val accuracy %.4f at epoch %d", job.name, history["best_val_accuracy"], history["best_epoch"])


if __name__ == "__main__":
    main()
