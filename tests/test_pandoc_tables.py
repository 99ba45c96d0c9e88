"""The rendered tables read back through pandoc's document model: documents written by
pandoc itself (the paper's own markdown and LaTeX writers) come back cell for cell."""
from __future__ import annotations

import json

import pypandoc
import pytest

from conftest import ROOT
from scripts.lib.report.crosscheck import check_manuscript
from scripts.lib.report.manuscript import PANDOC_FROM, to_markdown
from scripts.lib.report.pandoc_tables import TableReadError, find_table, inline_text, read_tables
from scripts.lib.report.tables import Table

# labels pandoc's writers escape: markdown \| \# \+ \- \1. and LaTeX \% \& \# \_ \textbackslash{} \textbar{};
# as the paper's markdown source spells them, and as a reader sees them
LABELS = {"a | b #1": "a | b #1", "+ distillation": "+ distillation", "- dash": "- dash", "1. item": "1. item",
          "L1 50% & one_shot #1": "L1 50% & one_shot #1", "snake_case_name": "snake_case_name",
          r"back\\slash": r"back\slash", "{braces} ~ ^ < >": "{braces} ~ ^ < >", "$5": "$5"}


def source(rows, numeric=(False, True), headers=("Model", "Accuracy (%)")) -> str:
    """A pipe table in pandoc's markdown, as the paper writes its tables (scripts.lib.report.tables)."""
    return Table(list(headers), [list(r) for r in rows], list(numeric), "A caption, 95 % of it.").markdown()


def to_latex(text: str) -> str:
    """pandoc's LaTeX of the paper's markdown (the paper's writer, without its template)."""
    return pypandoc.convert_text(text, "latex", format=PANDOC_FROM, extra_args=["--wrap=none"])


def test_a_markdown_table_with_escaped_characters_reads_back_as_written():
    md = to_markdown(source([(label, "78.2") for label in LABELS]))
    assert r"a \| b \#1" in md and r"\+ distillation" in md  # the writer escaped them
    (table,) = read_tables(md, "markdown")
    assert table == [["Model", "Accuracy (%)"], *([shown, "78.2"] for shown in LABELS.values())]


def test_a_latex_table_with_escaped_characters_reads_back_as_written():
    tex = to_latex(source([(label, "78.2") for label in LABELS]))
    for escaped in (r"\%", r"\&", r"\#", r"\_", r"\textbackslash", r"\textbar{}", r"\$"):
        assert escaped in tex, escaped
    (table,) = read_tables(tex, "latex")
    assert table == [["Model", "Accuracy (%)"], *([shown, "78.2"] for shown in LABELS.values())]


def test_right_aligned_numbers_and_the_first_body_row_keep_their_first_word():
    """A wide table: pandoc's LaTeX writer gives its right-aligned columns
    >{\\raggedleft\\arraybackslash}p{...} and repeats the head for later pages; its reader,
    left alone, loses the first number of such cells and of the first body row, and takes
    the repeated head for a body row."""
    headers = ("Batch", "Threads", "Dense product, all layers (ms)", "Sparse product, all layers (ms)",
               "95 % interval (%)")
    rows = [("1", "2", "0.30", "0.28", "75.9 to 77.6"), ("64", "1", "4.51", "6.25", "1.0 to 2.0")]
    tex = to_latex(source(rows, (True,) * 5, headers))
    assert r"\raggedleft\arraybackslash" in tex and r"\endfirsthead" in tex
    expected = [list(headers), *map(list, rows)]
    assert read_tables(tex, "latex") == [expected]
    assert read_tables(to_markdown(source(rows, (True,) * 5, headers)), "markdown") == [expected]


def test_cells_are_read_as_plain_text():
    """Formatting goes, its text stays: emphasis, code, math, links, as pandoc's stringify."""
    text = source([("**bold** *it* `code` $x^2$ [link](https://example.org)", "1")])
    for manuscript, fmt in ((to_markdown(text), "markdown"), (to_latex(text), "latex")):
        assert read_tables(manuscript, fmt)[0][1] == ["bold it code x^2 link", "1"], fmt


def test_every_table_is_found_and_one_by_its_headers():
    text = "Some text.\n\n" + source([("A", "1")]) + "\nMore text.\n\n" + source([("B", "2")], headers=("Model", "Size"))
    tables = read_tables(to_markdown(text), "markdown")
    assert [t[0] for t in tables] == [["Model", "Accuracy (%)"], ["Model", "Size"]]
    assert find_table(tables, ["Model", "Size"], "paper.md") == [["B", "2"]]
    with pytest.raises(LookupError, match=r"paper.md: expected one table with the columns \['Model'\], found 0"):
        find_table(tables, ["Model"], "paper.md")
    with pytest.raises(LookupError, match="found 2"):
        find_table(tables + tables[:1], ["Model", "Accuracy (%)"], "paper.md")


def test_what_the_reader_does_not_know_is_named():
    with pytest.raises(ValueError, match="unknown manuscript format 'html'"):
        read_tables("<table></table>", "html")
    with pytest.raises(TableReadError, match="a Blink inline"):
        inline_text([{"t": "Str", "c": "a"}, {"t": "Blink", "c": []}])


def test_the_published_manuscripts_read_alike():
    """paper.md and paper.tex of the published paper: every table, cell for cell, the same text."""
    md = read_tables((ROOT / "paper" / "paper.md").read_text(), "markdown")
    tex = read_tables((ROOT / "paper" / "paper.tex").read_text(), "latex")
    assert len(md) >= 10 and md == tex
    rows = json.loads((ROOT / "paper" / "numbers" / "results.json").read_text())
    # every per-model table against results.json, as the cross-check reads them (pandoc's smart
    # punctuation prints the labels' straight quotes as typographic ones)
    assert check_manuscript("paper.md", md, rows) == []


def test_a_label_beside_numbers_only_may_take_a_wider_column():
    # The dash counts are pandoc's relative column widths: a model's long label beside numbers only
    # takes up to MAX_LABEL_WIDTH (two lines, not four), beside another text column MAX_WIDTH.
    from scripts.lib.report.tables import MAX_LABEL_WIDTH, MAX_WIDTH

    label = "Iterative global L2 (71 % of MACs removed), rewound + distilled"

    def dashes(table: str) -> list[int]:
        sep = table.splitlines()[1]
        return [cell.count("-") for cell in sep.strip("|").split("|")]

    numbers_only = source([(label, "78.2", "1.75")], (False, True, True), ("Model", "Accuracy (%)", "MACs (M)"))
    with_text = source([(label, "why", "78.2")], (False, False, True), ("Model", "Shown as", "Accuracy (%)"))
    assert dashes(numbers_only)[0] == MAX_LABEL_WIDTH + 2 and dashes(with_text)[0] == MAX_WIDTH + 2  # w + 1, then "-"
