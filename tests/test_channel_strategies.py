"""Channel removal that competes: global allocation, MAC targets, the BN-scale and Taylor
criteria (scripts.lib.pruning.channels, channel_importance), on the tiny model's own data."""
import pytest
import torch
from torch import nn

from scripts.lib.models.engine import DeviceData, TrainHyp
from scripts.lib.models.network import build_model
from scripts.lib.pruning.channel_importance import floors
from scripts.lib.pruning.channels import SEARCH_STEP, ChannelPruner, count_macs
from scripts.lib.pruning.experiment import Experiment, run_experiment
from scripts.lib.pruning.pruners import make_pruner

MAC_TOLERANCE = 0.03  # a searched MAC target ends at most this far past it (one SEARCH_STEP of the channels)
PRUNABLE = {"layer_types": ["Conv2d", "Linear"], "exclude": [], "scope": "global", "round_to": 8}


def model():
    """MobileNetV2 with batch-norm scales drawn at random, so that no criterion sees ties:
    spread out in the first half of the blocks, close together in the second, so that the
    layers differ in how many channels matter little (as a trained network's do)."""
    torch.manual_seed(0)
    net = build_model(10).eval()
    with torch.no_grad():
        for i, block in enumerate(net.features):
            for m in block.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(*((0.01, 1.0) if i < 10 else (0.9, 1.0)))
    return net


def hidden_widths(net) -> list[int]:
    """The width of every inverted-residual block's expansion conv (its hidden channels)."""
    return [m.conv[0][0].out_channels for m in net.features[2:18]]


def batches(k):
    g = torch.Generator().manual_seed(k)
    return [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g))]


def pruner(net, strategy="l2_channels", scope="global", target="macs", targets=(0.7,), **kw):
    if strategy == "taylor_channels":
        kw.setdefault("gradient_batches", batches)
    return ChannelPruner(net, strategy, list(targets), 32, 8, [net.classifier[1]], scope=scope, target=target, **kw)


# The ranked criteria search a wide allocation (max_layer_ratio 0.9): minutes each, so marked slow;
# random keeps the MAC-target check in the fast set.
@pytest.mark.parametrize("strategy", [pytest.param(s, marks=pytest.mark.slow) for s in
                                      ("l2_channels", "bn_scale_channels", "taylor_channels")] + ["random_channels"])
def test_global_allocation_hits_the_mac_target_with_widths_that_differ_per_layer(strategy):
    net, dense = model(), model()
    start = count_macs(net, 32)
    torch.manual_seed(1)
    pruner(net, strategy, max_layer_ratio=0.9).step()  # room for the ranking to choose
    removed = 1 - count_macs(net, 32) / start
    assert 0.7 <= removed <= 0.7 + MAC_TOLERANCE
    kept = [w / w0 for w, w0 in zip(hidden_widths(net), hidden_widths(dense))]
    if strategy != "random_channels":  # the blocks of spread-out scales give up more of their channels
        assert sum(kept[:8]) / 8 < sum(kept[8:]) / 8 - 0.1, f"global allocation gave near-uniform widths {kept}"
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_a_uniform_mac_target_cuts_every_layer_alike():
    net, dense = model(), model()
    start = count_macs(net, 32)
    pruner(net, scope="layer").step()
    assert 0.7 <= 1 - count_macs(net, 32) / start <= 0.7 + MAC_TOLERANCE
    kept = [w / w0 for w, w0 in zip(hidden_widths(net), hidden_widths(dense))]
    assert max(kept) - min(kept) < 0.1  # rounding to 8 apart, the same share
    assert SEARCH_STEP <= 0.01


def test_global_channel_target_counts_channels():
    net, dense = model(), model()
    total = sum(m.out_channels for m in dense.modules() if isinstance(m, nn.Conv2d))
    pruner(net, target="channels", targets=(0.4,)).step()
    kept = sum(m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)) / total
    assert 0.6 - MAC_TOLERANCE <= kept <= 0.6


