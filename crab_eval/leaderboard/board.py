"""The leaderboard's content: rows from entries and published numbers, main metrics, coverage, win rates, transfer.

A *row* is one model as one source reports it: a rescored entry (``crab-eval submit score``) gives one row for its
main variant and, when it carries ``single_task/`` runs, a second row for those; the published numbers give one
row per (model, source document). A *column* is a (task, split) pair shown with its main metric.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.io import read_json
from crab_eval.leaderboard.submission import ENTRY_KIND
from crab_eval.registry import get_task, task_ids

# Task families as Crab groups its tasks (crab.md); tasks outside these land in "Other".
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Temporal localization", ("ave", "avvp", "unav")),
    ("Spatial localization", ("arig", "vggss", "flickr")),
    ("Spatio-temporal reasoning (QA)", ("music_avqa", "avqa")),
    ("Pixel-level segmentation", ("s4", "ms3", "avss", "ref_avs")),
)
OTHER_FAMILY = "Other"
# Main metric of tasks without an adapter in this version (published rows only), and of split-specific cases.
FALLBACK_MAIN: dict[str, str] = {
    "ave": "accuracy",
    "avvp": "seg_event",
    "unav": "mAP",
    "arig": "cIoU",
    "vggss": "cIoU",
    "flickr": "cIoU",
    "music_avqa": "overall",
    "avqa": "accuracy",
    "s4": "J",
    "ms3": "J",
    "avss": "mIoU",
    "ref_avs": "J",
}
SPLIT_MAIN: dict[tuple[str, str], str] = {("ref_avs", "test_n"): "S"}  # the null split has only S
LOWER_IS_BETTER: set[tuple[str, str]] = {("ref_avs", "S")}


@dataclass
class Value:
    value: float  # on the 0-100 scale (reported 0-1 numbers are multiplied by 100 for comparison)
    reported: float | None = None  # as reported, when the scale differed
    scale: str = "0-100"
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # n_samples, n_missing, ... for rescored values


@dataclass
class Row:
    id: str
    model: str
    source: str  # "rescored" or "reported"
    variant: str  # "unified", "single-task" or "unknown"
    source_label: str = ""  # for reported rows: where the numbers were reported
    values: dict[tuple[str, str, str], Value] = field(default_factory=dict)  # (task, split, metric) -> value
    higher: dict[tuple[str, str], bool] = field(default_factory=dict)  # (task, metric) -> higher is better
    provenance: dict[str, Any] = field(default_factory=dict)
    paired_with: str | None = None  # id of the single-task row of the same entry
    extract: str = "strict"  # rescored rows: the answer-extraction tier their text answers were read with

    @property
    def pool(self) -> tuple[str, str]:
        """Rows are compared (win rates, ranks) only within one pool: one source, one extraction tier."""
        return (self.source, self.extract)

    def main_value(self, column: tuple[str, str]) -> Value | None:
        return self.values.get((*column, main_metric(*column)))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def family_of(task: str) -> str:
    for name, members in FAMILIES:
        if task in members:
            return name
    return OTHER_FAMILY


def main_metric(task: str, split: str) -> str:
    if (task, split) in SPLIT_MAIN:
        return SPLIT_MAIN[(task, split)]
    if task in task_ids():
        return get_task(task).main_metric
    return FALLBACK_MAIN.get(task, "")


def higher_is_better(rows: list[Row], task: str, metric: str) -> bool:
    for row in rows:
        if (task, metric) in row.higher:
            return row.higher[(task, metric)]
    if task in task_ids():
        try:
            return get_task(task).metric(metric).higher_is_better
        except KeyError:
            pass
    return (task, metric) not in LOWER_IS_BETTER


def default_split(task: str) -> str:
    return get_task(task).default_split if task in task_ids() else "test"


# ---- reading ---------------------------------------------------------------------------------------------------
def load_entries(folder: str | Path) -> list[dict[str, Any]]:
    """Every leaderboard entry (JSON with ``kind`` = the entry kind) under ``folder``; other JSON files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CrabEvalError("entries folder not found", folder)
    entries = []
    for path in sorted(folder.rglob("*.json")):
        if ".results" in path.parent.name:
            continue  # result files of an entry
        data = read_json(path)
        if not isinstance(data, dict) or data.get("kind") != ENTRY_KIND:
            continue
        for key in ("submission", "results", "source"):
            if key not in data:
                raise CrabEvalError(f"leaderboard entry without {key!r}", path)
        data["_path"] = path.relative_to(folder).as_posix()
        entries.append(data)
    return entries


