"""Writing the leaderboard site: one self-contained HTML page (inline CSS and JS), Markdown and CSV tables.

Every string that comes from an entry or a submission is HTML-escaped; links are only made for http(s) URLs and
in-page anchors. The page loads nothing from the network.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.io import atomic_open
from crab_eval.leaderboard.board import Row, load_entries, load_published, rows_from_entry, rows_from_published
from crab_eval.leaderboard.tables import Cell, Table, build_tables, to_csv_rows, to_markdown
from crab_eval.provenance import now_utc

# Nothing may be fetched: inline style and script only, no remote anything.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
TITLE = "crab-eval leaderboard: audio-visual LLM benchmarks"
INTRO = (
    "Rows marked 'rescored' were scored by crab-eval from submitted prediction files with the official "
    "metrics (missing and unparsed predictions count as wrong). Rows marked 'reported' are numbers copied "
    "from papers — reported, not rescored — and were computed by each paper's own code."
)


def _esc(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _asset(name: str) -> str:
    return resources.files("crab_eval.leaderboard").joinpath(name).read_text(encoding="utf-8")


def _cell_html(cell: Cell, numeric: bool) -> str:
    attrs = []
    if cell.sort is not None:
        attrs.append(f'data-sort="{_esc(cell.sort)}"')
    if cell.title:
        attrs.append(f'title="{_esc(cell.title)}"')
    if numeric:
        attrs.append('class="num"')
    body = f'<a href="#{_esc(cell.link)}">{_esc(cell.text)}</a>' if cell.link else _esc(cell.text)
    return f"<td {' '.join(attrs)}>{body}</td>" if attrs else f"<td>{body}</td>"


def table_html(table: Table) -> str:
    heads = "".join(
        f'<th data-type="{"number" if h.numeric else "text"}"'
        + (f' title="{_esc(h.title)}"' if h.title else "")
        + f'><button type="button">{_esc(h.label)}</button></th>'
        for h in table.headers
    )
    body = "\n".join(
        f'<tr data-row="{_esc(r.row_id)}" data-source="{_esc(r.source)}" data-variant="{_esc(r.variant)}">'
        + "".join(_cell_html(c, h.numeric) for c, h in zip(r.cells, table.headers, strict=True))
        + "</tr>"
        for r in table.rows
    )
    note = f'<p class="note">{_esc(table.note)}</p>' if table.note else ""
    grid = (
        f'<div class="scroll"><table class="board" id="table-{_esc(table.slug)}">'
        f"<thead><tr>{heads}</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )
    if not table.rows:
        grid = '<p class="muted">No rows.</p>'
    if table.collapsed:
        return f'<details class="metrics"><summary>{_esc(table.title)}</summary>{note}{grid}</details>'
    return f'<h2 id="{_esc(table.slug)}">{_esc(table.title)}</h2>{note}{grid}'


def _link(url: str) -> str:
    if url.startswith(("http://", "https://")):
        return f'<a href="{_esc(url)}" rel="noopener noreferrer">{_esc(url)}</a>'
    return _esc(url)


def provenance_html(row: Row) -> str:
    items = []
    for key, value in row.provenance.items():
        if key == "results" or value in (None, "", []):
            continue
        if key == "notes" and isinstance(value, list):
            text = "<br>".join(_esc(v) for v in value)
        elif key == "url":
            text = _link(str(value))
        else:
            text = _esc(value)
        items.append(f"<dt>{_esc(key)}</dt><dd>{text}</dd>")
    results = ""
    if row.provenance.get("results"):
        keys = [
            "task",
            "split",
            "n_samples",
            "n_missing",
            "n_unparsed",
            "unparsed by tier",
            "task version",
            "data fingerprint",
            "file",
            "result file",
        ]
        head = "".join(f"<th>{_esc(k)}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{_esc(r.get(k))}</td>" for k in keys) + "</tr>" for r in row.provenance["results"]
        )
        results = (
            f'<div class="scroll"><table class="prov"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
        )
    return (
        f'<section class="prov" id="prov-{_esc(row.id)}"><h3>{_esc(row.model)} '
        f'<span class="muted">({_esc(row.source)}, {_esc(row.variant)})</span></h3>'
        f"<dl>{''.join(items)}</dl>{results}</section>"
    )


def _filters(rows: Sequence[Row]) -> str:
    groups = []
    for key, label in (("variant", "Variant"), ("source", "Source")):
        values = sorted(
            {getattr(r, key) for r in rows}
            | ({"unified", "single-task"} if key == "variant" else {"rescored", "reported"})
        )
        boxes = "".join(
            f'<label><input type="checkbox" data-filter="{key}" value="{_esc(v)}" checked> {_esc(v)}</label>'
            for v in values
        )
        groups.append(f"<fieldset><legend>{label}</legend>{boxes}</fieldset>")
    return "".join(groups) + '<span id="shown-count" class="muted"></span>'


def page_html(rows: Sequence[Row], tables: Sequence[Table], generated: str, title: str = TITLE) -> str:
    n_rescored = sum(r.source == "rescored" for r in rows)
    toc = " · ".join(f'<a href="#{_esc(t.slug)}">{_esc(t.title)}</a>' for t in tables if not t.collapsed)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{_esc(title)}</title>
<style>
{_asset("page.css")}
</style>
</head>
<body>
<h1>{_esc(title)}</h1>
<p class="muted">Generated {_esc(generated)} by crab-eval · {len(rows)} rows ({n_rescored} rescored,
{len(rows) - n_rescored} reported) · <a href="leaderboard.md">Markdown</a> · CSV files beside this page</p>
<p class="notice">{_esc(INTRO)}</p>
<div id="filters">{_filters(rows)}</div>
<nav class="muted">{toc} · <a href="#provenance">Provenance</a></nav>
{"".join(table_html(t) for t in tables)}
<h2 id="provenance">Provenance</h2>
{"".join(provenance_html(r) for r in rows)}
<script>
{_asset("page.js")}
</script>
</body>
</html>
"""