@pytest.mark.slow  # 5-10 s of pruning on the full-size network; the full set (CI) runs it
def test_no_layer_loses_more_than_max_layer_ratio():
    net, dense = model(), model()
    pruner(net, max_layer_ratio=0.5, targets=(0.6,)).step()
    for w, w0 in zip(hidden_widths(net), hidden_widths(dense)):
        assert w >= w0 * 0.5, (w, w0)
    assert floors({"a": 96, "b": 24, "c": 16}, 0.9, 8) == {"a": 16, "b": 8, "c": 8}  # rounded up to multiples of 8
    with pytest.raises(ValueError, match="max_layer_ratio"):
        pruner(model(), max_layer_ratio=0.3, targets=(0.9,)).step()  # 0.7^2 of the MACs stay at least


def set_group_scores(net, chosen, low):
    """Give the 96 hidden channels of block 2 distinct BN scales (1 + i/1000), the chosen ones `low`."""
    block = net.features[2].conv
    with torch.no_grad():
        for bn in (block[0][1], block[1][1]):
            bn.weight.copy_(1 + torch.arange(96) / 1000)
            bn.weight[chosen] = low
    return block


def kept_channels(net) -> set[int]:
    """The original indices of block 2's kept hidden channels, read back from their BN scales."""
    return {round((g.item() - 1) * 1000) for g in net.features[2].conv[0][1].weight if g > 0.5}


def test_bn_scale_removes_the_channels_of_smallest_gamma():
    net = model()
    chosen = [3, 10, 17, 40, 41, 70, 80, 95]
    set_group_scores(net, chosen, 0.01)
    ChannelPruner(net, "bn_scale_channels", [0.085], 32, None, [net.classifier[1]]).step()
    assert net.features[2].conv[0][0].out_channels == 87  # int(96 * 0.915): 9 go
    # the 8 of smallest gamma, and the smallest of the rest (index 0)
    assert kept_channels(net) == set(range(96)) - set(chosen) - {0}


def test_taylor_removes_channels_that_do_not_move_the_loss_whatever_their_weights():
    """Channels cut off from the output (zero projection weights) have zero |w * dL/dw| however
    large their weights; group L2 keeps them, Taylor removes them."""
    chosen = [5, 6, 30, 31, 60, 61, 90, 91]
    nets = {}
    for strategy in ("l2_channels", "taylor_channels"):
        net = model()
        set_group_scores(net, [], 0.0)
        block = net.features[2].conv
        with torch.no_grad():
            block[0][0].weight[chosen] *= 10  # large expansion filters
            block[2].weight[:, chosen] = 0    # that reach nothing
        ChannelPruner(net, strategy, [8 / 96 + 1e-3], 32, None, [net.classifier[1]],
                      gradient_batches=batches if strategy == "taylor_channels" else None).step()
        nets[strategy] = kept_channels(net)
    assert not nets["taylor_channels"] & set(chosen)
    assert set(chosen) <= nets["l2_channels"]


def test_taylor_needs_training_batches_and_leaves_no_gradient_behind():
    with pytest.raises(ValueError, match="taylor_channels needs training batches"):
        ChannelPruner(model(), "taylor_channels", [0.5], 32, None, [])
    with pytest.raises(ValueError, match="l2_channels takes no training batches"):
        ChannelPruner(model(), "l2_channels", [0.5], 32, None, [], gradient_batches=batches)
    net = model()
    pruner(net, "taylor_channels").step()
    assert all(p.grad is None for p in net.parameters())


def test_bad_channel_settings_are_named():
    net = model()
    for kw, match in [({"scope": "widest"}, "scope"), ({"target": "flops"}, "target"),
                      ({"max_layer_ratio": 1.0}, "max_layer_ratio")]:
        with pytest.raises(ValueError, match=match):
            pruner(net, **kw)
    with pytest.raises(ValueError, match="target"):
        Experiment("l1_unstructured", "oneshot", 0.5, target="macs")
    with pytest.raises(ValueError, match="not for it"):
        make_pruner(net, "l1_unstructured", {**PRUNABLE, "scope": "layer"}, [0.5], 32, {"target": "channels"})


