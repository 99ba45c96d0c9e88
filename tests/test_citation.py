"""How to cite: CITATION.cff is valid CFF 1.2 metadata and agrees with the paper and the README."""
from __future__ import annotations

import re

import yaml

from conftest import ROOT


def test_citation_file_names_the_paper_and_the_license():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors", "version", "date-released", "license"} <= set(cff)
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    template = (ROOT / "paper/templates/paper.md.j2").read_text()
    (title,) = re.findall(r"^# (.+)$", template, re.MULTILINE)
    assert cff["title"] == title  # the paper's own title
    assert cff["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    readme = (ROOT / "README.md").read_text()
    assert f"version {cff['version']}" in readme and f"*{title}*" in " ".join(readme.split())
