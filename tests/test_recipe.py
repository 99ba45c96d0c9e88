"""The training recipe's options: learning-rate schedules, weight decay groups, weight averaging."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from scripts.lib.models.engine import DeviceData, TrainHyp, detach_pruned_weights, evaluate, fit, lr_factor, parameter_groups

HYP = TrainHyp(epochs=4, batch_size=16, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True,
               label_smoothing=0.0, warmup_epochs=1)


@pytest.mark.parametrize("schedule, middle", [("cosine", 0.5), ("linear", 0.5)])
def test_learning_rate_warms_up_then_decays_to_zero(schedule, middle):
    total, warmup = 110, 10
    f = [lr_factor(s, total, warmup, schedule) for s in range(total)]
    assert f[:warmup] == [(s + 1) / warmup for s in range(warmup)]
    assert f[warmup] == 1.0 and f[-1] <= 0.01 + 1e-12 and f[warmup + 50] == pytest.approx(middle)
    assert all(a >= b for a, b in zip(f[warmup:], f[warmup + 1:]))  # never rises after the warm-up
    if schedule == "linear":
        steps = [a - b for a, b in zip(f[warmup:], f[warmup + 1:])]
        assert max(steps) - min(steps) < 1e-12


def test_no_decay_on_norm_and_bias_when_asked():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    (everything,) = parameter_groups(model, HYP)
    assert everything["weight_decay"] == 5e-4 and len(everything["params"]) == 6
    decayed, free = parameter_groups(model, TrainHyp(**{**HYP.__dict__, "decay_norm_and_bias": False}))
    assert [p.ndim for p in decayed["params"]] == [4, 2] and decayed["weight_decay"] == 5e-4
    assert [p.ndim for p in free["params"]] == [1, 1, 1, 1] and free["weight_decay"] == 0.0


def test_unknown_schedule_and_bad_decay_are_named():
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainHyp(**{**HYP.__dict__, "lr_schedule": "step"})
    with pytest.raises(ValueError, match="ema_decay must be in"):
        TrainHyp(**{**HYP.__dict__, "ema_decay": 1.0})


def tiny_problem(n=64):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = (labels.view(n, 1, 1, 1) * 120 + torch.randint(0, 120, (n, 3, 8, 8), generator=g)).to(torch.uint8)
    return DeviceData(images, labels, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))


def test_weight_average_is_what_is_kept_and_keeps_pruned_weights_at_zero():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    mask = model[0].weight_mask.clone()
    data = tiny_problem()
    detach_pruned_weights(model)  # so that the test can copy it
    plain_model = _copy(model)
    fit(plain_model, data, data, HYP, seed=0, eval_batch_size=32)
    ema_model = _copy(model)
    history = fit(ema_model, data, data, TrainHyp(**{**HYP.__dict__, "ema_decay": 0.8}), seed=0, eval_batch_size=32)
    assert not torch.equal(plain_model[0].weight_orig, ema_model[0].weight_orig)  # the average, not the last step
    assert torch.equal(ema_model[0].weight_mask, mask)  # masks copied, never averaged
    assert bool((ema_model[0].weight[mask == 0] == 0).all())
    assert evaluate(ema_model, data, 32)["accuracy"] == max(h["val_accuracy"] for h in history)


def _copy(model):
    import copy
    return copy.deepcopy(model)


def test_progress_durations_read_as_people_write_them():
    from scripts.lib.models.engine import duration

    assert [duration(s) for s in (4.4, 89, 600, 5399, 7500)] == ["4 s", "89 s", "10 min", "90 min", "2 h 05 min"]


def test_flip_test_time_augmentation_averages_the_image_and_its_mirror():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    data = tiny_problem()
    x, y = next(data.batches(64))
    expected = (model(x) + model(x.flip(3))) / 2
    want = (expected.argmax(1) == y).float().mean().item()
    assert evaluate(model, data, 64, flip_tta=True)["accuracy"] == pytest.approx(want)
    symmetric = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))  # blind to mirroring
    assert evaluate(symmetric, data, 64, flip_tta=True) == pytest.approx(evaluate(symmetric, data, 64))
