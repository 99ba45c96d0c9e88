"""The config schema and the semantic checks reject bad input, naming the key."""
import copy
import re

import pytest

from scripts.lib.planning.config import ConfigError, config_hash, validate_config


def test_shipped_configs_are_valid(base_config):
    """config.yaml and every preset merged over it, as snakemake --configfile merges them:
    valid, returned unchanged, each preset naming itself (the paper's banner reads it)."""
    import yaml
    from conftest import ROOT, merge

    presets = sorted((ROOT / "workflow" / "presets").glob("*.yaml"))
    assert {p.stem for p in presets} >= {"quick", "imagenet"}
    configs = {"paper": base_config} | {p.stem: merge(base_config, yaml.safe_load(p.read_text())) for p in presets}
    for name, config in configs.items():
        before = copy.deepcopy(config)
        assert validate_config(config) is config and config == before, name
        assert config["preset"] == name


def _bad(config, mutate):
    cfg = copy.deepcopy(config)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    return str(err.value)


@pytest.mark.parametrize("mutate, key, detail", [
    (lambda c: c.update(learning_rate=0.1), "<top level>", "'learning_rate' was unexpected"),
    (lambda c: c["train"].update(epochs="ten"), "train.epochs", "is not of type 'integer'"),
    (lambda c: c["train"].update(lr=0), "train.lr", "less than or equal to the minimum"),
    (lambda c: c["experiments"][0].update(sparsity=1.0), "experiments[0].sparsity", "greater than or equal to the maximum"),
    (lambda c: c["experiments"][0].update(sparsity=-0.1), "experiments[0].sparsity", "less than the minimum"),
    (lambda c: c["experiments"][1].update(strategy="l3_magic"), "experiments[1].strategy", "is not one of"),
    (lambda c: c["experiments"][1].update(schedule="cyclic"), "experiments[1].schedule", "is not one of"),
    (lambda c: c["experiments"][1].update(steps=0), "experiments[1].steps", "less than the minimum"),
    (lambda c: c["data"].update(source="imagenet"), "data.source", "is not one of"),
    (lambda c: c["data"].update(val_fraction=1.0), "data.val_fraction", "greater than or equal to the maximum"),
    (lambda c: c["prune"].update(layer_types=["BatchNorm2d"]), "prune.layer_types[0]", "is not one of"),
    (lambda c: c["experiments"][0].update(name="a b"), "experiments[0].name", "does not match"),
    (lambda c: c["experiments"][2].update(name="oneshot_l1_50"), "experiments[2].name", "used twice"),
    (lambda c: c["experiments"][0].update(name="baseline"), "experiments[0].name", "reserved"),
    (lambda c: c["experiments"][0].update(name="Baseline"), "experiments[0].name", "'Baseline' is reserved"),
    (lambda c: c["experiments"][2].update(name="ONESHOT_L1_50"), "experiments[2].name",
     "'ONESHOT_L1_50' and experiments[0].name 'oneshot_l1_50' differ only in letter case"),
    (lambda c: c["experiments"][0].update(steps=3), "experiments[0].steps", "oneshot prunes in one step"),
    (lambda c: c["data"].update(path=None), "data.path", "needs a path"),
    (lambda c: c["prune"].update(exclude=["features.99"]), "prune.exclude", "['features.99'] are not modules"),
    (lambda c: c["prune"].update(round_to=0), "prune.round_to", "less than the minimum"),
    (lambda c: c["experiments"][1].update(exclude=["stem"]), "experiments[1].exclude", "['stem'] are not modules"),
    (lambda c: c["experiments"][1].update(scope="network"), "experiments[1].scope", "is not one of"),
    (lambda c: c.update(ablation=["iterative_l1_90", "nope"]), "ablation[1]", "'nope' is not an experiment"),
    (lambda c: c["experiments"][0].update(name="L1 50% & co"), "experiments[0].name", "does not match"),
    (lambda c: c.update(seeds=[1, 2]), "seeds", "must include seed (0)"),
    (lambda c: c.update(seeds=[0, 0]), "seeds", "has non-unique elements"),
    (lambda c: c.update(seeds=[0, 1], seeds_experiments=["nope"]), "seeds_experiments[0]", "'nope' is not an experiment"),
    (lambda c: c.update(seeds=[0, 1], seeds_experiments=["oneshot_l1_50"], experiments=c["experiments"] + [dict(c["experiments"][0], name="oneshot_l1_50_seed1")]),
     "seeds", "replica name 'oneshot_l1_50_seed1' is taken"),
    (lambda c: c.update(seeds=[0, 1], baseline_seeds=[0, 2]), "baseline_seeds", "2 is not in seeds [0, 1]"),
    (lambda c: c.update(seeds=[0, 1], baseline_seeds=[0, 1], experiments=c["experiments"] + [dict(c["experiments"][0], name="baseline_seed1")]),
     "seeds", "replica name 'baseline_seed1' is taken"),
    (lambda c: c.pop("jobs"), "<top level>", "'jobs' is a required property"),
])
def test_rejections_name_the_key(base_config, mutate, key, detail):
    message = _bad(base_config, mutate)
    assert f"config key {key}:" in message
    assert re.search(re.escape(detail), message), message


