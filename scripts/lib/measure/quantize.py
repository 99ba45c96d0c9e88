"""8-bit integer models for the edge runtime: ONNX Runtime static quantization.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantised operator, the
format ONNX Runtime's CPU kernels fuse), signed 8-bit weights per output channel and
8-bit activations with ranges calibrated (MinMax) on training images: never test images,
so the int8 accuracy is measured on data the calibration has not seen.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from scripts.lib.files import atomic_output
from scripts.lib.models.engine import DeviceData


class ImageReader:
    """onnxruntime.quantization's CalibrationDataReader protocol over normalised image batches."""

    def __init__(self, batches: list[torch.Tensor]):
        self._batches = iter(batches)

    def get_next(self):
        x = next(self._batches, None)
        return None if x is None else {"images": x.numpy()}

    def rewind(self):  # part of the protocol; MinMax calibration reads the batches once
        raise NotImplementedError("ImageReader is read once")


def calibration_batches(train: DeviceData, images: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """`images` training images (a seeded random choice), normalised, on the CPU, in batches."""
    if not 0 < images <= len(train):
        raise ValueError(f"calibration needs 1 to {len(train)} training images, got {images}")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(train), generator=gen)[:images].to(train.device)
    x = train.normalise(train.images[idx]).cpu().contiguous()  # ORT reads NCHW order
    return list(x.split(batch_size))


def quantize_int8(onnx_path, batches: list[torch.Tensor], out_path) -> None:
    """The fp32 ONNX model at `onnx_path` as a QDQ int8 model at `out_path`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp, atomic_output(out_path) as out:
        prepared = Path(tmp) / "prepared.onnx"
        # shape inference and graph optimisation first (ONNX Runtime's recommended pre-processing)
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), ImageReader(batches), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


def onnx_correct(onnx_path, test: DeviceData, batch_size: int, threads: int) -> str:
    """Per test image, '1' if the ONNX model's top-1 class is right, else '0' (test-set order)."""
    from scripts.lib.measure.timing import onnx_session

    session = onnx_session(onnx_path, threads)
    out = []
    for x, y in test.batches(batch_size):
        logits = session.run(None, {"images": x.cpu().contiguous().numpy()})[0]  # ORT reads NCHW order
        out.extend("1" if r else "0" for r in (torch.from_numpy(logits).argmax(1) == y.cpu()).tolist())
    return "".join(out)
