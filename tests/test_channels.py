"""Physical channel removal (Torch-Pruning): shapes, agreement with masking, schedules,
MACs counting, and checkpoints that reload with weights_only=True."""
import pytest
import torch
import torch_pruning as tp
from torch import nn

from scripts.lib.pruning.channels import ChannelPruner, channel_counts, count_macs
from scripts.lib.models.engine import DeviceData, TrainHyp
from scripts.lib.models.network import (WeightsError, apply_architecture, architecture_spec, build_model, load_checkpoint,
                           save_checkpoint)
from scripts.lib.pruning.experiment import Experiment, run_experiment
from scripts.lib.pruning.schedules import cumulative_targets

LAYERS = ["Conv2d", "Linear"]


def model_and_copy():
    torch.manual_seed(0)
    model = build_model(10).eval()
    twin = build_model(10).eval()
    twin.load_state_dict(model.state_dict())
    return model, twin


def prune_channels(model, strategy="l2_channels", ratio=0.5, steps=1, round_to=None):
    pruner = ChannelPruner(model, strategy, cumulative_targets(ratio, steps), 32, round_to, [model.classifier[1]])
    for _ in range(steps):
        pruner.step()
    return model


def test_channels_are_physically_removed_and_the_model_runs():
    dense, pruned = model_and_copy()
    prune_channels(pruned, ratio=0.5)
    assert pruned.features[0][0].weight.shape == (16, 3, 3, 3)  # stem: 32 -> 16 filters
    block = pruned.features[2].conv  # expansion 96 -> 48; the depthwise conv follows it
    assert block[0][0].out_channels == 48 and block[1][0].in_channels == block[1][0].groups == 48
    assert pruned.classifier[1].out_features == 10  # the head is ignored
    assert pruned.classifier[1].in_features == 640  # but its inputs follow the last conv
    assert sum(p.numel() for p in pruned.parameters()) < 0.3 * sum(p.numel() for p in dense.parameters())
    assert count_macs(pruned, 32) < 0.3 * count_macs(dense, 32)
    assert pruned(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    # every kept filter is one of the dense stem's filters, unchanged
    kept = pruned.features[0][0].weight.flatten(1)
    dense_stem = dense.features[0][0].weight.flatten(1)
    assert all(any(torch.equal(k, d) for d in dense_stem) for k in kept)


def test_removing_dead_channels_matches_masking_them():
    """Where masking and removal must agree - channels whose activations are exactly zero -
    they give the same logits, while removal also cuts the MACs."""
    masked, removed = model_and_copy()
    idxs = [0, 5, 7, 40]
    conv = masked.features[2].conv  # expansion conv+BN, depthwise conv+BN, projection
    with torch.no_grad():
        for layer in (conv[0][0], conv[1][0]):
            layer.weight[idxs] = 0
        for bn in (conv[0][1], conv[1][1]):
            bn.weight[idxs] = 0
            bn.bias[idxs] = 0
    graph = tp.DependencyGraph().build_dependency(removed, example_inputs=torch.zeros(1, 3, 32, 32))
    graph.get_pruning_group(removed.features[2].conv[0][0], tp.prune_conv_out_channels, idxs=idxs).prune()
    assert removed.features[2].conv[0][0].out_channels == removed.features[2].conv[1][0].out_channels == 92
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(removed(x), masked(x), atol=1e-5, rtol=1e-5)
    assert count_macs(removed, 32) < count_macs(masked, 32)


@pytest.mark.parametrize("steps", [1, 4])
def test_channel_schedule_follows_the_cumulative_targets(steps):
    model, _ = model_and_copy()
    start = channel_counts(model)
    targets = cumulative_targets(0.5, steps)
    pruner = ChannelPruner(model, "l2_channels", targets, 32, None, [model.classifier[1]])
    for target in targets:
        pruner.step()
        assert channel_counts(model) / start == pytest.approx(1 - target, abs=0.01)


def conv_widths(model) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_round_to_keeps_multiples():
    dense = conv_widths(model_and_copy()[0])  # MobileNetV2's widths are all multiples of 8 already
    rounded = conv_widths(prune_channels(model_and_copy()[0], ratio=0.3, round_to=8))
    free = conv_widths(prune_channels(model_and_copy()[0], ratio=0.3, round_to=None))
    assert all(w % 8 == 0 for w in rounded)
    assert not all(w % 8 == 0 for w in free)  # 30 % of a multiple of 8 mostly is not: rounding did it
    assert all(w < d for w, d in zip(rounded, dense) if d >= 16), "channels were removed"
    assert all(abs(w - f) < 8 for w, f in zip(rounded, free)), "to the nearest multiple, not further"


def test_random_control_removes_other_channels_than_l2():
    l2, rnd = model_and_copy()
    torch.manual_seed(1)
    prune_channels(l2, "l2_channels")
    prune_channels(rnd, "random_channels")
    assert l2.features[0][0].out_channels == rnd.features[0][0].out_channels
    assert not torch.equal(l2.features[0][0].weight, rnd.features[0][0].weight)


def test_unknown_channel_strategy_is_named():
    model, _ = model_and_copy()
    with pytest.raises(ValueError, match="'fpgm_channels'"):
        ChannelPruner(model, "fpgm_channels", [0.5], 32, None, [])
    with pytest.raises(ValueError, match="round_to"):
        ChannelPruner(model, "l2_channels", [0.5], 32, 0, [])


def test_pruned_checkpoint_reloads_with_weights_only(tmp_path):
    model, _ = model_and_copy()
    prune_channels(model, ratio=0.5, round_to=8)
    path = tmp_path / "pruned.pt"
    save_checkpoint(model, path, {"num_classes": 10, "name": "x"}, architecture=True)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # no pickled modules inside
    assert raw["meta"]["architecture"]["features.0.0"] == [3, 16, 1]
    back, meta = load_checkpoint(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back.eval()(x), model.eval()(x))
    assert architecture_spec(back) == meta["architecture"]


def test_checkpoint_without_architecture_does_not_fit_pruned_weights(tmp_path):
    model, _ = model_and_copy()
    prune_channels(model)
    path = tmp_path / "pruned.pt"
    save_checkpoint(model, path, {"num_classes": 10})  # the spec left out
    with pytest.raises(WeightsError, match="not a checkpoint of this project"):
        load_checkpoint(path)


def test_apply_architecture_rejects_other_modules():
    with pytest.raises(ValueError, match="'features.1.conv'"):
        apply_architecture(build_model(10), {"features.1.conv": [1]})


def test_macs_of_hand_built_layers():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 32 * 32, 10))
    assert count_macs(net, 32) == 3 * 8 * 9 * 32 * 32 + 8 * 32 * 32 * 10
    depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    assert count_macs(nn.Sequential(nn.Conv2d(3, 8, 1), depthwise), 32) == (3 * 8 + 8 * 9) * 32 * 32


