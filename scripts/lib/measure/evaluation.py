"""One model measured: accuracy (PyTorch, fp16 export, ONNX Runtime int8), sparsity, sizes, MACs,
and the exports the timing job and a deployment use (the evaluate stage, scripts/evaluate.py).
The results table of all models is scripts.lib.report.results (torch-free).
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from scripts.lib.files import atomic_output, sha256_file, write_json
from scripts.lib.measure.provenance import cpu_model
from scripts.lib.measure.quantize import calibration_batches, onnx_correct, quantize_int8
from scripts.lib.measure.storage import gzip_bytes, read_sparse_export, write_sparse_export
from scripts.lib.measure.timing import onnx_session
from scripts.lib.models.engine import device_splits, evaluate, memory_format, to_memory_format
from scripts.lib.models.network import load_checkpoint, model_from_state
from scripts.lib.models.runtime import select_device
from scripts.lib.planning.jobs import EvaluateJob
from scripts.lib.pruning.channels import channel_counts, count_macs
from scripts.lib.pruning.masks import prunable_modules, sparsity


def gzip_size(path) -> int:
    """Bytes of the file after gzip (scripts.lib.measure.storage.GZIP_LEVEL), the seed's storage measure."""
    return len(gzip_bytes(Path(path).read_bytes()))


def count_parameters(model) -> dict:
    params = list(model.parameters())
    return {"params": sum(p.numel() for p in params),
            "nonzero_params": sum(int((p != 0).sum()) for p in params),
            "sparsity_all": sparsity(p.detach() for p in params)}


def export_onnx(model, image_size: int, path) -> None:
    """ONNX file with a dynamic batch axis (TorchScript-based exporter: no onnxscript needed)."""
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)  # initializers in plain NCHW order
    x = torch.zeros(1, 3, image_size, image_size)
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter's notice
        torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})


def onnx_max_abs_diff(model, onnx_path, images: torch.Tensor) -> float:
    """Largest |logit difference| between ONNX Runtime and PyTorch (CPU, fp32) on `images`."""
    session = onnx_session(onnx_path, 1)
    with torch.inference_mode():
        expected = model.cpu().eval()(images).numpy()
    return float(abs(session.run(None, {"images": images.contiguous().numpy()})[0] - expected).max())


def storage_metrics(model, meta: dict, export_fp32, export_fp16, masked_ckpt=None) -> tuple[dict, dict]:
    """Sizes of the sparse exports (and of the file with masks attached, if any); the dense
    checkpoint's are file_bytes and gzip_bytes.

    Returns the metrics and the state_dict read back from the fp16 export.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    out = {"sparse_fp32_bytes": write_sparse_export(state, export_fp32, "float32", meta),
           "sparse_fp16_bytes": write_sparse_export(state, export_fp16, "float16", meta),
           "masked_file_bytes": Path(masked_ckpt).stat().st_size if masked_ckpt else None,
           "masked_gzip_bytes": gzip_size(masked_ckpt) if masked_ckpt else None}
    back, _ = read_sparse_export(export_fp32)
    if back.keys() != state.keys() or not all(torch.equal(back[k], state[k]) for k in state):
        raise RuntimeError(f"{export_fp32}: the fp32 sparse export does not read back exactly")
    return out, read_sparse_export(export_fp16)[0]


@dataclass(frozen=True)
class ModelFiles:
    """A model's checkpoints (inputs) and the exports written from it (outputs)."""
    ckpt: str
    export_fp32: str
    export_fp16: str
    onnx: str
    onnx_int8: str
    masked_ckpt: str | None = None  # the file with PyTorch's masks attached (masking experiments)
    correct: str | None = None      # output: per test image, right (1) or wrong (0), for paired tests
    int8_report: str | None = None  # output: per layer, the int8 ranges, scales and noise gains (quantize_int8)