def test_an_empty_mapping_over_a_list_is_an_error_naming_the_key(base_config):
    from scripts.lib.planning.config import check_override
    # Snakemake's merge leaves config.yaml's list in place under an empty mapping.
    with pytest.raises(ConfigError, match=re.escape("config key experiments: an empty mapping ({}) in my.yaml "
                                                    "leaves the value of config.yaml in place (list)")):
        check_override(base_config, {"experiments": {}}, "my.yaml")
    with pytest.raises(ConfigError, match=re.escape("config key prune.exclude: an empty mapping")):
        check_override(base_config, {"prune": {"exclude": {}}}, "my.yaml")
    check_override(base_config, {"prune": {}, "experiments": [], "evaluate": {"timing": {}}}, "my.yaml")  # no-ops


def test_config_hash_ignores_key_order(base_config):
    reordered = dict(reversed(list(base_config.items())))
    assert config_hash(reordered) == config_hash(base_config)
    changed = copy.deepcopy(base_config)
    changed["seed"] = 1
    assert config_hash(changed) != config_hash(base_config)


def test_an_experiment_prunes_with_its_own_scope_and_dense_layers(base_config):
    from scripts.lib.planning.config import prunable_settings

    cfg = copy.deepcopy(base_config)
    cfg["prune"].update(exclude=["classifier.1"], scope="layer")
    plain = prunable_settings(cfg, {"name": "a"})
    assert plain == {k: cfg["prune"][k] for k in ("layer_types", "exclude", "scope", "round_to")}
    own = prunable_settings(cfg, {"name": "b", "scope": "global", "exclude": ["features.0.0", "classifier.1"]})
    assert own["scope"] == "global" and own["exclude"] == ["classifier.1", "features.0.0"]
    assert cfg["prune"]["exclude"] == ["classifier.1"]  # the shared setting is untouched


def test_the_training_bill_counts_every_epoch(base_config):
    from scripts.lib.planning.config import training_bill

    cfg = copy.deepcopy(base_config)
    cfg["train"]["epochs"] = 7
    cfg["prune"]["finetune"]["epochs"] = 2
    cfg["sweeps"] = [{"strategies": ["l1_unstructured"], "sparsities": [0.3], "schedule": "oneshot"}]
    cfg["small_dense"] = []  # config.yaml's names one of its own rows
    cfg["experiments"] = [
        {"name": "a", "strategy": "l1_unstructured", "schedule": "oneshot", "sparsity": 0.5},
        {"name": "b", "strategy": "l1_unstructured", "schedule": "iterative", "sparsity": 0.9, "steps": 3},
        {"name": "c", "strategy": "l1_unstructured", "schedule": "gradual", "sparsity": 0.9, "steps": 50,
         "finetune": {"epochs": 5}, "distill": {"weight": 0.5, "temperature": 4}}]
    cfg["seeds"], cfg["baseline_seeds"], cfg["seeds_experiments"] = [0], [0], []
    assert training_bill(cfg) == {"baseline": 7, "baseline_runs": 1, "finetune": 2 + 6 + 5 + 2, "distilled": 5,
                                  "small_dense": 0, "total": 22}
    # A second baseline seed trains the baseline again; its replica of "a" fine-tunes once more.
    cfg["seeds"], cfg["baseline_seeds"], cfg["seeds_experiments"] = [0, 1], [0, 1], ["a"]
    assert training_bill(cfg) == {"baseline": 14, "baseline_runs": 2, "finetune": 2 + 6 + 5 + 2 + 2, "distilled": 5,
                                  "small_dense": 0, "total": 31}


def test_the_schema_states_the_experiment_defaults_the_code_applies():
    """An experiment row's optional keys: their defaults live in the Experiment dataclass (from_dict
    leaves absent keys to it); the schema documents them and must say the same."""
    import dataclasses

    from scripts.lib.planning.config import load_schema
    from scripts.lib.pruning.experiment import FIELD_TYPES, Experiment

    stated = load_schema()["properties"]["experiments"]["items"]["properties"]
    applied = {f.name: f.default for f in dataclasses.fields(Experiment)}
    documented = {k: stated[k]["default"] for k in FIELD_TYPES if "default" in stated.get(k, {})}
    assert "pruning_share" in documented
    assert documented == {k: applied[k] for k in documented}
    row = {"strategy": "l1_unstructured", "schedule": "gradual", "sparsity": 0.9, "steps": 10}
    assert Experiment.from_dict(row) == Experiment("l1_unstructured", "gradual", 0.9, 10)
    assert Experiment.from_dict({**row, "pruning_share": 0.5}).pruning_share == 0.5
