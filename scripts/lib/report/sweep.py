"""What the timing job's sparse sweep shows: where compressed sparse rows (CSR) start to beat the
dense product on the baseline's own layers, magnitude-pruned to each swept sparsity.

The conclusions are computed here from the measured cells, so that the paper's sentences about
them (scripts/lib/report/phrases.py: break_even_phrase) change when the measurement does.
"""
from __future__ import annotations


def break_even(curve: list[dict]) -> float | None:
    """The lowest swept sparsity from which CSR beats dense at every higher level too (a single
    noisy win below that is not a break-even); None if CSR is not faster at the highest level."""
    level = None
    for point in sorted(curve, key=lambda c: c["sparsity"], reverse=True):
        if point["csr_ms"] >= point["dense_ms"]:
            break
        level = point["sparsity"]
    return level


def sweep_findings(sweep: dict | None) -> dict | None:
    """The timing job's sparse sweep (dense layers of the baseline, magnitude-pruned to each level):
    per layer and setting (batch size, threads), the curve over the levels and its break-even
    sparsity; `settings`: per setting, its layers in sweep order. None without a sweep."""
    if not sweep:
        return None
    curves = []
    for layer in sweep["layers"]:
        for b, t in sorted({(c["batch_size"], c["threads"]) for c in sweep["cells"]}):
            curve = sorted((c for c in sweep["cells"] if (c["role"], c["batch_size"], c["threads"])
                            == (layer["role"], b, t)), key=lambda c: c["sparsity"])
            if [c["sparsity"] for c in curve] != sorted(sweep["levels"]):
                raise ValueError(f"the sparse sweep of the {layer['role']} at batch {b}, {t} thread(s) does not "
                                 f"cover its levels {sweep['levels']}")
            curves.append({"layer": layer, "batch_size": b, "threads": t, "curve": curve,
                           "break_even": break_even(curve)})
    settings = sorted({(c["batch_size"], c["threads"]) for c in curves})
    return {"levels": sorted(sweep["levels"]), "curves": curves,
            "settings": [{"batch_size": b, "threads": t,
                          "curves": [c for c in curves if (c["batch_size"], c["threads"]) == (b, t)]}
                         for b, t in settings]}
