"""The results table's columns, declared once.

Every scalar a model's metrics carry is a `Column`: its key, its header (with the
unit), how the paper formats it (scripts/lib/report/formats.py), and which paper
tables show it. The CSV takes its columns from here, the paper's per-model tables
take theirs (in registry order), the cross-check reads the rendered tables back by
the same headers and formats, and the tests read the same definitions. A metric
that is not registered is an error, never silently dropped.

No torch here: the workflow and the tests import it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from scripts.lib.report.formats import interval_cell, mb, mega, ms, pct, points, spread, text


@dataclass(frozen=True)
class Column:
    key: str                        # the metric's key in metrics/<model>.json and results.json
    header: str                     # the paper's column header, unit included
    fmt: Callable[[object], str]    # how the paper prints a value
    tables: tuple[str, ...] = ()    # the paper tables that show it (see TABLES)
    numeric: bool = True            # right-aligned number, or text


# Per-model tables of the paper: name -> caption. Their columns come from COLUMNS.
TABLES = {
    "results": "Accuracy and compute of every model. Zeroed or removed: the share of the baseline's prunable "
               "weights that are zero (masked models) or cut out with their channel (channel-removed models); "
               "for a small dense net, the share it does not have. Target: the share of the prunable weights to "
               "zero (masked models), of each layer's channels to remove, or of the MACs to remove (rows that "
               "target MACs); 0 for the controls. Interval: the Wilson 95 % interval of the test accuracy over "
               "the test images.",
    "deployment": "What a model costs to store and run: parameters, checkpoint file raw and under gzip, its int8 ONNX "
                  "model's accuracy and gzip size, and the latency "
                  "of one forward pass in PyTorch eager (the table's batch size and thread count are given "
                  "in the text), with its inter-quartile range.",
    "storage": "Sparse exports against the dense checkpoint, both gzipped: per tensor the smallest of dense, "
               "bitmask and compressed sparse rows, with fp32 or fp16 values, gzipped; each export's size as a "
               "share of the dense checkpoint's gzip size; the last column is the test accuracy change of the "
               "fp16 export.",
}

LABEL = Column("label", "Model", text, tables=tuple(TABLES), numeric=False)

# Every scalar of the results table, in CSV order. `tables` places it in the paper.
COLUMNS = {c.key: c for c in (
    Column("name", "Name", text, numeric=False),
    LABEL,
    Column("strategy", "Strategy", text, numeric=False),
    Column("schedule", "Schedule", text, numeric=False),
    Column("target_sparsity", "Target (%)", pct, tables=("results",)),
    Column("steps", "Steps", text),
    Column("curve", "Curve", text, numeric=False),  # experiments that differ only in their target share it
    Column("removed_fraction", "Zeroed or removed (%)", pct, tables=("results",)),
    Column("sparsity_prunable", "Sparsity (%)", pct, tables=("storage",)),
    Column("sparsity_all", "Sparsity, all parameters (%)", pct),
    Column("accuracy", "Accuracy (%)", pct, tables=("results",)),
    Column("accuracy_ci", "95 % interval (%)", interval_cell, tables=("results",)),  # Wilson, over the test images
    Column("accuracy_flip_tta", "Accuracy, flip TTA (%)", pct, tables=("results",)),  # mean of image and mirror
    Column("seeds_run", "Seeds", text),  # replicated experiments (config key seeds): how many runs
    Column("accuracy_mean", "Accuracy, mean over seeds (%)", pct),
    Column("accuracy_std", "Accuracy, std over seeds (points)", spread),
    Column("params", "Params (M)", mega, tables=("deployment",)),
    Column("nonzero_params", "Non-zero params (M)", mega),
    Column("prunable_params", "Prunable params (M)", mega),
    Column("prunable_nonzero", "Prunable non-zero (M)", mega),
    Column("macs", "MACs (M)", mega, tables=("results",)),
    Column("channels", "Conv channels", text),
    Column("params_ratio", "Params of baseline (%)", pct),
    Column("macs_ratio", "MACs of baseline (%)", pct),
    Column("channels_ratio", "Channels of baseline (%)", pct),
    Column("file_bytes", "Size (MB)", mb, tables=("deployment",)),
    Column("gzip_bytes", "Size gzip (MB)", mb, tables=("deployment", "storage")),
    Column("latency_ms", "Latency (ms)", ms, tables=("deployment",)),
    Column("latency_iqr_ms", "Latency IQR (ms)", ms, tables=("deployment",)),
    Column("latency_batch_size", "Latency batch", text),
    Column("latency_threads", "Latency threads", text),
    Column("latency_device", "Latency device", text, numeric=False),
    Column("latency_samples", "Latency samples", text),
    Column("onnx_max_abs_diff", "ONNX max logit difference", text),
    Column("onnx_bytes", "ONNX (MB)", mb),
    Column("onnx_gzip_bytes", "ONNX gzip (MB)", mb),
    Column("accuracy_int8", "Accuracy int8 (%)", pct, tables=("deployment",)),  # ONNX Runtime, static QDQ
    Column("int8_bytes", "int8 ONNX (MB)", mb),
    Column("int8_gzip_bytes", "int8 gzip (MB)", mb, tables=("deployment",)),
    Column("sparse_fp32_bytes", "Sparse fp32 (MB)", mb, tables=("storage",)),
    Column("sparse_fp32_ratio", "fp32 of dense gzip (%)", pct, tables=("storage",)),  # gzip against gzip
    Column("sparse_fp16_bytes", "Sparse fp16 (MB)", mb, tables=("storage",)),
    Column("sparse_fp16_ratio", "fp16 of dense gzip (%)", pct, tables=("storage",)),
    Column("accuracy_fp16_export", "Accuracy fp16 export (%)", pct),
    Column("fp16_accuracy_change", "fp16 accuracy change (points)", points, tables=("storage",)),
    Column("masked_file_bytes", "Masked file (MB)", mb),
    Column("masked_gzip_bytes", "Masked gzip (MB)", mb),
    Column("test_images", "Test images", text),
    Column("ckpt_sha256", "Checkpoint sha256", text, numeric=False),  # which file the sizes are of
)}

# Fields of a model's metrics that are not table scalars: kept in results.json only.
DETAIL_FIELDS = ("latency_grid", "cpu", "torch", "int8_fp32_nodes")


def check_registered(metrics: dict, where: str) -> None:
    """Every field of a metrics file must be a registered column or a detail field."""
    unknown = sorted(set(metrics) - set(COLUMNS) - set(DETAIL_FIELDS))
    if unknown:
        raise ValueError(f"{where}: metrics {unknown} are not registered in scripts/lib/report/columns.py COLUMNS "
                         "(add a Column, or list the field in DETAIL_FIELDS)")


def table_columns(table: str) -> list[Column]:
    """The columns a paper table shows, the model's label first, in registry order."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; tables: {sorted(TABLES)}")
    return [c for c in COLUMNS.values() if table in c.tables]


def cell(column: Column, row: dict) -> str:
    """A row's value as the paper prints it; an empty cell where the model has none."""
    value = row.get(column.key)
    return "" if value is None else column.fmt(value)
