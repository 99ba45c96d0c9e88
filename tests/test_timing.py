"""The timing job (scripts/timing.py) and the int8 path (scripts/quantize.py) on tiny models."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from scripts.lib.measure.evaluation import export_onnx
from scripts.lib.models.network import build_model, save_checkpoint
from scripts.lib.measure.timing import (Runner, TimingSettings, latency_settings, magnitude_pruned, pass_agreement,
                                       schedule, sparse_probe, sparse_sweep, summarise, sweep_layers, time_block,
                                       time_models)
from scripts.lib.planning.jobs import TimingJob
from scripts.timing import main


def test_schedule_times_every_model_once_per_setting_and_round_in_rotating_order():
    order = schedule(["a", "b", "c"], ["s1", "s2"], rounds=3)
    assert len(order) == 3 * 2 * 3
    for r in range(3):
        for s in ("s1", "s2"):
            assert sorted(m for rr, ss, m in order if (rr, ss) == (r, s)) == ["a", "b", "c"]
    firsts = [m for i, (r, s, m) in enumerate(order) if i % 3 == 0 and s == "s1"]
    assert firsts == ["a", "b", "c"]  # each round starts with the next model


def test_time_block_takes_the_median_of_single_calls():
    calls = []
    assert time_block(lambda: calls.append(1), threads=1, warmup=2, block_time=0.0, min_calls=5) >= 0
    assert len(calls) == 2 + 5


def test_summarise_pools_rounds_and_passes():
    samples = {"m": {("pytorch", 1, 1): [[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]]}}
    (g,) = summarise(samples, "cpu")["m"]
    assert g["latency_ms"] == 4.0 and g["latency_samples"] == 6 and g["latency_pass_ms"] == [2.0, 6.0]
    assert g["latency_iqr_ms"] == pytest.approx(6.25 - 1.75)  # statistics.quantiles, exclusive method
    assert (g["runtime"], g["latency_batch_size"], g["latency_threads"], g["latency_device"]) == ("pytorch", 1, 1, "cpu")


def test_pass_agreement_is_the_spread_of_the_speedups():
    def grid(passes):
        return [{"runtime": "pytorch", "latency_batch_size": 1, "latency_threads": 1, "latency_pass_ms": passes}]
    # speed-ups over the baseline: pass 1: 10/5 = 2.0; pass 2: 12/5.5 = 2.1818 -> 9.09 % apart
    a = pass_agreement({"baseline": grid([10.0, 12.0]), "m": grid([5.0, 5.5]), "same": grid([10.0, 12.0])})
    assert a["passes_compared"] == 2 and a["ratios"] == 2
    assert a["max_spread"] == pytest.approx(12 / 5.5 / 2 - 1)
    assert a["worst"]["model"] == "m" and a["within_5_percent"] == 0.5


def tiny_models(tmp_path):
    torch.manual_seed(0)
    models = {"baseline": nn.Sequential(nn.Conv2d(3, 16, 3), nn.Conv2d(16, 16, 1), nn.Flatten()),
              "small": nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())}
    paths = {}
    for name, m in models.items():
        paths[name] = tmp_path / f"{name}.onnx"
        export_onnx(m.eval(), 8, paths[name])
    return models, paths


def test_time_models_interleaves_two_models_in_both_runtimes(tmp_path):
    models, paths = tiny_models(tmp_path)
    runners = {n: {"pytorch": Runner("pytorch", m, 8, torch.device("cpu")),
                   "onnxruntime": Runner("onnxruntime", paths[n], 8, torch.device("cpu"))} for n, m in models.items()}
    settings = TimingSettings((1, 4), 2, warmup=0, rounds=3, block_time=0.01, passes=2)
    samples = time_models(runners, settings)
    keys = {(rt, b, t) for rt in ("pytorch", "onnxruntime") for b, t in latency_settings((1, 4), 2)}
    for name in models:
        assert set(samples[name]) == keys
        assert all(len(p) == 3 for per_pass in samples[name].values() for p in per_pass)  # rounds per pass
        assert all(ms > 0 for per_pass in samples[name].values() for p in per_pass for ms in p)
    grids = summarise(samples, "cpu")
    assert pass_agreement(grids)["ratios"] == len(keys)


def test_sparse_probe_times_pointwise_layers_dense_and_csr():
    torch.manual_seed(0)
    model = build_model(10)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
            m.weight.data[torch.rand_like(m.weight) < 0.9] = 0
    settings = TimingSettings((2,), 1, warmup=0, rounds=1, block_time=0.004, passes=1)
    p = sparse_probe(model, 32, 2, 1, settings)
    # MobileNetV2: 16 expansions, 17 projections and the last 1x1 convolution
    assert p["layers"] == 34 and 0.88 < p["sparsity"] < 0.92
    assert p["dense_ms"] > 0 and p["csr_ms"] > 0


def test_sweep_layers_are_an_expansion_a_projection_and_the_classifier():
    layers = {l["role"]: l for l in sweep_layers(build_model(10).eval(), 32)}
    assert list(layers) == ["expansion", "projection", "classifier"]
    out, inp = layers["expansion"]["weight"].shape
    assert out > inp and ".conv.0.0" in layers["expansion"]["layer"]  # inside a block, not the last 1x1 conv
    out, inp = layers["projection"]["weight"].shape
    assert out < inp and layers["projection"]["layer"].endswith(".conv.2")
    assert layers["classifier"]["layer"] == "classifier.1" and tuple(layers["classifier"]["weight"].shape) == (10, 1280)
    assert layers["expansion"]["pixels"] == 16 * 16 and layers["classifier"]["pixels"] == 1  # 32x32 input


def test_magnitude_pruning_zeroes_the_smallest_weights():
    w = torch.tensor([[0.1, -3.0], [2.0, -0.5]])
    assert magnitude_pruned(w, 0.5).tolist() == [[0.0, -3.0], [2.0, 0.0]]
    assert magnitude_pruned(w, 0.0).equal(w)


def test_the_sparse_sweep_prunes_dense_layers_to_each_level():
    """The sweep starts from dense layers (a model whose weights hold no zeros), so each level's
    matrix holds that share of zeros and no more: the published sweep, which re-pruned a 95 %
    sparse model, had about 95 % zeros at every level from 50 % up."""
    torch.manual_seed(0)
    model = build_model(10).eval()
    settings = TimingSettings((1, 3), 2, warmup=0, rounds=2, block_time=0.002, passes=1)
    out = sparse_sweep(model, 32, settings, levels=(0.5, 0.9))
    assert out["levels"] == [0.5, 0.9] and [l["role"] for l in out["layers"]] == ["expansion", "projection", "classifier"]
    assert all(l["zeros"] == 0 for l in out["layers"])  # the baseline's layers are dense
    keys = {(c["role"], c["batch_size"], c["threads"], c["sparsity"]) for c in out["cells"]}
    assert len(keys) == len(out["cells"]) == 3 * 2 * len(latency_settings((1, 3), 2))
    for c in out["cells"]:
        assert c["zeros"] == pytest.approx(c["sparsity"], abs=1e-3)
        assert c["dense_ms"] > 0 and c["csr_ms"] > 0
    # a model that is already sparse would show it: its layers' own zeros are recorded
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(magnitude_pruned(m.weight, 0.95))
    resparse = sparse_sweep(model, 32, TimingSettings((1,), 1, 0, 1, 0.001, 1), levels=(0.5,))
    assert all(l["zeros"] > 0.9 for l in resparse["layers"])
    assert all(c["zeros"] > 0.9 for c in resparse["cells"])  # the artefact, visible in the file


def test_timing_job_writes_one_latency_file(tmp_path):
    args = []
    for name in ("baseline", "small"):
        m = build_model(10)
        save_checkpoint(m, tmp_path / f"{name}.pt", {"num_classes": 10, "name": name})
        export_onnx(m.eval(), 32, tmp_path / f"{name}.onnx")
        args += ["--model", name, str(tmp_path / f"{name}.pt"), str(tmp_path / f"{name}.onnx")]
    settings = {"batch_sizes": [1], "warmup": 0, "rounds": 1, "block_time": 0.01, "passes": 2}
    main([*args, "--job", TimingJob(settings, 32).to_json(), "--threads", "1",
          "--sparse-probe", str(tmp_path / "small.pt"), "--out", str(tmp_path / "latency.json")])
    out = json.loads((tmp_path / "latency.json").read_text())
    assert list(out["models"]) == ["baseline", "small"] and out["agreement"]["passes_compared"] == 2
    assert {g["runtime"] for g in out["models"]["small"]} == {"pytorch", "onnxruntime"}
    assert len(out["sparse_probe"]) == 1 and out["sparse_probe_model"] == "small"  # the file names what it probed
    sweep = out["sparse_sweep"]  # on the baseline's own layers, every setting of the latency grid
    assert {(c["batch_size"], c["threads"]) for c in sweep["cells"]} == {(1, 1)}
    assert len(sweep["cells"]) == len(sweep["layers"]) * len(sweep["levels"])
    assert out["machine"]["cores"] >= 1 and out["machine"]["cpu"]  # the machine that measured, not the planner's


def test_timing_job_needs_the_baseline(tmp_path):
    m = build_model(10)
    save_checkpoint(m, tmp_path / "a.pt", {"num_classes": 10, "name": "a"})
    with pytest.raises(ValueError, match="baseline"):
        main(["--model", "a", str(tmp_path / "a.pt"), str(tmp_path / "a.onnx"), "--job",
              TimingJob({"batch_sizes": [1], "warmup": 0, "rounds": 1, "block_time": 0.01, "passes": 1}, 32).to_json(),
              "--out", str(tmp_path / "l.json")])
    assert not (tmp_path / "l.json").exists()


def test_int8_export_round_trip_stays_close_to_fp32(tmp_path):
    """Static QDQ int8 on a small trained-free model: logits within a stated bound of fp32
    (0.1 of the logits' range), and the file about a quarter of the fp32 one."""
    from scripts.lib.models.engine import DeviceData
    from scripts.lib.measure.quantize import calibration_batches, onnx_correct, quantize_int8
    from scripts.lib.planning.jobs import Int8
    from scripts.lib.measure.timing import onnx_session

    torch.manual_seed(0)
    model = build_model(10).eval()
    export_onnx(model, 32, tmp_path / "m.onnx")
    images = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8)
    data = DeviceData(images, torch.arange(96) % 10, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    batches = calibration_batches(data, 64, 16, seed=0)
    assert [len(b) for b in batches] == [16] * 4
    shipped = Int8(calibration_images=64, calibration="minmax", percentile=99.999, format="qdq", activations="int8",
                   fp32_gain=None, fp32_nodes=())
    quantize_int8(tmp_path / "m.onnx", batches, tmp_path / "m.int8.onnx", shipped)
    x = data.normalise(images[64:]).numpy()
    fp32 = onnx_session(tmp_path / "m.onnx", 1).run(None, {"images": x})[0]
    int8 = onnx_session(tmp_path / "m.int8.onnx", 1).run(None, {"images": x})[0]
    assert abs(int8 - fp32).max() < 0.1 * (fp32.max() - fp32.min())
    assert (tmp_path / "m.int8.onnx").stat().st_size < 0.35 * (tmp_path / "m.onnx").stat().st_size
    correct = onnx_correct(tmp_path / "m.int8.onnx", data, 32, 1)
    assert len(correct) == 96 and set(correct) <= {"0", "1"}
    with pytest.raises(ValueError, match="calibration needs"):
        calibration_batches(data, 97, 16, seed=0)
