"""The paper of a config rendered with invented numbers, to see its length and layout before a
run: the real results, paper and template code over fake metrics (tests/fake_results.py), the
committed paper's figures as stand-ins. A study's run takes hours; what its paper's pages hold
is decided by its rows, tables and sentences, which this shows in seconds.

    python tests/preview_paper.py OUT [--config config.yaml]   # OUT/paper.md, paper.tex, paper.pdf

Prints the page each top-level section starts on (issue budget: the main body, up to the
references, within 10 pages). Only the numbers are invented; never publish its output."""
from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ROOT  # noqa: E402
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from fake_results import fake_history, latency_file, paper_inputs, results_rows  # noqa: E402
from scripts.lib.planning.config import validate_config  # noqa: E402
from scripts.lib.planning.jobs import results_job  # noqa: E402
from scripts.lib.planning.registry import BASELINE, FIGURES  # noqa: E402
from scripts.lib.report.context import build_context  # noqa: E402
from scripts.lib.report.inputs import Run  # noqa: E402
from scripts.lib.report.manuscript import render  # noqa: E402
from scripts.lib.report.recount import read_predictions  # noqa: E402

TEMPLATES = ROOT / "paper" / "templates"


def invented_accuracy(e: dict) -> float:
    """A plausible accuracy for a row: the old run's levels, by what the row does."""
    s, t = e.get("strategy", "none"), e.get("sparsity", 0.0)
    if s == "none":
        return 0.79 if e["name"] != BASELINE else 0.807
    if s == "dense":
        return 0.815
    if s == "l2_structured":
        return 0.10
    if s.startswith("random"):
        return max(0.1, 0.75 - 0.55 * t)
    if s.endswith("_channels"):
        return 0.78 if e.get("distill") else max(0.2, 0.82 - 0.45 * t)
    return {"gradual": 0.79, "iterative": 0.62}.get(e.get("schedule"), max(0.12, 0.86 - 0.55 * t ** 2))


def kept(e: dict) -> float:
    """Prunable weights kept (masking) or channels kept (channel rows; MACs targets as sqrt)."""
    t = e.get("sparsity", 0.0)
    if e.get("target") == "macs" or (e.get("strategy", "none") == "none" and e["name"] != BASELINE):
        return math.sqrt(1 - 0.7143)
    return 1.0 - t


def write_inputs(config: dict, folder: Path) -> Run:
    """Fake metrics and predictions for every model of the config's results table, aggregated by the real code."""
    job = results_job(config)
    matrix = []
    for e in job.rows:
        acc = invented_accuracy(e) + (0.002 * e.get("seed", 0) if e.get("replica_of") or e.get("seed") else 0)
        share = kept(e)
        matrix.append((e["name"], None, e.get("strategy", "none"), None, None, None, acc, share, 0.6 if share < 0.6 else 1.0))
    rows = results_rows(folder, matrix, folder / "predictions", job.rows, job.seed)
    inputs = paper_inputs(rows, config)
    inputs["timing"] = latency_file(matrix)
    predictions = read_predictions(sorted((folder / "predictions").glob("*.json")))
    inputs["correct"] = {n: p["correct"] for n, p in predictions.items()}
    inputs["correct_int8"] = {n: p["correct_int8"] for n, p in predictions.items() if "correct_int8" in p}
    for r in rows:
        history = fake_history({**r, "steps": max(1, r.get("steps") or 1)})
        if r["name"] == BASELINE:
            epochs = config["train"]["epochs"]
            history = {"best_epoch": epochs - 5, "best_val_accuracy": 0.83,
                       "epochs": [{"epoch": k, "seconds": 75.0, "val_accuracy": 0.83 - 0.3 / k, "train_accuracy": 0.86 - 0.3 / k}
                                  for k in range(1, epochs + 1)]}
        inputs["histories"][r["name"]] = history
    for sd in config.get("small_dense", []):
        by_name = {r["name"]: r for r in rows}
        inputs["histories"][sd["name"]]["width"] = {
            "name": sd["name"], "matches": sd["matches"], "width_mult": 0.42, "macs": by_name[sd["name"]]["macs"],
            "target_macs": by_name[sd["matches"]]["macs"], "residual": 8232, "relative_residual": 0.0047,
            "below": {"width": 0.41, "macs": 1_700_000}, "above": {"width": 0.43, "macs": 1_800_000}}
    return Run(rows=rows, **inputs)


def draw_figures(config: dict, run: Run, folder: Path) -> None:
    """The figures drawn from the results and the baseline's history by today's figure code, at
    the sizes it draws them (the committed paper's stand in for those read from checkpoints)."""
    from scripts.lib.planning.jobs import figure_job
    from scripts.lib.report.figures import draw

    literature = yaml.safe_load((ROOT / "paper" / "literature.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        results, history = Path(tmp) / "results.json", Path(tmp) / "baseline.json"
        results.write_text(json.dumps(run.rows))
        history.write_text(json.dumps(run.histories[BASELINE]))
        for name, figure in FIGURES.items():
            if figure.inputs == "results" or name == "training":
                job = figure_job(config, name, literature["points"] if figure.literature else None)
                draw(name, [folder / f"{name}.png"], results, [history], ["Baseline"], (), job.literature)


def section_pages(pdf: Path) -> dict[str, int]:
    """The page each numbered top-level heading starts on; "main body" the page the last line
    before the references is on."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    pages = {}
    for number, page in enumerate(text.split("\f"), start=1):
        for line in page.splitlines():
            if re.fullmatch(r"[1-9] [A-Z][a-z]+( [a-z]+)*", line.strip()) and not line.startswith(" "):
                pages.setdefault(line.strip(), number)
            if line.strip() == "References" and "main body" not in pages:
                before = page.split("References")[0]
                pages["main body"] = number if any(l.strip() for l in before.splitlines()[:-1]) else number - 1
    return pages


MAIN_BODY_PAGES = 10  # the paper's budget: introduction to conclusion, references and appendix after


def preview(out: Path, config_path: Path = ROOT / "config.yaml") -> dict[str, int]:
    """Render the config's paper with invented numbers into `out` (md, tex, pdf); the page each
    section starts on. Raises if LaTeX fails."""
    config = validate_config(yaml.safe_load(config_path.read_text()))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = write_inputs(config, Path(tmp))
    shutil.copytree(ROOT / "paper" / "figures", out / "figures", dirs_exist_ok=True)
    draw_figures(config, run, out / "figures")
    md, tex = out / "paper.md", out / "paper.tex"
    render(TEMPLATES / "paper.md.j2", TEMPLATES / "paper.latex", ROOT / "paper" / "references.bib",
           build_context(run), md, tex)
    built = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-cd", str(tex)],
                           capture_output=True, text=True)
    if built.returncode:
        raise RuntimeError(f"latexmk failed on {tex}:\n{built.stdout[-3000:]}")
    return section_pages(out / "paper.pdf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = p.parse_args(argv)
    pages = preview(args.out, args.config)
    for heading, page in pages.items():
        print(f"page {page:>2}  {heading}")
    print(f"(budget for the main body: {MAIN_BODY_PAGES} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
