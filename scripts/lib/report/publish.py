"""The published paper's numbers, committed beside it, and the checks that it still follows them.

`collect` copies every file a render specification names as the paper's numbers (results,
histories, per-image correctness, latency, provenance, the data summary, the training jobs'
benchmark files), and further files (the per-model metrics, the cross-check's report), into
<paper>/numbers, keeping their paths under the results folder, and writes the spec there
(render.json), its paths relative to that folder. Checkpoints and exports are not copied
(they are large and the paper reads only their measurements). `check` renders the paper again
from that spec with the repository's current templates and code, into a scratch folder, and
compares byte for byte: the committed paper is exactly what its committed numbers and this
code produce. `recount_published` recounts every per-model table number from the committed
per-image predictions and metrics files (no checkpoint needed).
"""
from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path

from scripts.lib.files import atomic_output, read_json
from scripts.lib.planning.render_spec import RenderSpec
from scripts.lib.planning.registry import CHANNELS, DENSE, MASKING
from scripts.lib.report.compare import accuracy_tolerance, study_seed_std
from scripts.lib.report.context import measuring_machine
from scripts.lib.report.families import family
from scripts.lib.report.formats import interval, mb, mega, pct, spread
from scripts.lib.report.inputs import STAGE_NAMES, benchmark_stages, epoch_seconds
from scripts.lib.report.phrases import DifferenceMismatch
from scripts.lib.report.recount import check_metrics, read_predictions
from scripts.lib.report.tables import Table

NUMBERS = "numbers"  # beside the paper; not "data", which a results folder has (data/dataset.json)
MANIFEST = "render.json"  # the render spec, in the results folder and in <paper>/numbers alike
README_START = "<!-- published-results: written by `python -m scripts.publish readme paper README.md`; do not edit -->"
README_END = "<!-- /published-results -->"


def collect(spec_file, paper_dir, extra: list[str]) -> Path:
    """Copy the numbers the spec in `spec_file` names, and the `extra` files, into <paper_dir>/numbers,
    and write the spec there. Every copied file must lie in the spec's folder (the results folder)."""
    spec_file, paper_dir = Path(spec_file), Path(paper_dir)
    results_dir, out = spec_file.parent, paper_dir / NUMBERS
    staging = Path(tempfile.mkdtemp(prefix=".numbers.", dir=paper_dir))  # renamed into place when whole
    try:
        def copy(path) -> str:
            """The copy's path once `out` is in place."""
            rel = Path(os.path.relpath(path, results_dir))
            if rel.parts[0] == "..":
                raise SystemExit(f"error: {path} is not inside the results folder {results_dir}")
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / rel)
            return str(out / rel)

        spec = RenderSpec.read(spec_file).rebased(copy)  # figures stay where they are, beside the paper
        for f in extra:
            copy(f)
        (staging / MANIFEST).write_text(spec.text(out))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def published_spec(paper_dir) -> RenderSpec:
    """The spec beside a published paper, its paths ready to open."""
    return RenderSpec.read(Path(paper_dir) / NUMBERS / MANIFEST)


def check(paper_dir) -> list[str]:
    """The differences between the committed paper.md/.tex and a rebuild from <paper_dir>/numbers
    (an empty list: identical, byte for byte)."""
    from scripts.lib.report.manuscript import render_spec  # pandoc and jinja2: only when rendering

    paper_dir = Path(paper_dir)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = {"md": Path(tmp) / "paper.md", "tex": Path(tmp) / "paper.tex"}
        try:
            render_spec(published_spec(paper_dir), rebuilt["md"], rebuilt["tex"], link_dir=paper_dir)
        except DifferenceMismatch as e:  # numbers that contradict each other: no paper to compare
            return [f"{paper_dir / NUMBERS}: the numbers do not render: {e}"]
        for ext, new in rebuilt.items():
            old = paper_dir / f"paper.{ext}"
            if not old.exists():
                problems.append(f"{old}: missing")
            elif old.read_bytes() != new.read_bytes():
                diff = difflib.unified_diff(old.read_text().splitlines(), new.read_text().splitlines(),
                                            f"{old} (committed)", f"{old} (rebuilt)", lineterm="", n=1)
                problems.append("\n".join(list(diff)[:40]))
    return problems


def recount_published(paper_dir) -> tuple[list[str], list[str]]:
    """Rung 2 of the README's ladder, without a checkpoint: each row of the published results.json
    against its model's metrics file, every accuracy (and what derives from it: intervals, seed
    means and spreads) recounted from the per-image predictions, and every cell of both
    manuscripts' per-model tables against the recounted rows. (problems, report lines)."""
    from scripts.lib.report.crosscheck import check_numbers  # its checkpoint half is not used here

    paper_dir = Path(paper_dir)
    numbers = paper_dir / NUMBERS
    rows = read_json(published_spec(paper_dir).numbers.results)
    metrics = {p.stem: read_json(p) for p in sorted((numbers / "metrics").glob("*.json"))}
    problems, report = check_metrics(rows, metrics)
    predictions = read_predictions(sorted((numbers / "predictions").glob("*.json")))
    more, recounted = check_numbers(rows, predictions, (paper_dir / "paper.md").read_text(),
                                    (paper_dir / "paper.tex").read_text())
    return problems + more, report + recounted


