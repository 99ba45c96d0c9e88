"""Screen baseline training recipes on the real data: each candidate is config.yaml's
`train` with a few settings changed (scripts/benchmarks/recipes.yaml), trained with
the pipeline's own engine for the same number of epochs, and judged by its best
validation accuracy (the test accuracy is reported, never used to choose).

    python -m scripts.benchmarks.recipe_screen --data results/paper/data/dataset.pt \\
        --out ../runs/screen --epochs 8 --parallel 1 --threads 2
    python -m scripts.benchmarks.recipe_screen --data ... --out ... --only base lr_0.05

Each candidate runs in its own process (`--parallel` at a time) and writes
OUT/<name>.json (settings, history, test accuracy with and without flip test-time
augmentation at the best validation epoch) and OUT/<name>.log. A finished
candidate is not run again. At the end OUT/summary.md ranks them, and
OUT/winner.yaml holds the winner's full `train` settings, ready for --configfile.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = Path(__file__).with_name("recipes.yaml")


def load_candidates(config_path: Path, epochs: int | None) -> dict[str, dict]:
    """{name: {"reason": ..., "train": full settings}}: config.yaml's train with each candidate's changes."""
    base = yaml.safe_load(config_path.read_text())["train"]
    out = {}
    for c in yaml.safe_load(CANDIDATES.read_text())["candidates"]:
        unknown = set(c["set"]) - set(base)
        if unknown:
            raise SystemExit(f"error: {CANDIDATES} candidate {c['name']!r} sets unknown train keys {sorted(unknown)}")
        train = {**base, **c["set"], **({"epochs": epochs} if epochs else {})}
        out[c["name"]] = {"reason": c["reason"], "set": c["set"], "train": train}
    return out


def run_one(name: str, train: dict, data_path: str, out: Path, threads: int, seed: int) -> None:
    import torch

    from scripts.lib.files import setup_logging
    from scripts.lib.models.runtime import configure_threads, seed_everything, select_device
    from scripts.lib.data.datasets import load_dataset
    from scripts.lib.models.engine import TrainHyp, device_splits, evaluate, fit, memory_format
    from scripts.lib.models.network import build_model

    setup_logging()
    configure_threads(threads)
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())
    config = shipped["data"]
    device = select_device()
    seed_everything(seed)
    splits = device_splits(load_dataset(data_path), config["mean"], config["std"], device,
                           memory_format(shipped["engine"]["memory_format"]))
    model = build_model(len(splits["test"].labels.unique()), None).to(device)
    t0 = time.perf_counter()
    history = fit(model, splits["train"], splits["val"], TrainHyp.from_dict(train), seed, 500, tag=f"{name} ")
    best = max(history, key=lambda h: h["val_accuracy"])
    result = {"name": name, "train": train, "device": str(device), "torch": torch.__version__,
              "seconds": time.perf_counter() - t0, "best_epoch": best["epoch"], "best_val": best["val_accuracy"],
              "test": evaluate(model, splits["test"], 500)["accuracy"],
              "test_flip_tta": evaluate(model, splits["test"], 500, flip_tta=True)["accuracy"], "history": history}
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))


def summarise(candidates: dict, out: Path) -> None:
    done = {n: json.loads((out / f"{n}.json").read_text()) for n in candidates if (out / f"{n}.json").exists()}
    ranked = sorted(done.values(), key=lambda r: -r["best_val"])
    lines = ["| candidate | changed | epochs | best val % (epoch) | test % | test, flip TTA % | minutes | device |",
             "|---|---|---|---|---|---|---|---|"]
    for r in ranked:
        changed = ", ".join(f"{k} {v}" for k, v in candidates[r["name"]]["set"].items()) or "-"
        lines.append(f"| {r['name']} | {changed} | {r['train']['epochs']} | {100 * r['best_val']:.2f} "
                     f"({r['best_epoch']}) | {100 * r['test']:.2f} | {100 * r['test_flip_tta']:.2f} | "
                     f"{r['seconds'] / 60:.1f} | {r['device']} |")
    missing = sorted(set(candidates) - set(done))
    if missing:
        lines.append(f"\nNot finished: {', '.join(missing)}")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if ranked:
        winner = ranked[0]
        (out / "winner.yaml").write_text(f"# {winner['name']}: best validation accuracy of the screen in {out}\n"
                                         + yaml.safe_dump({"train": winner["train"]}, sort_keys=False))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset.pt of the data stage (real CIFAR-10)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="whose train section is the base")
    p.add_argument("--epochs", type=int, help="every candidate's epochs (default: the config's)")
    p.add_argument("--only", nargs="*", help="candidate names (default: all)")
    p.add_argument("--parallel", type=int, default=1, help="candidates trained at once")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per candidate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", help=argparse.SUPPRESS)  # internal: train this one candidate
    args = p.parse_args(argv)
    candidates = load_candidates(args.config, args.epochs)
    if args.only:
        unknown = set(args.only) - set(candidates)
        if unknown:
            raise SystemExit(f"error: unknown candidates {sorted(unknown)}; {CANDIDATES} has {sorted(candidates)}")
        candidates = {n: candidates[n] for n in args.only}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.run:
        run_one(args.run, candidates[args.run]["train"], args.data, args.out, args.threads, args.seed)
        return
    queue = [n for n in candidates if not (args.out / f"{n}.json").exists()]
    running: list[subprocess.Popen] = []
    while queue or running:
        while queue and len(running) < args.parallel:
            name = queue.pop(0)
            cmd = [sys.executable, "-m", "scripts.benchmarks.recipe_screen", "--data", args.data, "--out",
                   str(args.out), "--config", str(args.config), "--threads", str(args.threads),
                   "--seed", str(args.seed), "--run", name] + (["--epochs", str(args.epochs)] if args.epochs else [])
            with open(args.out / f"{name}.log", "w") as log:
                running.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        time.sleep(2)
        for proc in [r for r in running if r.poll() is not None]:
            running.remove(proc)
            if proc.returncode:
                print(f"a candidate failed (exit {proc.returncode}): see its log in {args.out}", file=sys.stderr)
    summarise(candidates, args.out)


if __name__ == "__main__":
    main()
