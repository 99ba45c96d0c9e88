"""The published paper's numbers, committed beside it, and the checks that it still follows them.

    python -m scripts.publish collect ...          # the publish_numbers rule: <paper>/numbers
    python -m scripts.publish check paper          # re-render paper.md/.tex from paper/numbers: no byte may change
    python -m scripts.publish readme paper README.md [--check]   # the README's "Published results" block

`collect` copies every file the paper was rendered from (results, histories, per-image
correctness, latency, provenance, the data summary, the effective config, the training jobs'
benchmark files) and the per-model metrics and the cross-check's report into <paper>/numbers,
keeping their paths under the results folder, and writes render.json: the render arguments,
relative to that folder. Checkpoints and exports are not copied (they are large and the paper
reads only their measurements). `check` renders the paper again from those files with the
repository's current templates and code, into a scratch folder, and compares byte for byte:
the committed paper is exactly what its committed numbers and this code produce.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from scripts.lib import REPO
from scripts.lib.files import atomic_output, read_json, write_json
from scripts.lib.report.compare import accuracy_tolerance, study_seed_std
from scripts.lib.report.formats import interval, mb, mega, pct, spread
from scripts.lib.report.tables import Table

NUMBERS = "numbers"  # beside the paper; not "data", which a results folder has (data/dataset.json)
MANIFEST = "render.json"
README_START = "<!-- published-results: written by `python -m scripts.publish readme paper README.md`; do not edit -->"
README_END = "<!-- /published-results -->"


def collect(results_dir, paper_dir, render: dict, extra: list[str]) -> Path:
    """Copy the render inputs (`render`: the scripts.paper arguments, results-folder paths) and
    the `extra` files into <paper_dir>/numbers; write the manifest with the copies' relative paths.
    Templates and the seed reference stay in the repository (paths relative to it)."""
    results_dir, paper_dir = Path(results_dir), Path(paper_dir)
    out = paper_dir / NUMBERS
    staging = Path(tempfile.mkdtemp(prefix=".numbers.", dir=paper_dir))  # renamed into place when whole
    try:
        def copy(path) -> str:
            rel = Path(os.path.relpath(path, results_dir))
            if rel.parts[0] == "..":
                raise SystemExit(f"error: {path} is not inside the results folder {results_dir}")
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / rel)
            return rel.as_posix()

        manifest = {}
        for key, value in render.items():
            if key in ("template", "latex_template", "seed_reference"):
                manifest[key] = Path(os.path.relpath(value, REPO)).as_posix()
            elif key == "figures":  # already in the paper folder: linked relative to it
                manifest[key] = {name: [Path(os.path.relpath(f, paper_dir)).as_posix() for f in files]
                                 for name, files in value.items()}
            elif key == "settings":
                write_json(value, staging / "settings.json")
                manifest[key] = "settings.json"
            elif key == "benchmark_root":
                manifest[key] = Path(os.path.relpath(value, results_dir)).as_posix()
            elif isinstance(value, list):
                manifest[key] = [copy(f) for f in value]
            else:
                manifest[key] = copy(value)
        manifest["extra"] = [copy(f) for f in extra]
        write_json(manifest, staging / MANIFEST)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def render_argv(paper_dir, md, tex) -> list[str]:
    """scripts.paper's arguments that render the paper from <paper_dir>/numbers into md and tex."""
    paper_dir = Path(paper_dir)
    data = paper_dir / NUMBERS
    m = read_json(data / MANIFEST)
    argv = ["--results", str(data / m["results"]), "--histories", *(str(data / h) for h in m["histories"]),
            "--data-summary", str(data / m["data_summary"]), "--provenance", str(data / m["provenance"]),
            "--settings", (data / m["settings"]).read_text(), "--seed-reference", str(REPO / m["seed_reference"]),
            "--benchmarks", *(str(data / b) for b in m["benchmarks"]),
            "--benchmark-root", str(data / m["benchmark_root"]), "--latency", str(data / m["latency"]),
            "--correct", *(str(data / c) for c in m["correct"])]
    for name, files in m["figures"].items():
        argv += ["--figure", name, *(str(paper_dir / f) for f in files)]
    return argv + ["--template", str(REPO / m["template"]), "--latex-template", str(REPO / m["latex_template"]),
                   "--md", str(md), "--tex", str(tex), "--link-dir", str(paper_dir)]


