"""Stage 6 - paper: render the markdown and LaTeX paper from the measured numbers.

Every number in the text is computed here from results files; the templates in
paper/templates only format and place them.

    python -m scripts.paper --results results.json --histories ... --md paper.md --tex paper.tex
"""
from __future__ import annotations

import argparse
import csv
import os
import re
from pathlib import Path

import jinja2
import yaml

from scripts.common import atomic_output, parse_json_arg, read_json, setup_logging
from scripts.evaluate import grid_entry
from scripts.prune import CHANNELS

PUBLISHED_PRESET = "paper"
MB = 1e6

# --- number formats: one definition for the templates and the tests ------------------


def pct(fraction: float) -> str:
    """0.9321 -> '93.2' (percent, one decimal)."""
    return f"{fraction * 100:.1f}"


def points(delta_fraction: float) -> str:
    """Accuracy difference in percentage points, one decimal, unsigned."""
    return f"{abs(delta_fraction) * 100:.1f}"


def mb(n_bytes: float) -> str:
    return f"{n_bytes / MB:.2f}"


def ms(milliseconds: float) -> str:
    """Two decimals below 10 ms (ONNX Runtime at batch 1 takes ~0.2 ms), one above."""
    return f"{milliseconds:.2f}" if milliseconds < 10 else f"{milliseconds:.1f}"


def ratio(x: float) -> str:
    return f"{x:.2f}"


def mega(n: float) -> str:
    """Counts in millions, two decimals: 2236682 -> '2.24'."""
    return f"{n / 1e6:.2f}"


FILTERS = {"pct": pct, "points": points, "mb": mb, "ms": ms, "ratio": ratio, "mega": mega}

# --- LaTeX safety ------------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}"}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text) -> str:
    """Escape every character that means something to LaTeX."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], str(text))


class Latex(str):
    """A string that is already LaTeX (a path, a macro) and must not be escaped."""


def _latex_finalize(value):
    if isinstance(value, Latex) or not isinstance(value, str):
        return value
    return latex_escape(value)


def latex_environment(template_dir) -> jinja2.Environment:
    """Jinja with LaTeX-safe delimiters (\\VAR{..}, \\BLOCK{..}); every string escaped on output."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)), undefined=jinja2.StrictUndefined,
        block_start_string=r"\BLOCK{", block_end_string="}", variable_start_string=r"\VAR{",
        variable_end_string="}", comment_start_string=r"\#{", comment_end_string="}",
        line_statement_prefix="%%", line_comment_prefix="%#", trim_blocks=True, lstrip_blocks=True,
        autoescape=False, keep_trailing_newline=True, finalize=_latex_finalize)
    env.filters.update(FILTERS)
    env.filters["tex"] = latex_escape
    env.filters["raw"] = Latex
    return env


def markdown_environment(template_dir) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters.update(FILTERS)
    return env


# --- findings: statements computed from the results ----------------------------------------------


