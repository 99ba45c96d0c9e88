"""Stage 4 - evaluate: one model's metrics and exports (its latency is the timing job's).

    python -m scripts.evaluate --job '{...}' --ckpt m.pt --data dataset.pt [--masked-ckpt masked/m.pt] \
        --export-fp32 m.fp32.sparse.pt.gz --export-fp16 m.fp16.sparse.pt.gz --onnx m.onnx \
        --onnx-int8 m.int8.onnx --int8-report int8/m.json --correct predictions/m.json --out metrics/m.json

The job (scripts.lib.planning.jobs.EvaluateJob): the paper's prunable set, the int8
calibration, the seed that picks the calibration images, and the engine.
"""
import argparse

from scripts.lib.data.datasets import load_dataset
from scripts.lib.files import log, setup_logging, write_json
from scripts.lib.measure.evaluation import ModelFiles, evaluate_model
from scripts.lib.measure.quantize import Int8Error
from scripts.lib.models.runtime import configure_threads
from scripts.lib.planning.jobs import EvaluateJob


def main(argv=None) -> None:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", required=True, type=EvaluateJob.argument(), help="the settings (JSON)")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (capped at the machine's cores)")
    p.add_argument("--masked-ckpt", help="the checkpoint with PyTorch's masks attached (masking experiments)")
    p.add_argument("--export-fp32", required=True, help="output: sparse export, fp32 values")
    p.add_argument("--export-fp16", required=True, help="output: sparse export, fp16 values")
    p.add_argument("--onnx", required=True, help="output: the model as ONNX (dynamic batch)")
    p.add_argument("--onnx-int8", required=True, help="output: the model as int8 ONNX (static, evaluate.int8)")
    p.add_argument("--int8-report", help="output: the int8 layers' ranges, scales, noise gains, fp32 layers (JSON)")
    p.add_argument("--correct", required=True, help="output: per test image, right or wrong (JSON), for paired tests")
    p.add_argument("--out", required=True, help="output: the metrics (JSON)")
    args = p.parse_args(argv)
    threads = configure_threads(args.threads)
    files = ModelFiles(args.ckpt, args.export_fp32, args.export_fp16, args.onnx, args.onnx_int8,
                       args.masked_ckpt, args.correct, args.int8_report)
    try:
        metrics = evaluate_model(files, load_dataset(args.data), args.job, threads)
    except Int8Error as e:
        raise SystemExit(f"error: {e}") from None
    write_json(metrics, args.out)
    log.info("%s: accuracy %.4f (int8 %.4f) sparsity %.4f gzip %d B", metrics["name"], metrics["accuracy"],
             metrics["accuracy_int8"], metrics["sparsity_prunable"], metrics["gzip_bytes"])


if __name__ == "__main__":
    main()
