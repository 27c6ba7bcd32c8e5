"""Metadata CSVs that list every split in one table (AVSBench's ``s4_meta_data.csv`` / ``ms3_meta_data.csv``,
AVSBench-semantic's and Ref-AVS's ``metadata.csv``).

The official loaders read them with pandas and keep ``df[df['split'] == split]``; this reader gives the same rows in
file order, with columns by name and the line of each row, and turns every malformation into one clear line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from crab_eval.errors import AnnotationError


class SplitTable(NamedTuple):
    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]]  # (line, fields) of the split's rows


def read_split_table(path: Path, split: str, columns: Sequence[str] = ()) -> SplitTable:
    """The header and the (line, fields) of every row whose ``split`` column is ``split``; the header must hold
    ``columns`` and ``split``. Every row, of any split, must have as many fields as the header: a broken row is an
    error wherever it is."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise AnnotationError("official annotation file not found", path) from None
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    header_line = split_col = 0
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue  # pandas skips blank lines
            if header is None:
                header, header_line = fields, line
                missing = [c for c in (*columns, "split") if c not in header]
                if missing:
                    raise AnnotationError(f"no column(s) {missing} in the header {header}", path, line)
                split_col = header.index("split")
                continue
            if len(fields) != len(header):
                raise AnnotationError(f"expected {len(header)} fields as in the header, got {len(fields)}", path, line)
            if fields[split_col] == split:
                rows.append((line, fields))
    except csv.Error as exc:
        raise AnnotationError(f"malformed CSV ({exc})", path, reader.line_num) from None
    if header is None:
        raise AnnotationError("empty file", path)
    return SplitTable(header, header_line, rows)


def read_split_rows(path: Path, split: str, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of the split's rows, columns by name (``read_split_table``)."""
    header, _, rows = read_split_table(path, split, columns)
    return [(line, dict(zip(header, fields, strict=True))) for line, fields in rows]
