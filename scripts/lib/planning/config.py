"""Validate the study configuration before any job runs (torch-free: the workflow
imports it on every plan).

The JSON schema (workflow/schemas/config.schema.yaml) checks types, ranges and
unknown keys; `check_semantics` checks what a schema cannot say (unique names,
schedule/steps agreement). Errors name the offending key.
"""
from __future__ import annotations

import functools
import hashlib
import json

import jsonschema
import yaml

from scripts.lib import REPO
from scripts.lib.planning.matrix import all_experiments, baseline_replicas, expand_sweep, replicas
from scripts.lib.mobilenet import module_names
from scripts.lib.planning.registry import BASELINE

SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
PUBLISHED_PRESET = "paper"  # the preset whose paper is the published one (no banner)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


def _key_path(path) -> str:
    parts = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "<top level>"


@functools.lru_cache(maxsize=None)
def load_schema() -> dict:
    """The schema, with the strategy and schedule names taken from the registry (their one
    definition), so that a new strategy or schedule needs no edit here."""
    from scripts.lib.planning.registry import SCHEDULES, STRATEGIES

    with open(SCHEMA_PATH) as f:
        schema = yaml.safe_load(f)
    schema["$defs"]["strategy"]["enum"] = list(STRATEGIES)
    schema["$defs"]["schedule"]["enum"] = list(SCHEDULES)
    return schema


def experiment_name_pattern() -> str:
    """The regular expression every experiment name matches (the schema's, its one definition)."""
    return load_schema()["properties"]["experiments"]["items"]["properties"]["name"]["pattern"]


