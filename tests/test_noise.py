"""Where the paper calls a difference noise: the retraining bound per family, sampling noise on a
finite image set, and an interval's end that rounds to zero keeping its sign."""
import pytest

from scripts.lib.report.findings import Analysis
from scripts.lib.report.noise import RETRAINING_STDS, clearly_above, retraining_bounds
from scripts.lib.report.phrases import DifferenceMismatch, difference_ci, interval_end


def replica(strategy, std):
    return {"strategy": strategy, "accuracy_std": std, "seeds_run": 3}


def test_each_family_is_held_to_its_own_replicas_spread():
    rows = [replica("l1_unstructured", 0.0122), replica("random_unstructured", 0.005), replica("l2_channels", 0.0338)]
    bounds = retraining_bounds(rows)
    assert bounds == {"channels": pytest.approx(RETRAINING_STDS * 0.0338),
                      "masking": pytest.approx(RETRAINING_STDS * 0.0122)}


def test_a_difference_is_within_retraining_by_its_familys_bound_else_the_widest():
    baseline = {"strategy": "none", "accuracy_seeds": [0.818, 0.820], "seeds_run": 2}
    rows = [baseline, replica("l1_unstructured", 0.0122), replica("l2_channels", 0.0338)]
    a = Analysis.__new__(Analysis)  # only its rows: seed_spread and within_retraining read nothing else
    object.__setattr__(a, "rows", rows)
    masked, channels = {"strategy": "l1_unstructured"}, {"strategy": "l2_channels"}
    assert a.within_retraining(0.018, masked) and not a.within_retraining(0.062, masked)  # bound 2.44 points
    assert a.within_retraining(0.062, channels) and not a.within_retraining(0.07, channels)  # bound 6.76 points
    assert a.within_retraining(-0.018, masked)  # either direction
    assert a.within_retraining(0.06, {"strategy": "dense"})  # no dense replica: the widest spread
    object.__setattr__(a, "rows", [baseline, {"strategy": "l1_unstructured", "seeds_run": 1}])
    assert not a.within_retraining(0.0, masked)  # nothing replicated: nothing measured to say it


def test_clearly_above_needs_the_intervals_apart():
    assert not clearly_above(0.103, 0.100, 5000)  # both at chance
    assert clearly_above(0.50, 0.10, 5000)
    assert not clearly_above(0.5277, 0.52, 5000) and clearly_above(0.5277, 0.48, 5000)
    assert not clearly_above(0.10, 0.50, 5000)


def test_an_interval_end_that_rounds_to_zero_keeps_its_sign():
    assert interval_end(-0.0004) == "-0.04" and interval_end(0.0004) == "+0.04" and interval_end(-0.0006) == "-0.1"
    assert interval_end(0.0) == "+0.0" and interval_end(0.004) == "+0.4" and interval_end(-0.0123) == "-1.2"
    test = {"difference": 0.0017, "difference_ci": (-0.00049, 0.0039)}
    assert difference_ci(test, 0.0017) == "95 % CI -0.05 to +0.4"
    with pytest.raises(DifferenceMismatch):
        difference_ci(test, -0.0017)
