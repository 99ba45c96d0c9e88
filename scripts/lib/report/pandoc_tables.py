"""The tables of a rendered manuscript, read back through pandoc's document model.

pandoc parses the manuscript (paper.md or paper.tex) into its JSON document model; every
`Table` node, wherever it sits, becomes a list of rows (its head rows first) of cells as
plain text: the text a reader sees, with the writer's escapes (`\\|`, `\\#`, `\\%`,
`\\textbackslash{}`, ...) undone by pandoc's own reader rather than by patterns of ours.

Each manuscript is read in the format pandoc wrote it in (READERS): paper.md is GitHub
markdown, so pandoc's gfm reader is its exact inverse (the pandoc-markdown reader would take
`@name` for a citation or `~x~` for a subscript, which the gfm writer does not escape).
Gaps of pandoc's LaTeX reader (pandoc 3.9) are closed here, and only these:

- it drops every command it does not know, and after some (`\\raggedleft`,
  `\\arraybackslash`, longtable's `\\endhead` and `\\endlastfoot`) also a number that follows:
  the first number of each cell of a right-aligned column (the writer gives such a column
  `>{\\raggedleft\\arraybackslash}p{...}`, which the reader prepends to every cell) and of
  a table's first body row. It drops `\\textbar{}`, the writer's `|`, too. The reader
  reads macro definitions, so the manuscript is handed to it after LATEX_PRELUDE: those
  commands defined as nothing (the reader finds a longtable's head by its rules), `\\textbar`
  as `$|$`. A command still unknown can only make a cell lose text, and so fail a
  comparison, never pass one it should not.
- the writer repeats a longtable's head (`\\endfirsthead`, then `\\endhead` for the
  following pages) and the reader takes the copy for the first body row: a body that
  starts with the head's rows has them dropped.

No torch here: the cross-check and the tests import it cheaply.
"""
from __future__ import annotations

import json
import re

import pypandoc

# manuscript format -> pandoc reader
READERS = {"markdown": "gfm", "latex": "latex"}
# pandoc's JSON with the Table of pandoc-types 1.21 and later (attr, caption, colspecs, head, bodies, foot)
API_VERSION = (1, 21)
# Definitions the LaTeX reader reads before the manuscript (module docstring)
LATEX_PRELUDE = "".join(rf"\def\{name}{{}}" for name in (
    "raggedleft", "arraybackslash", "endfirsthead", "endhead", "endfoot", "endlastfoot")) + r"\def\textbar{$|$}" + "\n"
QUOTES = {"DoubleQuote": ("\u201c", "\u201d"), "SingleQuote": ("\u2018", "\u2019")}

Rows = list[list[str]]


class TableReadError(ValueError):
    """pandoc's document model holds something this reader does not know."""


def document(text: str, fmt: str) -> dict:
    """The manuscript as pandoc's JSON document model."""
    if fmt not in READERS:
        raise ValueError(f"unknown manuscript format {fmt!r}; formats: {sorted(READERS)}")
    if fmt == "latex":
        text = LATEX_PRELUDE + text
    doc = json.loads(pypandoc.convert_text(text, "json", format=READERS[fmt]))
    version = tuple(doc.get("pandoc-api-version", ()))[:2]
    if version < API_VERSION:
        raise TableReadError(f"pandoc's JSON has API version {version}; tables are read from "
                             f"{'.'.join(map(str, API_VERSION))} or later (pandoc 2.10+)")
    return doc


def inline_text(inlines: list) -> str:
    """Inlines as plain text (as pandoc.utils.stringify: formatting dropped, notes left out)."""
    out = []
    for node in inlines:
        kind, c = node["t"], node.get("c")
        if kind == "Str":
            out.append(c)
        elif kind in ("Space", "SoftBreak", "LineBreak"):
            out.append(" ")
        elif kind in ("Emph", "Strong", "Underline", "Strikeout", "Superscript", "Subscript", "SmallCaps"):
            out.append(inline_text(c))
        elif kind in ("Code", "Math"):  # [attr or math type, text]
            out.append(c[1])
        elif kind == "RawInline":  # [format, text]: markup the writer let through, e.g. HTML in markdown
            out.append(c[1])
        elif kind == "Quoted":  # [quote type, inlines]
            left, right = QUOTES[c[0]["t"]]
            out.append(left + inline_text(c[1]) + right)
        elif kind in ("Cite", "Span"):  # [citations or attr, inlines]
            out.append(inline_text(c[1]))
        elif kind in ("Link", "Image"):  # [attr, inlines, target]
            out.append(inline_text(c[1]))
        elif kind == "Note":
            continue
        else:
            raise TableReadError(f"a table cell holds a {kind} inline, which this reader does not know")
    return "".join(out)


def block_text(blocks: list) -> str:
    """Blocks as plain text, one space between blocks."""
    out = []
    for node in blocks:
        kind, c = node["t"], node.get("c")
        if kind in ("Plain", "Para"):
            out.append(inline_text(c))
        elif kind == "LineBlock":
            out.append(" ".join(inline_text(line) for line in c))
        elif kind in ("CodeBlock", "RawBlock"):  # [attr or format, text]
            out.append(c[1])
        elif kind in ("Div", "BlockQuote"):  # [attr, blocks] or blocks
            out.append(block_text(c[1] if kind == "Div" else c))
        elif kind == "HorizontalRule":
            continue
        else:
            raise TableReadError(f"a table cell holds a {kind} block, which this reader does not know")
    return " ".join(out)


def cell_text(cell: list) -> str:
    """A cell ([attr, alignment, row span, column span, blocks]) as one line of text."""
    return re.sub(r"[ \t\r\n]+", " ", block_text(cell[4])).strip()


def row_cells(row: list) -> list[str]:
    """A row ([attr, cells]) as its cells' text."""
    return [cell_text(cell) for cell in row[1]]


def table_rows(table: dict) -> Rows:
    """A Table node's rows as text: head, then each body (its intermediate head, its rows), then foot."""
    _attr, _caption, _colspecs, head, bodies, foot = table["c"]
    rows = [row_cells(r) for r in head[1]]
    for _body_attr, _row_head_columns, intermediate, body in bodies:
        rows += [row_cells(r) for r in intermediate + body]
    return rows + [row_cells(r) for r in foot[1]]


def table_nodes(node):
    """Every Table node under `node`, in document order (tables in tables included)."""
    if isinstance(node, dict):
        if node.get("t") == "Table":
            yield node
        for value in node.values():
            yield from table_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from table_nodes(value)


def without_repeated_head(table: dict, rows: Rows) -> Rows:
    """`rows` less the copy of the head that starts the body (LaTeX longtables; module docstring)."""
    n = len(table["c"][3][1])
    if n and rows[n:2 * n] == rows[:n]:
        return rows[:n] + rows[2 * n:]
    return rows


def read_tables(text: str, fmt: str) -> list[Rows]:
    """Every table of a manuscript ("markdown" or "latex"): a list of rows, head first, of cell texts."""
    out = []
    for table in table_nodes(document(text, fmt)["blocks"]):
        rows = table_rows(table)
        out.append(without_repeated_head(table, rows) if fmt == "latex" else rows)
    return out


def find_table(tables: list[Rows], headers: list[str], where: str) -> Rows:
    """The one table whose first row is `headers`; its other rows."""
    found = [t for t in tables if t and t[0] == headers]
    if len(found) != 1:
        raise LookupError(f"{where}: expected one table with the columns {headers}, found {len(found)}")
    return found[0][1:]
