"""The template's context: one run, described (Study), analysed (Analysis), its seed questions
answered (Questions), tabulated (Tables) and its figures placed, as typed objects.

The template (paper/templates/paper.md.j2) reads these five names and nothing else of the run;
the registry's strategies, the test level and the filters are the environment's (manuscript.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

from scripts.lib.planning.config import PUBLISHED_PRESET, load_schema, training_bill
from scripts.lib.planning.registry import BASELINE, FIGURES
from scripts.lib.report.captions import figure_caption
from scripts.lib.report.findings import Analysis, Questions, analyse, seed_questions, tests_reported
from scripts.lib.report.inputs import Run, epoch_seconds
from scripts.lib.report.paper_tables import Tables, paper_tables
from scripts.lib.report.phrases import data_phrase, momentum_phrase, weights_phrase


@dataclass(frozen=True)
class Study:
    """What was run, on what and with what: the banner, Method, Appendix A and Provenance."""
    preset: str
    published: bool             # the published config's preset: no "not the published results" banner
    synthetic: bool
    data: dict                  # the data summary
    settings: dict              # the effective config
    provenance: dict
    seed: dict                  # what the seed study reported
    data_phrase: str
    weights_phrase: str
    train_phrase: str           # the baseline's optimiser, in words
    finetune_phrase: str        # the fine-tune's
    bill: dict                  # training epochs by kind (config.training_bill)
    timing: dict                # the timing job's settings and the passes' agreement
    baseline_best_epoch: int    # the kept checkpoint's epoch
    onnx_max_diff: float        # the largest difference of ONNX Runtime's logits from PyTorch's, over the models
    stages: list[dict]          # wall time per stage
    epoch_minutes: float        # the training epochs of the tabled models, by their own records
    machine: dict               # the machine that timed the models (cpu, cores, simd, gpu)
    gradual_share: float        # the share of a gradual fine-tune over which the masks grow (the schema's default)


@dataclass(frozen=True)
class Context:
    study: Study
    analysis: Analysis
    questions: Questions
    tables: Tables
    figures: dict[str, list[dict]]  # per paper section, its figures with their markdown
    tests: dict                     # the distinct pairs of models the paper tests, Holm (findings.tests_reported)

    def variables(self) -> dict:
        """The template's names."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def figure_list(figures: dict) -> dict[str, list[dict]]:
    """The registry's figures by paper section, in registry order, with their files and captions."""
    out = {}
    for name, fig in FIGURES.items():
        out.setdefault(fig.section, []).append(
            {"name": name, "path": figures[name], "caption": figure_caption(name), "width": fig.width})
    for item in (i for items in out.values() for i in items):
        size = f"{{width={round(item['width'] * 100)}%}}" if item["width"] < 1 else ""
        # Linked without its extension: pandoc gives paper.md the PNG (manuscript.PANDOC_MD), and
        # LaTeX's graphicx takes the PDF beside it where there is one (vector), else the PNG.
        link = os.path.splitext(item["path"])[0]
        item["markdown"] = f"![{item['caption']}]({link}){size}"  # alone in its paragraph: a figure
    return out


def describe(run: Run) -> Study:
    s = run.settings
    return Study(preset=s["preset"], published=s["preset"] == PUBLISHED_PRESET,
                 synthetic=run.data["source"] == "synthetic", data=run.data, settings=s, provenance=run.provenance,
                 seed=run.seed, data_phrase=data_phrase(run.data, s), weights_phrase=weights_phrase(s["model"]["weights"]),
                 train_phrase=momentum_phrase(s["train"]), finetune_phrase=momentum_phrase(s["prune"]["finetune"]),
                 bill=training_bill(s), timing=run.timing, baseline_best_epoch=run.histories[BASELINE]["best_epoch"],
                 onnx_max_diff=max(r["onnx_max_abs_diff"] for r in run.rows), stages=run.stages,
                 epoch_minutes=sum(epoch_seconds(h) for h in run.histories.values()) / 60,
                 machine=measuring_machine(run.timing, run.provenance),
                 gradual_share=load_schema()["properties"]["experiments"]["items"]["properties"]["pruning_share"]["default"])


def measuring_machine(latency: dict, provenance: dict) -> dict:
    """The machine the latencies were measured on: the timing job records it (on a cluster, a
    compute node, not the host that planned the run and recorded provenance). Runs timed before
    the timing job recorded it ran every job on the workflow's host, which provenance names."""
    return latency.get("machine") or provenance["hardware"]


def build_context(run: Run) -> Context:
    analysis = analyse(run)
    questions = seed_questions(run, analysis)
    return Context(study=describe(run), analysis=analysis, questions=questions,
                   tables=paper_tables(run, analysis), figures=figure_list(run.figures),
                   tests=tests_reported(analysis, questions))
