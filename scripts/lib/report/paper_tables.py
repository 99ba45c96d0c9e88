"""The paper's tables that are not one row per model and column (those come from the column
registry, scripts.lib.report.tables): each built here from the run's findings, by hand."""
from __future__ import annotations

from dataclasses import dataclass

from scripts.lib.planning.config import (experiments_by_name, finetune_epochs, finetune_settings, load_schema,
                                         prunable_settings, small_dense_by_name, small_dense_epochs)
from scripts.lib.planning.registry import CHANNELS, DENSE, SCHEDULES, STRATEGIES
from scripts.lib.report.controls import controls_table
from scripts.lib.report.costs import latency_settings, timed_runtimes
from scripts.lib.report.families import family
from scripts.lib.report.findings import RECOVERY_KEYS, Analysis
from scripts.lib.report.inputs import Run, epoch_seconds
from scripts.lib.report.phrases import RUNTIME_SHORT_NAMES, deployable_phrase, full_label, p_value, plural, runtime_name
from scripts.lib.report.formats import interval, interval_cell, mb, mega, ms, pct, points, ratio, spread
from scripts.lib.report.results import grid_entry
from scripts.lib.report.tables import Table, model_table


def ranking(e: dict, scope: str) -> str:
    """How an experiment ranks what it removes, for the recovery table: within each layer (or
    coupled channel group) or one ranking over the network; a global channel ranking with the
    largest share of a layer it may remove (config key max_layer_ratio, its default the schema's)."""
    if e["strategy"] == "l2_structured" or scope != "global":  # whole filters: always per layer
        return "per layer"
    if STRATEGIES[e["strategy"]].family == CHANNELS:
        default = load_schema()["properties"]["experiments"]["items"]["properties"]["max_layer_ratio"]["default"]
        return f"global, at most {e.get('max_layer_ratio', default) * 100:g} % of a layer"
    return "global"


def recovery_table(settings: dict, rows) -> Table | None:
    """How each named experiment prunes and recovers, where it departs from the shared settings
    (labelled as in the results, whose labels carry the measured values their placeholders name)."""
    body = []
    labels = {r["name"]: r["label"] for r in rows}
    for e in experiments_by_name(settings).values():
        if e["name"] not in labels or e.get("sweep") or STRATEGIES[e["strategy"]].family == DENSE \
                or (e["schedule"] == "oneshot" and not any(k in e for k in RECOVERY_KEYS)):
            continue  # the dense controls have a table of their own (controls_table)
        ft = finetune_settings(settings, e)
        prunable = prunable_settings(settings, e)
        own_dense = [n for n in prunable["exclude"] if n not in settings["prune"]["exclude"]]
        distill = e.get("distill")
        body.append([labels[e["name"]], f"{SCHEDULES[e['schedule']].phrase}, "
                     + plural(e["steps"], "mask update" if e["schedule"] == "gradual" else "step"),
                     f"{finetune_epochs(settings, e)} ({'one run' if e['schedule'] == 'gradual' else str(ft['epochs']) + ' per step'})",
                     f"{ft['lr']:g}", ranking(e, prunable["scope"]), ", ".join(own_dense) or "none",
                     f"{e['recalibrate_bn']} batches" if e.get("recalibrate_bn") else "no",
                     f"weight {distill['weight']:g}, T {distill['temperature']:g}" if distill else "no"])
    if not body:
        return None
    return Table(["Model", "Schedule", "Fine-tune epochs", "Peak lr", "Ranking", "Also dense", "BN recalibration",
                  "Distillation"], body, [False, False, True, True, False, False, False, False],
                 "How the iterative and gradual experiments, and the one-shot ones that depart from the shared "
                 "settings, prune and recover.")


def ablation_table(chain: list[dict], histories: dict) -> Table | None:
    """The ablation chain: each row's accuracy change over the row before and over the first,
    at its fine-tune budget and measured fine-tune time."""
    if not chain:
        return None
    body = []
    for i, c in enumerate(chain):
        seconds = epoch_seconds(histories[c["row"]["name"]]) if c["row"]["name"] in histories else None
        body.append([c["row"]["label"], str(c["epochs"]), f"{seconds / 60:.1f}" if seconds is not None else "n/a",
                     pct(c["row"]["accuracy"]), points(c["delta"]) if i else "reference",
                     p_value(c["test"]["p_value"]) if c["test"] else "n/a" if i else "reference",
                     points(c["over_first"]) if i else "reference"])
    return Table(["Model", "Fine-tune epochs", "Fine-tune time (min)", "Accuracy (%)", "Change (points)",
                  "McNemar, change", "Over the first (points)"], body, [False, True, True, True, True, True, True],
                 "Ablation at one budget: each row changes the row above it as its label says (every setting: "
                 "Appendix A); the exact McNemar "
                 "test compares each row with the row above on the same test images; fine-tune time is the model's "
                 "median epoch times its epochs.")


