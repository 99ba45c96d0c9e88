"""The results table's columns, declared once, and the table writer and readers.

Every scalar a model's metrics carry is a `Column`: its key, its header (with the
unit), how the paper formats it, and which paper tables show it. The CSV takes
its columns from here, the paper's per-model tables take theirs (in registry
order), the cross-check parses the rendered tables back by the same headers and
formats, and the tests read the same definitions. A metric that is not
registered is an error, never silently dropped.

No torch here: the workflow and the tests import it cheaply.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# --- number formats ---------------------------------------------------------------------------


def pct(fraction: float) -> str:
    """0.9321 -> '93.2' (percent, one decimal)."""
    return f"{fraction * 100:.1f}"


def spread(std_fraction: float) -> str:
    """A standard deviation of accuracies in percentage points, two decimals, unsigned."""
    return f"{std_fraction * 100:.2f}"


def points(delta_fraction: float) -> str:
    """Accuracy difference in percentage points, one decimal, signed: '+1.2', '-0.4' ('+0.0',
    never '-0.0', for a difference that rounds to zero)."""
    return f"{round(delta_fraction * 100, 1) + 0.0:+.1f}"


def mb(n_bytes: float) -> str:
    """Bytes in MB (10^6), two decimals."""
    return f"{n_bytes / 1e6:.2f}"


def ms(milliseconds: float) -> str:
    """Two decimals below 10 ms (ONNX Runtime at batch 1 takes ~0.2 ms), one above."""
    return f"{milliseconds:.2f}" if milliseconds < 10 else f"{milliseconds:.1f}"


def ratio(x: float) -> str:
    """A ratio with two decimals: 3.7634 -> '3.76'."""
    return f"{x:.2f}"


def mega(n: float) -> str:
    """Counts in millions, two decimals: 2236682 -> '2.24'."""
    return f"{n / 1e6:.2f}"


def interval(bounds) -> str:
    """A [low, high] pair of fractions as percent: '92.7 to 93.7' (brackets would be escaped
    differently by each writer)."""
    low, high = bounds
    return f"{pct(low)} to {pct(high)}"


def text(value) -> str:
    return str(value)


FORMATS = {"spread": spread, "pct": pct, "points": points, "mb": mb, "ms": ms, "ratio": ratio, "mega": mega, "interval": interval}

# --- the registry --------------------------------------------------------------------------------


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
               "weights that are zero (masked models) or cut out with their channel (channel-removed models). "
               "Target: a sparsity for masked models, a channel ratio for channel-removed ones. Interval: the "
               "Wilson 95 % interval of the test accuracy over the test images.",
    "deployment": "What a model costs to store and run: parameters, checkpoint file raw and under gzip, its int8 ONNX "
                  "model's accuracy and gzip size, and the latency "
                  "of one forward pass in PyTorch eager (the table's batch size and thread count are given "
                  "in the text), with its inter-quartile range.",
    "storage": "Sparse exports against the dense checkpoint: per tensor the smallest of dense, bitmask and "
               "compressed sparse rows, gzipped, with fp32 or fp16 values; the last column is the test "
               "accuracy change of the fp16 export.",
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
    Column("accuracy_ci", "95 % interval (%)", interval, tables=("results",)),  # Wilson, over the test images
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
    Column("sparse_fp32_ratio", "fp32 of dense file (%)", pct, tables=("storage",)),
    Column("sparse_fp16_bytes", "Sparse fp16 (MB)", mb, tables=("storage",)),
    Column("sparse_fp16_ratio", "fp16 of dense file (%)", pct, tables=("storage",)),
    Column("accuracy_fp16_export", "Accuracy fp16 export (%)", pct),
    Column("fp16_accuracy_change", "fp16 accuracy change (points)", points, tables=("storage",)),
    Column("masked_file_bytes", "Masked file (MB)", mb),
    Column("masked_gzip_bytes", "Masked gzip (MB)", mb),
    Column("test_images", "Test images", text),
    Column("ckpt_sha256", "Checkpoint sha256", text, numeric=False),  # which file the sizes are of
)}

# Fields of a model's metrics that are not table scalars: kept in results.json only.
DETAIL_FIELDS = ("latency_grid", "cpu", "torch")


def check_registered(metrics: dict, where: str) -> None:
    """Every field of a metrics file must be a registered column or a detail field."""
    unknown = sorted(set(metrics) - set(COLUMNS) - set(DETAIL_FIELDS))
    if unknown:
        raise ValueError(f"{where}: metrics {unknown} are not registered in scripts/tables.py COLUMNS "
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


# --- writing: pandoc markdown pipe tables ------------------------------------------------------

@dataclass
class Table:
    """A rendered table: headers, rows of cell strings, alignment, caption."""
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    caption: str = ""

    def markdown(self) -> str:
        """A pipe table with its caption (`Table: ...`). The separator's dash counts give
        pandoc the relative column widths: wide tables wrap their cells and fit the LaTeX
        page instead of running off it."""
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
                  for i, h in enumerate(self.headers)]
        widths = [min(max(w, 6), 40) for w in widths]

        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        sep = "|" + "|".join("-" * (w + 1) + (":" if num else "-") for w, num in zip(widths, self.numeric)) + "|"
        out = [line(self.headers), sep, *(line(r) for r in self.rows)]
        if self.caption:
            out += ["", f"Table: {self.caption}"]
        return "\n".join(out) + "\n"


def model_table(table: str, rows: list[dict]) -> Table:
    """A per-model paper table: one row per model, the registry's columns."""
    cols = table_columns(table)
    return Table([c.header for c in cols], [[cell(c, r) for c in cols] for r in rows],
                 [c.numeric for c in cols], TABLES[table])


