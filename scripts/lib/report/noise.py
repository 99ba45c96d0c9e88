"""What noise leaves unsaid: the bounds within which the paper calls a difference noise, of the
training (seed-to-seed spread of replicated rows) and of a finite image set (Wilson intervals)."""
from __future__ import annotations

from scripts.lib.report.families import family
from scripts.lib.report.stats import wilson_interval

# A difference of two single runs within this many of the largest seed-to-seed standard deviations
# is within what retraining alone moves. Two runs' difference varies by sqrt(2) std, so a 95 % bound
# would be 2.77 std: 2 flags fewer differences as noise than that, never more.
RETRAINING_STDS = 2.0


def retraining_bounds(replicated: list[dict]) -> dict[str, float]:
    """Per family (masking, channel removal), RETRAINING_STDS of its replicated rows' largest
    seed-to-seed standard deviation: the bound a difference between its models is held to."""
    return {f: RETRAINING_STDS * max(r["accuracy_std"] for r in replicated if family(r) == f)
            for f in sorted({family(r) for r in replicated})}


def clearly_above(better: float, worse: float, n: int) -> bool:
    """Whether one accuracy on n images is above another beyond sampling noise: their 95 % Wilson
    intervals do not overlap."""
    return wilson_interval(round(better * n), n)[0] > wilson_interval(round(worse * n), n)[1]
