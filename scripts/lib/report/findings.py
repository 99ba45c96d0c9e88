"""What the paper finds: comparisons, paired tests, the headline findings and the answers to the
seed's questions, computed from one run (what storage and speed cost: scripts.lib.report.costs).

Each statement of the paper is a number here first; the template only places it. A statement
whose models the run lacks is None (or empty), and the template leaves it out.
"""
from __future__ import annotations

from dataclasses import dataclass

from scripts.lib.mobilenet import CLASSIFIER
from scripts.lib.planning.config import finetune_epochs, finetune_settings, prunable_settings, small_dense_by_name
from scripts.lib.planning.registry import BASELINE, CHANNELS, STRATEGIES
from scripts.lib.report.controls import baseline_convergence, control_findings, is_dense_control
from scripts.lib.report.costs import (channel_speedups, deployment_options, faster, file_size_paradox, hardware_gap,
                                      speedup_range)
from scripts.lib.report.families import channel_rows, family, masked_rows
from scripts.lib.report.inputs import Run
from scripts.lib.report.noise import clearly_above, retraining_bounds
from scripts.lib.report.stats import holm, paired_test_of
from scripts.lib.report.sweep import sweep_findings

# Experiment keys that change how a row prunes or recovers beyond strategy, schedule, target and steps.
RECOVERY_KEYS = ("finetune", "scope", "exclude", "recalibrate_bn", "distill", "pruning_share")
# Experiment keys that name a row, choose its criterion, replicate it or mark it a sweep's: a random
# control may differ from its criterion's row in these only.
NOT_RECIPE = ("name", "label", "strategy", "seeds", "sweep")


