"""Stage 3 - prune: one experiment of the matrix (or a seed replica), from the baseline checkpoint.

    python -m scripts.prune --job '{...}' --baseline baseline.pt --data dataset.pt \
        --ckpt x.pt [--masked-ckpt masked/x.pt] --history x.json

The job (scripts.lib.planning.jobs.PruneJob): the experiment, its prunable set, its
fine-tuning, seed and engine. A masking experiment also writes its model with PyTorch's
masks still attached (--masked-ckpt: what such a file costs, for the file-size question);
the dense control (strategy dense) removes nothing and only fine-tunes. A killed job
resumes after its last finished step.
"""
import argparse
import copy
import time

from scripts.lib.data.datasets import load_dataset
from scripts.lib.files import setup_logging, write_json
from scripts.lib.models.engine import TrainHyp, device_splits, memory_format
from scripts.lib.models.network import load_checkpoint, save_checkpoint
from scripts.lib.models.resume import ResumePoint, resume_key
from scripts.lib.models.runtime import configure_threads, select_device
from scripts.lib.planning.jobs import PruneJob
from scripts.lib.pruning.experiment import RESUME_FORMAT, Experiment, run_experiment
from scripts.lib.pruning.masks import make_permanent, prunable_modules
from scripts.lib.pruning.pruners import CHANNEL_METHODS, DENSE_METHODS


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=PruneJob.argument(), help="the settings (JSON)")
    p.add_argument("--baseline", required=True, help="baseline checkpoint")
    p.add_argument("--data", required=True, help="dataset.pt from the data stage")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (capped at the machine's cores)")
    p.add_argument("--ckpt", required=True, help="output checkpoint")
    p.add_argument("--masked-ckpt", help="output: the state_dict before prune.remove (masking strategies)")
    p.add_argument("--history", required=True, help="output JSON history")
    args = p.parse_args(argv)
    job: PruneJob = args.job
    configure_threads(args.threads)
    try:
        exp, hyp = Experiment.from_dict(job.experiment), TrainHyp.from_dict(job.hyp)
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: experiment {job.name}: {e}") from None
    masking = exp.strategy not in (*CHANNEL_METHODS, *DENSE_METHODS)
    if masking != bool(args.masked_ckpt):
        raise SystemExit(f"error: experiment {job.name}: --masked-ckpt is for masking strategies, and they need "
                         f"it (strategy {exp.strategy})")
    device = select_device()
    model, meta = load_checkpoint(args.baseline)
    model.to(device)
    splits = device_splits(load_dataset(args.data), job.engine.mean, job.engine.std, device,
                           memory_format(job.engine.memory_format))
    resume = ResumePoint(f"{args.ckpt}.resume", resume_key({"job": job.to_json(), "resume_format": RESUME_FORMAT},
                                                           [args.baseline, args.data]))
    t0 = time.perf_counter()
    teacher = copy.deepcopy(model) if exp.distill else None  # the dense baseline
    steps = run_experiment(model, exp, job.prunable, splits, hyp, job.seed, job.engine.eval_batch_size,
                           tag=f"{job.name} ", resume=resume, teacher=teacher)
    meta = {**meta, "name": job.name, "experiment": job.experiment}
    if exp.strategy in CHANNEL_METHODS:
        save_checkpoint(model.cpu(), args.ckpt, meta, architecture=True)
    else:
        if masking:  # kept once with PyTorch's masks attached (weight_orig + weight_mask): about
            save_checkpoint(model, args.masked_ckpt, meta)  # twice the dense file the seed's sizes match
        make_permanent([m for _, m in prunable_modules(model, job.prunable["layer_types"], job.prunable["exclude"])])
        save_checkpoint(model.cpu(), args.ckpt, meta)
    write_json({"name": job.name, "experiment": job.experiment, "device": str(device),
                "memory_format": job.engine.memory_format, "seconds": time.perf_counter() - t0, "steps": steps},
               args.history)
    resume.done()


if __name__ == "__main__":
    main()
