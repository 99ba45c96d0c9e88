"""The registries (strategies, schedules, figures, columns) are the one definition that
the schema, the code, the workflow and the paper agree on."""
from __future__ import annotations

import pytest
import yaml

from conftest import ROOT
from scripts.lib.planning.config import load_schema
from scripts.lib.planning.registry import CHANNELS, DENSE, FIGURES, MASKING, SCHEDULES, STRATEGIES, strategies_of
from scripts.lib.report.columns import COLUMNS, DETAIL_FIELDS, TABLES, check_registered, table_columns
from scripts.lib.report.formats import count, mb, mega, ms, pct, points, ratio


def test_the_schema_takes_strategies_and_schedules_from_the_registries():
    defs = load_schema()["$defs"]
    assert defs["strategy"]["enum"] == list(STRATEGIES) and defs["schedule"]["enum"] == list(SCHEDULES)
    experiment = load_schema()["properties"]["experiments"]["items"]["properties"]
    assert experiment["strategy"] == {"$ref": "#/$defs/strategy"} and experiment["schedule"] == {"$ref": "#/$defs/schedule"}


def test_every_registered_strategy_has_code_and_no_code_is_unregistered():
    from scripts.lib.pruning.channels import IMPORTANCES
    from scripts.lib.pruning.masks import MASKING_METHODS
    from scripts.lib.pruning.pruners import DENSE_METHODS
    from scripts.lib.pruning.schedules import SCHEDULES as CODE_SCHEDULES

    assert set(strategies_of(MASKING)) == set(MASKING_METHODS)
    assert set(strategies_of(CHANNELS)) == set(IMPORTANCES)
    assert set(strategies_of(DENSE)) == set(DENSE_METHODS)
    assert set(STRATEGIES) == set(strategies_of(MASKING) + strategies_of(CHANNELS) + strategies_of(DENSE))
    assert set(CODE_SCHEDULES) == set(SCHEDULES)


def test_every_random_control_exists_in_the_same_family():
    for s in STRATEGIES.values():
        if s.control:
            assert STRATEGIES[s.control].family == s.family, s.name


def test_every_registered_figure_has_its_function():
    from scripts.lib.report.figures import plot_function

    for name in FIGURES:
        assert callable(plot_function(name))
    with pytest.raises(LookupError, match="plot_nothing"):
        plot_function("nothing")


def test_every_seed_row_is_an_experiment_with_the_seed_settings(base_config):
    seed = yaml.safe_load((ROOT / "paper" / "seed_reference.yaml").read_text())
    experiments = {e["name"]: e for e in base_config["experiments"]}
    assert set(seed["accuracy"]) - {"baseline"} == set(seed["experiments"])
    for name, settings in seed["experiments"].items():
        assert name in experiments, f"the seed's row {name} is not in config.yaml"
        assert {k: experiments[name].get(k, 1) for k in settings} == settings, name


def test_number_formats():
    assert (pct(0.93214), points(0.0123), points(-0.004), points(-0.0001), mb(8_531_234), ms(0.2345), ms(12.34),
            ratio(3.7634), mega(2_236_682)) == ("93.2", "+1.2", "-0.4", "+0.0", "8.53", "0.23", "12.3", "3.76", "2.24")
    assert (count(10_000), count(2_236_682), count(500)) == ("10,000", "2,236,682", "500")


def test_every_paper_table_has_columns_in_registry_order():
    order = list(COLUMNS)
    for table in TABLES:
        cols = table_columns(table)
        assert cols[0].key == "label" and len(cols) > 2
        assert [order.index(c.key) for c in cols] == sorted(order.index(c.key) for c in cols)
    with pytest.raises(KeyError, match="unknown table"):
        table_columns("nope")


def test_an_unregistered_metric_is_an_error_not_a_dropped_column():
    check_registered({"accuracy": 0.9, "latency_grid": []}, "m.json")
    with pytest.raises(ValueError, match=r"m.json: metrics \['top5'\] are not registered"):
        check_registered({"accuracy": 0.9, "top5": 0.99}, "m.json")
    assert not set(DETAIL_FIELDS) & set(COLUMNS)
