"""Model building, checkpoints, the training engine and the measurements."""
import os
import urllib.error

import pytest
import torch
from torch import nn

from scripts.lib.models import network as model_mod
from scripts.lib.models.engine import PAD, DeviceData, TrainHyp, evaluate, fit
from scripts.lib.measure.evaluation import count_parameters, gzip_size
from scripts.lib.mobilenet import IMAGENET_WEIGHTS_FILE, module_names
from scripts.lib.models.network import WeightsError, build_model, load_checkpoint, save_checkpoint

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_imagenet_state_dict_loads_all_but_the_head(tmp_path):
    torch.manual_seed(0)
    imagenet = build_model(1000)  # stands in for the real ImageNet file
    path = tmp_path / "imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    model = build_model(10, path)
    assert model.classifier[1].out_features == 10
    assert torch.equal(model.features[0][0].weight, imagenet.features[0][0].weight)
    assert not torch.equal(model.classifier[1].weight, imagenet.classifier[1].weight[:10])


def test_ten_class_state_dict_loads_whole(tmp_path):
    m = build_model(10)
    path = tmp_path / "m.pth"
    torch.save(m.state_dict(), path)
    assert torch.equal(build_model(10, path).classifier[1].weight, m.classifier[1].weight)


def test_bad_weight_files_are_named(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a torch file")
    with pytest.raises(WeightsError, match="junk.pth: not a readable state_dict"):
        build_model(10, junk)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(WeightsError, match="not a MobileNetV2 state_dict"):
        build_model(10, other)


def test_weights_download_failure_says_how_to_supply_them(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    out = tmp_path / "w" / IMAGENET_WEIGHTS_FILE
    with pytest.raises(WeightsError) as err:
        model_mod.fetch_imagenet_weights(out)
    message = str(err.value)
    assert model_mod.IMAGENET_WEIGHTS.url in message and "model.weights: none" in message
    assert "workflow/presets/quick.yaml" in message and list(out.parent.iterdir()) == []


def test_planning_facts_equal_torchvision():
    """scripts.mobilenet states without torch what the workflow checks while it plans."""
    from pathlib import Path
    from torchvision.models import MobileNet_V2_Weights
    assert IMAGENET_WEIGHTS_FILE == Path(MobileNet_V2_Weights.DEFAULT.url).name
    for classes in (10, 100):
        assert module_names() == {name for name, _ in build_model(classes).named_modules()}


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    m = build_model(10)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(m, path, {"num_classes": 10, "name": "x"})
    loaded, meta = load_checkpoint(path)
    assert meta["name"] == "x"
    for (k, a), (_, b) in zip(m.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    torch.load(path, weights_only=True)  # plain tensors and builtins only


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(build_model(10), path, {"num_classes": 10, "name": "x"})
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="ckpt.pt: cannot load checkpoint"):
        load_checkpoint(path)


class _Payload:
    """A pickle that runs a command when unpickled: what a hostile checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="evil.pt: cannot load checkpoint"):
        load_checkpoint(path)
    with pytest.raises(WeightsError, match="evil.pt"):
        build_model(10, path)  # the initial-weights loader refuses it too
    assert not marker.exists()


def test_augment_crops_and_flips_within_the_padded_image():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).remainder(251).to(torch.uint8).view(2, 3, 8, 8) + 1
    data = DeviceData(images, torch.tensor([0, 1]), MEAN, STD, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        out = data.augment(images, gen)
        assert out.shape == images.shape and out.dtype == torch.uint8
        padded = nn.functional.pad(images, (PAD,) * 4)
        for i in range(2):  # each output is some window of the padded image, maybe mirrored
            windows = [padded[i, :, y:y + 8, x:x + 8] for y in range(2 * PAD + 1) for x in range(2 * PAD + 1)]
            assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)


def test_batches_normalise_and_cover_the_split():
    images = torch.full((10, 3, 4, 4), 128, dtype=torch.uint8)
    data = DeviceData(images, torch.arange(10), MEAN, STD, torch.device("cpu"))
    seen = []
    for x, y in data.batches(3, torch.Generator().manual_seed(0)):
        assert torch.allclose(x, torch.full_like(x, (128 / 255 - 0.5) / 0.25))
        seen += y.tolist()
    assert sorted(seen) == list(range(10))


def tiny_problem(n=64):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = (labels.view(n, 1, 1, 1) * 200 + torch.randint(0, 40, (n, 3, 8, 8), generator=g)).to(torch.uint8)
    return DeviceData(images, labels, MEAN, STD, torch.device("cpu"))


def test_fit_learns_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    data = tiny_problem()
    hyp = TrainHyp(epochs=5, batch_size=16, lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=True,
                   label_smoothing=0.0, warmup_epochs=1)
    history = fit(model, data, data, hyp, seed=0, eval_batch_size=32)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    best = max(h["val_accuracy"] for h in history)
    assert best > 0.9
    assert evaluate(model, data, 32)["accuracy"] == best  # the model is left at its best epoch


def test_train_hyp_rejects_unknown_keys():
    with pytest.raises(ValueError, match="expected keys"):
        TrainHyp.from_dict({"epochs": 1})


def test_parameter_counts_on_a_hand_built_model():
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 2.0], [3.0, 0.0, 0.0, 0.0]]))
        layer.bias.copy_(torch.tensor([0.0, 1.0]))
    counts = count_parameters(layer)
    assert counts == {"params": 10, "nonzero_params": 4, "sparsity_all": 0.6}


def test_gzip_size_sees_zeros(tmp_path):
    zeros, noise = tmp_path / "zeros.bin", tmp_path / "noise.bin"
    zeros.write_bytes(bytes(100_000))
    noise.write_bytes(os.urandom(100_000))
    assert gzip_size(zeros) < 1_000 < 99_000 < gzip_size(noise)


def test_onnx_export_matches_pytorch(tmp_path):
    from scripts.lib.measure.evaluation import export_onnx, onnx_max_abs_diff
    torch.manual_seed(0)
    model = build_model(10).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, 32, path)
    assert onnx_max_abs_diff(model, path, torch.randn(4, 3, 32, 32)) < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine: GPU path not exercised")
def test_gpu_path_selects_cuda_keeps_data_resident_and_trains_with_autocast():
    from scripts.lib.models.runtime import select_device
    device = select_device()
    assert device.type == "cuda"
    torch.manual_seed(0)
    images = torch.randint(0, 256, (128, 3, 32, 32), dtype=torch.uint8)
    data = DeviceData(images, torch.arange(128) % 10, MEAN, STD, device)
    assert data.images.is_cuda and next(data.batches(32))[0].is_cuda
    model = build_model(10).to(device)
    hyp = TrainHyp(epochs=1, batch_size=32, lr=0.01, momentum=0.9, weight_decay=0.0, nesterov=True,
                   label_smoothing=0.0, warmup_epochs=0)
    history = fit(model, data, data, hyp, seed=0, eval_batch_size=64)
    assert len(history) == 1 and 0 <= history[0]["val_accuracy"] <= 1
    from scripts.lib.measure.timing import Runner, time_block
    assert time_block(Runner("pytorch", model.eval(), 32, device).call(8, 1), 1, warmup=1, block_time=0.05) > 0


def channels_last(t: torch.Tensor) -> bool:
    """Stored NHWC (and not also NCHW, as tensors with 1x1 or single-channel shapes are)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def test_batches_come_in_the_data_memory_format_with_the_same_values():
    images = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    plain = DeviceData(images, torch.arange(12), MEAN, STD, torch.device("cpu"))
    nhwc = DeviceData(images, torch.arange(12), MEAN, STD, torch.device("cpu"), torch.channels_last)
    for (a, _), (b, _) in zip(plain.batches(5, torch.Generator().manual_seed(1), augment=True),
                              nhwc.batches(5, torch.Generator().manual_seed(1), augment=True)):
        assert a.is_contiguous() and channels_last(b)
        assert torch.equal(a, b)  # the same crops and flips, only stored differently


def test_fit_and_evaluate_run_in_channels_last_and_are_deterministic():
    """The same fit twice in channels_last gives identical histories and weights, the model
    computes in NHWC, and it learns as the contiguous run does."""
    def run(fmt):
        torch.manual_seed(0)
        model = build_model(2)
        data = tiny_problem()
        data.memory_format = fmt
        hyp = TrainHyp(epochs=2, batch_size=16, lr=0.05, momentum=0.9, weight_decay=0.0, nesterov=True,
                       label_smoothing=0.0, warmup_epochs=0)
        history = fit(model, data, data, hyp, seed=0, eval_batch_size=32)
        return model, [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    first, h1 = run(torch.channels_last)
    second, h2 = run(torch.channels_last)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert channels_last(first.features[0][0].weight)  # the 32x3x3x3 stem, stored NHWC
    _, contiguous = run(torch.contiguous_format)
    # the layouts sum in other orders: the same training up to rounding, not bit for bit
    assert [h["val_accuracy"] for h in h1] == pytest.approx([h["val_accuracy"] for h in contiguous], abs=0.1)


def test_a_checkpoint_is_stored_contiguous_whatever_the_training_layout(tmp_path):
    model = build_model(10).to(memory_format=torch.channels_last)
    save_checkpoint(model, tmp_path / "m.pt", {"num_classes": 10, "name": "m"})
    state = torch.load(tmp_path / "m.pt", weights_only=True)["state_dict"]
    assert all(t.is_contiguous() for t in state.values())
    assert torch.equal(state["features.0.0.weight"], model.features[0][0].weight.detach())


def test_unknown_memory_format_is_named():
    from scripts.lib.models.engine import memory_format

    assert memory_format("channels_last") is torch.channels_last
    with pytest.raises(ValueError, match="memory format must be one of .*'nchw'"):
        memory_format("nchw")
