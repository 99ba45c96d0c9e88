"""Uncertainty of test accuracies and paired tests between models (no torch, no scipy).

- Wilson score interval of a proportion (Wilson 1927): k correct of n test images.
- Exact McNemar test (two-sided binomial test on the disagreeing images): two models
  judged on the same test images, b = images only the first gets right, c = only the
  second. Under "equally accurate", b ~ Binomial(b + c, 1/2).
- Newcombe's interval of the difference of two such accuracies (paired: the same images;
  Newcombe 1998, method 10, the square-and-add of two Wilson intervals with the models'
  correlation).
- Holm's step-down correction (Holm 1979) of a family of such tests.
"""
from __future__ import annotations

import math
from collections import Counter

Z95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal
ALPHA = 0.05             # significance level of the paper's statements


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of correct / n (both ends in [0, 1])."""
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n and n > 0, got correct={correct}, n={n}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: P(a Binomial(b + c, 1/2) count is as far from
    (b + c) / 2 as observed). Exact integer arithmetic, so it holds for 10,000 images."""
    if only_first < 0 or only_second < 0:
        raise ValueError("disagreement counts must be >= 0")
    n, k = only_first + only_second, min(only_first, only_second)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)


def paired_test(correct_a: str, correct_b: str) -> dict:
    """McNemar on two models' per-image correctness over the same test images, each a
    string of '1' (right) and '0' (wrong) in test-set order."""
    if len(correct_a) != len(correct_b):
        raise ValueError("the two models were judged on different numbers of test images")
    cells = Counter(zip(correct_a, correct_b))  # (first right?, second right?) -> images
    if set(cells) - {("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")}:
        raise ValueError("per-image correctness must be a string of '0' and '1'")
    both, only_a, only_b, neither = cells["1", "1"], cells["1", "0"], cells["0", "1"], cells["0", "0"]
    p = mcnemar_exact(only_a, only_b)
    return {"only_first": only_a, "only_second": only_b, "p_value": p, "significant": p < ALPHA,
            "difference": (only_a - only_b) / len(correct_a),
            "difference_ci": paired_difference_interval(both, only_a, only_b, neither)}


def paired_difference_interval(both: int, only_first: int, only_second: int, neither: int,
                               z: float = Z95) -> tuple[float, float]:
    """95 % interval of accuracy(first) - accuracy(second), judged on the same images: each
    accuracy's Wilson interval, combined (square and add) with the continuity-corrected phi
    correlation of the two models' right answers (Newcombe 1998, method 10)."""
    n = both + only_first + only_second + neither
    p1, p2 = (both + only_first) / n, (both + only_second) / n
    (l1, u1), (l2, u2) = wilson_interval(both + only_first, n, z), wilson_interval(both + only_second, n, z)
    margins = (both + only_first) * (only_second + neither) * (both + only_second) * (only_first + neither)
    cross = both * neither - only_first * only_second
    corrected = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = corrected / math.sqrt(margins) if margins else 0.0
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return max(-1.0, low), min(1.0, high)


def paired_test_of(correct: dict, first: str, second: str) -> dict | None:
    """paired_test of two models named in `correct` (name -> per-image string); None where
    either has no per-image results (a run made before they were kept)."""
    if first not in correct or second not in correct:
        return None
    return paired_test(correct[first], correct[second])


def holm(p_values: list[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down correction: which tests stay significant with the family-wise error
    held at `alpha`, in the order given. The k-th smallest p-value (k from 0) must be below
    alpha / (m - k), and every smaller one below its own bound."""
    m = len(p_values)
    keep = [False] * m
    for rank, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        if p_values[i] >= alpha / (m - rank):
            break
        keep[i] = True
    return keep
