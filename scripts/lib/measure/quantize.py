"""8-bit integer models for the edge runtime: ONNX Runtime static quantization.

Signed 8-bit weights per output channel and 8-bit activations (evaluate.int8.activations:
int8 = S8S8, uint8 = U8S8) with ranges calibrated (evaluate.int8.calibration: MinMax,
Percentile or Entropy) on training images: never test images, so the int8 accuracy is measured
on data the calibration has not seen. Format QDQ (QuantizeLinear/DequantizeLinear pairs around
each quantised operator, which ONNX Runtime's CPU kernels fuse) or QOperator (QLinearConv etc.).

Layers can stay fp32: those named in evaluate.int8.fp32_nodes, and every Conv/Gemm whose noise
gain (scripts.lib.measure.int8_ranges.layer_gains) exceeds evaluate.int8.fp32_gain, with the
nodes that compute and read its input (so that the input, whose rounding the gain amplifies,
stays float). The gain is measured on the model quantized whole, which is then quantized again.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from scripts.lib.files import atomic_output
from scripts.lib.measure.int8_ranges import layer_gains, range_report, with_float_inputs
from scripts.lib.models.engine import DeviceData
from scripts.lib.planning.jobs import Int8


class Int8Error(ValueError):
    """The int8 settings do not fit the model (a node to keep fp32 it does not have)."""


class ImageReader:
    """onnxruntime.quantization's CalibrationDataReader protocol over normalised image batches."""

    def __init__(self, batches: list[torch.Tensor]):
        self._batches = iter(batches)

    def get_next(self):
        x = next(self._batches, None)
        return None if x is None else {"images": x.numpy()}

    def rewind(self):  # part of the protocol; every calibration method reads the batches once
        raise NotImplementedError("ImageReader is read once")


def calibration_batches(train: DeviceData, images: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """`images` training images (a seeded random choice), normalised, on the CPU, in batches."""
    if not 0 < images <= len(train):
        raise ValueError(f"calibration needs 1 to {len(train)} training images, got {images}")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(train), generator=gen)[:images].to(train.device)
    x = train.normalise(train.images[idx]).cpu().contiguous()  # ORT reads NCHW order
    return list(x.split(batch_size))


def quantize_static_args(settings: Int8, fp32_nodes=()) -> dict:
    """onnxruntime.quantization.quantize_static's keyword arguments for `settings`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    calibration = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                   "entropy": CalibrationMethod.Entropy}[settings.calibration]
    return {"quant_format": {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}[settings.format],
            "per_channel": True, "weight_type": QuantType.QInt8,
            "activation_type": {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[settings.activations],
            "calibrate_method": calibration, "nodes_to_exclude": list(fp32_nodes),
            # entropy: quantize_static (1.32) passes no bin counts, so its histogram has as many bins as
            # the quantized one (128) and the KL search little choice; measured, it set MinMax's ranges
            "extra_options": {"CalibPercentile": settings.percentile} if settings.calibration == "percentile" else {}}


def quantize_int8(onnx_path, batches: list[torch.Tensor], out_path, settings: Int8) -> dict:
    """The fp32 ONNX model at `onnx_path` as an int8 model at `out_path`.

    Returns the int8 report: the nodes kept fp32, every Conv/Gemm's noise gain (measured with
    every layer quantized) and every quantized activation tensor's range, bulk and scale
    (scripts.lib.measure.int8_ranges)."""
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp, atomic_output(out_path) as out:
        prepared = Path(tmp) / "prepared.onnx"
        # shape inference and graph optimisation first (ONNX Runtime's recommended pre-processing)
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        order = node_order(prepared)
        unknown = sorted(set(settings.fp32_nodes) - set(order))
        if unknown:
            raise Int8Error(f"evaluate.int8.fp32_nodes: no node named {', '.join(unknown)} in {onnx_path}")
        whole = Path(tmp) / "whole.onnx"
        quantize_static(str(prepared), str(whole), ImageReader(batches), **quantize_static_args(settings))
        gains = layer_gains(prepared, whole)
        by_gain = [g["node"] for g in gains if settings.fp32_gain is not None and (g["noise_gain"] or 0) > settings.fp32_gain]
        fp32_nodes = [n for n in order if n in set(settings.fp32_nodes) | with_float_inputs(prepared, by_gain)]
        if fp32_nodes:
            quantize_static(str(prepared), str(out), ImageReader(batches), **quantize_static_args(settings, fp32_nodes))
        else:
            Path(out).write_bytes(whole.read_bytes())
        for g in gains:
            g["fp32"] = g["node"] in fp32_nodes
        return {"settings": dataclasses.asdict(settings), "fp32_nodes": fp32_nodes, "layers": gains,
                "tensors": range_report(prepared, out, batches)}


def node_order(model_path) -> list[str]:
    """The node names of the ONNX model at `model_path`, in graph order."""
    import onnx

    return [n.name for n in onnx.load(str(model_path)).graph.node]


def onnx_correct(onnx_path, test: DeviceData, batch_size: int, threads: int) -> str:
    """Per test image, '1' if the ONNX model's top-1 class is right, else '0' (test-set order)."""
    from scripts.lib.measure.timing import onnx_session

    session = onnx_session(onnx_path, threads)
    out = []
    for x, y in test.batches(batch_size):
        logits = session.run(None, {"images": x.cpu().contiguous().numpy()})[0]  # ORT reads NCHW order
        out.extend("1" if r else "0" for r in (torch.from_numpy(logits).argmax(1) == y.cpu()).tolist())
    return "".join(out)