def seeds_table(rows) -> Table | None:
    """Each experiment that ran with several seeds: its accuracy per seed, mean and standard deviation."""
    body = [[r["label"], ", ".join(str(s) for s in r["seeds"]), ", ".join(pct(a) for a in r["accuracy_seeds"]),
             f"{pct(r['accuracy_mean'])} ± {spread(r['accuracy_std'])}"]
            for r in rows if r.get("seeds_run", 1) > 1]
    if not body:
        return None
    baseline = rows[0]  # table order: the baseline first
    if baseline.get("seeds_run", 1) > 1:
        what = (f"Models run with several seeds (the baseline trained from scratch with seeds "
                f"{', '.join(str(s) for s in baseline['seeds'])}; each experiment's replica at one of those seeds "
                f"prunes and distils that seed's baseline, the others the baseline of seed {baseline['seeds'][0]}, "
                "with the fine-tuning order, augmentation and random pruning reseeded)")
    else:
        what = ("Experiments run with several seeds (the fine-tuning order, augmentation and random pruning "
                "reseeded; the baseline shared)")
    return Table(["Model", "Seeds", "Accuracy per seed (%)", "Mean ± std (%)"], body, [False, True, True, True],
                 f"{what}: test accuracy per seed, the first being the seed of the other tables, and the mean ± "
                 "sample standard deviation.")


def seed_table(rows, seed: dict) -> Table | None:
    """Our accuracy beside the seed study's, for the experiments it reported."""
    body = [[r["label"], pct(seed["accuracy"][r["name"]]), pct(r["accuracy"]),
             points(r["accuracy"] - seed["accuracy"][r["name"]])]
            for r in rows if r["name"] in seed["accuracy"]]
    if not body:
        return None
    return Table(["Model", "Seed accuracy (%)", "This run (%)", "Difference (points)"], body,
                 [False, True, True, True], f"Top-1 accuracy reported by {seed['source']}, beside this run's.")


def latency_tables(rows) -> list[Table]:
    """One table per runtime: each model's median (IQR) at every batch size and thread count."""
    settings = latency_settings(rows[0])
    tables = []
    for runtime in timed_runtimes(rows[0]):
        headers = ["Model"] + [f"Batch {b}, {t} thread{'s' if t > 1 else ''} (ms)" for b, t in settings]
        body = [[r["label"]] + [f"{ms(g['latency_ms'])} ({ms(g['latency_iqr_ms'])})"
                                for g in (grid_entry(r["latency_grid"], runtime, b, t) for b, t in settings)]
                for r in rows]
        tables.append(Table(headers, body, [False] + [True] * len(settings),
                            f"Latency of one forward pass in {runtime_name(runtime)}: median "
                            "(inter-quartile range) in ms, per batch size and thread count."))
    return tables


def channel_tables(speedups: dict) -> list[Table]:
    """What each channel-removed model keeps, and the speed-up it reaches."""
    if not speedups["rows"]:
        return []
    kept = Table(["Model", "Channels kept (%)", "Params (%)", "MACs (%)", "MACs reduction", "Accuracy (%)"],
                 [[c["row"]["label"], pct(c["row"]["channels_ratio"]), pct(c["row"]["params_ratio"]),
                   pct(c["row"]["macs_ratio"]), f"{ratio(c['limit'])}x", pct(c["row"]["accuracy"])]
                  for c in speedups["rows"]], [False] + [True] * 5,
                 "What each channel-removed model keeps of the baseline.")
    t = speedups["threads"]
    fast = Table(["Model"] + [f"{runtime_name(rt)}, batch {b}" for rt, b in speedups["settings"]],
                 [[c["row"]["label"]] + [f"{ratio(x['speedup'])}x ({pct(x['fraction'])} %)" for x in c["cells"]]
                  for c in speedups["rows"]], [False] + [True] * len(speedups["settings"]),
                 f"Speed-up over the baseline on {t} thread{'s' if t > 1 else ''} (baseline latency / model "
                 "latency), and in brackets the share of the MACs reduction it reaches.")
    return [kept, fast]


