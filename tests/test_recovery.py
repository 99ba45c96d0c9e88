"""Recovery after pruning: the gradual (cubic) schedule with learning-rate rewinding,
batch-norm recalibration and distillation from the dense model."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from conftest import random_splits
from scripts.lib.models.engine import Distillation, TrainHyp, fit, recalibrate_batch_norm
from scripts.lib.models.network import build_model
from scripts.lib.pruning.experiment import Experiment, run_experiment
from scripts.lib.pruning.masks import prunable_modules
from scripts.lib.pruning.schedules import cubic_targets, gradual_update_steps

HYP = TrainHyp(epochs=4, batch_size=32, lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True,
               label_smoothing=0.0, warmup_epochs=0)
SETTINGS = {"layer_types": ["Conv2d", "Linear"], "exclude": [], "scope": "layer", "round_to": None}


def model():
    torch.manual_seed(0)
    return build_model(10)


def test_cubic_schedule_grows_fast_then_slowly_and_ends_exactly_at_the_target():
    targets = cubic_targets(0.9, 8)
    assert targets[-1] == 0.9 and targets[0] == pytest.approx(0.9 * (1 - (7 / 8) ** 3))
    increments = [b - a for a, b in zip([0.0, *targets], targets)]
    assert all(a > b for a, b in zip(increments, increments[1:]))  # most of the pruning comes early
    assert gradual_update_steps(100, 4, 0.8) == [0, 20, 40, 60]
    with pytest.raises(ValueError, match="do not fit"):
        gradual_update_steps(10, 20, 0.5)


def test_gradual_run_reaches_the_target_exactly_with_one_rewound_learning_rate_curve(step_learning_rates):
    lrs = step_learning_rates
    m = model()
    exp = Experiment("l1_unstructured", "gradual", 0.8, 6)
    (history,) = run_experiment(m, exp, SETTINGS, random_splits(), HYP, seed=0, eval_batch_size=48)
    weights = [mod.weight for _, mod in prunable_modules(m, ["Conv2d", "Linear"])]
    total = sum(w.numel() for w in weights)
    assert sum(int((w == 0).sum()) for w in weights) == round(0.8 * total)  # exactly the target
    assert history["sparsity"] == pytest.approx(0.8)
    assert [u["target_sparsity"] for u in history["mask_updates"]] == cubic_targets(0.8, 6)
    # one fine-tune: 4 epochs x 3 steps, the learning rate at its peak at the first step and
    # decaying without a restart to ~0 at the last, across all mask updates
    assert len(lrs) == 12 and lrs[0] == pytest.approx(0.05) and lrs[-1] < 0.003
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    last_update_epoch = history["mask_updates"][-1]["sgd_step"] // 3 + 1
    kept = max(e["val_accuracy"] for e in history["epochs"][last_update_epoch - 1:])
    assert history["val_accuracy"] == kept  # the kept model has the full sparsity


def test_recalibration_changes_only_running_statistics():
    m = model()
    before = copy.deepcopy(m.state_dict())
    recalibrate_batch_norm(m, random_splits()["train"], batches=2, batch_size=32, gen=torch.Generator().manual_seed(0))
    after = m.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    norms = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)]
    assert all(mod.momentum == 0.1 for mod in norms)  # restored after the cumulative average


def test_distillation_with_weight_zero_is_plain_fine_tuning():
    d = random_splits()
    plain, distilled, teacher = model(), model(), model()
    torch.manual_seed(5)  # dropout draws from the global generator
    h1 = fit(plain, d["train"], d["val"], HYP, seed=3, eval_batch_size=48)
    torch.manual_seed(5)
    h2 = fit(distilled, d["train"], d["val"], HYP, seed=3, eval_batch_size=48, teacher=teacher,
             distill=Distillation(weight=0.0, temperature=4.0))
    assert [e["train_loss"] for e in h1] == [e["train_loss"] for e in h2]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), distilled.state_dict().values()))


def test_distillation_pulls_the_student_towards_the_teacher():
    d = random_splits()
    teacher = model()
    with torch.no_grad():
        teacher.classifier[1].bias[3] = 20.0  # a teacher that always says "class 3"
    student = model()
    fit(student, d["train"], d["val"], HYP, seed=3, eval_batch_size=48, teacher=teacher,
        distill=Distillation(weight=1.0, temperature=1.0))
    student.eval()
    with torch.no_grad():
        agree = (student(d["val"].normalise(d["val"].images)).argmax(1) == 3).float().mean()
    assert agree > 0.9


def test_bad_recovery_settings_are_named():
    with pytest.raises(ValueError, match="distillation weight"):
        Distillation(weight=1.5, temperature=2.0)
    with pytest.raises(ValueError, match="gradual schedule updates masks"):
        Experiment("l2_channels", "gradual", 0.5, 4)
    with pytest.raises(ValueError, match="needs the teacher"):
        run_experiment(model(), Experiment("l1_unstructured", "oneshot", 0.5, distill=Distillation(0.5, 2.0)),
                       SETTINGS, random_splits(), HYP, seed=0, eval_batch_size=48)
