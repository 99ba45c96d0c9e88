"""The table writer: a table as a pandoc markdown pipe table, and the paper's per-model
tables built from the column registry (scripts/lib/report/columns.py).

The cross-check reads the rendered tables back through pandoc's document model
(scripts/lib/report/pandoc_tables.py). No torch here.
"""
from __future__ import annotations

from dataclasses import dataclass

from scripts.lib.report.columns import TABLES, cell, table_columns


# A column's share of the page is its dash count's share (pandoc): long labels wrap beyond this
# many characters, so that numbers and short texts keep their line.
MAX_WIDTH = 28
# A table of one label column beside numbers only (deployment, per-model tables): the label (a
# model's, up to ~70 characters) may take more, two lines instead of three to five; numbers
# never wrap, so nothing else is squeezed. 48 measured on the published config's paper (tables
# set in \footnotesize): the widest tables' numbers still fit their columns; 56 overflowed one.
MAX_LABEL_WIDTH = 48


def word_width(word: str) -> int:
    """A word's width in average characters: capitals, %, M and W count wider."""
    return round(sum(1.5 if c.isupper() or c in "%MWmw" else 1 for c in word) + 0.49)


@dataclass
class Table:
    """A rendered table: headers, rows of cell strings, alignment, caption."""
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    caption: str = ""

    def markdown(self) -> str:
        """A pipe table with its caption (`Table: ...`). The separator's dash counts give
        pandoc the relative column widths: wide tables wrap their cells and fit the LaTeX
        page instead of running off it."""
        # the longest cell (digits are wider than the average letter); a header wraps, so it
        # asks only for half its length
        widths = [max(len(h) // 2, *(-(-len(r[i]) * (5 if num else 4) // 4) for r in self.rows)) if self.rows
                  else len(h) for i, (h, num) in enumerate(zip(self.headers, self.numeric))]
        # no narrower than its longest unbreakable word (capitals and % count wider) plus the
        # column's padding: LaTeX cannot wrap a word, so a narrower column overflows into the next
        words = [max(word_width(word) for text in [h, *(r[i] for r in self.rows)] for word in (text.split() or [""]))
                 for i, h in enumerate(self.headers)]
        label_only = not self.numeric[0] and all(self.numeric[1:])
        widths = [max(min(max(w, 6), MAX_LABEL_WIDTH if i == 0 and label_only else MAX_WIDTH), word + 4)
                  for i, (w, word) in enumerate(zip(widths, words))]

        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        sep = "|" + "|".join("-" * (w + 1) + (":" if num else "-") for w, num in zip(widths, self.numeric)) + "|"
        out = [line(self.headers), sep, *(line(r) for r in self.rows)]
        if self.caption:
            out += ["", f"Table: {self.caption}"]
        return "\n".join(out) + "\n"


def model_table(table: str, rows: list[dict]) -> Table:
    """A per-model paper table: one row per model, the registry's columns."""
    cols = table_columns(table)
    return Table([c.header for c in cols], [[cell(c, r) for c in cols] for r in rows],
                 [c.numeric for c in cols], TABLES[table])