# --- the README's published-results block ------------------------------------------------------

def results_table(rows: list[dict]) -> Table:
    study_std = study_seed_std(rows)
    out = []
    for r in rows:
        seeds = (f"{pct(r['accuracy_mean'])} ± {spread(r['accuracy_std'])} ({r['seeds_run']})"
                 if r.get("seeds_run", 1) > 1 else "")
        out.append([r["label"], pct(r["target_sparsity"]), pct(r["accuracy"]), interval(r["accuracy_ci"]),
                    seeds, mega(r["macs"]), mb(r["gzip_bytes"]),
                    f"± {accuracy_tolerance(r, study_std) * 100:.1f}"])
    return Table(["Model", "Target", "Top-1", "95 % CI", "Seeds: mean ± std (runs)", "MACs (M)",
                  "gzip (MB)", "Reproduce within (pts)"], out, [False] + [True] * 7)


def training_rule(row: dict) -> str:
    """The rule that trained a model of the table other than the baseline: its strategy's family
    says which; a row without a strategy is a small dense net (workflow/rules/controls.smk)."""
    return {MASKING: "prune_model", CHANNELS: "prune_channels", DENSE: "finetune_dense"}.get(family(row),
                                                                                          "train_small_dense")


def stage_table(spec: RenderSpec, rows: list[dict]) -> Table:
    """Each stage's jobs and wall time (Snakemake's benchmark files) and, for the training
    stages, the time of their epochs by the models' own records (whole across resumes)."""
    stages = benchmark_stages(spec.numbers.benchmarks)
    epochs = {}
    for row, path in zip(rows, spec.numbers.histories, strict=True):
        rule = "finetune_baseline" if row["name"] == rows[0]["name"] else training_rule(row)
        epochs[STAGE_NAMES[rule]] = epochs.get(STAGE_NAMES[rule], 0.0) + epoch_seconds(read_json(path))
    body = [[s["stage"], str(s["jobs"]), f"{s['seconds'] / 60:.1f}",
             f"{epochs[s['stage']] / 60:.1f}" if s["stage"] in epochs else ""] for s in stages]
    body.append(["all", str(sum(s["jobs"] for s in stages)), f"{sum(s['seconds'] for s in stages) / 60:.1f}",
                 f"{sum(epochs.values()) / 60:.1f}"])
    return Table(["Stage", "Jobs", "Wall time (min)", "Training epochs, whole (min)"], body,
                 [False, True, True, True])


def readme_block(paper_dir) -> str:
    spec = published_spec(paper_dir)
    rows = read_json(spec.numbers.results)
    prov = read_json(spec.numbers.provenance)
    summary = read_json(spec.numbers.data_summary)
    stages = stage_table(spec, rows)
    study_std = study_seed_std(rows)
    replicated = [r for r in rows if r.get("seeds_run", 1) > 1]
    hw, v = measuring_machine(read_json(spec.numbers.latency), prov), prov["versions"]
    lines = [
        README_START,
        f"Run at commit `{prov['commit'][:12]}`{' (dirty tree)' if prov['dirty'] else ''} on "
        f"{hw['cpu']} ({hw['cores']} cores), torch {v['torch']}, torchvision {v['torchvision']}; "
        f"data: {summary['source']} `{summary['origin']}` (sha256 `{summary['sha256'][:12]}…`).",
        "",
        "Target: the share of the prunable weights zeroed (masking rows), of each layer's channels removed "
        f"(channel rows) or of the MACs removed (rows that target MACs), in %; top-1 accuracy on the {rows[0]['test_images']:,} test images, in %.",
        "",
        results_table(rows).markdown().rstrip(),
        "",
        "Time per stage, summed over its jobs (which may have run side by side). Wall time: Snakemake's "
        "benchmark files, which time a job killed and resumed from its last start only, and a paused job with its "
        "pause; training epochs: the "
        "models' own per-epoch records, whole across resumes, each model's median epoch times its epochs (an "
        "epoch's record is wall time and counts any pause; the seed replicas' epochs are not in them).",
        "",
        stages.markdown().rstrip(),
        "",
        f"Reproduction tolerance: the larger of the row's 95 % Wilson half-width and three times the "
        f"seed-to-seed standard deviation; {len(replicated)} rows were run with several seeds "
        f"(largest std {study_std * 100:.2f} points), and rows run once take that largest spread.",
        README_END,
    ]
    return "\n".join(lines) + "\n"


def update_readme(readme, block: str, check_only: bool) -> bool:
    """Replace the block between the markers; True if the README already held it."""
    text = Path(readme).read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < 0:
        raise SystemExit(f"error: {readme}: no published-results markers ({README_START!r} ... {README_END!r})")
    new = text[:start] + block + text[end + len(README_END) + 1:]
    if new != text and not check_only:
        with atomic_output(readme) as tmp:
            tmp.write_text(new)
    return new == text