def _find(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def schedule_comparisons(rows) -> list[dict]:
    """Iterative against one-shot at the same strategy and target sparsity."""
    out = []
    for it in _find(rows, schedule="iterative"):
        for one in _find(rows, schedule="oneshot", strategy=it["strategy"], target_sparsity=it["target_sparsity"]):
            out.append({"iterative": it, "oneshot": one, "delta": it["accuracy"] - one["accuracy"],
                        "sparsity": it["target_sparsity"], "strategy": it["strategy"]})
    return out


# Each importance criterion and its random control (same surgery, random ranking).
RANDOM_CONTROLS = {"l1_unstructured": ("L1 magnitude", "random_unstructured"),
                   "l2_channels": ("group-L2 channel", "random_channels")}


def strategy_comparisons(rows) -> list[dict]:
    """Each importance criterion against its random control at the same schedule and target."""
    out = []
    for strategy, (name, control) in RANDOM_CONTROLS.items():
        for imp in _find(rows, strategy=strategy):
            for rnd in _find(rows, strategy=control, schedule=imp["schedule"],
                             target_sparsity=imp["target_sparsity"]):
                out.append({"importance": imp, "random": rnd, "delta": imp["accuracy"] - rnd["accuracy"],
                            "criterion": name, "sparsity": imp["target_sparsity"], "schedule": imp["schedule"]})
    return out


def seed_comparison(rows, seed: dict) -> list[dict]:
    return [{"row": r, "seed_accuracy": seed["accuracy"][r["name"]],
             "delta": r["accuracy"] - seed["accuracy"][r["name"]]}
            for r in rows if r["name"] in seed["accuracy"]]


def masked_rows(rows) -> list[dict]:
    """The models pruned by masking (dense tensors with zeros), not by removing channels."""
    return [r for r in rows[1:] if r["strategy"] not in CHANNELS]


def hardware_gap(rows) -> dict:
    """Storage and latency of the sparsest masked model relative to the baseline."""
    base = rows[0]
    sparsest = max(masked_rows(rows), key=lambda r: r["sparsity_prunable"], default=base)
    return {"baseline": base, "sparsest": sparsest,
            "file_ratio": sparsest["file_bytes"] / base["file_bytes"],
            "gzip_ratio": sparsest["gzip_bytes"] / base["gzip_bytes"],
            "latency_ratio": sparsest["latency_ms"] / base["latency_ms"],
            "sparse_fp32_ratio": sparsest["sparse_fp32_bytes"] / sparsest["file_bytes"],
            "sparse_fp16_ratio": sparsest["sparse_fp16_bytes"] / sparsest["file_bytes"],
            "latency_min": min(r["latency_ms"] for r in [base, *masked_rows(rows)]),
            "latency_max": max(r["latency_ms"] for r in [base, *masked_rows(rows)])}


def storage_rows(rows) -> list[dict]:
    """Each model's sparse exports relative to its dense fp32 checkpoint file."""
    return [{"row": r, "fp32_ratio": r["sparse_fp32_bytes"] / r["file_bytes"],
             "fp16_ratio": r["sparse_fp16_bytes"] / r["file_bytes"],
             "fp16_delta": r["accuracy_fp16_export"] - r["accuracy"]} for r in rows]


def file_size_paradox(rows) -> dict | None:
    """The seed's way of saving (masks attached) against a plain state_dict, for the sparsest model."""
    masked = [r for r in rows if r.get("masked_gzip_bytes")]
    if not masked:
        return None
    r = max(masked, key=lambda x: x["sparsity_prunable"])
    base = rows[0]
    return {"row": r, "baseline": base, "masked_ratio": r["masked_file_bytes"] / base["file_bytes"],
            "masked_gzip_ratio": r["masked_gzip_bytes"] / base["gzip_bytes"],
            "plain_gzip_ratio": r["gzip_bytes"] / base["gzip_bytes"]}


def latency_table(rows) -> dict:
    """Column headers (batch size, threads) and each model's medians and IQRs in that order."""
    def key(g):
        return g["runtime"], g["latency_batch_size"], g["latency_threads"]

    settings = [key(g) for g in rows[0]["latency_grid"]]
    body = []
    for r in rows:
        by_setting = {key(g): g for g in r["latency_grid"]}
        body.append({"row": r, "cells": [by_setting[s] for s in settings]})
    return {"settings": [{"runtime": rt, "batch_size": b, "threads": t} for rt, b, t in settings], "rows": body}


def channel_speedups(rows) -> dict:
    """Each channel-pruned model's speed-up over the baseline beside its MACs reduction.

    The MACs reduction (baseline MACs / model MACs) is the speed-up a runtime whose time
    is proportional to the arithmetic would reach; `fraction` is the share of it
    reached (speed-up / MACs reduction), per runtime and batch size on all the job's threads.
    """
    base = rows[0]
    threads = max(g["latency_threads"] for g in base["latency_grid"])
    settings = [(g["runtime"], g["latency_batch_size"]) for g in base["latency_grid"]
                if g["latency_threads"] == threads]
    body = []
    for r in rows:
        if r["strategy"] not in CHANNELS:
            continue
        limit = 1 / r["macs_ratio"]
        cells = []
        for runtime, b in settings:
            speedup = (grid_entry(base["latency_grid"], runtime, b, threads)["latency_ms"]
                       / grid_entry(r["latency_grid"], runtime, b, threads)["latency_ms"])
            cells.append({"speedup": speedup, "fraction": speedup / limit})
        body.append({"row": r, "limit": limit, "cells": cells})
    return {"threads": threads, "settings": [{"runtime": rt, "batch_size": b} for rt, b in settings], "rows": body}


def stage_seconds(benchmark_files, root) -> dict:
    """Wall time per rule, summed over its jobs, from Snakemake's benchmark files.

    Files lie at <root>/<rule>.tsv, or <root>/<rule>/<wildcard>.tsv for rules with many jobs.
    """
    totals = {}
    for path in benchmark_files:
        rule = Path(path).relative_to(root).parts[0].removesuffix(".tsv")
        with open(path) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        totals[rule] = totals.get(rule, 0.0) + sum(float(r["s"]) for r in rows)
    return dict(sorted(totals.items()))


def build_context(rows, histories: dict, data: dict, provenance: dict, settings: dict, seed: dict,
                  stage_times: dict, figures: dict) -> dict:
    published = settings["preset"] == PUBLISHED_PRESET
    return {
        "preset": settings["preset"], "published": published,
        "synthetic": data["source"] == "synthetic",
        "rows": rows, "baseline": rows[0], "experiments": rows[1:],
        "histories": histories, "data": data, "provenance": provenance, "settings": settings,
        "seed": seed, "seed_rows": seed_comparison(rows, seed),
        "schedule_cmp": schedule_comparisons(rows), "strategy_cmp": strategy_comparisons(rows),
        "gap": hardware_gap(rows), "stage_seconds": stage_times,
        "storage": storage_rows(rows), "paradox": file_size_paradox(rows), "latency": latency_table(rows),
        "channels": channel_speedups(rows), "masked": masked_rows(rows),
        "onnx_max_diff": max(r["onnx_max_abs_diff"] for r in rows),
        "figures": figures,
    }


def render(md_template, tex_template, context: dict, md_out, tex_out) -> None:
    md_template, tex_template = Path(md_template), Path(tex_template)
    md = markdown_environment(md_template.parent).get_template(md_template.name).render(**context)
    tex_ctx = {**context, "figures": {k: (Latex(v) if isinstance(v, str) else {n: Latex(p) for n, p in v.items()})
                                      for k, v in context["figures"].items()}}
    tex = latex_environment(tex_template.parent).get_template(tex_template.name).render(**tex_ctx)
    for text, out in ((md, md_out), (tex, tex_out)):
        with atomic_output(out) as tmp:
            tmp.write_text(text)


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, help="results.json from aggregate")
    p.add_argument("--histories", nargs="+", required=True, help="one per model, table order")
    p.add_argument("--data-summary", required=True)
    p.add_argument("--provenance", required=True)
    p.add_argument("--settings", required=True, type=parse_json_arg, help="the effective config (JSON)")
    p.add_argument("--seed-reference", required=True)
    p.add_argument("--benchmarks", nargs="*", default=[], help="Snakemake benchmark files")
    p.add_argument("--benchmark-root", required=True, help="the folder the benchmark files lie under")
    p.add_argument("--pareto", required=True, help="figure file, inside the paper folder")
    p.add_argument("--leaderboard", required=True, help="figure file, inside the paper folder")
    p.add_argument("--evolution", required=True, help="figure file, inside the paper folder")
    p.add_argument("--latency-macs", required=True, help="figure file, inside the paper folder")
    p.add_argument("--kernels", nargs="+", required=True, help="kernel grid per model, table order")
    p.add_argument("--md-template", required=True)
    p.add_argument("--tex-template", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--tex", required=True)
    args = p.parse_args(argv)
    rows = read_json(args.results)
    histories = {r["name"]: read_json(h) for r, h in zip(rows, args.histories, strict=True)}
    settings = args.settings
    with open(args.seed_reference) as f:
        seed = yaml.safe_load(f)
    paper_dir = Path(args.md).parent  # figures are linked relative to the paper

    def rel(path):
        return os.path.relpath(path, paper_dir)

    figures = {"pareto": rel(args.pareto), "leaderboard": rel(args.leaderboard), "evolution": rel(args.evolution),
               "latency_macs": rel(args.latency_macs),
               "kernels": {r["name"]: rel(k) for r, k in zip(rows, args.kernels, strict=True)}}
    context = build_context(rows, histories, read_json(args.data_summary), read_json(args.provenance),
                            settings, seed, stage_seconds(args.benchmarks, args.benchmark_root), figures)
    render(args.md_template, args.tex_template, context, args.md, args.tex)


if __name__ == "__main__":
    main()
