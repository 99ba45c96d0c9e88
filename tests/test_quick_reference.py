"""Rung 3 of the README's ladder compares a reviewer's quick preset with committed reference
numbers (workflow/presets/quick-reference/: the results.json and provenance.json of a cold quick
run). The reference must come from the code that computes the numbers today, or "identical on
the same CPU type and software" stops holding; when one of these stages changes, run the quick
preset from a clean clone and copy those two files there again."""
from __future__ import annotations

from conftest import ROOT
from scripts.lib.files import read_json
from scripts.lib.planning import jobs
from scripts.lib.planning.codehash import code_label

REFERENCE = ROOT / "workflow" / "presets" / "quick-reference"
# The stages whose code decides a number of results.json (the figures' and the paper's do not).
NUMBER_STAGES = ("scripts.data", "scripts.finetune", "scripts.prune", "scripts.evaluate", "scripts.results",
                 "scripts.timing")


def test_the_quick_reference_comes_from_this_code():
    recorded = read_json(REFERENCE / "provenance.json")["code"]
    stale = [m for m in NUMBER_STAGES if recorded[m] != code_label(m)]
    assert not stale, (f"{REFERENCE} was computed by other code of {stale}: run "
                       "`snakemake --cores 2 --configfile workflow/presets/quick.yaml` from a clean clone and copy "
                       "results/quick/results.json and provenance.json there")


def test_the_quick_reference_holds_every_model_of_the_quick_preset(quick_config):
    tabled = [r["name"] for r in jobs.results_job(quick_config).rows if "replica_of" not in r]
    assert [r["name"] for r in read_json(REFERENCE / "results.json")] == tabled
    assert not read_json(REFERENCE / "provenance.json")["dirty"]
