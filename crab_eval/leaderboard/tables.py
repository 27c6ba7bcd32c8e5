"""The leaderboard's tables as plain data, rendered alike to HTML, Markdown and CSV."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from crab_eval.leaderboard.board import (
    FAMILIES,
    OTHER_FAMILY,
    Row,
    Value,
    columns,
    coverage,
    default_split,
    family_of,
    higher_is_better,
    main_metric,
    slug,
    transfer,
    win_rates,
)

MISSING = "–"


@dataclass
class Header:
    label: str
    numeric: bool = False
    title: str = ""


@dataclass
class Cell:
    text: str
    sort: float | str | None = None  # None: sorts last whichever the direction
    title: str = ""
    link: str = ""  # in-page anchor


@dataclass
class TableRow:
    row_id: str
    source: str
    variant: str
    cells: list[Cell]


@dataclass
class Table:
    title: str
    slug: str
    headers: list[Header]
    rows: list[TableRow] = field(default_factory=list)
    note: str = ""
    collapsed: bool = False


def column_label(task: str, split: str, metric: str, rows: list[Row]) -> str:
    arrow = "↑" if higher_is_better(rows, task, metric) else "↓"
    where = task if split == default_split(task) else f"{task} {split}"
    return f"{where} {metric} {arrow}"


def value_cell(value: Value | None) -> Cell:
    if value is None:
        return Cell(MISSING)
    tips = []
    if value.reported is not None:
        tips.append(f"reported as {value.reported:g} on the {value.scale} scale")
    if value.note:
        tips.append(value.note)
    d = value.detail
    if d.get("n_samples") is not None:
        tips.append(f"{d['n_samples']} samples, {d['n_missing']} missing, {d['n_unparsed']} unparsed (scored wrong)")
    return Cell(f"{value.value:.2f}", sort=round(value.value, 6), title="; ".join(tips))


def format_params(count: int | None) -> str:
    if count is None:
        return MISSING
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            return f"{count / size:.2f}{suffix}"
    return str(count)


def _identity(row: Row) -> list[Cell]:
    source = f"{row.source} ({row.source_label})" if row.source_label else row.source
    return [
        Cell(row.model, sort=row.model.lower(), link=f"prov-{row.id}"),
        Cell(source, sort=source),
        Cell(row.variant, sort=row.variant),
    ]


_IDENTITY_HEADERS = [
    Header("Model"),
    Header("Source", title="rescored by crab-eval, or reported by a paper"),
    Header("Variant", title="unified (one model for all tasks) or single-task"),
]


def build_tables(rows: list[Row]) -> list[Table]:
    cols = columns(rows)
    rates = win_rates(rows, cols)
    tables = []
    summary = Table(
        "Summary",
        "summary",
        [
            *_IDENTITY_HEADERS,
            Header("Coverage", True, f"columns with a main-metric value, of {len(cols)}"),
            Header("Mean win rate", True, "mean over columns of the share of other rows of the same source beaten"),
            Header("Parameters", True),
            Header("LLM backbone"),
            Header("Date"),
        ],
        note="Mean win rate: over the columns a row has, the share of other rows it beats on the main metric (ties "
        "count half), compared within its source only — rescored rows with rescored rows, reported rows with "
        "reported rows — since each paper scored its numbers with its own code.",
    )
    for row in rows:
        rate = rates[row.id]
        params = row.provenance.get("parameters")
        summary.rows.append(
            TableRow(
                row.id,
                row.source,
                row.variant,
                [
                    *_identity(row),
                    Cell(f"{coverage(row, cols)}/{len(cols)}", sort=coverage(row, cols)),
                    Cell(MISSING if rate is None else f"{rate:.1f}", sort=rate),
                    Cell(format_params(params), sort=params),
                    Cell(row.provenance.get("LLM backbone") or MISSING, sort=row.provenance.get("LLM backbone")),
                    Cell(row.provenance.get("date") or MISSING, sort=row.provenance.get("date")),
                ],
            )
        )
    tables.append(summary)
    families = [name for name, _ in FAMILIES] + [OTHER_FAMILY]
    for family in families:
        fcols = [c for c in cols if family_of(c[0]) == family]
        if not fcols:
            continue
        table = Table(
            family,
            "family-" + slug(family),
            [
                *_IDENTITY_HEADERS,
                *(Header(column_label(t, s, main_metric(t, s), rows), True) for t, s in fcols),
                Header("Coverage", True),
            ],
            note="Main metric per task; hover a value for its notes.",
        )
        for row in rows:
            vals = [row.main_value(c) for c in fcols]
            if all(v is None for v in vals):
                continue
            n = sum(v is not None for v in vals)
            table.rows.append(
                TableRow(
                    row.id,
                    row.source,
                    row.variant,
                    [*_identity(row), *map(value_cell, vals), Cell(f"{n}/{len(fcols)}", sort=n)],
                )
            )
        tables.append(table)
    tables.append(transfer_table(rows, cols))
    for task, split in cols:
        metrics = sorted(
            {m for row in rows for (t, s, m) in row.values if (t, s) == (task, split)},
            key=lambda m: (m != main_metric(task, split), m),
        )
        title = f"All metrics: {task}" + ("" if split == default_split(task) else f" {split}")
        table = Table(
            title,
            "metrics-" + slug(f"{task}-{split}"),
            [*_IDENTITY_HEADERS, *(Header(column_label(task, split, m, rows), True) for m in metrics)],
            collapsed=True,
        )
        for row in rows:
            vals = [row.values.get((task, split, m)) for m in metrics]
            if any(v is not None for v in vals):
                table.rows.append(TableRow(row.id, row.source, row.variant, [*_identity(row), *map(value_cell, vals)]))
        tables.append(table)
    return tables


def transfer_table(rows: list[Row], cols: list[tuple[str, str]]) -> Table:
    pairs = transfer(rows, cols)
    tcols = [c for c in cols if any(c in deltas for _row, deltas in pairs)]
    table = Table(
        "Transfer: unified minus single-task",
        "transfer",
        [
            *_IDENTITY_HEADERS,
            *(Header(f"Δ {column_label(t, s, main_metric(t, s), rows)}", True) for t, s in tcols),
            Header("Positive transfer", True, "tasks where the unified model beats its single-task runs"),
            Header("Mean Δ", True),
        ],
        note="Main metric of the unified model minus that of the same entry's single-task runs, sign-adjusted so "
        "that > 0 means joint training helped. Only entries that include their single-task runs appear. "
        "A simple difference of point estimates, without confidence intervals.",
    )
    for row, deltas in pairs:
        cells = [
            Cell(MISSING) if c not in deltas else Cell(f"{deltas[c]:+.2f}", sort=round(deltas[c], 6)) for c in tcols
        ]
        positive = sum(d > 0 for d in deltas.values())
        mean = sum(deltas.values()) / len(deltas) if deltas else None
        table.rows.append(
            TableRow(
                row.id,
                row.source,
                row.variant,
                [
                    *_identity(row),
                    *cells,
                    Cell(f"{positive}/{len(deltas)}", sort=positive),
                    Cell(MISSING if mean is None else f"{mean:+.2f}", sort=mean),
                ],
            )
        )
    return table


# ---- Markdown and CSV --------------------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    # Markdown renders inline HTML, so submitted names are HTML-escaped too.
    return html.escape(text, quote=False).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(tables: list[Table], title: str, intro: str) -> str:
    lines = [f"# {title}", "", intro, ""]
    for table in tables:
        lines += [f"## {table.title}", ""]
        if table.note:
            lines += [table.note, ""]
        if not table.rows:
            lines += ["(no rows)", ""]
            continue
        lines.append("| " + " | ".join(_md_escape(h.label) for h in table.headers) + " |")
        lines.append("|" + "|".join("---:" if h.numeric else "---" for h in table.headers) + "|")
        for row in table.rows:
            lines.append("| " + " | ".join(_md_escape(c.text) for c in row.cells) + " |")
        lines.append("")
    return "\n".join(lines)


def to_csv_rows(table: Table) -> list[list[str]]:
    out = [["row_id", *(h.label for h in table.headers)]]
    for row in table.rows:
        out.append([row.row_id, *("" if c.text == MISSING else c.text for c in row.cells)])
    return out
