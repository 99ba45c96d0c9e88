"""The published config's paper stays within its page budget: rendered with invented numbers
(tests/preview_paper.py) through the real templates, tables and figure code, so that a row, a
table or a sentence added before a run shows its cost in pages before the hours of training."""
from __future__ import annotations

import shutil

import pytest

from conftest import ROOT
from preview_paper import MAIN_BODY_PAGES, preview


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("latexmk") and shutil.which("pdftotext")),
                    reason="needs latexmk and pdftotext (Debian: latexmk, poppler-utils; .ci/run installs them)")
def test_the_published_configs_paper_keeps_its_main_body_within_the_page_budget_and_every_page_within_its_margins(
        tmp_path):
    pages = preview(tmp_path, ROOT / "config.yaml")
    assert list(pages)[:7] == ["1 Introduction", "2 Related work", "3 Method", "4 Results", "5 Discussion",
                               "6 Limitations", "7 Conclusion"]
    assert pages["main body"] <= MAIN_BODY_PAGES, f"main body of {pages['main body']} pages: {pages}"
    # and no page holds more than fits: LaTeX's overfull page runs text into the footer
    assert "Overfull \\vbox" not in (tmp_path / "paper.log").read_text()
