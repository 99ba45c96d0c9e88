"""Each stage's settings: one typed object, built from the config by the workflow, read by its program.

A rule passes its job's settings as one JSON param (`--job '{...}'`): Snakemake reruns a
job whose params changed, provenance can record them, and the program reads them back
into the same class, which names any key missing or unknown. Paths stay Snakemake's
(inputs and outputs on the command line), and so do threads (a resource).

Torch-free: the workflow builds these while it plans.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass

from scripts.lib.planning.config import (baseline_replicas_by_name, config_hash, experiments_by_name, finetune_settings,
                                         prunable_settings, replicas_by_name, small_dense_by_name, small_dense_epochs)
from scripts.lib.planning.labels import label_before_results
from scripts.lib.planning.matrix import replica_name
from scripts.lib.planning.registry import BASELINE, FIGURES


class JobError(ValueError):
    """A job's settings do not match its class."""


_PRIMITIVES = (int, float, str, bool)


def _check(value, hint, where: str):
    """Convert `value` (parsed JSON) to `hint`: nested jobs are built, primitives checked."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return hint.from_dict(value, where)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _check(value, inner[0], where) if len(inner) == 1 else value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise JobError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else typing.Any
        return origin(_check(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise JobError(f"{where}: expected an object, got {value!r}")
        args = typing.get_args(hint)  # dict[str, X]: each value checked as an X
        return {k: _check(v, args[1], f"{where}[{k!r}]") for k, v in value.items()} if args else value
    if hint in _PRIMITIVES:
        ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise JobError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _plain(value):
    """json.dumps' fallback for a nested Job: its fields, shallowly (dataclasses.asdict deep-copies
    every value, which was most of the planning time these objects cost at 1,000 experiments)."""
    if isinstance(value, Job):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass(frozen=True)
class Job:
    """Base of every stage's settings: JSON out (the workflow), JSON in (the program)."""

    def to_json(self) -> str:
        # The order the builder gave (the config's): it reaches checkpoints' meta, whose bytes are hashed.
        return json.dumps(self, default=_plain)

    @classmethod
    def from_dict(cls, data: dict, where: str | None = None):
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise JobError(f"{where}: expected an object, got {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - data.keys()), sorted(data.keys() - names)
        if missing or unknown:
            raise JobError(f"{where}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])))
        hints = typing.get_type_hints(cls)
        return cls(**{n: _check(data[n], hints[n], f"{where}.{n}") for n in names})

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise JobError(f"{cls.__name__}: not JSON ({e}): {text[:200]!r}") from None
        return cls.from_dict(data)

    @classmethod
    def argument(cls):
        """An argparse `type=` that reads the job and turns a bad one into a usage error."""
        def parse(text: str):
            try:
                return cls.from_json(text)
            except JobError as e:
                import argparse

                raise argparse.ArgumentTypeError(str(e)) from None
        parse.__name__ = cls.__name__
        return parse


@dataclass(frozen=True)
class Engine(Job):
    """How every job that runs the network feeds it (config keys data.mean/std, evaluate.batch_size,
    engine.memory_format)."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eval_batch_size: int
    memory_format: str


def engine(config: dict) -> Engine:
    return Engine(mean=tuple(config["data"]["mean"]), std=tuple(config["data"]["std"]),
                  eval_batch_size=config["evaluate"]["batch_size"], memory_format=config["engine"]["memory_format"])


# The prune job's experiment: every key of an experiment row but those that name it (name,
# label), set its fine-tuning or prunable set (their own settings below), fold it into
# another row (seed, replica_of: the seed is the job's own) or pair it with one (control_of).
EXPERIMENT_OWN_KEYS = ("name", "label", "finetune", "sweep", "scope", "exclude", "seed", "replica_of", "control_of")


@dataclass(frozen=True)
class Synthetic(Job):
    """The generated data set of data.source: synthetic (tests, the quick preset)."""
    train_size: int
    test_size: int
    noise: float


@dataclass(frozen=True)
class DataJob(Job):
    """Stage 1: read a source into the dataset file (config key data, and seed for the split)."""
    source: str
    val_fraction: float
    num_classes: int
    image_size: int
    seed: int
    synthetic: Synthetic


@dataclass(frozen=True)
class TrainJob(Job):
    """Stage 2: the baseline's training (config keys train, seed, model.weights' kind); also a
    baseline replica's (baseline_seeds) and a small dense control's."""
    name: str  # the model's name: its checkpoint's, its metrics' and its log lines'
    hyp: dict  # the train section, read by engine.TrainHyp
    seed: int
    engine: Engine


@dataclass(frozen=True)
class PruneJob(Job):
    """Stage 3: one experiment (or seed replica) pruned and fine-tuned."""
    name: str
    experiment: dict  # strategy, schedule, sparsity, steps and the recovery options
    prunable: dict    # layer_types, exclude, scope, round_to: what this pruner touches
    hyp: dict         # prune.finetune with the experiment's own overrides
    seed: int
    engine: Engine


# evaluate.int8's choices (the schema lists the same; tests/test_quantize.py checks they agree)
INT8_CALIBRATIONS = ("minmax", "percentile", "entropy")
INT8_FORMATS = ("qdq", "qoperator")
INT8_ACTIVATIONS = ("int8", "uint8")


@dataclass(frozen=True)
class Int8(Job):
    """evaluate.int8: how ONNX Runtime quantizes a model (scripts.lib.measure.quantize)."""
    calibration_images: int
    calibration: str           # INT8_CALIBRATIONS: how a tensor's range is set from the calibration images
    percentile: float          # percentile calibration: the share (%) of |values| the range keeps
    format: str                # INT8_FORMATS
    activations: str           # INT8_ACTIVATIONS: int8 = S8S8, uint8 = U8S8 (weights are always int8)
    fp32_gain: float | None    # Conv/Gemm whose noise gain exceeds this stay fp32; None: none by this rule
    fp32_nodes: tuple[str, ...]  # ONNX node names that stay fp32 whatever their gain

    def __post_init__(self):
        for key, allowed in (("calibration", INT8_CALIBRATIONS), ("format", INT8_FORMATS),
                             ("activations", INT8_ACTIVATIONS)):
            if getattr(self, key) not in allowed:
                raise JobError(f"evaluate.int8.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if not 50 < self.percentile < 100:
            raise JobError(f"evaluate.int8.percentile must be in (50, 100), got {self.percentile!r}")
        if self.fp32_gain is not None and not self.fp32_gain > 0:
            raise JobError(f"evaluate.int8.fp32_gain must be > 0 or null, got {self.fp32_gain!r}")


@dataclass(frozen=True)
class EvaluateJob(Job):
    """Stage 4: one model's metrics and exports (latency is the timing job's)."""
    prunable: dict  # the paper's prunable set, over which every model's sparsity is counted
    int8: Int8      # evaluate.int8: calibration, format, activation type, layers kept fp32
    seed: int       # picks the calibration images
    engine: Engine


@dataclass(frozen=True)
class TimingJob(Job):
    """Stage 4: every model timed in one process (config key evaluate.timing)."""
    timing: dict
    image_size: int


@dataclass(frozen=True)
class ResultsJob(Job):
    """Stage 4: the results table; rows in table order, the baseline first, replicas after."""
    rows: list
    seed: int


def data_job(config: dict) -> DataJob:
    d = config["data"]
    return DataJob(source=d["source"], val_fraction=d["val_fraction"], num_classes=d["num_classes"],
                   image_size=d["image_size"], seed=config["seed"], synthetic=Synthetic(**d["synthetic"]))


def train_job(config: dict, seed: int | None = None) -> TrainJob:
    """The baseline's training with `seed`: config key seed when None, another of baseline_seeds
    for a baseline replica (named baseline_seed<k>)."""
    if seed is None or seed == config["seed"]:
        return TrainJob(name=BASELINE, hyp=config["train"], seed=config["seed"], engine=engine(config))
    return TrainJob(name=replica_name(BASELINE, seed), hyp=config["train"], seed=seed, engine=engine(config))


@dataclass(frozen=True)
class WidthJob(Job):
    """Stage 3, controls: the width multiplier of a small dense net, from the model it matches."""
    name: str         # the small dense net (config key small_dense[].name)
    matches: str      # the experiment whose checkpoint's MACs the width matches
    image_size: int   # MACs are counted for one image of this size


def width_job(config: dict, name: str) -> WidthJob:
    return WidthJob(name=name, matches=small_dense_by_name(config)[name]["matches"],
                    image_size=config["data"]["image_size"])


def small_dense_job(config: dict, name: str) -> TrainJob:
    """A small dense net's training: the baseline's recipe and seed, for the baseline's epochs plus
    the matched experiment's fine-tune epochs (its width comes from its WidthJob's file)."""
    epochs = small_dense_epochs(config, small_dense_by_name(config)[name])
    return TrainJob(name=name, hyp={**config["train"], "epochs": epochs}, seed=config["seed"], engine=engine(config))


def prune_job(config: dict, run: dict) -> PruneJob:
    """`run`: an experiment row with its defaults, or a seed replica of one."""
    return PruneJob(name=run["name"], experiment={k: v for k, v in run.items() if k not in EXPERIMENT_OWN_KEYS},
                    prunable=prunable_settings(config, run),
                    hyp=finetune_settings(config, run),
                    seed=run.get("seed", config["seed"]), engine=engine(config))


def paper_prunable(config: dict) -> dict:
    """The paper's prunable set: what every model's sparsity is counted over."""
    return {k: config["prune"][k] for k in ("layer_types", "exclude", "scope", "round_to")}


def evaluate_job(config: dict) -> EvaluateJob:
    return EvaluateJob(prunable=paper_prunable(config), int8=Int8.from_dict(config["evaluate"]["int8"], "evaluate.int8"),
                       seed=config["seed"], engine=engine(config))


def timing_job(config: dict) -> TimingJob:
    return TimingJob(timing=config["evaluate"]["timing"], image_size=config["data"]["image_size"])


def baseline_label(config: dict) -> str:
    """The unpruned model as the tables name it: trained from scratch, or fine-tuned from given weights."""
    return "Baseline (trained from scratch)" if config["model"]["weights"] == "none" else "Baseline (fine-tuned)"


def results_job(config: dict) -> ResultsJob:
    """Experiment settings in table order, the baseline first; seed replicas last (folded into
    their experiments' rows)."""
    rows = [{"name": BASELINE, "label": baseline_label(config)}]
    rows += list(experiments_by_name(config).values())
    rows += [{"name": n, "label": e["label"]} for n, e in small_dense_by_name(config).items()]
    rows += list(replicas_by_name(config).values())
    rows += [{**e, "label": f"{baseline_label(config)} (seed {e['seed']})"} for e in baseline_replicas_by_name(config).values()]
    return ResultsJob(rows=rows, seed=config["seed"])


@dataclass(frozen=True)
class ProvenanceJob(Job):
    """Stage 6: what produced the numbers besides the measuring machine (the timing job names that)."""
    config_sha256: str
    code: dict     # module -> code hash of every stage the paper shows
    weights: str   # the config's model.weights
    engine: dict   # the config's engine settings


def provenance_job(config: dict, code: dict) -> ProvenanceJob:
    return ProvenanceJob(config_sha256=config_hash(config), code=code, weights=config["model"]["weights"],
                         engine=config["engine"])


@dataclass(frozen=True)
class FigureJob(Job):
    """Stage 5: one registry figure; `labels` name the histories or checkpoints it is given, in order;
    `literature`: the published reference points it draws, if its registry entry asks for them
    (paper/literature.yaml's points, as content: a fresh clone of the repository replots nothing)."""
    figure: str
    labels: list
    literature: list


def figure_models(config: dict, figure: str) -> list[str]:
    """The models whose files a figure is given: every iterative experiment's history (or the
    baseline's, as the figure's entry says), or every model's checkpoint (the baseline first,
    the small dense nets last); none for figures of the results table."""
    experiments = experiments_by_name(config)
    if FIGURES[figure].inputs == "histories":
        if FIGURES[figure].histories == BASELINE:
            return [BASELINE]
        return [n for n, e in experiments.items() if e["schedule"] == "iterative"]
    if FIGURES[figure].inputs == "checkpoints":
        return [BASELINE, *experiments, *small_dense_by_name(config)]
    return []


def figure_job(config: dict, figure: str, literature: list | None = None) -> FigureJob:
    named = {**experiments_by_name(config), **small_dense_by_name(config)}
    labels = [baseline_label(config) if n == BASELINE else label_before_results(named[n]["label"])
              for n in figure_models(config, figure)]
    if FIGURES[figure].literature and literature is None:
        raise JobError(f"figure {figure} draws the published reference points: give them (paper/literature.yaml)")
    return FigureJob(figure=figure, labels=labels, literature=list(literature or []) if FIGURES[figure].literature else [])


@dataclass(frozen=True)
class CrosscheckJob(Job):
    """Stage 6: the paper's numbers against the measurements (config keys data.image_size and the
    paper's prunable set, over which the zeroed share is recounted)."""
    image_size: int
    prunable: dict


def crosscheck_job(config: dict) -> CrosscheckJob:
    return CrosscheckJob(image_size=config["data"]["image_size"], prunable=paper_prunable(config))


# --- the paper's render specification ------------------------------------------------------------
