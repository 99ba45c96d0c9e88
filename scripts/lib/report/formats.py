"""How the paper prints a number: each table cell's format, one function per kind.

    pct(0.9321) == "93.2"; points(0.012) == "+1.2"; mb(9_180_000) == "9.18"

The column registry (scripts/lib/report/columns.py) names one of these per column;
the paper's prose uses the same functions, so a number reads alike wherever it is.
No torch here.
"""
from __future__ import annotations


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


def interval_cell(bounds) -> str:
    """The same pair in a table cell: '92.7–93.7', one unbreakable word, so that the column is
    made wide enough for it instead of wrapping every row's interval onto two lines."""
    low, high = bounds
    return f"{pct(low)}\u2013{pct(high)}"


def count(n: int) -> str:
    """A whole number with thousands separators: 45000 -> '45,000'."""
    return f"{n:,}"


def text(value) -> str:
    return str(value)


# The templates' number filters (a table cell's own formats are the column registry's).
FORMATS = {"spread": spread, "pct": pct, "points": points, "mb": mb, "ms": ms, "ratio": ratio, "mega": mega,
           "interval": interval, "count": count}