# --- reading the rendered tables back (the cross-check and the tests) ---------------------------

_LATEX_UNESCAPE = [(r"\textbackslash{}", "\\"), (r"\textasciitilde{}", "~"), (r"\textasciicircum{}", "^"),
                   (r"\textless{}", "<"), (r"\textgreater{}", ">"), (r"\&", "&"), (r"\%", "%"),
                   (r"\$", "$"), (r"\#", "#"), (r"\_", "_"), (r"\{", "{"), (r"\}", "}")]


def latex_unescape(s: str) -> str:
    for escaped, plain in _LATEX_UNESCAPE:
        s = s.replace(escaped, plain)
    return s


def markdown_tables(md: str) -> list[list[list[str]]]:
    """Every pipe table of a markdown text: a list of rows (header first) of cell strings."""
    tables, current = [], []
    for raw in md.splitlines() + [""]:
        line = raw.strip()
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|").replace("\\#", "#")
                     for c in re.split(r"(?<!\\)\|", line.strip("|"))]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):  # skip the separator
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def latex_tables(tex: str) -> list[list[list[str]]]:
    """Every longtable of pandoc's LaTeX: a list of rows (header first) of cell strings."""
    tables = []
    for body in re.findall(r"\\begin\{longtable\}.*?\\end\{longtable\}", tex, flags=re.S):
        head = body.split(r"\endfirsthead")[0] if r"\endfirsthead" in body else body.split(r"\endhead")[0]
        head = head.split(r"\toprule\noalign{}")[-1].split(r"\midrule\noalign{}")[0]
        main = body.split(r"\endlastfoot")[-1].split(r"\end{longtable}")[0]
        rows = []
        for chunk in [head, *main.split("\\\\\n")]:
            chunk = re.sub(r"\\begin\{minipage\}\[b\]\{\\linewidth\}\\raggedleft|"
                           r"\\begin\{minipage\}\[b\]\{\\linewidth\}\\raggedright|\\end\{minipage\}", "", chunk)
            chunk = chunk.strip().removesuffix("\\\\").strip()
            if chunk:
                rows.append([latex_unescape(" ".join(c.split())) for c in re.split(r"(?<!\\)&", chunk)])
        tables.append(rows)
    return tables


def find_table(tables: list[list[list[str]]], headers: list[str], where: str) -> list[list[str]]:
    """The one table whose header row is `headers`; its body rows."""
    found = [t for t in tables if t and t[0] == headers]
    if len(found) != 1:
        raise LookupError(f"{where}: expected one table with the columns {headers}, found {len(found)}")
    return found[0][1:]


def grid_entry(grid: list[dict], runtime: str, batch_size: int, threads: int) -> dict:
    """The one measurement of a model's latency grid at this runtime, batch size and thread count."""
    (entry,) = [g for g in grid if (g["runtime"], g["latency_batch_size"], g["latency_threads"])
                == (runtime, batch_size, threads)]
    return entry