@pytest.mark.slow  # 5-10 s of pruning on the full-size network; the full set (CI) runs it
def test_a_resumed_global_pruner_replays_to_the_same_state():
    """Step 1, saved; a fresh model and pruner load it and take step 2: the same state as
    an uninterrupted pruner's after step 2 (Taylor: its batches are a function of the step)."""
    targets = (0.4, 0.7)
    straight = model()
    p = pruner(straight, "taylor_channels", targets=targets)
    p.step()
    saved_model, saved_state = {k: v.clone() for k, v in straight.state_dict().items()}, p.state()
    p.step()
    resumed = model()
    q = pruner(resumed, "taylor_channels", targets=targets)
    q.load_state(saved_state, saved_model)
    resumed.load_state_dict(saved_model)
    q.step()
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert q.state() == p.state()


def test_run_experiment_takes_the_gradient_batches_from_the_training_split():
    torch.manual_seed(0)
    net = build_model(10)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    data = DeviceData(images, torch.arange(64) % 10, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    hyp = TrainHyp(epochs=1, batch_size=32, lr=0.01, momentum=0.9, weight_decay=0.0, nesterov=True,
                   label_smoothing=0.0, warmup_epochs=0)
    start = count_macs(net, 32)
    exp = Experiment("taylor_channels", "oneshot", 0.5, target="macs", gradient_batches=2)
    options = exp.channel_options(data, hyp.batch_size, seed=0)
    step1 = [y.tolist() for _, y in options["gradient_batches"](1)]
    assert len(step1) == 2 and step1 == [y.tolist() for _, y in options["gradient_batches"](1)]  # seeded by the step
    assert step1 != [y.tolist() for _, y in options["gradient_batches"](2)]
    history = run_experiment(net, exp, PRUNABLE, {"train": data, "val": data}, hyp, seed=0, eval_batch_size=32)
    assert 0.5 <= 1 - count_macs(net, 32) / start <= 0.5 + MAC_TOLERANCE
    assert history[0]["target_sparsity"] == 0.5


def test_the_config_takes_the_channel_keys_and_refuses_a_mac_target_for_masking(base_config):
    from scripts.lib.planning.config import ConfigError, validate_config
    from scripts.lib.planning.jobs import prune_job

    row = {"name": "global_taylor_macs", "strategy": "taylor_channels", "schedule": "oneshot", "sparsity": 0.7143,
           "scope": "global", "target": "macs", "max_layer_ratio": 0.6, "gradient_batches": 8}
    config = {**base_config, "experiments": [*base_config["experiments"], row]}
    validate_config(config)
    job = prune_job(config, row)
    assert job.prunable["scope"] == "global"
    exp = Experiment.from_dict(job.experiment)
    assert (exp.target, exp.max_layer_ratio, exp.gradient_batches) == ("macs", 0.6, 8)
    masked = {**row, "name": "masked_macs", "strategy": "l1_unstructured"}
    with pytest.raises(ConfigError, match=r"experiments\[\d+\]\.target"):
        validate_config({**base_config, "experiments": [*base_config["experiments"], masked]})
    with pytest.raises(ConfigError, match="max_layer_ratio"):
        validate_config({**base_config, "experiments": [*base_config["experiments"], {**row, "max_layer_ratio": 1}]})


def test_the_schema_defaults_of_the_channel_keys_are_the_code_defaults():
    from scripts.lib.planning.config import load_schema

    keys = load_schema()["properties"]["experiments"]["items"]["properties"]
    exp = Experiment("l2_channels", "oneshot", 0.5)
    assert {k: keys[k]["default"] for k in ("target", "max_layer_ratio", "gradient_batches")} == \
        {"target": exp.target, "max_layer_ratio": exp.max_layer_ratio, "gradient_batches": exp.gradient_batches}