def deployment_table(deploy: dict) -> Table:
    """One row per deployable model (the dense baseline, each channel-removed model, each small dense
    net): its accuracy in fp32 and, where timed, int8, and its time per batch in each runtime on the most threads.
    One row per model and runtime made a page-long table of repeated labels; the picks' speed-ups
    are in the text, every setting in Appendix C."""
    t, batches = deploy["threads"], deploy["batches"]
    runtimes = list(dict.fromkeys(o["runtime"] for o in deploy["options"]))
    by = {(o["row"]["name"], o["runtime"]): o for o in deploy["options"]}
    models = list({o["row"]["name"]: o["row"] for o in deploy["options"]}.values())
    int8 = "onnxruntime_int8" in runtimes
    headers = ["Model", "Accuracy (%)"] + (["int8 accuracy (%)"] if int8 else []) + [
        f"{RUNTIME_SHORT_NAMES[rt]}, batch {b} (ms)" for b in batches for rt in runtimes]
    body = [[r["label"], pct(r["accuracy"])] + ([pct(by[(r["name"], "onnxruntime_int8")]["accuracy"])] if int8 else [])
            + [ms(by[(r["name"], rt)]["latency"][b]) for b in batches for rt in runtimes] for r in models]
    return Table(headers, body, [False] + [True] * (len(headers) - 1),
                 f"Deployment options on {t} thread{'s' if t > 1 else ''}: {deployable_phrase(deploy)}, its time per batch in each runtime "
                 "(PyTorch eager; ORT: ONNX Runtime, fp32 and int8 by static quantization). The seed's path is the "
                 "dense baseline in PyTorch eager.")


def sparse_probe_table(probe: list[dict]) -> Table | None:
    """Dense against CSR products of the pointwise convolutions of the sparsest L1-pruned model (the
    timing job's probe: workflow/rules/common.smk, sparse_probe_checkpoint)."""
    if not probe:
        return None
    body = [[str(p["batch_size"]), str(p["threads"]), ms(p["dense_ms"]), ms(p["csr_ms"]),
             f"{ratio(p['dense_ms'] / p['csr_ms'])}x"] for p in probe]
    return Table(["Batch", "Threads", "Dense (ms)", "CSR (ms)", "CSR speed-up"], body, [True] * 5,
                 "The pointwise (1x1) convolutions of the sparsest L1-pruned model as matrix products, summed over its "
                 "layers: dense (torch.mm) against compressed sparse rows (torch.sparse.mm).")


def layer_phrase(layer: dict) -> str:
    """'expansion features.2.conv.0.0, 96x16 on 256 pixels'."""
    out, inp = layer["shape"]
    pixels = f" on {layer['pixels']} pixels" if layer["pixels"] > 1 else ""
    return f"{layer['role']} {layer['layer']}, {out}x{inp}{pixels}"


def sparse_sweep_table(sweep: dict | None) -> Table | None:
    """The CSR speed-up (dense time / CSR time) of each swept layer at each level and setting,
    and the break-even sparsity computed from them."""
    if not sweep:
        return None
    levels = sweep["levels"]
    body = [[layer_phrase(c["layer"]), str(c["batch_size"]), str(c["threads"])]
            + [f"{ratio(p['dense_ms'] / p['csr_ms'])}x" for p in c["curve"]]
            + [f"{c['break_even'] * 100:g}" if c["break_even"] is not None else "none"] for c in sweep["curves"]]
    return Table(["Layer (out x in)", "Batch", "Threads"] + [f"{x * 100:g} %" for x in levels]
                 + ["CSR faster from (% zeros)"], body, [False] + [True] * (len(levels) + 3),
                 "Dense layers of the baseline as matrix products, each pruned by magnitude to the sparsity of the "
                 "column: compressed sparse rows' speed-up over the dense product (dense time / CSR time; above "
                 "1.00x CSR is faster). Last column: the lowest sparsity from which CSR is faster at every higher "
                 "level swept.")


# The main results table shows at most this many rows; the rest are in the appendix's full table.
MAIN_ROWS = 15


def is_control(strategy: str) -> bool:
    """A strategy that is another's random control (the registry says whose)."""
    return any(s.control == strategy for s in STRATEGIES.values())


def main_rows(rows, seed: dict) -> list[tuple[dict, str]]:
    """The main table's rows and why each is there, by one rule: the baseline; the seed study's
    experiments; per family of pruning strategies, the most accurate model at the family's most-run
    target (the target with the most experiments, the higher on a tie); each random control at that
    target; every small dense net, and the most accurate dense fine-tune (the controls: every one
    of them is in the controls table). In table order; fails if the rule picks more than MAIN_ROWS."""
    why = {rows[0]["name"]: "baseline"}

    def add(row, reason):
        why[row["name"]] = f"{why[row['name']]}; {reason}" if row["name"] in why else reason

    for r in rows[1:]:
        if r["name"] in seed["accuracy"]:
            add(r, "seed study")
    for r in rows[1:]:
        if family(r) is None:
            add(r, "control")
    if dense := [r for r in rows[1:] if family(r) == DENSE]:  # the strongest: what pruning must beat
        add(max(dense, key=lambda r: r["accuracy"]), "most accurate dense control")
    for fam in dict.fromkeys(family(r) for r in rows[1:] if family(r) not in (None, DENSE)):
        members = [r for r in rows[1:] if family(r) == fam]
        targets = [r["target_sparsity"] for r in members]
        target = max(set(targets), key=lambda t: (targets.count(t), t))
        at = [r for r in members if r["target_sparsity"] == target]
        best = max((r for r in at if not is_control(r["strategy"])), key=lambda r: r["accuracy"], default=None)
        if best:
            add(best, f"best {FAMILY_WORDS.get(fam, fam)} at {pct(target)} %")
        for control in dict.fromkeys(r["strategy"] for r in at if is_control(r["strategy"])):
            add(max((r for r in at if r["strategy"] == control), key=lambda r: r["accuracy"]), "random control")
    picked = [(r, why[r["name"]]) for r in rows if r["name"] in why]
    if len(picked) > MAIN_ROWS:
        raise ValueError(f"the main table's rule picked {len(picked)} rows, more than {MAIN_ROWS}")
    return picked