def load_published(path: str | Path | None = None) -> dict[str, Any]:
    if path is None:
        text = resources.files("crab_eval.baselines").joinpath("published.json").read_text(encoding="utf-8")
        return json.loads(text)
    data = read_json(Path(path))
    if not isinstance(data, dict) or "rows" not in data or "sources" not in data:
        raise CrabEvalError("not a published-numbers file (needs 'sources' and 'rows')", path)
    return data


def rows_from_entry(entry: dict[str, Any]) -> list[Row]:
    meta = entry["submission"]
    base = slug(f"{meta['model']}-{meta['team']}-{entry.get('submission_sha256', '')[7:15]}")
    prov = {
        "entry file": entry.get("_path"),
        "team": meta.get("team"),
        "url": meta.get("url"),
        "paper": meta.get("paper"),
        "parameters": meta.get("parameters"),
        "LLM backbone": meta.get("llm_backbone"),
        "encoders": ", ".join(f"{k}: {v}" for k, v in (meta.get("encoders") or {}).items()),
        "training data": "; ".join(meta.get("training_data") or []),
        "date": meta.get("date"),
        "notes": meta.get("notes"),
        "submission": entry.get("submission_file"),
        "submission sha256": entry.get("submission_sha256"),
        "scored with": "crab-eval {} (commit {})".format(
            entry.get("provenance", {}).get("package_version"), entry.get("provenance", {}).get("git_commit")
        ),
        "scored at": entry.get("provenance", {}).get("date"),
    }
    extract = entry.get("extract", "strict")  # entries written before the tiers existed were strict
    prov["answer extraction"] = extract
    # A flexible row is its own row (the same submission may be on the page under both tiers) and says so.
    flexible = extract != "strict"
    base += f"-{extract}" if flexible else ""
    rows: dict[str, Row] = {}
    for result in entry["results"]:
        variant = result.get("variant", meta.get("variant", "unknown"))
        single = variant == "single-task" and meta.get("variant") == "unified"
        row_id = base + ("-single" if single else "")
        if row_id not in rows:
            model = meta["model"] + (" (single-task runs)" if single else "")
            label = f"{extract} answer extraction" if flexible else ""
            rows[row_id] = Row(
                id=row_id,
                model=model,
                source="rescored",
                variant=variant,
                provenance=dict(prov),
                source_label=label,
                extract=extract,
            )
            rows[row_id].provenance["results"] = []
        row = rows[row_id]
        task, split = result["task"], result["split"]
        detail = {k: result.get(k) for k in ("n_samples", "n_missing", "n_unparsed", "n_unparsed_by_extract")}
        for metric, value in result["metrics"].items():
            row.values[(task, split, metric)] = Value(float(value), detail=detail)
        for metric, hib in (result.get("higher_is_better") or {}).items():
            row.higher[(task, metric)] = bool(hib)
        row.provenance["results"].append(
            {
                "task": task,
                "split": split,
                "file": result.get("file"),
                "result file": result.get("result_file"),
                "task version": result.get("task_version"),
                "data fingerprint": result.get("data_fingerprint"),
                **detail,
                "unparsed by tier": ", ".join(f"{t} {n}" for t, n in (detail["n_unparsed_by_extract"] or {}).items()),
            }
        )
    single_id = base + "-single"
    if single_id in rows and base in rows:
        rows[base].paired_with = single_id
    return sorted(rows.values(), key=lambda r: r.id == single_id)  # the main variant first


