"""int8 in ONNX Runtime: each evaluate.int8 option reaches the quantizer and shows in the model it
writes; layers kept fp32 stay fp32; the range report and the noise-gain rule name the layer made
to explode; bad settings are refused by the schema and by the job. Tiny synthetic models only."""
import copy
import dataclasses

import onnx
import pytest
import torch
import yaml
from torch import nn

from scripts.lib import REPO
from scripts.lib.measure.evaluation import export_onnx
from scripts.lib.measure.int8_ranges import layer_gains, range_report, tensor_ranges
from scripts.lib.measure.quantize import Int8Error, quantize_int8, quantize_static_args
from scripts.lib.planning import jobs
from scripts.lib.planning.config import ConfigError, load_schema, validate_config
from scripts.lib.planning.jobs import Int8, JobError

DEFAULTS = dict(calibration_images=64, calibration="minmax", percentile=99.999, format="qdq", activations="int8",
                fp32_gain=None, fp32_nodes=())


def settings(**over) -> Int8:
    return Int8(**{**DEFAULTS, **over})


def tiny_net(blow_up: bool = False) -> nn.Module:
    """conv-bn-relu6, a 1x1 projection, pool, classifier. blow_up: the projection's output channel 0
    is 500x its neighbours (what a batch norm folded over a near-dead channel does)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
                        nn.Conv2d(8, 8, 1), nn.ReLU6(), nn.Conv2d(8, 8, 1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    if blow_up:
        with torch.no_grad():
            net[5].weight[0] *= 500
    return net


def onnx_file(tmp_path, blow_up=False):
    path = tmp_path / ("blown.onnx" if blow_up else "tiny.onnx")
    export_onnx(tiny_net(blow_up), 8, path)
    return path


def batches(outlier: float = 0.0):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, 8, 8, generator=g)
    x[0, 0, 0, 0] += outlier  # one value far outside the rest: what clipping calibrations cut
    return list(x.split(16))


def op_types(path) -> dict[str, str]:
    return {n.name: n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("key, value, argument, expected", [
    ("calibration", "minmax", "calibrate_method", "MinMax"),
    ("calibration", "percentile", "calibrate_method", "Percentile"),
    ("calibration", "entropy", "calibrate_method", "Entropy"),
    ("format", "qdq", "quant_format", "QDQ"),
    ("format", "qoperator", "quant_format", "QOperator"),
    ("activations", "int8", "activation_type", "QInt8"),
    ("activations", "uint8", "activation_type", "QUInt8"),
])
def test_each_option_reaches_quantize_static(key, value, argument, expected):
    args = quantize_static_args(settings(**{key: value}))
    assert args[argument].name == expected
    assert args["weight_type"].name == "QInt8" and args["per_channel"] is True


def test_percentile_reaches_the_calibrator_and_fp32_nodes_are_excluded():
    args = quantize_static_args(settings(calibration="percentile", percentile=99.9), ["/3/Conv"])
    assert args["extra_options"] == {"CalibPercentile": 99.9} and args["nodes_to_exclude"] == ["/3/Conv"]
    assert quantize_static_args(settings())["extra_options"] == {}  # the percentile is only the percentile's


def zero_point_types(path) -> set[int]:
    model = onnx.load(str(path))
    return {i.data_type for i in model.graph.initializer if i.name.endswith("_zero_point") and len(i.dims) == 0}


@pytest.mark.parametrize("fmt, activations", [("qdq", "int8"), ("qdq", "uint8"), ("qoperator", "int8"),
                                              ("qoperator", "uint8")])
def test_format_and_activation_type_show_in_the_model(tmp_path, fmt, activations):
    out = tmp_path / "q.onnx"
    report = quantize_int8(onnx_file(tmp_path), batches(), out, settings(format=fmt, activations=activations))
    ops = set(op_types(out).values())
    if fmt == "qdq":
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "QLinearConv" not in ops
    else:
        assert "QLinearConv" in ops and "Conv" not in ops
    expected = onnx.TensorProto.INT8 if activations == "int8" else onnx.TensorProto.UINT8
    assert zero_point_types(out) == {expected}  # per-tensor (activation) zero points
    assert report["fp32_nodes"] == [] and report["settings"]["format"] == fmt


def test_percentile_calibration_cuts_an_outlier_minmax_keeps(tmp_path):
    ranges, calibration = {}, "percentile"
    for method in ("minmax", calibration):
        report = quantize_int8(onnx_file(tmp_path), batches(outlier=40.0), tmp_path / f"{method}.onnx",
                               settings(calibration=method, percentile=99.0))
        ranges[method] = {t["tensor"]: t["scale"] for t in report["tensors"]}
    assert ranges["minmax"].keys() == ranges[calibration].keys()
    assert ranges[calibration]["images"] < ranges["minmax"]["images"] / 2  # the outlier cut off


def test_entropy_calibration_runs_and_sets_no_wider_range_than_minmax(tmp_path):
    scales = [{t["tensor"]: t["scale"] for t in quantize_int8(onnx_file(tmp_path), batches(outlier=40.0),
                                                             tmp_path / f"{m}.onnx", settings(calibration=m))["tensors"]}
              for m in ("minmax", "entropy")]
    assert scales[0].keys() == scales[1].keys()
    assert all(scales[1][t] <= scales[0][t] * (1 + 1e-6) for t in scales[0])


def test_named_nodes_stay_fp32(tmp_path):
    out = tmp_path / "q.onnx"
    report = quantize_int8(onnx_file(tmp_path), batches(), out, settings(format="qoperator", fp32_nodes=("/3/Conv",)))
    ops = op_types(out)
    assert ops["/3/Conv"] == "Conv" and ops["/0/Conv_quant"] == "QLinearConv"
    assert report["fp32_nodes"] == ["/3/Conv"]
    assert [g["node"] for g in report["layers"] if g["fp32"]] == ["/3/Conv"]


def test_a_node_the_model_lacks_is_an_error_and_writes_nothing(tmp_path):
    out = tmp_path / "q.onnx"
    with pytest.raises(Int8Error, match="no node named /9/Conv"):
        quantize_int8(onnx_file(tmp_path), batches(), out, settings(fp32_nodes=("/9/Conv",)))
    assert not out.exists()


def test_range_report_names_the_layer_made_to_explode(tmp_path):
    path = onnx_file(tmp_path, blow_up=True)
    report = quantize_int8(path, batches(), tmp_path / "q.onnx", settings())
    worst = max(report["tensors"], key=lambda t: t["top_channel_over_next"] or 0)
    assert worst["node"] == "/5/Conv" and worst["top_channel"] == 0 and worst["top_channel_over_next"] > 50
    healthy = {t["tensor"]: t for t in report_of(tmp_path, blow_up=False)["tensors"]}[worst["tensor"]]
    assert healthy["top_channel_over_next"] < 5 and worst["scale"] > 50 * healthy["scale"]


def report_of(tmp_path, blow_up, **over):
    return quantize_int8(onnx_file(tmp_path, blow_up), batches(), tmp_path / "r.onnx", settings(**over))


def test_gain_rule_keeps_the_amplifying_layer_fp32(tmp_path):
    # large weights in one output channel on a normally calibrated input: that channel moves by
    # hundreds of its output's steps per input step
    net = tiny_net()
    with torch.no_grad():
        net[3].weight[2] *= 400  # one output channel of /3/Conv amplifies its input's rounding
    path = tmp_path / "gain.onnx"
    export_onnx(net, 8, path)
    whole = quantize_int8(path, batches(), tmp_path / "a.onnx", settings())
    gains = {g["node"]: g["noise_gain"] for g in whole["layers"]}
    assert max(gains, key=gains.get) == "/3/Conv"
    threshold = sorted(gains.values())[-2] * 1.01  # above every other layer's gain
    kept = quantize_int8(path, batches(), tmp_path / "b.onnx", settings(fp32_gain=threshold))
    # with it the layers that compute its input (conv /0 and its ReLU6 /2): their int8 output would be its input
    assert kept["fp32_nodes"] == ["/0/Conv", "/2/Clip", "/3/Conv"] and whole["fp32_nodes"] == []
    assert [g["node"] for g in kept["layers"] if g["fp32"]] == ["/0/Conv", "/3/Conv"]
    model = onnx.load(str(tmp_path / "b.onnx"))
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert "/2/Clip_output_0" not in quantized and "/0/Conv_output_0" not in quantized  # its input stays float
    assert {"/4/Clip_output_0", "/5/Conv_output_0"} <= quantized  # the layers after it stay int8


def test_tensor_ranges_are_the_values_seen(tmp_path):
    path = onnx_file(tmp_path)
    x = batches()
    r = tensor_ranges(path, x, ["images"], percentile=99.0)["images"]
    every = torch.cat(x)
    assert r["min"] == pytest.approx(float(every.min())) and r["max"] == pytest.approx(float(every.max()))
    assert r["p_low"] < 0 < r["p_high"] < r["max"]
    with pytest.raises(ValueError, match="percentile"):
        tensor_ranges(path, x, ["images"], percentile=100)


def test_layer_gains_of_a_model_without_quantized_layers_is_empty(tmp_path):
    path = onnx_file(tmp_path)
    assert layer_gains(path, path) == [] and range_report(path, path, batches()) == []


# --- settings: schema and job ------------------------------------------------------------------

def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_shipped_settings_are_u8s8_with_the_gain_rule():
    """The published config quantizes activations as uint8 (ONNX Runtime fuses every Conv and Add)
    and keeps the high-gain layers fp32 (the masked models' collapse); the rest as in the tests."""
    job = jobs.evaluate_job(validate_config(config()))
    assert dataclasses.asdict(job.int8) == {**DEFAULTS, "calibration_images": 512, "activations": "uint8",
                                            "fp32_gain": 40, "fp32_nodes": ()}


def test_schema_lists_the_jobs_choices():
    props = load_schema()["properties"]["evaluate"]["properties"]["int8"]["properties"]
    assert tuple(props["calibration"]["enum"]) == jobs.INT8_CALIBRATIONS
    assert tuple(props["format"]["enum"]) == jobs.INT8_FORMATS
    assert tuple(props["activations"]["enum"]) == jobs.INT8_ACTIVATIONS


@pytest.mark.parametrize("key, value", [("calibration", "kl"), ("format", "qlinear"), ("activations", "int4"),
                                        ("percentile", 100), ("fp32_gain", 0), ("fp32_nodes", "a")])
def test_bad_settings_are_refused_by_schema_and_job(key, value):
    c = copy.deepcopy(config())
    c["evaluate"]["int8"][key] = value
    with pytest.raises(ConfigError, match=f"evaluate.int8.{key}"):
        validate_config(c)
    with pytest.raises(JobError, match=f"evaluate.int8.{key}"):
        Int8.from_dict(c["evaluate"]["int8"], "evaluate.int8")


def test_missing_or_unknown_int8_keys_are_named():
    with pytest.raises(JobError, match="missing fp32_gain"):
        Int8.from_dict({k: v for k, v in DEFAULTS.items() if k != "fp32_gain"}, "evaluate.int8")
    with pytest.raises(JobError, match="unknown per_channel"):
        Int8.from_dict({**DEFAULTS, "per_channel": False}, "evaluate.int8")