FAMILY_WORDS = {CHANNELS: "channel removal", "masking": "masking"}


def budget_epochs(row: dict, rows: list[dict], settings: dict) -> int:
    """A model's training budget in epochs: the baseline's (rows[0]) plus the model's fine-tuning; a
    small dense net's own training from scratch (small_dense_epochs: the same sum as its matched row's)."""
    if row is rows[0]:
        return settings["train"]["epochs"]
    if row["name"] in (small := small_dense_by_name(settings)):
        return small_dense_epochs(settings, small[row["name"]])
    return settings["train"]["epochs"] + finetune_epochs(settings, experiments_by_name(settings)[row["name"]])


def main_table(rows, seed: dict, chain: list[dict], settings: dict) -> Table:
    """The main body's results: the rows main_rows picks, each with its budget in epochs (rows of
    different budgets sit side by side), the seed's accuracy beside ours."""
    picked = main_rows(rows, seed)
    body = [[full_label(r, chain), why, pct(r["removed_fraction"]), mega(r["macs"]), mb(r["gzip_bytes"]),
             str(budget_epochs(r, rows, settings)), pct(r["accuracy"]), interval_cell(r["accuracy_ci"]),
             pct(seed["accuracy"][r["name"]]) if r["name"] in seed["accuracy"] else ""]
            for r, why in picked]
    small = any(family(r) is None and r is not rows[0] for r, _ in picked)
    dense = any(family(r) == DENSE for r, _ in picked)
    controls = " and ".join(["the small dense nets"] * small + ["the most accurate dense fine-tune"] * dense)
    return Table(["Model", "Shown as", "Zeroed or removed (%)", "MACs (M)", "Size gzip (MB)", "Epochs",
                  "Accuracy (%)", "95 % interval (%)", "Seed study (%)"], body, [False, False] + [True] * 7,
                 "Main results: the baseline, the seed study's experiments, "
                 f"{'' if controls else 'and '}per family of strategies the most accurate model at the target most "
                 f"experiments share, with its random control there{', and ' + controls if controls else ''} "
                 "(every model: the appendix). Zeroed or removed: the share of the baseline's prunable weights zero "
                 f"or cut out{' (a small dense net: the share it does not have)' if small else ''}. "
                 "Epochs: the training budget, the baseline's epochs and the model's fine-tuning"
                 f"{' (a small dense net: its own, from scratch)' if small else ''}. Interval: Wilson 95 %. "
                 "Seed study: the accuracy its authors reported for the same experiment.")


@dataclass(frozen=True)
class Tables:
    """Every table of the paper, by name (None or empty: the run has nothing to tabulate)."""
    main: Table              # the main body's results (main_rows)
    results: Table           # the column registry's per-model tables
    deployment: Table
    storage: Table
    recovery: Table | None   # built here
    ablation: Table | None
    seeds: Table | None
    seed: Table | None
    latency: list[Table]
    channels: list[Table]
    options: Table
    probe: Table | None
    sweep: Table | None
    controls: Table | None   # the controls beside the pruned models they control


def paper_tables(run: Run, a: Analysis) -> Tables:
    return Tables(main=main_table(run.rows, run.seed, a.chain, run.settings), **{name: model_table(name, run.rows) for name in ("results", "deployment", "storage")},
                  recovery=recovery_table(run.settings, run.rows), ablation=ablation_table(a.chain, run.histories),
                  seeds=seeds_table(run.rows), seed=seed_table(run.rows, run.seed), latency=latency_tables(run.rows),
                  channels=channel_tables(a.channels), options=deployment_table(a.deploy),
                  probe=sparse_probe_table(a.probe), sweep=sparse_sweep_table(a.sweep),
                  controls=controls_table(a.controls, a.chain))