def collect_rows(entries_dir: str | Path | None, published: str | Path | bool | None = True) -> list[Row]:
    """Rows of every entry under ``entries_dir`` and, unless ``published`` is False, of the published numbers."""
    rows: list[Row] = []
    if entries_dir is not None:
        entries = load_entries(entries_dir)
        if not entries:  # a mistyped folder must not give a page of published numbers alone without a word
            raise CrabEvalError(
                "no leaderboard entry here (crab-eval submit score or evaluate --entry writes them)", entries_dir
            )
        for entry in entries:
            rows.extend(rows_from_entry(entry))
    if published is not False:
        rows.extend(rows_from_published(load_published(None if published is True else published)))
    return rows


def build_site(
    entries_dir: str | Path | None,
    out_dir: str | Path,
    published: str | Path | bool | None = True,
    title: str = TITLE,
    generated: str | None = None,
) -> dict[str, Path]:
    """Write index.html, leaderboard.md and one CSV per table into ``out_dir``; returns the written paths."""
    out_dir = Path(out_dir)
    rows = collect_rows(entries_dir, published)
    tables = build_tables(rows)
    generated = generated or now_utc()
    written: dict[str, Path] = {}
    with atomic_open(out_dir / "index.html") as handle:
        handle.write(page_html(rows, tables, generated, title))
    written["html"] = out_dir / "index.html"
    with atomic_open(out_dir / "leaderboard.md") as handle:
        handle.write(to_markdown(tables, title, f"Generated {generated}. {INTRO}") + "\n")
    written["markdown"] = out_dir / "leaderboard.md"
    for table in tables:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(to_csv_rows(table))
        path = out_dir / f"{table.slug}.csv"
        with atomic_open(path) as handle:
            handle.write(buffer.getvalue())
        written[table.slug] = path
    return written