def test_run_experiment_with_channels_records_each_step():
    torch.manual_seed(0)
    model = build_model(10)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(64) % 10
    data = DeviceData(images, labels, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    splits = {"train": data, "val": data}
    hyp = TrainHyp(epochs=1, batch_size=32, lr=0.01, momentum=0.9, weight_decay=0.0, nesterov=True,
                   label_smoothing=0.0, warmup_epochs=0)
    prunable = {"layer_types": LAYERS, "exclude": [], "scope": "layer", "round_to": None}
    history = run_experiment(model, Experiment("l2_channels", "iterative", 0.5, 2), prunable, splits, hyp,
                             seed=0, eval_batch_size=32)
    assert [h["step"] for h in history] == [1, 2]
    assert history[-1]["channels_kept"] == pytest.approx(0.5, abs=0.01)
    assert 0.6 < history[-1]["sparsity"] < 0.8  # half the channels in and out: ~3/4 of the weights
    assert history[0]["sparsity"] < history[1]["sparsity"]
    assert model.features[18][0].out_channels == 640  # the last conv, 1280 -> 640


def test_a_model_rebuilt_by_channel_removal_trains_in_channels_last_again():
    """Torch-Pruning rebuilds the pruned layers with contiguous weights; the next fine-tune
    puts them back into the data's memory format."""
    torch.manual_seed(0)
    model = build_model(10).to(memory_format=torch.channels_last)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    data = DeviceData(images, torch.arange(32) % 10, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"),
                      torch.channels_last)
    hyp = TrainHyp(epochs=1, batch_size=16, lr=0.01, momentum=0.9, weight_decay=0.0, nesterov=True,
                   label_smoothing=0.0, warmup_epochs=0)
    prunable = {"layer_types": LAYERS, "exclude": [], "scope": "layer", "round_to": None}
    run_experiment(model, Experiment("l2_channels", "oneshot", 0.5, 1), prunable, {"train": data, "val": data},
                   hyp, seed=0, eval_batch_size=16)
    stem = model.features[0][0].weight
    assert stem.shape[0] < 32 and stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()
