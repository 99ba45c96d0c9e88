"""Pruning strategies and schedules, on hand-built layers and on MobileNetV2."""
import math

import pytest
import torch
from torch import nn

from scripts.lib.models.network import build_model
from scripts.lib.pruning.experiment import Experiment
from scripts.lib.pruning.masks import apportion, make_permanent, prunable_modules, prune_step, sparsity
from scripts.lib.pruning.schedules import cumulative_targets, step_fraction

LAYERS = ["Conv2d", "Linear"]


def mobilenet_modules(exclude=()):
    torch.manual_seed(0)
    model = build_model(10)
    return model, [m for _, m in prunable_modules(model, LAYERS, exclude)]


def zeros(modules):
    return sum(int((m.weight == 0).sum()) for m in modules)


def total(modules):
    return sum(m.weight.numel() for m in modules)


@pytest.mark.parametrize("strategy", ["l1_unstructured", "random_unstructured"])
@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("target, steps", [(0.5, 1), (0.9, 1), (0.9, 4)])
def test_unstructured_reaches_target_exactly(strategy, scope, target, steps):
    _, modules = mobilenet_modules()
    for fraction in cumulative_targets(target, steps):
        prune_step(modules, strategy, fraction, scope)
        assert zeros(modules) == round(fraction * total(modules))


@pytest.mark.parametrize("target, steps", [(0.5, 1), (0.9, 3)])
def test_structured_zeroes_whole_filters_to_target(target, steps):
    _, modules = mobilenet_modules()
    for fraction in cumulative_targets(target, steps):
        prune_step(modules, "l2_structured", fraction)
    for m in modules:
        per_filter = (m.weight != 0).flatten(1).sum(1)
        n_zero = int((per_filter == 0).sum())
        assert n_zero == round(target * m.weight.shape[0])
        # every filter is either entirely zero or entirely kept
        assert set(per_filter.tolist()) <= {0, m.weight[0].numel()}
    assert abs(sparsity(m.weight for m in modules) - target) < 0.01


def test_l2_structured_removes_the_smallest_norm_filters():
    layer = nn.Conv2d(1, 6, 1, bias=False)
    norms = torch.tensor([5.0, 1.0, 4.0, 0.5, 3.0, 2.0])
    with torch.no_grad():
        layer.weight.copy_(norms.view(6, 1, 1, 1))
    prune_step([layer], "l2_structured", 0.5)
    assert torch.nonzero(layer.weight.flatten() == 0).flatten().tolist() == [1, 3, 5]


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_l1_removes_the_smallest_magnitudes(scope):
    torch.manual_seed(1)
    layers = [nn.Linear(20, 10), nn.Linear(10, 5)]
    before = torch.cat([l.weight.detach().abs().flatten() for l in layers])
    prune_step(layers, "l1_unstructured", 0.6, scope)
    if scope == "global":
        after = torch.cat([l.weight.detach().flatten() for l in layers])
        k = round(0.6 * before.numel())
        assert set(torch.nonzero(after == 0).flatten().tolist()) == set(torch.argsort(before)[:k].tolist())
    else:
        for layer, orig in zip(layers, [before[:200], before[200:]]):
            pruned = layer.weight.detach().flatten() == 0
            assert orig[pruned].max() <= orig[~pruned].min()


def test_random_differs_from_l1():
    _, l1 = mobilenet_modules()
    _, rnd = mobilenet_modules()
    prune_step(l1, "l1_unstructured", 0.5)
    torch.manual_seed(0)
    prune_step(rnd, "random_unstructured", 0.5)
    assert zeros(l1) == zeros(rnd)
    l1_mask = torch.cat([(m.weight == 0).flatten() for m in l1])
    rnd_mask = torch.cat([(m.weight == 0).flatten() for m in rnd])
    overlap = (l1_mask & rnd_mask).sum().item() / l1_mask.sum().item()
    assert overlap < 0.7  # independent masks overlap by ~the sparsity, 0.5; identical ones by 1


