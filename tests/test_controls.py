"""The controls that separate pruning from training: the dense fine-tune (strategy dense) and the
small dense net trained from scratch at a MACs-matched width (config key small_dense)."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from conftest import random_splits
from scripts.lib.files import save_torch
from scripts.lib.data.datasets import prepare
from scripts.lib.models import engine
from scripts.lib.models.engine import Distillation, TrainHyp
from scripts.lib.models.network import build_model, load_checkpoint, save_checkpoint
from scripts.lib.planning import jobs
from scripts.lib.planning.config import ConfigError, training_bill, validate_config
from scripts.lib.pruning.channels import count_macs
from scripts.lib.pruning.experiment import Experiment, run_experiment
from scripts.lib.pruning.masks import prunable_modules
from scripts.lib.pruning.pruners import DensePruner
from scripts.lib.pruning.width import PRECISION, match_width, probe

HYP = TrainHyp(epochs=2, batch_size=32, lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True,
               label_smoothing=0.0, warmup_epochs=0)
SETTINGS = {"layer_types": ["Conv2d", "Linear"], "exclude": [], "scope": "layer", "round_to": None}


def weights(model):
    return [m.weight for _, m in prunable_modules(model, SETTINGS["layer_types"])]


# --- the dense fine-tune --------------------------------------------------------------------------

def test_the_dense_control_zeroes_nothing_and_fine_tunes_with_the_rows_schedule_and_lr(step_learning_rates):
    """Iterative, 2 steps of 2 epochs: the learning rate restarts at its peak at each step, as in
    the pruned row it controls, and no weight is zeroed."""
    lrs = step_learning_rates
    torch.manual_seed(0)
    model = build_model(10)
    before = copy.deepcopy(model.state_dict())
    history = run_experiment(model, Experiment("dense", "iterative", 0.0, 2), SETTINGS, random_splits(), HYP, seed=0,
                             eval_batch_size=48)
    assert all(int((w == 0).sum()) == 0 for w in weights(model))  # nothing removed
    assert [h["sparsity"] for h in history] == [0.0, 0.0] and [h["channels_kept"] for h in history] == [1.0, 1.0]
    assert [len(h["epochs"]) for h in history] == [2, 2]  # the row's epochs per step
    per_step = len(lrs) // 2
    assert len(lrs) == 2 * 2 * 3 and lrs[0] == pytest.approx(0.05) and lrs[per_step] == pytest.approx(0.05)
    assert lrs[per_step - 1] < 0.01  # decayed within each step's fine-tune
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # it trained


def test_the_dense_control_is_checked():
    with pytest.raises(ValueError, match="sparsity must be 0"):
        Experiment("dense", "oneshot", 0.5)
    with pytest.raises(ValueError, match="gradual schedule updates masks"):
        Experiment("dense", "gradual", 0.0, 4)
    with pytest.raises(ValueError, match="targets must be 0"):
        DensePruner([0.5])
    Experiment("dense", "oneshot", 0.0, distill=Distillation(0.5, 4.0))  # with distillation: fine


def tiny_files(tmp_path):
    """A synthetic data set file and an (untrained) baseline checkpoint, as the workflow names them."""
    data = prepare("synthetic", None, 0.25, 10, 32, 0, {"train_size": 48, "test_size": 20, "noise": 30})
    save_torch(data, tmp_path / "dataset.pt")
    torch.manual_seed(0)
    save_checkpoint(build_model(10), tmp_path / "baseline.pt", {"num_classes": 10, "name": "baseline",
                                                                 "classes": data["classes"]})
    return tmp_path / "dataset.pt", tmp_path / "baseline.pt"


def control_config(base_config) -> dict:
    config = copy.deepcopy(base_config)
    config["prune"]["finetune"].update(epochs=1, batch_size=16)
    config["train"].update(epochs=2, batch_size=16)
    config["experiments"] = [
        {"name": "it_l1_50", "strategy": "l1_unstructured", "schedule": "iterative", "sparsity": 0.5, "steps": 2},
        {"name": "os_ch_50", "strategy": "l2_channels", "schedule": "oneshot", "sparsity": 0.5},
        {"name": "dense_it", "strategy": "dense", "schedule": "iterative", "sparsity": 0, "steps": 2,
         "control_of": "it_l1_50"},
        {"name": "dense_kd", "strategy": "dense", "schedule": "oneshot", "sparsity": 0, "control_of": "it_l1_50",
         "finetune": {"epochs": 2, "lr": 0.05}, "distill": {"weight": 0.5, "temperature": 4}}]
    config.update(sweeps=[], ablation=[], seeds_experiments=[], baseline_seeds=[0], small_dense=[{"name": "small_ch_50",
                                                                              "matches": "os_ch_50"}])
    return validate_config(config)


def test_the_prune_program_fine_tunes_a_dense_row_without_masks(tmp_path, base_config):
    from scripts import prune

    data, baseline = tiny_files(tmp_path)
    config = control_config(base_config)
    job = jobs.prune_job(config, jobs.experiments_by_name(config)["dense_kd"])
    assert job.hyp["epochs"] == 2 and job.hyp["lr"] == 0.05 and "control_of" not in job.experiment
    args = ["--job", job.to_json(), "--baseline", str(baseline), "--data", str(data), "--ckpt",
            str(tmp_path / "d.pt"), "--history", str(tmp_path / "d.json")]
    with pytest.raises(SystemExit, match="--masked-ckpt is for masking strategies"):
        prune.main([*args, "--masked-ckpt", str(tmp_path / "masked.pt")])
    prune.main(args)
    model, meta = load_checkpoint(tmp_path / "d.pt")
    assert meta["name"] == "dense_kd" and "architecture" not in meta
    assert all(int((w == 0).sum()) == 0 for w in weights(model))
    (step,) = json.loads((tmp_path / "d.json").read_text())["steps"]
    assert len(step["epochs"]) == 2 and step["sparsity"] == 0.0
    assert not (tmp_path / "masked.pt").exists() and not (tmp_path / "d.pt.resume").exists()


@pytest.mark.parametrize("change, message", [
    (lambda c: c["experiments"][3]["finetune"].update(epochs=3), r"experiments\[3\].control_of: 'dense_kd' "
     r"fine-tunes 3 epoch\(s\) in all, 'it_l1_50' 2"),
    (lambda c: c["experiments"][2].update(control_of="dense_kd"), r"experiments\[2\].control_of: 'dense_kd' is not a "
     "pruning experiment"),
    (lambda c: c["experiments"][0].update(control_of="os_ch_50"), r"experiments\[0\].control_of: only a dense row"),
    (lambda c: c["experiments"][2].update(sparsity=0.5), r"experiments\[2\].sparsity: the dense control removes"),
    (lambda c: c["experiments"][3].update(schedule="gradual", steps=4), r"experiments\[3\].schedule: gradual"),
    (lambda c: c["small_dense"][0].update(matches="it_l1_50"), r"small_dense\[0\].matches: 'it_l1_50' is not a "
     "channel-removal experiment"),
    (lambda c: c["small_dense"][0].update(name="Dense_It"), r"small_dense\[0\].name: 'Dense_It' is taken"),
    (lambda c: c["small_dense"][0].update(name="baseline"), r"small_dense\[0\].name: 'baseline' is taken"),
    (lambda c: c["small_dense"][0].update(width_mult=0.5), r"small_dense\[0\]: Additional properties"),
])
def test_control_settings_errors_name_the_key(base_config, change, message):
    config = control_config(base_config)
    change(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_the_bill_counts_the_controls(base_config):
    bill = training_bill(control_config(base_config))
    # baseline 2; fine-tuning: it_l1_50 2, os_ch_50 1, dense_it 2, dense_kd 2; small net 2 + 1
    assert bill == {"baseline": 2, "baseline_runs": 1, "finetune": 7, "distilled": 2, "small_dense": 3, "total": 12}


# --- the small dense net ----------------------------------------------------------------------------

# The published 70 % and 30 % channel rows' MACs; the second bisection is marked slow (7 s).
@pytest.mark.parametrize("target", [855_912, pytest.param(2_773_232, marks=pytest.mark.slow)])
def test_the_width_is_the_closest_step_to_the_target_macs(target):
    """MACs are a step function of the width: the two widths that bracket the target are at
    most PRECISION apart, their MACs on either side of it, and the closer one is kept, written
    short (the step below the target for the first, the one above for the second)."""
    match = match_width(target, 10, 32)
    below, above = match["below"], match["above"]
    assert below["macs"] <= target < above["macs"] and 0 < above["width"] - below["width"] <= PRECISION
    assert match["macs"] == min(below["macs"], above["macs"], key=lambda m: abs(m - target))
    assert match["residual"] == match["macs"] - target and abs(match["residual"]) <= (above["macs"] - below["macs"]) / 2
    assert probe(match["width_mult"], 10, 32)[0] == match["macs"]  # the short width builds that step
    assert len(str(match["width_mult"])) <= 5
    assert match["macs"] == (below["macs"] if target == 855_912 else above["macs"])


def test_a_target_below_the_narrowest_width_is_an_error():
    with pytest.raises(ValueError, match="no width multiplier"):
        match_width(1000, 10, 32)


@pytest.mark.slow  # 5-10 s of pruning on the full-size network; the full set (CI) runs it
def test_the_width_program_measures_the_matched_checkpoint(tmp_path):
    """A matched model that is itself MobileNetV2 at width 0.5 is matched exactly."""
    from scripts import width

    torch.manual_seed(0)
    save_checkpoint(build_model(10, width_mult=0.5), tmp_path / "m.pt", {"num_classes": 10, "name": "m",
                                                                          "width_mult": 0.5})
    job = jobs.WidthJob(name="small", matches="m", image_size=32)
    width.main(["--job", job.to_json(), "--matched", str(tmp_path / "m.pt"), "--out", str(tmp_path / "w.json")])
    match = json.loads((tmp_path / "w.json").read_text())
    assert (match["name"], match["matches"], match["residual"]) == ("small", "m", 0)
    assert probe(match["width_mult"], 10, 32)[1] == probe(0.5, 10, 32)[1]  # the same layers
    with pytest.raises(SystemExit, match="holds the model 'm', not 'other'"):
        width.main(["--job", jobs.WidthJob("small", "other", 32).to_json(), "--matched", str(tmp_path / "m.pt"),
                    "--out", str(tmp_path / "x.json")])


class Killed(Exception):
    """Stands in for kill -9 in the middle of the training."""


def test_the_small_dense_net_trains_at_its_width_loads_like_any_checkpoint_and_resumes(
        tmp_path, monkeypatch, base_config):
    from scripts import finetune

    data, _ = tiny_files(tmp_path)
    config = control_config(base_config)
    job = jobs.small_dense_job(config, "small_ch_50")
    assert job.hyp == {**config["train"], "epochs": 3}  # the baseline's 2 + os_ch_50's 1
    assert jobs.train_job(config).hyp["epochs"] == 2  # the baseline's own job is unchanged
    match = {"name": "small_ch_50", "matches": "os_ch_50", "width_mult": 0.4, "macs": probe(0.4, 10, 32)[0]}
    (tmp_path / "w.json").write_text(json.dumps(match))

    def args(out):
        return ["--job", job.to_json(), "--data", str(data), "--width", str(tmp_path / "w.json"),
                "--ckpt", str(tmp_path / f"{out}.pt"), "--history", str(tmp_path / f"{out}.json")]
    finetune.main(args("whole"))
    calls, real = [], engine.train_one_epoch

    def dies_in_epoch_2(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return real(*a, **k)
    with monkeypatch.context() as m:
        m.setattr(engine, "train_one_epoch", dies_in_epoch_2)
        with pytest.raises(Killed):
            finetune.main(args("killed"))
    assert (tmp_path / "killed.pt.resume").exists() and not (tmp_path / "killed.pt").exists()
    finetune.main(args("killed"))  # the same command again: resumes after epoch 1
    whole, meta = load_checkpoint(tmp_path / "whole.pt")
    resumed, _ = load_checkpoint(tmp_path / "killed.pt")
    assert meta["name"] == "small_ch_50" and meta["width_mult"] == 0.4
    assert count_macs(whole, 32) == match["macs"]
    assert whole.features[0][0].out_channels == probe(0.4, 10, 32)[1]["features.0.0"][1] < 32
    a, b = whole.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((tmp_path / "killed.json").read_text())
    assert len(history["epochs"]) == 3 and history["width"] == match


def test_the_results_figures_draw_the_controls_at_zero_sparsity_and_keep_them_off_the_curves(
        tmp_path, monkeypatch):
    from fake_results import MATRIX, results_rows
    from scripts.lib.planning.matrix import curves
    from scripts.lib.report import figures

    controls = [("dense_it", "Dense, iterative schedule", "dense", "iterative", 0.0, 3, 0.93, 1.0, 1.0),
                ("dense_os", "Dense, one-shot", "dense", "oneshot", 0.0, 1, 0.92, 1.0, 1.0),
                ("small_ch", "Small dense", "none", "none", 0.0, 0, 0.84, 0.5, 0.6)]
    rows = results_rows(tmp_path / "m", MATRIX + controls)
    plain = results_rows(tmp_path / "p", MATRIX)
    by_name = {r["name"]: r for r in rows}
    assert by_name["dense_it"]["removed_fraction"] == 0 and by_name["small_ch"]["removed_fraction"] > 0.5
    assert [[r["name"] for r in c] for c in curves(rows)] == [[r["name"] for r in c] for c in curves(plain)]
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault(path, fig))
    for name in ("pareto", "curves", "leaderboard", "latency_macs"):
        figures.plot_function(name)(rows, tmp_path / f"{name}.png")
    pareto = drawn[tmp_path / "pareto.png"]
    assert len([c for c in pareto.axes[0].containers]) == len(rows)  # every model, controls included
    leaderboard = drawn[tmp_path / "leaderboard.png"]
    assert {t.get_text() for t in leaderboard.axes[0].get_yticklabels()} >= {c[1] for c in controls}


def test_the_readme_block_counts_each_models_training_epochs_under_the_rule_that_trained_it():
    from scripts.lib.report.inputs import STAGE_NAMES
    from scripts.lib.report.publish import training_rule

    rows = {"l1_unstructured": "prune_model", "l2_channels": "prune_channels", "dense": "finetune_dense",
            "none": "train_small_dense"}  # "none": a row without a strategy, a small dense net
    assert {s: training_rule({"name": "x", "strategy": s}) for s in rows} == rows
    assert set(rows.values()) <= set(STAGE_NAMES)
