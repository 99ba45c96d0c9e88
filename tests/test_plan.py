"""The workflow as Snakemake plans it: lint, config errors before any job, dry runs."""
from __future__ import annotations

import pytest
import yaml

from conftest import ROOT, snakemake


def test_lint_is_clean(tmp_path):
    run = snakemake(tmp_path, "--lint")
    assert run.returncode == 0 and "Lints for" not in run.stdout + run.stderr, run.stdout + run.stderr


@pytest.mark.parametrize("override, message", [
    ({"experiments": {}}, "config key experiments: an empty mapping ({}) in"),
    ({"experiments": [{"name": "oneshot_l1_50", "strategy": "l1_unstructured", "schedule": "oneshot", "sparsity": 0.5},
                      {"name": "ONESHOT_L1_50", "strategy": "l1_unstructured", "schedule": "oneshot", "sparsity": 0.5}]},
     "config key experiments[1].name: 'ONESHOT_L1_50' and experiments[0].name 'oneshot_l1_50' differ only in letter case"),
])
def test_configfile_errors_stop_the_plan(tmp_path, override, message):
    configfile = tmp_path / "my.yaml"
    configfile.write_text(yaml.safe_dump({**override, "results_dir": str(tmp_path / "results")}))
    run = snakemake(tmp_path, "--configfile", str(configfile), "--dry-run")
    assert run.returncode != 0
    assert message in run.stdout + run.stderr