def validate_config(config: dict) -> dict:
    """Raise ConfigError naming the first bad key; return the config unchanged."""
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping, got {type(config).__name__}")
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        lines = [f"config key {_key_path(e.absolute_path)}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    check_semantics(config)
    return config


def check_semantics(config: dict) -> None:
    seen = {}  # name.casefold() -> index: names become file names, which some file systems compare ignoring case
    for i, exp in enumerate(config["experiments"]):
        key = f"experiments[{i}]"
        name = exp["name"]
        if name.casefold() == BASELINE:
            raise ConfigError(f"config key {key}.name: {name!r} is reserved for the unpruned model ({BASELINE!r}, "
                              "in any letter case)")
        j = seen.setdefault(name.casefold(), i)
        if j != i:
            other = config["experiments"][j]["name"]
            if other == name:
                raise ConfigError(f"config key {key}.name: experiment name {name!r} is used twice")
            raise ConfigError(f"config key {key}.name: {name!r} and experiments[{j}].name {other!r} differ only in "
                              "letter case; their files would overwrite each other on a case-insensitive file "
                              "system (macOS, Windows)")
        steps = exp.get("steps", 1)
        if exp["schedule"] == "oneshot" and steps != 1:
            raise ConfigError(f"config key {key}.steps: oneshot prunes in one step, got steps={steps}")
        check_gradual(exp, key)
    for k, sweep in enumerate(config.get("sweeps", [])):
        for row in expand_sweep(sweep):
            check_gradual(row, f"sweeps[{k}]")
        if sweep["schedule"] == "oneshot" and sweep.get("steps", 1) != 1:
            raise ConfigError(f"config key sweeps[{k}].steps: oneshot prunes in one step")
    for row in all_experiments(config)[len(config["experiments"]):]:  # the sweeps' own rows
        if row["name"].casefold() in seen:
            raise ConfigError(f"config key sweeps: the row {row['name']!r} takes the name of another experiment "
                              "with other settings (a named row, or a sweep with other steps)")
        seen[row["name"].casefold()] = -1
    source, path = config["data"]["source"], config["data"]["path"]
    if source != "synthetic" and not path:
        raise ConfigError(f"config key data.path: source {source!r} needs a path")
    check_prunable_set(config)
    names = set(experiment_names(config))
    seeds = config.get("seeds", [config["seed"]])
    if config["seed"] not in seeds:
        raise ConfigError(f"config key seeds: {seeds} must include seed ({config['seed']}), the seed of the models "
                          "the per-model tables and figures show")
    for k in config.get("baseline_seeds", []):
        if k not in seeds:
            raise ConfigError(f"config key baseline_seeds: {k} is not in seeds {seeds}; a baseline seed's replicas "
                              "prune its baseline, so it must be one of the seeds the experiments run with")
    for i, name in enumerate(config.get("seeds_experiments") or []):
        if name not in names:
            raise ConfigError(f"config key seeds_experiments[{i}]: {name!r} is not an experiment (named rows and "
                              "sweep rows); a --configfile that replaces experiments must give its own seeds_experiments")
    for name in [*replicas_by_name(config), *baseline_replicas_by_name(config)]:
        if name.casefold() in seen:
            raise ConfigError(f"config key seeds: the replica name {name!r} is taken by an experiment; rename it")
    check_controls(config, seen)
    for i, name in enumerate(config.get("ablation", [])):
        if name not in names:
            raise ConfigError(f"config key ablation[{i}]: {name!r} is not an experiment (named rows and sweep rows); "
                              "a --configfile that replaces experiments must give its own ablation (or ablation: [])")


def check_gradual(exp: dict, key: str) -> None:
    from scripts.lib.planning.registry import CHANNELS, DENSE, STRATEGIES

    family = STRATEGIES[exp["strategy"]].family
    if exp["schedule"] == "gradual" and family in (CHANNELS, DENSE):
        raise ConfigError(f"config key {key}.schedule: gradual updates masks during training; it is for "
                          f"masking strategies, not {exp['strategy']!r}"
                          + (" (the dense control of a gradual row is one-shot with that row's finetune)"
                             if family == DENSE else ""))
    if family == DENSE and exp["sparsity"] != 0:
        raise ConfigError(f"config key {key}.sparsity: the dense control removes nothing; its sparsity must be 0, "
                          f"got {exp['sparsity']}")
    if exp.get("target", "channels") != "channels" and STRATEGIES[exp["strategy"]].family != CHANNELS:
        raise ConfigError(f"config key {key}.target: {exp['target']!r} is for channel strategies; "
                          f"{exp['strategy']!r} masks weights")


def check_controls(config: dict, seen: dict) -> None:
    """A dense row's control_of names a pruning row of the same fine-tune budget; a small dense
    net has a name of its own and matches a channel-removal experiment. `seen`: the taken names,
    casefolded (experiments, sweep rows)."""
    from scripts.lib.planning.registry import CHANNELS, DENSE, STRATEGIES

    experiments = experiments_by_name(config)
    for i, exp in enumerate(config["experiments"]):
        key, target = f"experiments[{i}].control_of", exp.get("control_of")
        if target is None:
            continue
        if STRATEGIES[exp["strategy"]].family != DENSE:
            raise ConfigError(f"config key {key}: only a dense row (strategy dense) is a control of another")
        if target not in experiments or STRATEGIES[experiments[target]["strategy"]].family == DENSE:
            raise ConfigError(f"config key {key}: {target!r} is not a pruning experiment (named rows and sweep rows)")
        mine, theirs = finetune_epochs(config, exp), finetune_epochs(config, experiments[target])
        if mine != theirs:
            raise ConfigError(f"config key {key}: {exp['name']!r} fine-tunes {mine} epoch(s) in all, {target!r} "
                              f"{theirs}: a control at another budget separates nothing (set its finetune.epochs "
                              "or steps)")
    replica_names = {n.casefold() for n in replicas_by_name(config)}
    for i, entry in enumerate(config.get("small_dense", [])):
        key, name = f"small_dense[{i}]", entry["name"]
        if name.casefold() == BASELINE or name.casefold() in seen or name.casefold() in replica_names:
            raise ConfigError(f"config key {key}.name: {name!r} is taken (the baseline, an experiment or a seed "
                              "replica, in any letter case)")
        seen[name.casefold()] = -1
        match = experiments.get(entry["matches"])
        if match is None or STRATEGIES[match["strategy"]].family != CHANNELS:
            raise ConfigError(f"config key {key}.matches: {entry['matches']!r} is not a channel-removal experiment "
                              "(a masked model keeps the baseline's MACs: there is no smaller width to match)")


def check_override(config: dict, override: dict, source: str, path=()) -> None:
    """Snakemake merges a --configfile (or --config) into config.yaml mapping by mapping,
    so an empty mapping given for a list or a value changes nothing: `experiments: {}`
    would silently run the shipped experiments. `config` is the merged result."""
    for key, value in override.items():
        here = (*path, key)
        merged = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, dict) and not value and not isinstance(merged, dict):
            raise ConfigError(f"config key {_key_path(here)}: an empty mapping ({{}}) in {source} leaves the value "
                              f"of config.yaml in place ({type(merged).__name__}); give a value of that type "
                              "instead")
        if isinstance(value, dict) and isinstance(merged, dict):
            check_override(merged, value, source, here)


