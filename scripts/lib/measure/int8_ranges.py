"""What int8 calibration sees: per activation tensor, its range on the calibration images, the bulk
of its values, and the int8 step the quantizer gave it (the evaluate stage's int8 range report).

Static int8 gives each activation tensor one scale (per tensor, not per channel): a tensor whose
extreme values lie far outside the bulk of its distribution (one channel of a masked model whose
folded batch norm blew up, say) spends its 256 levels on the extremes and leaves the bulk a few
levels. `bulk_levels` says how many int8 steps the central `percentile` share of a tensor spans
under the scale actually chosen; `range_ratio` how much wider the full range is than that bulk.
"""
from __future__ import annotations

import numpy as np
import torch

SAMPLES_PER_BATCH = 1 << 16  # values kept per tensor and batch for the percentiles (a strided sample)


def _with_outputs(model, names: list[str]):
    """A copy of the ONNX `model` that also outputs the tensors `names`."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in have)
    return model


def float_activations(model) -> list[str]:
    """Names of the float tensors the graph computes (its input and every node's outputs), in graph
    order; weights and other initializers excluded."""
    initializers = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    names += [o for n in model.graph.node for o in n.output if o and n.op_type not in ("Constant", "Shape")]
    return names


def tensor_ranges(model_path, batches: list[torch.Tensor], names: list[str] | None = None,
                  percentile: float = 99.9) -> dict[str, dict]:
    """Per tensor of the fp32 ONNX model at `model_path` (default: every float activation), over
    `batches`: min, max, the `percentile` and 100 - `percentile` percentiles (of a strided sample),
    and the channel (axis 1) whose largest |value| is largest, with that value over the next
    channel's (how far one channel alone sets the range)."""
    import onnx
    import onnxruntime as ort

    if not 50 < percentile < 100:
        raise ValueError(f"percentile must be in (50, 100), got {percentile!r}")
    model = onnx.load(str(model_path))
    names = names if names is not None else float_activations(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # every tensor stays
    session = ort.InferenceSession(_with_outputs(model, names).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    lows, highs, samples, channel_max = {}, {}, {n: [] for n in names}, {}
    for x in batches:
        values = dict(zip(outputs, session.run(None, {session.get_inputs()[0].name: x.contiguous().numpy()})))
        for n in names:
            v = values[n]
            if not np.issubdtype(v.dtype, np.floating) or v.size == 0:
                continue
            lows[n], highs[n] = min(lows.get(n, np.inf), float(v.min())), max(highs.get(n, -np.inf), float(v.max()))
            flat = v.reshape(-1)
            samples[n].append(flat[::max(1, flat.size // SAMPLES_PER_BATCH)])
            if v.ndim >= 2:
                per_channel = np.abs(np.moveaxis(v, 1, 0).reshape(v.shape[1], -1)).max(axis=1)
                channel_max[n] = np.maximum(channel_max.get(n, 0.0), per_channel)
    out = {}
    for n in names:
        if n not in lows:
            continue
        sample = np.concatenate(samples[n])
        entry = {"min": lows[n], "max": highs[n],
                 "p_low": float(np.percentile(sample, 100 - percentile)),
                 "p_high": float(np.percentile(sample, percentile))}
        if n in channel_max and channel_max[n].size >= 2:
            order = np.argsort(channel_max[n])[::-1]
            top, second = channel_max[n][order[0]], channel_max[n][order[1]]
            entry.update({"top_channel": int(order[0]),
                          "top_channel_over_next": float(top / second) if second > 0 else None})
        out[n] = entry
    return out


def quantized_scales(int8_model) -> dict[str, tuple[float, int]]:
    """Activation tensor -> (scale, zero point) of the int8 ONNX model (QDQ or QOperator format:
    ONNX Runtime names them <tensor>_scale and <tensor>_zero_point); per-channel (weight) scales
    left out."""
    from onnx import numpy_helper

    init = {i.name: i for i in int8_model.graph.initializer}
    out = {}
    for name, tensor in init.items():
        if not name.endswith("_scale") or name[:-6] + "_zero_point" not in init:
            continue
        scale, zero = numpy_helper.to_array(tensor), numpy_helper.to_array(init[name[:-6] + "_zero_point"])
        if scale.size == 1:
            out[name[:-6]] = (float(scale.reshape(())), int(zero.reshape(())))
    return out


def producers(model) -> dict[str, tuple[str, str]]:
    """Tensor -> (name, op type) of the node that computes it."""
    return {o: (n.name, n.op_type) for n in model.graph.node for o in n.output}


def range_report(model_path, int8_path, batches: list[torch.Tensor], percentile: float = 99.9) -> list[dict]:
    """One entry per activation tensor the int8 model at `int8_path` quantizes, in graph order of the
    fp32 model at `model_path` (the graph that was quantized, same tensor names): its node, range,
    bulk, scale and zero point, `bulk_levels` (int8 steps across the bulk) and `range_ratio`."""
    import onnx

    model = onnx.load(str(model_path))
    scales = quantized_scales(onnx.load(str(int8_path)))
    names = [n for n in float_activations(model) if n in scales]
    ranges = tensor_ranges(model_path, batches, names, percentile)
    made_by = producers(model)
    report = []
    for n in names:
        r, (scale, zero) = ranges[n], scales[n]
        bulk = r["p_high"] - r["p_low"]
        node, op = made_by.get(n, ("(input)", "Input"))
        report.append({"tensor": n, "node": node, "op": op, **r, "scale": scale, "zero_point": zero,
                       "bulk_levels": bulk / scale if scale > 0 else None,
                       "range_ratio": (r["max"] - r["min"]) / bulk if bulk > 0 else None})
    return report


def _weights(model) -> dict:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


ACTIVATIONS = ("Clip", "Relu")  # what the quantizer fuses into the Conv before it


def _step_finder(model, scales: dict):
    """tensor -> its int8 step, or None. The quantizer fuses ReLU6 (Clip) into the convolution
    before it and quantizes one of the two tensors with the activation's range: the Clip's output
    (QDQ) or the Conv's (QOperator); either stands for both."""
    made_by = {o: n for n in model.graph.node for o in n.output}
    after = {}
    for n in model.graph.node:
        if n.op_type in ACTIVATIONS:
            after[n.input[0]] = n.output[0]

    def step(tensor):
        producer = made_by.get(tensor)
        for t in (tensor, after.get(tensor), producer.input[0] if producer is not None and producer.op_type
                  in ACTIVATIONS else None):
            if t in scales:
                return scales[t][0]
        return None
    return step


def layer_gains(model_path, int8_path) -> list[dict]:
    """Per Conv and Gemm of the fp32 ONNX model at `model_path` whose input the int8 model at
    `int8_path` quantizes (graph order): the noise gain, (input's int8 step) x (largest L1 norm of
    one output channel's weights) / (output's int8 step), with the output's step that of the
    activation the quantizer fuses into it (ReLU6) where the layer's own output is not quantized.

    One input step moves an output by at most step x L1 norm, so the gain bounds how many output
    steps the input's rounding can move an output. Batch norm folded into a convolution whose
    channel kept a few weights of small variance can make that channel's norm, and the gain, large.
    """
    import onnx

    model = onnx.load(str(model_path))
    scales, weights = quantized_scales(onnx.load(str(int8_path))), _weights(model)
    step = _step_finder(model, scales)
    out = []
    for n in model.graph.node:
        if n.op_type not in ("Conv", "Gemm") or n.input[1] not in weights:
            continue
        in_step, out_step = step(n.input[0]), step(n.output[0])
        if in_step is None:  # left fp32
            continue
        w = weights[n.input[1]]
        transposed = n.op_type == "Gemm" and not any(a.name == "transB" and a.i for a in n.attribute)
        norms = np.abs(w.T if transposed else w.reshape(w.shape[0], -1)).sum(axis=1)
        out.append({"node": n.name, "op": n.op_type, "input": n.input[0], "output": n.output[0],
                    "max_channel_l1": float(norms.max()), "median_channel_l1": float(np.median(norms)),
                    "noise_gain": float(in_step * norms.max() / out_step) if out_step else None})
    return out


def with_float_inputs(model_path, nodes) -> set[str]:
    """`nodes` and every node that must stay fp32 too for their inputs to stay float: the node that
    computes an input (back through ReLU6 to the layer it is fused into) and every other reader of
    it. Leaving a node alone out of quantization keeps its input's rounding: in the QDQ format a
    quantized producer or reader quantizes the tensor all the same."""
    import onnx

    model = onnx.load(str(model_path))
    made_by = {o: n for n in model.graph.node for o in n.output}
    readers = {}
    for n in model.graph.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)
    by_name = {n.name: n for n in model.graph.node}
    keep = set(nodes)
    for name in nodes:
        tensor = by_name[name].input[0]
        while True:
            keep.update(r.name for r in readers.get(tensor, []))
            producer = made_by.get(tensor)
            if producer is None:
                break
            keep.add(producer.name)
            if producer.op_type not in ACTIVATIONS:
                break
            tensor = producer.input[0]
    return keep
