# Validation, paths and input helpers shared by every stage.
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
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(ROOT)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")
# The pinned software of every Python rule (used with --software-deployment-method conda).
ENVIRONMENT = f"{ROOT}/environment.yml"
TEMPLATES = f"{ROOT}/paper/templates"
SEED_REFERENCE = f"{ROOT}/paper/seed_reference.yaml"

from scripts.config import (BASELINE, ConfigError, check_override, config_hash, experiment, experiment_names,
                            validate_config)
from scripts.model import imagenet_weights_filename
from scripts.provenance import git_state
from scripts.registry import CHANNELS, FIGURES, strategies_of

try:
    for configfile in workflow.overwrite_configfiles:  # --configfile FILE...
        with open(configfile) as f:
            check_override(config, yaml.safe_load(f) or {}, str(configfile))
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
IMAGENET_WEIGHTS = f"resources/weights/{imagenet_weights_filename()}"
EXPERIMENTS = experiment_names(config)
MODELS = [BASELINE] + EXPERIMENTS
ITERATIVE = [n for n in EXPERIMENTS if experiment(config, n)["schedule"] == "iterative"]
# Physically pruned (Torch-Pruning) experiments have no masks, hence no seed-style masked checkpoint.
CHANNEL_EXPERIMENTS = [n for n in EXPERIMENTS if experiment(config, n)["strategy"] in strategies_of(CHANNELS)]
MASKING_EXPERIMENTS = [n for n in EXPERIMENTS if n not in CHANNEL_EXPERIMENTS]
LATEX = shutil.which("latexmk")
GIT = git_state(ROOT)
# Wall time of the compute stages, for the paper's provenance section.
TRAINING_BENCHMARKS = (
    [f"{BENCHMARKS}/prepare_data.tsv", f"{BENCHMARKS}/finetune_baseline.tsv"]
    + [f"{BENCHMARKS}/prune_model/{n}.tsv" for n in MASKING_EXPERIMENTS]
    + [f"{BENCHMARKS}/prune_channels/{n}.tsv" for n in CHANNEL_EXPERIMENTS]
    + [f"{BENCHMARKS}/evaluate_model/{n}.tsv" for n in MODELS]
)


def names_regex(names):
    """A wildcard constraint matching exactly these names (none at all if the list is empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# Threads of a timing job. Locally: every core Snakemake was given, so that no
# other job runs beside a latency measurement. Cluster executors have no total
# core count; there a job gets a node share (the slurm profile's set-threads).
try:
    TIMING_THREADS = workflow.cores
except WorkflowError:
    TIMING_THREADS = 4


wildcard_constraints:
    experiment=names_regex(EXPERIMENTS),
    model=names_regex(MODELS),


def data_input():
    """The file (or directory) the data stage reads; none for synthetic data."""
    source, path = config["data"]["source"], config["data"]["path"]
    if source == "synthetic":
        return []
    if not Path(path).exists() and not (source == "torchvision" and path == CIFAR_TARBALL):
        raise WorkflowError(
            f"config key data.path: {path} does not exist (data.source: {source}). Point it at "
            + ("torchvision's cifar-10-python.tar.gz" if source == "torchvision"
               else "an ImageFolder directory or .tar.gz with train/<class>/* and test/<class>/*")
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
        raise WorkflowError(f"config key model.weights: {weights} is not a file (use imagenet, none or a path)")
    return [weights]


def normalisation_args():
    d = config["data"]
    return "--mean {} --std {}".format(" ".join(map(str, d["mean"])), " ".join(map(str, d["std"])))


def prunable_json():
    return json.dumps({k: config["prune"][k] for k in ("layer_types", "exclude", "scope", "round_to")})


def experiment_json(wildcards):
    """How the experiment prunes and recovers (its fine-tuning settings go separately)."""
    e = experiment(config, wildcards.experiment)
    return json.dumps({k: v for k, v in e.items() if k not in ("name", "label", "finetune", "sweep")})


def finetune_json(wildcards):
    """prune.finetune with the experiment's own overrides (e.g. epochs, a rewound learning rate)."""
    return json.dumps({**config["prune"]["finetune"], **experiment(config, wildcards.experiment).get("finetune", {})})


def masked_checkpoint(wildcards):
    """The seed-style checkpoint (masks attached) of a masking experiment; none otherwise."""
    if wildcards.model not in MASKING_EXPERIMENTS:
        return []
    return [f"{RESULTS}/models/masked/{wildcards.model}.pt"]


def table_rows_json():
    """Experiment settings in table order, the baseline first."""
    rows = [{"name": BASELINE, "label": "Baseline (fine-tuned)"}]
    rows += [experiment(config, n) for n in EXPERIMENTS]
    return json.dumps({"rows": rows})


def final_targets():
    targets = [f"{RESULTS}/results.csv", f"{PAPER}/paper.md", f"{PAPER}/paper.tex", f"{RESULTS}/crosscheck.txt"]
    if LATEX:
        targets.append(f"{PAPER}/paper.pdf")
    else:
        print("latexmk not found: paper.pdf is skipped (paper.md and paper.tex are still rendered)",
              file=sys.stderr)
    return targets


# --- figures: one rule per registry figure (figures.smk), listed for the paper -----------------


def figure_inputs(figure):
    """What a figure's function is given, by the kind its registry entry declares."""
    if figure.inputs == "results":
        return {"results": rules.aggregate_results.output.json}
    if figure.inputs == "histories":
        return {"histories": expand(f"{RESULTS}/histories/{{experiment}}.json", experiment=ITERATIVE)}
    return {"ckpts": expand(f"{RESULTS}/models/{{model}}.pt", model=MODELS)}


def figure_outputs(figure):
    """One PNG, or one per model (figures/<name>/<model>.png) for per-checkpoint figures."""
    if figure.inputs == "checkpoints":
        return expand(f"{PAPER}/figures/{figure.name}/{{model}}.png", model=MODELS)
    return [f"{PAPER}/figures/{figure.name}.png"]


def figure_arguments(wildcards, input):
    """The command-line inputs of scripts.figures for whichever inputs this rule has.
    (A function of the job's input: the rule's `shell` runs at job time, after the loop.)"""
    named = dict(input.items())
    if "results" in named:
        return f"--results {shlex.quote(named['results'])}"
    if "histories" in named:
        labels = [shlex.quote(experiment(config, n)["label"]) for n in ITERATIVE]
        return " ".join(["--histories", *map(shlex.quote, named["histories"]), "--labels", *labels])
    return " ".join(["--ckpts", *map(shlex.quote, named["ckpts"]), "--names", *MODELS])


def figure_files():
    """Every registry figure's file(s), by name: inputs of the rendering and of the PDF."""
    return {name: getattr(rules, f"plot_{name}").output.pngs for name in FIGURES}


def figure_args(wildcards, input):
    """--figure NAME FILE... for every registry figure."""
    args = []
    for name in FIGURES:
        files = getattr(input, f"figure_{name}")
        files = [files] if isinstance(files, str) else list(files)
        args.append(f"--figure {name} " + " ".join(shlex.quote(f) for f in files))
    return " ".join(args)