def rows_from_published(published: dict[str, Any]) -> list[Row]:
    rows: dict[str, Row] = {}
    sources = published["sources"]
    for item in published["rows"]:
        src = item["source"]
        row_id = slug(f"{item['model']}-{src}")
        if row_id not in rows:
            info = sources.get(src, {})
            rows[row_id] = Row(
                id=row_id,
                model=item["model"],
                source="reported",
                source_label=info.get("label", src),
                variant=item.get("variant", "unknown"),
                provenance={
                    "status": published.get("status", "reported, not rescored"),
                    "document": info.get("document"),
                    "paper": info.get("paper"),
                    "table": info.get("table"),
                    "notes": [],
                },
            )
        row = rows[row_id]
        scale = item.get("scale", "0-100")
        reported = float(item["value"])
        value = reported * 100.0 if scale == "0-1" else reported
        note = item.get("note", "")
        key = (item["task"], item.get("split", "test"), item["metric"])
        row.values[key] = Value(value, reported=reported if scale != "0-100" else None, scale=scale, note=note)
        if note and note not in row.provenance["notes"]:
            row.provenance["notes"].append(note)
    return list(rows.values())


# ---- derived numbers -------------------------------------------------------------------------------------------
Benchmark = tuple[str, str]  # (task, split)
Column = tuple[str, str, str]  # (task, split, metric)
# A row is ranked on its mean win rate only when it met other rows of its source on at least this many benchmarks.
MIN_RANKED_BENCHMARKS = 3
SOURCE_ORDER = {"rescored": 0, "reported": 1}


@dataclass(frozen=True)
class WinRate:
    mean: float | None  # 0-100, over the benchmarks compared; None when the row met no other row anywhere
    n: int  # benchmarks on which the row met at least one other row of its source

    def ranked(self, min_benchmarks: int = MIN_RANKED_BENCHMARKS) -> bool:
        return self.mean is not None and self.n >= min_benchmarks


def benchmarks(rows: list[Row]) -> list[Benchmark]:
    """(task, split) pairs that some row has a value for, in family order then name order (default split first)."""
    present = {(t, s) for row in rows for (t, s, _m) in row.values}
    order = {task: (i, j) for i, (_f, members) in enumerate(FAMILIES) for j, task in enumerate(members)}
    return sorted(present, key=lambda c: (order.get(c[0], (99, 0)), c[0], c[1] != default_split(c[0]), c[1]))


def columns(rows: list[Row]) -> list[Column]:
    """The columns every number is placed in: each benchmark's main metric, and any other metric that some row
    reported for a benchmark *instead of* the main one (e.g. AVVP 'seg' without saying which aggregate), so that
    no number is left without a column. Metrics a row gives beside the main one stay in the all-metrics tables.
    """
    cols: list[Column] = []
    for task, split in benchmarks(rows):
        main = main_metric(task, split)
        if any(row.main_value((task, split)) is not None for row in rows):
            cols.append((task, split, main))
        # dict, not set: columns keep the order in which the rows first give the metrics
        instead = {
            m: None
            for row in rows
            if row.main_value((task, split)) is None
            for (t, s, m) in row.values
            if (t, s) == (task, split)
        }
        cols.extend((task, split, m) for m in instead)
    return cols


def coverage(row: Row, cols: list[Column]) -> int:
    """Benchmarks on which the row has a value in one of ``cols`` (however many of its metrics are columns)."""
    return len({(t, s) for (t, s, m) in cols if (t, s, m) in row.values})


def n_benchmarks(cols: list[Column]) -> int:
    return len({(t, s) for (t, s, _m) in cols})


