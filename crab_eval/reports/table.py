"""One table model for every report: a title, column names and rows of cells already formatted as text.

Text (aligned columns, what the command line prints), Markdown and CSV (the standard library's writer) are written
here; HTML goes through a pandas DataFrame (the ``reports`` extra), so that its escaping is pandas' own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class Table:
    """``columns`` and ``rows`` of cells; a cell is shown as ``str(cell)``, so numbers are formatted by the caller."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""

    def __init__(self, columns: Sequence[Any], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        cells = tuple(tuple(str(c) for c in row) for row in rows)
        names = tuple(str(c) for c in columns)
        for i, row in enumerate(cells):
            if len(row) != len(names):
                raise ValueError(f"row {i} has {len(row)} cells for {len(names)} columns")
        object.__setattr__(self, "columns", names)
        object.__setattr__(self, "rows", cells)
        object.__setattr__(self, "title", title)

    def to_text(self) -> str:
        """Columns padded to their widest cell, two spaces apart, a rule of dashes under the names."""
        widths = [max(len(x) for x in col) for col in zip(self.columns, *self.rows, strict=True)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in self.rows)
        return "\n".join(line.rstrip() for line in lines)

    def to_markdown(self) -> str:
        """A GitHub Markdown table (``|`` in a cell escaped), under ``## title`` when there is one."""

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        body = [line(self.columns), line(["---"] * len(self.columns)), *(line(row) for row in self.rows)]
        return "\n".join([f"## {self.title}", "", *body] if self.title else body)

    def to_frame(self) -> pandas.DataFrame:
        """The table as a pandas DataFrame of strings (the ``reports`` extra)."""
        import pandas

        return pandas.DataFrame(list(self.rows), columns=list(self.columns), dtype=str)

    def to_csv(self) -> str:
        """CSV with a header line (the standard library's writer: a summary needs no pandas)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_html(self) -> str:
        """An HTML ``<table>`` (cells escaped), through pandas."""
        return str(self.to_frame().to_html(index=False, escape=True, border=0))


def format_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table: ``Table(headers, rows).to_text()``."""
    return Table(headers, rows).to_text()
