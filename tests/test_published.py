"""The committed paper (paper/) follows its committed numbers (paper/numbers): a rebuild changes
no byte of paper.md or paper.tex, the README's published-results block is the one those
numbers give, and the folder stays small and free of checkpoints."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from scripts.lib.report import publish
from scripts.publish import main

PAPER = ROOT / "paper"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (PAPER / publish.NUMBERS / publish.MANIFEST).is_file(),
                                 reason="no published run committed yet (paper/numbers/render.json)")]


def test_the_committed_paper_rebuilds_byte_for_byte(capsys):
    assert main(["check", str(PAPER)]) == 0, capsys.readouterr().out[-3000:]


def test_every_table_number_of_the_committed_paper_recounts_from_its_predictions(capsys):
    """Rung 2 on the committed paper: each row against its metrics file and per-image results,
    the seed replicas' too, then every cell of both manuscripts' per-model tables."""
    assert main(["recount", str(PAPER)]) == 0, capsys.readouterr().out[-3000:]


def test_an_accuracy_that_contradicts_its_per_image_results_is_reported_not_raised(tmp_path, capsys):
    """An edited accuracy no longer matches the paired test counted from the per-image results:
    rung 1 says so and fails, it does not crash."""
    import json
    import shutil

    paper = tmp_path / "paper"
    shutil.copytree(PAPER, paper)
    results = publish.published_spec(paper).numbers.results
    rows = json.loads(Path(results).read_text())
    (row,) = [r for r in rows if r["name"] == "iterative_l1_90"]  # compared with one-shot in Results
    row["accuracy"] += 0.01
    Path(results).write_text(json.dumps(rows))
    assert main(["check", str(paper)]) == 1
    assert "the numbers do not render: the paired test's difference" in capsys.readouterr().out


def test_the_committed_paper_reads_as_text_with_no_template_artefacts():
    """Sentences a template joined without a space (a block tag ate the line break), a word left
    in parentheses for a plural, a raw template tag: none in the paper a reader opens."""
    import re

    md = (PAPER / "paper.md").read_text()
    assert not re.findall(r".{30}[a-z%)]\.[A-Z].{10}", md)
    assert not re.search(r"\w\((s|es)\)", md) and "{{" not in md and "{%" not in md


def test_the_readme_shows_the_committed_numbers():
    assert main(["readme", str(PAPER), str(ROOT / "README.md"), "--check"]) == 0


def test_the_published_run_passed_its_crosscheck_and_was_the_published_config():
    from scripts.lib.files import read_json

    assert (PAPER / publish.NUMBERS / "crosscheck.txt").read_text().endswith("all numbers match\n")
    spec = publish.published_spec(PAPER)
    assert spec.settings["preset"] == "paper"
    assert not read_json(spec.numbers.provenance)["dirty"]


def test_the_committed_folder_is_small_and_holds_no_model():
    files = [f for f in PAPER.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 10_000_000
    assert not [f for f in files if f.suffix in (".pt", ".onnx", ".gz", ".tar")]