def correct_images(model, data, batch_size: int) -> str:
    """Per test image, in test-set order, '1' if the model's top-1 class is right, else '0'
    (the same forward pass as scripts.lib.models.engine.evaluate, bfloat16 autocast on CUDA)."""
    to_memory_format(model, data.memory_format).eval()  # outside inference mode, as in evaluate
    out = []
    with torch.inference_mode():
        for x, y in data.batches(batch_size):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=data.device.type == "cuda"):
                right = model(x).argmax(1) == y
            out.extend("1" if r else "0" for r in right.tolist())
    return "".join(out)


def tensor_sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.cpu().numpy().tobytes()).hexdigest()


def evaluate_model(files: ModelFiles, dataset: dict, job: EvaluateJob, threads: int) -> dict:
    """Every metric of one model but its latency: accuracy (PyTorch fp32, fp16 export, ONNX Runtime
    int8), sparsity, sizes, MACs; writes the exports the timing job and a deployment use.
    `threads`: ONNX Runtime's, in its int8 test pass. Latency is not measured here: one timing
    job times every model (scripts.lib.measure.timing)."""
    device = select_device()
    model, meta = load_checkpoint(files.ckpt)
    modules = [m for _, m in prunable_modules(model, job.prunable["layer_types"],
                                               job.prunable["exclude"])]
    image_size = dataset["test_images"].shape[-1]
    metrics = {"name": meta["name"],
               "sparsity_prunable": sparsity(m.weight.detach() for m in modules),
               "prunable_params": sum(m.weight.numel() for m in modules),
               "prunable_nonzero": sum(int((m.weight != 0).sum()) for m in modules),
               "macs": count_macs(model, image_size), "channels": channel_counts(model),
               **count_parameters(model),
               "file_bytes": Path(files.ckpt).stat().st_size, "gzip_bytes": gzip_size(files.ckpt),
               "ckpt_sha256": sha256_file(files.ckpt)}  # which file these sizes are of (the cross-check)
    sizes, fp16_state = storage_metrics(model, meta, files.export_fp32, files.export_fp16, files.masked_ckpt)
    metrics.update(sizes)
    engine = job.engine
    test = device_splits(dataset, engine.mean, engine.std, device, memory_format(engine.memory_format))["test"]
    fp16_model = model_from_state(meta, fp16_state)
    metrics["accuracy_fp16_export"] = evaluate(fp16_model.to(device), test, engine.eval_batch_size)["accuracy"]
    model.to(device)
    correct = correct_images(model, test, engine.eval_batch_size)  # one test pass: the accuracy is its count
    metrics["accuracy"] = correct.count("1") / len(test)
    # the seed reported plain accuracy; the mirror-averaged one is what a deployment could add for 2x the compute
    metrics["accuracy_flip_tta"] = evaluate(model, test, engine.eval_batch_size, flip_tta=True)["accuracy"]
    metrics["test_images"] = len(test)
    export_onnx(model, image_size, files.onnx)
    metrics["onnx_max_abs_diff"] = onnx_max_abs_diff(model, files.onnx, test.normalise(test.images[:64]).cpu())
    calibration = calibration_batches(device_splits(dataset, engine.mean, engine.std, torch.device("cpu"))["train"],
                                      job.int8.calibration_images, engine.eval_batch_size, job.seed)
    report = quantize_int8(files.onnx, calibration, files.onnx_int8, job.int8)
    if files.int8_report:
        write_json({"name": meta["name"], **report}, files.int8_report)
    correct_int8 = onnx_correct(files.onnx_int8, test, engine.eval_batch_size, threads)
    metrics.update({"accuracy_int8": correct_int8.count("1") / len(test), "int8_fp32_nodes": report["fp32_nodes"],
                    "onnx_bytes": Path(files.onnx).stat().st_size, "onnx_gzip_bytes": gzip_size(files.onnx),
                    "int8_bytes": Path(files.onnx_int8).stat().st_size, "int8_gzip_bytes": gzip_size(files.onnx_int8)})
    if files.correct:
        write_json({"name": meta["name"], "test_labels_sha256": tensor_sha256(test.labels), "correct": correct,
                    "correct_int8": correct_int8}, files.correct)
    metrics["cpu"] = cpu_model()
    metrics["torch"] = torch.__version__
    return metrics
