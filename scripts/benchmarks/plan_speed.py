"""How long Snakemake takes to plan this workflow: `snakemake --dry-run` of a
generated matrix of N experiments, and of the quick preset.

Every `snakemake -n`, and every cluster job (it parses the Snakefile again),
pays this. Goals on the 2-core development machine: 1,000 experiments under
5 s, the quick preset under 3 s. The timings are printed, not asserted.

    python -m scripts.benchmarks.plan_speed
    python -m scripts.benchmarks.plan_speed --experiments 1000 --repeat 3 --snakefile other/checkout/Snakefile

The generated matrix is the quick preset (synthetic data, random init, so no
file needs to exist) with N experiments cycling through every strategy,
schedule and a few sparsities; its results folder is an empty temporary one,
so the dry run plans every job.

For scale it also plans Snakemake's floor for this job shape: a Snakefile with
nothing of the study but its two jobs per experiment (prune and evaluate, the
same output files, static settings, no config to read or check). What the study
plans beyond that floor is the workflow's own cost.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from scripts.lib.planning.registry import CHANNELS, DENSE, SCHEDULES, STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
GOALS = {"1000 experiments": 5.0, "quick preset": 3.0}  # seconds, 2-core machine


def generated_experiments(n: int) -> list[dict]:
    """n distinct experiments over every valid pruning strategy x schedule x sparsity."""
    # Strategy varies fastest, then schedule, so consecutive rows cover every valid pair
    # (gradual updates masks during training: masking strategies only). Dense controls prune
    # nothing (sparsity 0, planned like any row): left out.
    pairs = [(strategy, schedule, sparsity) for sparsity, schedule, strategy
             in itertools.product((0.3, 0.5, 0.7), SCHEDULES, STRATEGIES)
             if STRATEGIES[strategy].family != DENSE
             and not (schedule == "gradual" and STRATEGIES[strategy].family == CHANNELS)]
    rows = []
    for i, (strategy, schedule, sparsity) in zip(range(n), itertools.cycle(pairs)):
        row = {"name": f"gen_{i:05d}", "label": f"Generated {i}", "strategy": strategy, "schedule": schedule,
               "sparsity": sparsity}
        if schedule != "oneshot":
            row["steps"] = 2 + i % 3
        rows.append(row)
    return rows


# The job shape alone: per experiment a prune job (3 outputs) and an evaluate job (7 outputs), a
# log and a benchmark file each, under one target rule; shell commands of the study's length.
BARE_SHAPE = """\
N = [f"gen_{i:05d}" for i in range(int(config["experiments"]))]

rule all:
    input:
        expand("metrics/{m}.json", m=N),
        expand("exports/{m}.int8.onnx", m=N),

rule prepare_data:
    output: "data/dataset.pt"
    shell: "touch {output}"

rule prune_model:
    input: data="data/dataset.pt"
    output: ckpt="models/{experiment}.pt", masked_ckpt="models/masked/{experiment}.pt", history="histories/{experiment}.json"
    log: "logs/prune_model/{experiment}.log"
    benchmark: "benchmarks/prune_model/{experiment}.tsv"
    resources: mem_mb=8000, runtime=360
    params: job='{"strategy": "l1_unstructured"}'
    shell: "python -m scripts.prune --job {params.job:q} --data {input.data} --threads {threads} --ckpt {output.ckpt} --masked-ckpt {output.masked_ckpt} --history {output.history} > {log} 2>&1"

rule evaluate_model:
    input: ckpt="models/{model}.pt", data="data/dataset.pt"
    output: metrics="metrics/{model}.json", fp32="exports/{model}.fp32.sparse.pt.gz", fp16="exports/{model}.fp16.sparse.pt.gz", onnx="exports/{model}.onnx", int8="exports/{model}.int8.onnx", report="int8/{model}.json", correct="predictions/{model}.json"
    log: "logs/evaluate_model/{model}.log"
    benchmark: "benchmarks/evaluate_model/{model}.tsv"
    resources: mem_mb=8000, runtime=60
    params: job='{"batch_size": 64}'
    shell: "python -m scripts.evaluate --job {params.job:q} --ckpt {input.ckpt} --data {input.data} --threads {threads} --onnx {output.onnx} --onnx-int8 {output.int8} --correct {output.correct} --out {output.metrics} > {log} 2>&1"
"""


def dry_run(snakefile: Path, workdir: Path, configfile: Path | None, *config: str) -> float:
    """Seconds of one `snakemake --dry-run` (its output discarded); fails loudly if it fails."""
    exe = Path(sys.executable).parent / "snakemake"
    cmd = [str(exe), "--snakefile", str(snakefile), "--directory", str(workdir), "--cores", "2", "--dry-run"]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    if config:
        cmd += ["--config", *config]
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"error: the dry run failed:\n{' '.join(cmd)}\n{(run.stdout + run.stderr)[-3000:]}")
    return seconds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiments", type=int, default=1000, help="experiments in the generated matrix")
    p.add_argument("--repeat", type=int, default=3, help="dry runs of each; the median is reported")
    p.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile",
                   help="the workflow to plan (another checkout's, to compare)")
    args = p.parse_args(argv)
    quick_preset = args.snakefile.resolve().parent / "workflow" / "presets" / "quick.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        matrix = yaml.safe_load(quick_preset.read_text())
        matrix.update(preset="plan-speed", results_dir=str(tmp / "results"), paper_dir=str(tmp / "paper"),
                      experiments=generated_experiments(args.experiments), ablation=[],
                      seeds_experiments=[], small_dense=[])  # all name the preset's rows
        configfile = tmp / "matrix.yaml"
        configfile.write_text(yaml.safe_dump(matrix, sort_keys=False))
        bare = tmp / "bare" / "Snakefile"
        bare.parent.mkdir()
        bare.write_text(BARE_SHAPE)
        runs = {
            f"{args.experiments} experiments": [dry_run(args.snakefile, tmp, configfile) for _ in range(args.repeat)],
            "quick preset": [dry_run(args.snakefile, tmp, quick_preset, f"results_dir={tmp / 'quick'}",
                                     f"paper_dir={tmp / 'quick' / 'paper'}") for _ in range(args.repeat)],
            f"the job shape alone ({args.experiments} x prune + evaluate, Snakemake's floor)": [
                dry_run(bare, bare.parent, None, f"experiments={args.experiments}") for _ in range(args.repeat)],
        }
    print(f"snakemake --dry-run of {args.snakefile} (median of {args.repeat}):")
    for what, seconds in runs.items():
        median = statistics.median(seconds)
        goal = f"; goal under {GOALS[what]:.0f} s{'' if median < GOALS[what] else ': MISSED'}" if what in GOALS else ""
        print(f"  {what}: {median:.2f} s (runs: {', '.join(f'{s:.2f}' for s in seconds)}{goal})")


if __name__ == "__main__":
    main()
