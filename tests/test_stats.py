"""Intervals and paired tests against values computed by hand or published."""
import pytest

from scripts.lib.report.stats import holm, mcnemar_exact, paired_difference_interval, paired_test, wilson_interval


def test_wilson_interval_matches_known_values():
    # 81 of 263 (Wilson 1927 style example; R prop.test without continuity: 0.2553, 0.3662)
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    low, high = wilson_interval(9320, 10000)  # a 93.2 % model on the CIFAR-10 test set: about +-0.5 points
    assert 0.926 < low < 0.932 < high < 0.938
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_mcnemar_exact_matches_the_binomial_test():
    # b=1, c=9: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11/1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(4000, 4300) < 0.01  # large counts stay exact and finite


def test_paired_test_counts_the_disagreements():
    a, b = "111100", "100010"  # right on 4 and on 2 of 6 images
    t = paired_test(a, b)
    assert (t["only_first"], t["only_second"]) == (3, 1)
    assert t["p_value"] == pytest.approx(mcnemar_exact(3, 1)) and not t["significant"]
    assert paired_test("1" * 30 + "0" * 10, "0" * 40)["significant"]
    assert t["difference"] == pytest.approx((3 - 1) / 6)
    with pytest.raises(ValueError):
        paired_test(a, b[:-1])
    with pytest.raises(ValueError, match="'0' and '1'"):
        paired_test("1101", "1x01")


def test_the_same_accuracy_change_is_significant_or_not_by_its_disagreements():
    """+0.6 points on 10,000 images (the published batch-norm recalibration against its plain
    row): a paired test supports it when the 60 images are all gains, not when they are the
    balance of 600 gains and 540 losses. The paper's sentence follows the test, not the delta."""
    plain = "1" * 3480 + "0" * 6520
    gains_only = "1" * 3540 + "0" * 6460
    mixed = "0" * 540 + "1" * 2940 + "1" * 600 + "0" * 5920  # 540 of plain's right images lost, 600 gained
    assert gains_only.count("1") - plain.count("1") == mixed.count("1") - plain.count("1") == 60
    assert paired_test(gains_only, plain)["significant"]
    t = paired_test(mixed, plain)
    assert (t["only_first"], t["only_second"]) == (600, 540) and not t["significant"]


def test_paired_test_of_names_needs_both_models_per_image_results():
    from scripts.lib.report.stats import paired_test_of

    correct = {"a": "1100", "b": "1010"}
    assert paired_test_of(correct, "a", "b") == paired_test("1100", "1010")
    assert paired_test_of(correct, "a", "missing") is None and paired_test_of(correct, "missing", "b") is None


def test_holm_keeps_a_test_only_below_its_step_down_bound():
    # sorted: 0.005 < 0.05/4 and 0.01 < 0.05/3 kept; 0.03 >= 0.05/2 stops the rest (0.04 too)
    assert holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    assert holm([0.001, 0.011, 0.02, 0.04]) == [True] * 4  # each below its bound
    assert holm([0.03, 0.03]) == [False, False]  # 0.03 >= 0.025: uncorrected both would pass
    assert holm([]) == []


def test_the_paired_difference_interval_is_newcombes():
    import math

    # many images: close to the Wald interval of paired proportions, (b - c) / n +- z sd
    b, c, n = 600, 400, 10_000
    wald = math.sqrt((b + c) - (b - c) ** 2 / n) / n * 1.959963984540054
    low, high = paired_difference_interval(8_000, b, c, 1_000)
    assert abs(low - (0.02 - wald)) < 1e-4 and abs(high - (0.02 + wald)) < 1e-4
    # the models swapped: the interval negated; more disagreement, a wider interval
    assert paired_difference_interval(8_000, c, b, 1_000) == (-high, -low)
    wide = paired_difference_interval(7_000, b + 500, c + 500, 1_000)
    assert wide[1] - wide[0] > high - low
    # models that agree on every image: an interval around 0 narrower than a point
    same = paired_difference_interval(9_000, 0, 0, 1_000)
    assert same[0] < 0 < same[1] and same[1] - same[0] < 0.001
    # few images: asymmetric about the difference, and within [-1, 1] where Wald's is not
    low, high = paired_difference_interval(12, 9, 2, 4)
    assert -1 <= low < 7 / 27 < high <= 1 and high - 7 / 27 != 7 / 27 - low