def _find(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def recovery_options(row: dict, experiments: dict) -> list[str]:
    """The RECOVERY_KEYS a pruned row's experiment sets, in RECOVERY_KEYS order."""
    return [k for k in RECOVERY_KEYS if k in experiments[row["name"]]]


def target_of(row: dict, experiments: dict) -> str | None:
    """What a pruned row's target is a share of: "macs", or None for the strategy's own unit
    (weights or each layer's channels). The same number as a share of two things is two targets."""
    return experiments[row["name"]].get("target")


# --- comparisons and their paired tests -------------------------------------------------------------

def schedule_comparisons(rows, experiments: dict) -> list[dict]:
    """Iterative against one-shot at the same strategy and target (its share and what it is a share
    of: `experiments`, every experiment by name, says which rows target MACs)."""
    out = []
    for it in _find(rows, schedule="iterative"):
        for one in _find(rows, schedule="oneshot", strategy=it["strategy"], target_sparsity=it["target_sparsity"]):
            if target_of(one, experiments) != target_of(it, experiments):
                continue
            out.append({"iterative": it, "oneshot": one, "delta": it["accuracy"] - one["accuracy"],
                        "sparsity": it["target_sparsity"], "strategy": it["strategy"],
                        "channels": family(it) == CHANNELS})
    return out


def strategy_comparisons(rows, experiments: dict) -> list[dict]:
    """Each importance criterion against its random control: the random row whose experiment differs
    from the criterion's in the criterion only (schedule, share, steps, MAC or channel target, ranking
    scope, fine-tune and recovery all equal), so that the difference measures the ranking alone.
    `experiments`: every experiment by name (scripts.lib.planning.config.experiments_by_name)."""
    def recipe(row):
        return {k: v for k, v in experiments[row["name"]].items() if k not in NOT_RECIPE}

    out = []
    for name, strategy in STRATEGIES.items():
        if strategy.control is None:
            continue
        for imp in _find(rows, strategy=name):
            imp_recipe = recipe(imp)
            for rnd in _find(rows, strategy=strategy.control):
                if recipe(rnd) == imp_recipe:
                    out.append({"importance": imp, "random": rnd, "delta": imp["accuracy"] - rnd["accuracy"],
                                "strategy": name, "sparsity": imp["target_sparsity"], "schedule": imp["schedule"],
                                "channels": strategy.family == CHANNELS,
                                "macs_target": imp_recipe.get("target") == "macs",
                                "global_ranking": imp_recipe.get("scope") == "global"})
    return out


def plain_rows(rows, experiments: dict) -> list[dict]:
    """The pruned rows that use the shared fine-tune and prunable set: the schedule comparisons
    pair only these, so that an option never passes for a schedule's effect (the
    dense controls, which prune nothing, are compared in scripts.lib.report.controls; the
    baseline and the small dense nets prune nothing either)."""
    return [r for r in rows if family(r) is not None and not is_dense_control(r)
            and not recovery_options(r, experiments)]


def attach_tests(comparisons, first: str, second: str, correct: dict) -> list[dict]:
    """Each comparison with the exact McNemar test of its two models on the same test
    images (None where a model's per-image results are missing)."""
    for c in comparisons:
        c["test"] = paired_test_of(correct, c[first]["name"], c[second]["name"])
    return comparisons


def ablation_chain(rows, settings: dict, experiments: dict, correct: dict | None = None) -> list[dict]:
    """The config's ablation rows in order, each with its change over the row before (and that
    change's exact McNemar test, the row first) and over the first; empty with fewer than two rows."""
    by_name = {r["name"]: r for r in rows}
    chain = [by_name[n] for n in settings.get("ablation", []) if n in by_name]
    if len(chain) < 2:
        return []
    correct = correct or {}
    out = []
    for i, r in enumerate(chain):
        prev = chain[i - 1] if i else None
        test = paired_test_of(correct, r["name"], prev["name"]) if prev else None
        out.append({"row": r, "epochs": finetune_epochs(settings, experiments[r["name"]]),
                    "lr": finetune_settings(settings, experiments[r["name"]])["lr"],
                    "delta": r["accuracy"] - prev["accuracy"] if prev else None,
                    "over_first": r["accuracy"] - chain[0]["accuracy"], "test": test})
    return out


def option_comparisons(rows, experiments: dict, correct: dict) -> list[dict]:
    """Each row that adds recovery options (RECOVERY_KEYS) to a plain row of the same strategy,
    schedule, target (its share and what it is a share of: weights, channels or MACs) and steps,
    against that row, with the exact McNemar test of the two."""
    def key(r):
        return r["strategy"], r["schedule"], r["target_sparsity"], r["steps"], target_of(r, experiments)

    plain = {key(r): r for r in plain_rows(rows, experiments)}
    out = []
    for r in (r for r in rows if family(r) is not None):  # the baseline and small dense nets prune nothing
        options = recovery_options(r, experiments)
        twin = plain.get(key(r)) if options else None
        if twin:
            out.append({"option": r, "plain": twin, "options": options, "delta": r["accuracy"] - twin["accuracy"]})
    return attach_tests(out, "option", "plain", correct)


# --- the run's findings, once ----------------------------------------------------------------------------

def channel_model(speedups: dict, base: dict, noise: float, by: str) -> dict | None:
    """The channel-removed model with the largest speed-up in any setting timed (`by` "speed": what
    removing channels can buy) or the most accurate one (`by` "accuracy": what a usable model gains),
    with the range of its speed-ups over every setting (`range`: `low` and `high`, each with its setting);
    `faster`: its best speed-up exceeds 1 + `noise` (as for the masked model: costs.hardware_gap)."""
    if not speedups["rows"]:
        return None
    ranged = [{**c, "range": speedup_range(c["row"], base)} for c in speedups["rows"]]
    key = {"speed": lambda c: c["range"]["high"]["speedup"], "accuracy": lambda c: c["row"]["accuracy"]}[by]
    best = max(ranged, key=key)
    return {**best, "faster": faster(best["range"]["high"]["speedup"], noise)}


def headline_schedule(comparisons) -> dict | None:
    """The schedule comparison the abstract, the conclusion and the first question report: at the
    highest sparsity, masking before channels, the first in table order on a tie (never chosen
    by its outcome)."""
    pool = [c for c in comparisons if not c["channels"]] or comparisons
    return max(pool, key=lambda c: c["sparsity"]) if pool else None


def headline(schedule_cmp, gap, speedups, base: dict, noise: float) -> list[dict]:
    """The paper's headline results, each with its number: the schedule comparison at the
    highest sparsity, what masking buys, and what removing channels buys the most accurate
    channel-removed model. A finding whose models are not in the matrix is left out."""
    out = []
    if c := headline_schedule(schedule_cmp):
        out.append({"kind": "schedule", **c})
    if gap:
        out.append({"kind": "masking", **gap})
    if best := channel_model(speedups, base, noise, by="accuracy"):
        out.append({"kind": "channels", **best})
    return out


@dataclass(frozen=True)
class Analysis:
    """Every comparison and measurement summary the paper states, from one run."""
    rows: list[dict]       # table order, the baseline first
    masked: list[dict]     # the rows pruned by masking
    schedule: list[dict]   # iterative against one-shot (plain rows), with paired tests
    strategy: list[dict]   # each importance criterion against its random control, with paired tests
    chain: list[dict]      # the ablation, in config order
    gap: dict | None       # the sparsest masked model against the baseline
    channels: dict         # channel-removed models: speed-up against the MACs reduction
    deploy: dict           # deployment options and picks
    paradox: dict | None   # a checkpoint with its masks attached against a plain state_dict
    options: list[dict]    # each row with recovery options against the plain row it modifies, with paired tests
    probe: list[dict]      # dense against CSR products of the sparsest L1-pruned model (the timing job's probe)
    sweep: dict | None     # dense against CSR on the baseline's layers pruned to each level, break-evens
    headline: list[dict]   # the abstract's findings
    controls: list[dict]   # models that remove nothing, each against the pruned model it controls
    noise: float           # how far the timing passes disagree on a speed-up: smaller is no speed-up
    convergence: dict      # the baseline's last validation epochs and the dense fine-tunes against it

    @property
    def seed_spread(self) -> dict | None:
        """What retraining alone moves, which a paired test on one set of models does not see: the
        replicated rows' largest seed-to-seed standard deviation, and the baseline's seeds' range."""
        replicated = [r for r in self.rows[1:] if r.get("seeds_run", 1) > 1]  # the baseline's: its range
        if not replicated:
            return None
        widest = max(replicated, key=lambda r: r["accuracy_std"])
        base = self.baseline.get("accuracy_seeds")
        return {"rows": replicated, "widest": widest, "bounds": retraining_bounds(replicated),
                "baseline_range": max(base) - min(base) if base and len(base) > 1 else None}

    def within_retraining(self, delta: float, row: dict) -> bool:
        """Whether an accuracy difference of `row` and another single run of its family is within
        what retraining alone moves: at most noise.RETRAINING_STDS of the largest seed-to-seed standard
        deviation of the family's replicated rows, or of all replicated rows where none of its
        family was replicated (False where no row was: nothing measured to say it)."""
        spread = self.seed_spread
        if spread is None:
            return False
        bound = spread["bounds"].get(family(row), max(spread["bounds"].values()))
        return abs(delta) <= bound

    @property
    def all_tested(self) -> bool:
        """Whether every comparison the paper states has its paired test (per-image results of both models)."""
        pairs = [*self.schedule, *self.strategy, *self.options, *self.chain[1:], *(c for c in self.controls if c["of"])]
        return all(c["test"] for c in pairs)

    @property
    def baseline(self) -> dict:
        return self.rows[0]

    @property
    def experiments(self) -> list[dict]:
        """The pruned models (the controls left out)."""
        controls = {c["row"]["name"] for c in self.controls}
        return [r for r in self.rows[1:] if r["name"] not in controls]

    @property
    def dense_controls(self) -> list[dict]:
        """The controls that fine-tune the baseline at a pruned row's budget."""
        return [c for c in self.controls if c["kind"] == "dense"]

    @property
    def unstable_training(self) -> list[dict]:
        """The networks trained from scratch (the baseline, the small dense nets) whose validation
        accuracy fell by more than controls.FALL_STATED while they trained: each row and its fall."""
        trained = [(self.baseline, self.convergence["fall"]), *((c["row"], c["fall"]) for c in self.small_controls)]
        return [{"row": row, "fall": fall} for row, fall in trained if fall and fall["stated"]]

    @property
    def small_controls(self) -> list[dict]:
        """The small dense networks trained from scratch at a channel-removed model's MACs."""
        return [c for c in self.controls if c["kind"] == "small_dense"]


def analyse(run: Run) -> Analysis:
    plain = plain_rows(run.rows, run.experiments)
    schedule = attach_tests(schedule_comparisons(plain, run.experiments), "iterative", "oneshot", run.correct)
    for c in schedule:  # each schedule's fine-tune epochs in all: iterative ones fine-tune once per step
        c["epochs"] = {k: finetune_epochs(run.settings, run.experiments[c[k]["name"]]) for k in ("iterative", "oneshot")}
    # one pass measures no disagreement: then any measured speed-up counts
    noise = run.timing["agreement"].get("max_spread", 0.0)
    gap = hardware_gap(run.rows, noise)
    speedups = channel_speedups(run.rows)
    controls = control_findings(run.rows, run.settings, run.histories, run.correct)
    return Analysis(rows=run.rows, masked=masked_rows(run.rows), schedule=schedule,
                    strategy=attach_tests(strategy_comparisons(run.rows, run.experiments),
                                          "importance", "random", run.correct),
                    chain=ablation_chain(run.rows, run.settings, run.experiments, run.correct), gap=gap, channels=speedups,
                    deploy=deployment_options(run.rows, set(small_dense_by_name(run.settings)), noise,
                                              run.correct, run.correct_int8),
                    paradox=file_size_paradox(run.rows),
                    options=option_comparisons(run.rows, run.experiments, run.correct),
                    probe=run.timing.get("sparse_probe", []), sweep=sweep_findings(run.timing.get("sparse_sweep")),
                    headline=headline(schedule, gap, speedups, run.rows[0], noise), noise=noise,
                    controls=controls,
                    convergence=baseline_convergence(run.histories[BASELINE], controls))


# --- the seed's four questions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Questions:
    """The numbers that answer the seed's four questions; a question whose rows the run lacks is None.
    1: why iterative beat one-shot; 2: why structured masking collapsed and channel removal did not;
    3: why masking brought no speed, and what does; 4: the file-size paradox."""
    iterative: dict | None
    structured: dict | None
    speed: dict | None
    paradox: dict | None

    @property
    def answered(self) -> bool:
        return any((self.iterative, self.structured, self.speed, self.paradox))


def equal_budget_oneshot(row: dict, run: Run) -> dict | None:
    """The one-shot row that gives `row`'s strategy and target the same fine-tune epochs at the same
    peak learning rate, and changes nothing else (no recovery option but its fine-tune): the
    comparison that tells a schedule from its budget. None where the matrix has no such row."""
    def ft(r):
        e = run.experiments[r["name"]]
        return finetune_epochs(run.settings, e), finetune_settings(run.settings, e)["lr"]

    budget = ft(row)
    for r in run.rows:
        if (family(r) is not None and r["schedule"] == "oneshot" and r["strategy"] == row["strategy"]
                and r["target_sparsity"] == row["target_sparsity"]
                and target_of(r, run.experiments) == target_of(row, run.experiments)
                and set(recovery_options(r, run.experiments)) <= {"finetune"} and ft(r) == budget):
            return r
    return None


def equal_budget_comparisons(run: Run, rows: list[dict]) -> list[dict]:
    """Each of `rows` (an iterative or gradual row without recovery options but its fine-tune)
    against its equal-budget one-shot row, with the exact McNemar test."""
    out = []
    for r in rows:
        if set(recovery_options(r, run.experiments)) <= {"finetune"} and (one := equal_budget_oneshot(r, run)):
            out.append({"row": r, "oneshot": one, "delta": r["accuracy"] - one["accuracy"],
                        "epochs": finetune_epochs(run.settings, run.experiments[r["name"]]),
                        "lr": finetune_settings(run.settings, run.experiments[r["name"]])["lr"],
                        "test": paired_test_of(run.correct, r["name"], one["name"])})
    return out


def iterative_answer(run: Run, a: Analysis) -> dict | None:
    c = headline_schedule([c for c in a.schedule if not c["channels"]])  # the headline's, where it is masked
    if c is None:
        return None
    it, one = run.histories[c["iterative"]["name"]]["steps"], run.histories[c["oneshot"]["name"]]["steps"]
    return {**c, "baseline_val": run.histories[BASELINE]["best_val_accuracy"],
            "oneshot_pruned_val": one[0]["val_accuracy_pruned"],
            "iterative_pruned_val": (cuts := [s["val_accuracy_pruned"] for s in it]),
            "val_images": run.data["val"],
            # each iterative cut left more than the one-shot cut, beyond the validation set's noise
            "less_damaged": clearly_above(min(cuts), one[0]["val_accuracy_pruned"], run.data["val"]),
            "step_fraction": 1 - (1 - c["sparsity"]) ** (1 / len(it)),
            "chain": a.chain, "best": max((x["row"] for x in a.chain), key=lambda r: r["accuracy"]) if a.chain else None,
            # the schedule against its budget: the iterative row, and each gradual row of the ablation
            "equal_budget": (equal := equal_budget_comparisons(run, [c["iterative"]] + [
                x["row"] for x in a.chain if x["row"]["schedule"] == "gradual"])),
            "equal_iterative": next((e for e in equal if e["row"] is c["iterative"]), None)}


def structured_answer(run: Run) -> dict | None:
    structured = [r for r in run.rows if r["strategy"] == "l2_structured"]
    if not structured:
        return None
    r = max(structured, key=lambda x: x["target_sparsity"])
    prunable = prunable_settings(run.settings, run.experiments.get(r["name"], {}))
    classes = run.settings["data"]["num_classes"]
    in_set = "Linear" in prunable["layer_types"] and CLASSIFIER not in prunable["exclude"]
    lo, hi = r["accuracy_ci"]
    channels = sorted(channel_rows(run.rows), key=lambda x: x["target_sparsity"])
    # the fewest MACs (a channel share and a MACs target are not comparable targets), the more accurate on a tie
    widest = min(channels, key=lambda x: (x["macs_ratio"], -x["accuracy"])) if channels else None
    masked = round(r["target_sparsity"] * classes) if in_set else 0
    # the masked rows' logits are their biases, a constant: only the live rows' classes and
    # the class with the largest such bias can ever be predicted
    most = classes - masked + 1 if masked else classes
    return {"row": r, "classes": classes, "classifier_pruned": in_set, "class_rows_masked": masked,
            "most_classes": most,
            "within_cap": lo <= most / classes,  # the cap explains a collapse only within it
            "chance": 1 / classes, "chance_in_interval": lo <= 1 / classes <= hi,
            "channels": channels, "widest": widest,
            "test": paired_test_of(run.correct, widest["name"], r["name"]) if widest else None}


def tests_reported(a: Analysis, q: Questions) -> dict:
    """The distinct pairs of models the paper tests (each at the 5 % level, uncorrected, where
    the text names it): how many, how many significant, and which of those Holm's correction
    over all of them would not keep."""
    chain = [x["row"] for x in a.chain]
    pairs = [*((c["iterative"], c["oneshot"], c["test"]) for c in a.schedule),
             *((c["importance"], c["random"], c["test"]) for c in a.strategy),
             *((c["option"], c["plain"], c["test"]) for c in a.options),
             *((x["row"], chain[i - 1], x["test"]) for i, x in enumerate(a.chain) if i),
             *((c["row"], c["of"], c["test"]) for c in a.controls if c["of"]),
             *((c["row"], a.baseline, c["vs_baseline"]["test"]) for c in a.convergence["dense"]),
             *((e["row"], e["oneshot"], e["test"]) for e in (q.iterative or {}).get("equal_budget", [])),
             *([(q.structured["widest"], q.structured["row"], q.structured["test"])] if q.structured else [])]
    distinct = {}  # each pair once, where the text first names it
    for x, y, t in pairs:
        if t:
            distinct.setdefault(frozenset((x["name"], y["name"])), (x, y, t))
    distinct = list(distinct.values())
    kept = holm([t["p_value"] for _, _, t in distinct])
    return {"count": len(distinct), "significant": sum(t["significant"] for _, _, t in distinct),
            "holm": sum(kept), "lost": [(x, y, t) for (x, y, t), k in zip(distinct, kept) if t["significant"] and not k]}


def seed_questions(run: Run, a: Analysis) -> Questions:
    speed = paradox = None
    if a.gap:
        base_ort = next(o for o in a.deploy["options"] if o["row"] is a.baseline and o["runtime"] == "onnxruntime")
        speed = {**a.gap, "probe": a.probe[-1] if a.probe else None, "ort": base_ort, "threads": a.deploy["threads"],
                 "ort_faster": faster(max(base_ort["speedup"].values()), a.noise),
                 "channels": channel_model(a.channels, a.baseline, a.noise, by="speed")}
    if a.paradox:
        channels = channel_rows(run.rows)
        paradox = {**a.paradox, "smallest_channels": min(channels, key=lambda x: x["gzip_bytes"]) if channels else None}
    return Questions(iterative=iterative_answer(run, a), structured=structured_answer(run), speed=speed, paradox=paradox)
