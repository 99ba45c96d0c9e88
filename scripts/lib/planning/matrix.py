"""The experiment matrix: the named rows of `experiments:` plus the compact `sweeps:`.

A sweep names strategies, sparsities and one schedule; it expands into one named
experiment per (strategy, sparsity), so that the paper can draw accuracy against
sparsity as curves. No torch: the workflow expands the matrix while it plans.

    sweeps:
      - {strategies: [l1_unstructured, random_unstructured], sparsities: [0.5, 0.9], schedule: oneshot}
"""
from __future__ import annotations

import hashlib

from scripts.lib.planning.registry import BASELINE, CHANNELS, SCHEDULES, STRATEGIES

# A sweep's rows share everything but strategy and sparsity.
SWEEP_KEYS = ("strategies", "sparsities", "schedule", "steps")


def sweep_name(strategy: str, schedule: str, sparsity: float) -> str:
    """sweep_<strategy>_<schedule>_<percent>, e.g. sweep_l1_unstructured_oneshot_90."""
    return f"sweep_{strategy}_{schedule}_{round(sparsity * 100):g}"


def sweep_label(strategy: str, schedule: str, sparsity: float) -> str:
    """A channel row's target is a share of channels; what it removes of the MACs is measured, and
    the results stage fills it in (scripts.lib.planning.labels)."""
    phrase = STRATEGIES[strategy].phrase
    if STRATEGIES[strategy].family == CHANNELS:
        return (f"{SCHEDULES[schedule].phrase.capitalize()} {phrase}, {sparsity * 100:g}% of channels "
                "(<macs_removed> % of MACs) removed")
    return f"{SCHEDULES[schedule].phrase.capitalize()} {phrase} {sparsity * 100:g}%"


def expand_sweep(sweep: dict) -> list[dict]:
    """The named experiments of one sweep, strategy by strategy, sparsities in order."""
    return [{"name": sweep_name(s, sweep["schedule"], p), "label": sweep_label(s, sweep["schedule"], p),
             "strategy": s, "schedule": sweep["schedule"], "sparsity": p, "steps": sweep.get("steps", 1),
             "sweep": True}
            for s in sweep["strategies"] for p in sweep["sparsities"]]


# What makes two experiments the same apart from their target.
IDENTITY_IGNORES = ("name", "label", "sparsity", "sweep")


def settings_key(experiment: dict) -> tuple:
    """Everything that defines how an experiment prunes and recovers, except its target."""
    full = {"steps": 1, **experiment}
    return tuple(sorted((k, repr(v)) for k, v in full.items() if k not in IDENTITY_IGNORES))


def all_experiments(config: dict) -> list[dict]:
    """The named rows, then every sweep's rows, in config order. A sweep row with the
    settings of a named row is that row (trained once), not a second experiment."""
    rows = [dict(e) for e in config["experiments"]]
    known = {(settings_key(e), e["sparsity"]) for e in rows}
    for sweep in config.get("sweeps", []):
        for e in expand_sweep(sweep):
            if (settings_key(e), e["sparsity"]) not in known:
                known.add((settings_key(e), e["sparsity"]))
                rows.append(e)
    return rows


def replica_name(name: str, seed: int) -> str:
    return f"{name}_seed{seed}"


def replicas(config: dict) -> list[dict]:
    """Every experiment again with each other seed of `seeds` (only those named in
    `seeds_experiments`, when given): <name>_seed<k>, with the seed it runs with and the
    experiment it replicates. The experiment itself runs with `seed`."""
    chosen = config.get("seeds_experiments")
    out = []
    for e in all_experiments(config):
        if chosen is not None and e["name"] not in chosen:
            continue
        for k in config.get("seeds", [config["seed"]]):
            if k != config["seed"]:
                out.append({**e, "name": replica_name(e["name"], k),
                            "label": f"{e.get('label', e['name'])} (seed {k})", "seed": k, "replica_of": e["name"]})
    return out


def baseline_seeds(config: dict) -> list[int]:
    """The seeds the baseline is trained with: `seed` first, then the others of `baseline_seeds`."""
    return [config["seed"]] + [k for k in config.get("baseline_seeds", []) if k != config["seed"]]


def baseline_replicas(config: dict) -> list[dict]:
    """The baseline trained again from scratch with each other seed of `baseline_seeds`:
    baseline_seed<k>, with its seed and replica_of the baseline, whose row it is folded into."""
    return [{"name": replica_name(BASELINE, k), "seed": k, "replica_of": BASELINE} for k in baseline_seeds(config)[1:]]


def baseline_of(config: dict, run: dict) -> str:
    """The baseline a prune job starts from and distils: a seed replica whose seed has a baseline
    of its own prunes that one, so that the replicas' spread covers the baseline's training too;
    every other job prunes the baseline of `seed`."""
    k = run.get("seed", config["seed"])
    return replica_name(BASELINE, k) if "replica_of" in run and k in baseline_seeds(config)[1:] else BASELINE


def curve_id(experiment: dict) -> str:
    """A short name shared by the experiments that differ only in their target."""
    return hashlib.sha256(repr(settings_key(experiment)).encode()).hexdigest()[:12]


def curves(rows: list[dict]) -> list[list[dict]]:
    """Results rows that differ only in their target, as curves sorted by target: every
    group of two or more, in the order of its first row."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("curve"):
            groups.setdefault(r["curve"], []).append(r)
    return [sorted(g, key=lambda r: r["target_sparsity"]) for g in groups.values() if len(g) > 1]
