"""The compact sweeps expand into exactly the rows they name; curves group them back."""
from __future__ import annotations

from fake_results import results_rows
from scripts.lib.planning.matrix import all_experiments, curves, expand_sweep


def test_a_sweep_expands_to_exactly_its_rows_and_reuses_named_ones(tmp_path):
    sweep = {"strategies": ["l1_unstructured", "random_unstructured"], "sparsities": [0.5, 0.9],
             "schedule": "oneshot"}
    rows = expand_sweep(sweep)
    assert [(r["name"], r["label"]) for r in rows] == [
        ("sweep_l1_unstructured_oneshot_50", "One-shot L1 magnitude 50%"),
        ("sweep_l1_unstructured_oneshot_90", "One-shot L1 magnitude 90%"),
        ("sweep_random_unstructured_oneshot_50", "One-shot random 50%"),
        ("sweep_random_unstructured_oneshot_90", "One-shot random 90%")]
    named = {"name": "oneshot_l1_90", "label": "One-shot L1 90%", "strategy": "l1_unstructured",
             "schedule": "oneshot", "sparsity": 0.9}
    matrix = all_experiments({"experiments": [named], "sweeps": [sweep]})
    assert [r["name"] for r in matrix] == ["oneshot_l1_90", "sweep_l1_unstructured_oneshot_50",
                                           "sweep_random_unstructured_oneshot_50",
                                           "sweep_random_unstructured_oneshot_90"]
    assert all_experiments({"experiments": [named]}) == [named]


def test_curves_join_rows_that_differ_only_in_their_target(tmp_path):
    rows = results_rows(tmp_path)
    (l1,) = curves(rows)  # one-shot L1 at 50 and 90 %; iterative L1 has other settings
    assert [r["name"] for r in l1] == ["os_l1_50", "os_l1_90"]


def test_sweep_errors_name_the_key(base_config):
    import copy

    import pytest

    from scripts.lib.planning.config import ConfigError, validate_config

    config = copy.deepcopy(base_config)
    config["sweeps"] = [{"strategies": ["l2_channels"], "sparsities": [0.5], "schedule": "gradual", "steps": 4}]
    with pytest.raises(ConfigError, match=r"config key sweeps\[0\].schedule: gradual"):
        validate_config(config)
    config["sweeps"] = [{"strategies": ["l1_unstructured"], "sparsities": [0.5], "schedule": "iterative", "steps": 2},
                        {"strategies": ["l1_unstructured"], "sparsities": [0.5], "schedule": "iterative", "steps": 3}]
    with pytest.raises(ConfigError, match="takes the name of another experiment"):
        validate_config(config)
    config["sweeps"] = [{"strategies": ["l1_unstructured"], "sparsities": [1.5], "schedule": "oneshot"}]
    with pytest.raises(ConfigError, match=r"config key sweeps\[0\].sparsities\[0\]"):
        validate_config(config)


def test_a_baseline_seed_trains_its_own_baseline_and_its_replicas_prune_it(base_config):
    from scripts.lib.planning.config import replicas_by_name
    from scripts.lib.planning.jobs import train_job
    from scripts.lib.planning.matrix import baseline_of, baseline_replicas

    config = {**base_config, "seed": 0, "seeds": [0, 1, 2], "baseline_seeds": [1, 0],
              "seeds_experiments": ["oneshot_l1_90"]}
    assert baseline_replicas(config) == [{"name": "baseline_seed1", "seed": 1, "replica_of": "baseline"}]
    runs = replicas_by_name(config)
    assert baseline_of(config, runs["oneshot_l1_90_seed1"]) == "baseline_seed1"  # its own seed's baseline
    assert baseline_of(config, runs["oneshot_l1_90_seed2"]) == "baseline"        # seed 2 has none
    assert baseline_of(config, {"name": "oneshot_l1_90", "seed": 1}) == "baseline"  # not a replica
    job = train_job(config, 1)
    assert (job.name, job.seed) == ("baseline_seed1", 1) and job.hyp == config["train"]
    assert (train_job(config).name, train_job(config).seed) == ("baseline", 0)
    assert baseline_replicas({**config, "baseline_seeds": [0]}) == []
    assert baseline_replicas({k: v for k, v in config.items() if k != "baseline_seeds"}) == []