def check_prunable_set(config: dict) -> None:
    """prune.exclude and each experiment's exclude must name modules of the model, or the
    prune jobs would fail after training the baseline. The names come from
    scripts.mobilenet: no torch while planning."""
    names = module_names()
    keyed = [("prune.exclude", config["prune"]["exclude"])]
    keyed += [(f"experiments[{i}].exclude", e.get("exclude", [])) for i, e in enumerate(config["experiments"])]
    for key, excluded in keyed:
        unknown = [n for n in excluded if n not in names]
        if unknown:
            raise ConfigError(f"config key {key}: {unknown} are not modules of MobileNetV2 "
                              "(names as in model.named_modules(), e.g. classifier.1 or features.0.0)")


def prunable_settings(config: dict, exp: dict) -> dict:
    """The prune settings one experiment's pruner uses: prune.scope unless the experiment
    names its own, and prune.exclude plus the experiment's own dense modules."""
    prune = config["prune"]
    exclude = list(prune["exclude"]) + [n for n in exp.get("exclude", []) if n not in prune["exclude"]]
    return {"layer_types": prune["layer_types"], "exclude": exclude, "scope": exp.get("scope", prune["scope"]),
            "round_to": prune["round_to"]}


def experiment_names(config: dict) -> list[str]:
    """The named experiments, then the rows the sweeps expand into."""
    return [e["name"] for e in all_experiments(config)]


def _with_defaults(exp: dict) -> dict:
    return {"steps": 1, "label": exp["name"], **exp}


def experiments_by_name(config: dict) -> dict[str, dict]:
    """Every experiment (named rows, then the sweeps' rows) with its defaults (steps 1,
    label = name), by name, in config order."""
    return {e["name"]: _with_defaults(e) for e in all_experiments(config)}


def replicas_by_name(config: dict) -> dict[str, dict]:
    """The seed replicas of the experiments (scripts.lib.planning.matrix.replicas), with defaults, by name."""
    return {e["name"]: _with_defaults(e) for e in replicas(config)}


def baseline_replicas_by_name(config: dict) -> dict[str, dict]:
    """The baseline trained with the other seeds of `baseline_seeds` (scripts.lib.planning.matrix), by name."""
    return {e["name"]: e for e in baseline_replicas(config)}


def experiment(config: dict, name: str) -> dict:
    for e in all_experiments(config):
        if e["name"] == name:
            return _with_defaults(e)
    raise KeyError(name)


def config_hash(config: dict) -> str:
    """sha256 of the effective (merged) configuration, key order independent."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def finetune_settings(config: dict, exp: dict) -> dict:
    """An experiment's fine-tune settings: the shared prune.finetune, overridden by its own
    finetune key (where it has one)."""
    return {**config["prune"]["finetune"], **exp.get("finetune", {})}


def finetune_epochs(config: dict, exp: dict) -> int:
    """Fine-tune epochs an experiment spends: one fine-tune for the gradual schedule,
    one per pruning step otherwise."""
    epochs = finetune_settings(config, exp)["epochs"]
    return epochs if exp["schedule"] == "gradual" else epochs * exp.get("steps", 1)


def small_dense_by_name(config: dict) -> dict[str, dict]:
    """The small dense networks (config key small_dense), label defaulting to the name, by name."""
    return {e["name"]: {"label": e["name"], **e} for e in config.get("small_dense", [])}


def small_dense_epochs(config: dict, entry: dict) -> int:
    """A small dense net's training epochs: the baseline's and the matched experiment's fine-tuning."""
    return config["train"]["epochs"] + finetune_epochs(config, experiments_by_name(config)[entry["matches"]])


def training_bill(config: dict) -> dict:
    """The study's cost in training epochs: the baseline's (once per baseline seed), every
    experiment's fine-tuning, how many of those distil the baseline (each also runs the teacher's
    forward pass), and the small dense networks trained from scratch."""
    experiments = [*experiments_by_name(config).values(), *replicas_by_name(config).values()]
    runs = 1 + len(baseline_replicas(config))
    from_scratch = config["train"]["epochs"] * runs
    finetune = sum(finetune_epochs(config, e) for e in experiments)
    distilled = sum(finetune_epochs(config, e) for e in experiments if e.get("distill"))
    small = sum(small_dense_epochs(config, e) for e in small_dense_by_name(config).values())
    return {"baseline": from_scratch, "baseline_runs": runs, "finetune": finetune, "distilled": distilled, "small_dense": small,
            "total": from_scratch + finetune + small}