def test_step_fraction_compounds_to_the_target():
    s = step_fraction(0.9, 10)
    assert s == pytest.approx(1 - 0.1 ** 0.1)
    assert (1 - s) ** 10 == pytest.approx(0.1)
    targets = cumulative_targets(0.9, 10)
    assert len(targets) == 10 and targets[-1] == 0.9
    left = [1.0] + [1 - t for t in targets]
    for before, after in zip(left, left[1:]):
        assert after / before == pytest.approx(1 - s)  # each step removes S_step of what is left
    assert cumulative_targets(0.5, 1) == [0.5]


def test_each_iterative_step_prunes_s_step_of_what_is_left():
    _, modules = mobilenet_modules()
    s = step_fraction(0.9, 5)
    remaining = total(modules)
    for fraction in cumulative_targets(0.9, 5):
        prune_step(modules, "l1_unstructured", fraction)
        now = total(modules) - zeros(modules)
        assert now / remaining == pytest.approx(1 - s, abs=1e-5)
        remaining = now


def test_apportion_is_exact_and_bounded():
    capacity = [9, 288, 1, 1000, 27]
    for count in [0, 1, 13, 500, sum(capacity)]:
        shares = apportion(count, capacity)
        assert sum(shares) == count
        assert all(0 <= s <= c for s, c in zip(shares, capacity))
        assert all(abs(s - count * c / sum(capacity)) < 1 for s, c in zip(shares, capacity))
    with pytest.raises(ValueError):
        apportion(2000, capacity)


def test_make_permanent_leaves_plain_tensors():
    model, modules = mobilenet_modules()
    prune_step(modules, "l1_unstructured", 0.7)
    expected = zeros(modules)
    make_permanent(modules)
    keys = model.state_dict().keys()
    assert not [k for k in keys if k.endswith(("_orig", "_mask"))]
    assert zeros(modules) == expected


def test_prunable_set_follows_config():
    model = build_model(10)
    convs = prunable_modules(model, ["Conv2d"])
    both = prunable_modules(model, LAYERS)
    assert len(both) == len(convs) + 1
    assert "classifier.1" not in dict(prunable_modules(model, LAYERS, ["classifier.1"]))
    with pytest.raises(ValueError, match="not in the model"):
        prunable_modules(model, LAYERS, ["classifier.9"])
    with pytest.raises(ValueError, match="unknown layer types"):
        prunable_modules(model, ["BatchNorm2d"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(strategy="l3", schedule="oneshot", sparsity=0.5), "strategy"),
    (dict(strategy="l1_unstructured", schedule="cyclic", sparsity=0.5), "schedule"),
    (dict(strategy="l1_unstructured", schedule="oneshot", sparsity=1.0), "sparsity must be in"),
    (dict(strategy="l1_unstructured", schedule="iterative", sparsity=0.5, steps=0), "steps"),
])
def test_experiment_fails_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Experiment(**kwargs)


def test_sparsity_counts_exact_zeros():
    a = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([1e-12, 0.0, 3.0, -0.0])
    assert sparsity([a, b]) == pytest.approx(5 / 8)
    assert math.isclose(sparsity([torch.zeros(3)]), 1.0)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("strategy", ["l1_unstructured", "random_unstructured", "l2_structured"])
def test_masks_of_a_channels_last_model_equal_those_of_a_contiguous_one(strategy, scope):
    """torch.nn.utils.prune ranks through .view(-1), which NHWC weights refuse: prune_step ranks
    in NCHW order and hands every layer its layout back, with the same masks either way."""
    torch.manual_seed(0)
    nchw = build_model(10)
    nhwc = build_model(10)
    nhwc.load_state_dict(nchw.state_dict())
    nhwc.to(memory_format=torch.channels_last)
    layers = [[m for _, m in prunable_modules(model, ["Conv2d", "Linear"])] for model in (nchw, nhwc)]
    for fraction in (0.5, 0.8):  # the second step ranks what the first left
        for modules in layers:
            torch.manual_seed(1)
            prune_step(modules, strategy, fraction, scope)
    assert all(torch.equal(a.weight_mask, b.weight_mask) for a, b in zip(*layers))
    stem = nhwc.features[0][0].weight_orig
    assert stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()