def check(paper_dir) -> list[str]:
    """The differences between the committed paper.md/.tex and a rebuild from <paper_dir>/numbers
    (an empty list: identical, byte for byte)."""
    from scripts import paper  # pandoc and jinja2: only when rendering

    paper_dir = Path(paper_dir)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = {"md": Path(tmp) / "paper.md", "tex": Path(tmp) / "paper.tex"}
        paper.main(render_argv(paper_dir, rebuilt["md"], rebuilt["tex"]))
        for ext, new in rebuilt.items():
            old = paper_dir / f"paper.{ext}"
            if not old.exists():
                problems.append(f"{old}: missing")
            elif old.read_bytes() != new.read_bytes():
                diff = difflib.unified_diff(old.read_text().splitlines(), new.read_text().splitlines(),
                                            f"{old} (committed)", f"{old} (rebuilt)", lineterm="", n=1)
                problems.append("\n".join(list(diff)[:40]))
    return problems


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


def stage_table(data: Path, manifest: dict, rows: list[dict]) -> Table:
    """Each stage's jobs and wall time (Snakemake's benchmark files) and, for the training
    stages, the time of their epochs by the models' own records (whole across resumes)."""
    from scripts.lib.report.paper import STAGE_NAMES, epoch_seconds, family, stage_seconds
    from scripts.lib.planning.registry import CHANNELS

    stages = stage_seconds([data / b for b in manifest["benchmarks"]], data / manifest["benchmark_root"])
    epochs = {}
    for row, path in zip(rows, manifest["histories"], strict=True):
        rule = "finetune_baseline" if row["name"] == rows[0]["name"] else \
            "prune_channels" if family(row) == CHANNELS else "prune_model"
        epochs[STAGE_NAMES[rule]] = epochs.get(STAGE_NAMES[rule], 0.0) + epoch_seconds(read_json(data / path))
    body = [[s["stage"], str(s["jobs"]), f"{s['seconds'] / 60:.1f}",
             f"{epochs[s['stage']] / 60:.1f}" if s["stage"] in epochs else ""] for s in stages]
    body.append(["all", str(sum(s["jobs"] for s in stages)), f"{sum(s['seconds'] for s in stages) / 60:.1f}",
                 f"{sum(epochs.values()) / 60:.1f}"])
    return Table(["Stage", "Jobs", "Wall time (min)", "Training epochs, whole (min)"], body,
                 [False, True, True, True])


def readme_block(paper_dir) -> str:
    data = Path(paper_dir) / NUMBERS
    manifest = read_json(data / MANIFEST)
    rows = read_json(data / manifest["results"])
    prov = read_json(data / manifest["provenance"])
    summary = read_json(data / manifest["data_summary"])
    stages = stage_table(data, manifest, rows)
    study_std = study_seed_std(rows)
    replicated = [r for r in rows if r.get("seeds_run", 1) > 1]
    hw, v = prov["hardware"], prov["versions"]
    lines = [
        README_START,
        f"Run at commit `{prov['commit'][:12]}`{' (dirty tree)' if prov['dirty'] else ''} on "
        f"{hw['cpu']} ({hw['cores']} cores), torch {v['torch']}, torchvision {v['torchvision']}; "
        f"data: {summary['source']} `{summary['origin']}` (sha256 `{summary['sha256'][:12]}…`).",
        "",
        "Target: the share of the prunable weights zeroed (masking rows) or of the channels removed (channel "
        "rows), in %; top-1 accuracy on the 10,000 test images, in %.",
        "",
        results_table(rows).markdown().rstrip(),
        "",
        "Time per stage, summed over its jobs (two ran side by side on the 2 cores). Wall time: Snakemake's "
        "benchmark files, which time a job killed and resumed from its last start only; training epochs: the "
        "models' own per-epoch records, whole across resumes (the seed replicas' epochs are not in them).",
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="copy a run's numbers into <paper-dir>/numbers")
    c.add_argument("--results-dir", required=True)
    c.add_argument("--paper-dir", required=True)
    c.add_argument("--render", required=True, type=json.loads, help="scripts.paper's inputs (JSON)")
    c.add_argument("--extra", nargs="*", default=[], help="further files to keep (metrics, the cross-check)")
    k = sub.add_parser("check", help="re-render the paper from <paper-dir>/numbers; exit 1 on any changed byte")
    k.add_argument("paper_dir")
    r = sub.add_parser("readme", help="write (or --check) the README's published-results block")
    r.add_argument("paper_dir")
    r.add_argument("readme")
    r.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    if args.command == "collect":
        print(collect(args.results_dir, args.paper_dir, args.render, args.extra))
        return 0
    if args.command == "check":
        problems = check(args.paper_dir)
        for problem in problems:
            print(problem)
        print(f"{args.paper_dir}: " + ("differs from its rebuild" if problems else
                                       "paper.md and paper.tex rebuilt identical from numbers/"), file=sys.stderr)
        return 1 if problems else 0
    same = update_readme(args.readme, readme_block(args.paper_dir), args.check)
    if args.check and not same:
        print(f"{args.readme}: the published-results block differs from {args.paper_dir}/numbers "
              f"(python -m scripts.publish readme {args.paper_dir} {args.readme})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
