"""Labels that carry measured values: a config label may name a measurement in angle brackets, which the
results stage fills in, so that no label states by hand what a model removed.

    label: "One-shot L2, 50% of channels (<macs_removed> % of MACs) removed"
    -> "One-shot L2, 50% of channels (73 % of MACs) removed"

A placeholder sits inside a bracketed part of the label (the schema's `label` pattern says so):
the figures drawn before the results exist (first-layer kernels, per-step evolution) show the
label without that part. No torch: the workflow plans with it.
"""
from __future__ import annotations

import re

# placeholder -> what it is, in the results row's terms (each a share of the baseline, in %)
LABEL_FIELDS = {
    "macs_removed": "share of the baseline's MACs removed (1 - macs_ratio)",
    "weights_removed": "share of the baseline's prunable weights zeroed or removed (removed_fraction)",
    "params_removed": "share of the baseline's parameters removed (1 - params_ratio)",
    "channels_removed": "share of the baseline's convolution channels removed (1 - channels_ratio)",
}
# Angle brackets, not braces: Snakemake formats every params string of a rule, and a label travels
# in the jobs' JSON there, so "{macs_removed}" would be taken for a wildcard.
PLACEHOLDER = re.compile(r"<([^<>]*)>")
BRACKETED_PLACEHOLDER = re.compile(r"\s*\([^()]*<[^<>]*>[^()]*\)")


def label_values(row: dict) -> dict[str, str]:
    """Each placeholder's value for one results row (relative_to_baseline applied): a whole percent."""
    shares = {"macs_removed": 1 - row["macs_ratio"], "weights_removed": row["removed_fraction"],
              "params_removed": 1 - row["params_ratio"], "channels_removed": 1 - row["channels_ratio"]}
    return {k: f"{v * 100:.0f}" for k, v in shares.items()}


def fill_label(label: str, row: dict) -> str:
    """The label with its placeholders replaced by the row's measured values; an unknown
    placeholder is an error naming it."""
    unknown = sorted(set(PLACEHOLDER.findall(label)) - set(LABEL_FIELDS))
    if unknown:
        raise ValueError(f"label {label!r} of {row.get('name')!r}: unknown placeholder(s) {unknown}; "
                         f"known: {sorted(LABEL_FIELDS)}")
    values = label_values(row)
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], label)


def label_before_results(label: str) -> str:
    """The label where no measurement exists yet: without its bracketed parts that hold a placeholder."""
    return BRACKETED_PLACEHOLDER.sub("", label)