def column_win_rates(rows: list[Row], col: Column) -> dict[str, float]:
    """Per row with a value in ``col``: the share of the other rows of its source with a value there that it beats
    (ties count half; lower-is-better metrics flipped). Rows alone in their source pool get no entry.

    Rows are compared within their source only: rescored rows with rescored rows (same scorer), reported rows with
    reported rows, because a paper's own scoring code and data version may differ from the official ones; and
    rescored rows of one answer-extraction tier with each other (a flexible row reads more answers than strict).
    """
    task, _split, metric = col
    sign = 1.0 if higher_is_better(rows, task, metric) else -1.0
    out: dict[str, float] = {}
    for pool in {row.pool for row in rows}:
        scored = [(row.id, sign * v.value) for row in rows if row.pool == pool and (v := row.values.get(col))]
        if len(scored) < 2:
            continue
        for rid, mine in scored:
            wins = sum(1.0 if mine > other else 0.5 if mine == other else 0.0 for oid, other in scored if oid != rid)
            out[rid] = wins / (len(scored) - 1)
    return out


def win_rates(rows: list[Row], cols: list[Column]) -> dict[str, WinRate]:
    """HELM-style mean win rate, each benchmark weighted once: a row's win rates on the columns of one benchmark
    are averaged first, then the benchmarks are averaged. ``n`` is the number of benchmarks in that mean.
    """
    per_benchmark: dict[str, dict[Benchmark, list[float]]] = defaultdict(lambda: defaultdict(list))
    for col in cols:
        for rid, rate in column_win_rates(rows, col).items():
            per_benchmark[rid][col[:2]].append(rate)
    out = {}
    for row in rows:
        means = [sum(r) / len(r) for r in per_benchmark[row.id].values()]
        out[row.id] = WinRate(100.0 * sum(means) / len(means) if means else None, len(means))
    return out


def ranked_rows(
    rows: list[Row], cols: list[Column], min_benchmarks: int = MIN_RANKED_BENCHMARKS
) -> list[tuple[Row, int, WinRate, int | None]]:
    """(row, coverage, win rate, rank) in ranking order: by source (rescored first: its rows share one scorer), then
    more benchmarks covered, then the mean win rate — rows compared on fewer than ``min_benchmarks`` benchmarks come
    after the ranked rows of the same coverage and get no rank — then name. Rank counts within the pool (source and
    extraction tier; strict before flexible).
    """
    rates = win_rates(rows, cols)

    def key(row: Row) -> tuple[Any, ...]:
        rate = rates[row.id]
        ranked = rate.ranked(min_benchmarks)
        return (
            SOURCE_ORDER.get(row.source, 2),
            row.extract != "strict",
            -coverage(row, cols),
            not ranked,
            -(rate.mean or 0.0) if ranked else 0.0,
            row.model.lower(),
            row.id,
        )

    out = []
    counters: dict[tuple[str, str], int] = defaultdict(int)
    for row in sorted(rows, key=key):
        rate = rates[row.id]
        rank = None
        if rate.ranked(min_benchmarks):
            counters[row.pool] += 1
            rank = counters[row.pool]
        out.append((row, coverage(row, cols), rate, rank))
    return out


def transfer(rows: list[Row], cols: list[Benchmark]) -> list[tuple[Row, dict[Benchmark, float]]]:
    """Per benchmark, unified minus single-task main metric (sign flipped for lower-is-better: > 0 means joint
    training helps)."""
    by_id = {row.id: row for row in rows}
    out = []
    for row in rows:
        if row.paired_with is None or row.paired_with not in by_id:
            continue
        single = by_id[row.paired_with]
        deltas = {}
        for col in cols:
            joint, alone = row.main_value(col), single.main_value(col)
            if joint is None or alone is None:
                continue
            sign = 1.0 if higher_is_better(rows, col[0], main_metric(*col)) else -1.0
            deltas[col] = sign * (joint.value - alone.value)
        out.append((row, deltas))
    return out
