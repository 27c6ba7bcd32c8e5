"""The leaderboard's tables as plain data, rendered alike to HTML, Markdown and CSV."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from crab_eval.leaderboard.board import (
    FAMILIES,
    MIN_RANKED_BENCHMARKS,
    OTHER_FAMILY,
    Benchmark,
    Column,
    Row,
    Value,
    benchmarks,
    columns,
    default_split,
    family_of,
    higher_is_better,
    main_metric,
    n_benchmarks,
    ranked_rows,
    slug,
    transfer,
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
    if d.get("n_unparsed_by_extract"):
        tiers = ", ".join(f"{tier} {n}" for tier, n in d["n_unparsed_by_extract"].items())
        tips.append(f"unparsed under each answer-extraction tier: {tiers}")
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


SUMMARY_NOTE = (
    "Coverage: benchmarks (task and split) on which a row has a number in any column, of all benchmarks on the page; "
    "a number reported instead of a benchmark's main metric gets its own column and counts. Ranking, within each "
    "source (rescored rows are compared only with rescored rows, reported rows only with reported rows, since each "
    "paper scored its numbers with its own code): more benchmarks covered first, then the mean win rate — per "
    "column the share of the other rows of the same source that a row beats (ties count half), averaged per "
    "benchmark, then over the benchmarks compared. A row compared on fewer than {min} benchmarks gets no win rate "
    "and no rank and follows the ranked rows of its coverage, so a high score on one column cannot top the table."
)


def _column_header(col: Column, rows: list[Row]) -> Header:
    task, split, metric = col
    main = main_metric(task, split)
    title = "" if metric == main else f"reported instead of the main metric {main}; kept apart from it"
    return Header(column_label(task, split, metric, rows), True, title)


def _rate_cell(mean: float | None, n: int, shown: bool) -> Cell:
    if mean is None:
        return Cell(MISSING, title="met no other row of its source")
    tip = f"{mean:.1f} over {n} benchmark{'s' if n != 1 else ''}"
    if not shown:
        return Cell(MISSING, title=f"{tip}: not ranked (needs {MIN_RANKED_BENCHMARKS})")
    return Cell(f"{mean:.1f}", sort=round(mean, 6), title=tip)


def summary_table(rows: list[Row], cols: list[Column]) -> Table:
    total = n_benchmarks(cols)
    table = Table(
        "Summary",
        "summary",
        [
            *_IDENTITY_HEADERS,
            Header("Rank", True, "within the source; rows compared on too few benchmarks are not ranked"),
            Header("Coverage", True, f"benchmarks with a number in any column, of {total}"),
            Header("Mean win rate", True, "mean over the benchmarks compared of the share of same-source rows beaten"),
            Header("Compared on", True, "benchmarks on which the row met another row of its source (the denominator)"),
            Header("Parameters", True),
            Header("LLM backbone"),
            Header("Date"),
        ],
        note=SUMMARY_NOTE.format(min=MIN_RANKED_BENCHMARKS),
    )
    for row, covered, rate, rank in ranked_rows(rows, cols):
        params = row.provenance.get("parameters")
        table.rows.append(
            TableRow(
                row.id,
                row.source,
                row.variant,
                [
                    *_identity(row),
                    # Negative sort key: the first click (best first = descending) puts rank 1 on top.
                    Cell(MISSING, title="not ranked") if rank is None else Cell(str(rank), sort=-rank),
                    Cell(f"{covered}/{total}", sort=covered),
                    _rate_cell(rate.mean, rate.n, rank is not None),
                    Cell(str(rate.n), sort=rate.n),
                    Cell(format_params(params), sort=params),
                    Cell(row.provenance.get("LLM backbone") or MISSING, sort=row.provenance.get("LLM backbone")),
                    Cell(row.provenance.get("date") or MISSING, sort=row.provenance.get("date")),
                ],
            )
        )
    return table


def family_table(family: str, rows: list[Row], fcols: list[Column]) -> Table:
    total = n_benchmarks(fcols)
    table = Table(
        family,
        "family-" + slug(family),
        [
            *_IDENTITY_HEADERS,
            *(_column_header(c, rows) for c in fcols),
            Header("Coverage", True, f"benchmarks of this family with a number, of {total}"),
            Header("Win rate", True, "mean win rate over this family's benchmarks (same source only)"),
        ],
        note="Main metric per benchmark, and a column for any number a paper reported instead of it; hover a value "
        "for its notes. Ordered as the summary (source, coverage, win rate), within this family.",
    )
    for row, covered, rate, _rank in ranked_rows(rows, fcols, min_benchmarks=1):
        if covered == 0:
            continue
        table.rows.append(
            TableRow(
                row.id,
                row.source,
                row.variant,
                [
                    *_identity(row),
                    *(value_cell(row.values.get(c)) for c in fcols),
                    Cell(f"{covered}/{total}", sort=covered),
                    _rate_cell(rate.mean, rate.n, True),
                ],
            )
        )
    return table


def metrics_table(rows: list[Row], bench: Benchmark) -> Table:
    task, split = bench
    metrics = sorted(
        {m for row in rows for (t, s, m) in row.values if (t, s) == bench},
        key=lambda m: (m != main_metric(task, split), m),
    )
    title = f"All metrics: {task}" + ("" if split == default_split(task) else f" {split}")
    table = Table(
        title,
        "metrics-" + slug(f"{task}-{split}"),
        [*_IDENTITY_HEADERS, *(Header(column_label(task, split, m, rows), True) for m in metrics)],
        collapsed=True,
    )
    for row, _covered, _rate, _rank in ranked_rows(rows, [(task, split, m) for m in metrics], min_benchmarks=1):
        vals = [row.values.get((task, split, m)) for m in metrics]
        if any(v is not None for v in vals):
            table.rows.append(TableRow(row.id, row.source, row.variant, [*_identity(row), *map(value_cell, vals)]))
    return table


def build_tables(rows: list[Row]) -> list[Table]:
    cols = columns(rows)
    tables = [summary_table(rows, cols)]
    for family in [name for name, _ in FAMILIES] + [OTHER_FAMILY]:
        fcols = [c for c in cols if family_of(c[0]) == family]
        if fcols:
            tables.append(family_table(family, rows, fcols))
    tables.append(transfer_table(rows, benchmarks(rows)))
    tables.extend(metrics_table(rows, bench) for bench in benchmarks(rows))
    return tables


def transfer_table(rows: list[Row], cols: list[Benchmark]) -> Table:
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
