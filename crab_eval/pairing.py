"""Line up result files item by item, or refuse with a clear error: never a silent mismatch.

Two results can be compared item by item only if they scored the same task and split against the same annotation
files (data fingerprint) and hold per-sample stats for exactly the same ids, each id in the same group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.registry import get_task
from crab_eval.results import RunResult

# Stored metrics and the aggregate of the stored per-sample stats must agree to this (0-100 scale).
METRIC_TOLERANCE = 1e-6


def describe(run: RunResult) -> str:
    """A short label for error messages and tables: the predictions file, else task/variant/seed."""
    source = run.provenance.get("result_file") or run.provenance.get("predictions_file")
    if source:
        return str(source)
    parts = [run.task]
    for key in ("model", "variant", "seed"):
        if key in run.run:
            parts.append(f"{key}={run.run[key]}")
    return " ".join(parts)


@dataclass(frozen=True)
class AlignedRuns:
    """Runs of one task and split, rows reordered to one common id order."""

    task: str
    split: str
    data_fingerprint: str
    ids: tuple[str, ...]
    groups: tuple[Any, ...]
    rows: tuple[tuple[Mapping[str, Any], ...], ...]  # rows[k][i] = stats of item ids[i] in run k

    @property
    def n_groups(self) -> int:
        return len(set(self.groups))


def _rows_by_id(run: RunResult, label: str) -> dict[str, Mapping[str, Any]]:
    if not run.samples:
        raise CrabEvalError(
            f"{label}: no per-sample stats (is the .samples.jsonl beside the result?); cannot pair without them"
        )
    by_id: dict[str, Mapping[str, Any]] = {}
    for row in run.samples:
        if "id" not in row:
            raise CrabEvalError(f"{label}: a per-sample row has no 'id'")
        if row["id"] in by_id:
            raise CrabEvalError(f"{label}: sample id {row['id']!r} appears twice in the per-sample stats")
        by_id[row["id"]] = row
    return by_id


def align_runs(runs: Sequence[RunResult], labels: Sequence[str] | None = None) -> AlignedRuns:
    """Check that ``runs`` can be paired item by item and return their rows in the first run's id order."""
    if not runs:
        raise CrabEvalError("no results to pair")
    labels = list(labels) if labels is not None else [describe(r) for r in runs]
    first, first_label = runs[0], labels[0]
    fingerprints = []
    for run, label in zip(runs, labels, strict=True):
        fingerprint = run.provenance.get("data_fingerprint")
        if not fingerprint:
            raise CrabEvalError(f"{label}: no data fingerprint in the provenance; cannot check the annotation files")
        fingerprints.append(fingerprint)
        if run.task != first.task:
            raise CrabEvalError(f"cannot pair task {run.task!r} ({label}) with task {first.task!r} ({first_label})")
        if run.split != first.split:
            raise CrabEvalError(
                f"cannot pair {first.task} split {run.split!r} ({label}) with split {first.split!r} ({first_label})"
            )
        if fingerprint != fingerprints[0]:
            raise CrabEvalError(
                f"{first.task}/{first.split}: {label} and {first_label} were scored against different annotation "
                f"files (data fingerprints {fingerprint[:19]}... vs {fingerprints[0][:19]}...)"
            )
    reference = _rows_by_id(first, first_label)
    ids = tuple(reference)
    groups = tuple(reference[i].get("group", i) for i in ids)
    aligned = [tuple(reference[i] for i in ids)]
    for run, label in zip(runs[1:], labels[1:], strict=True):
        by_id = _rows_by_id(run, label)
        if by_id.keys() != reference.keys():
            missing = sorted(reference.keys() - by_id.keys())
            extra = sorted(by_id.keys() - reference.keys())
            detail = "; ".join(
                f"{what} {len(found)} ids (e.g. {found[0]!r})"
                for what, found in (("lacks", missing), ("has extra", extra))
                if found
            )
            raise CrabEvalError(
                f"{first.task}/{first.split}: {label} is not on the same items as {first_label}: {detail}"
            )
        rows = tuple(by_id[i] for i in ids)
        for item_id, group, row in zip(ids, groups, rows, strict=True):
            if row.get("group", item_id) != group:
                raise CrabEvalError(
                    f"{first.task}: item {item_id!r} is in group {row.get('group')!r} in {label} "
                    f"but in {group!r} in {first_label}"
                )
        aligned.append(rows)
    return AlignedRuns(first.task, first.split, fingerprints[0], ids, groups, tuple(aligned))


def check_stored_metrics(run: RunResult, recomputed: Mapping[str, float], label: str) -> None:
    """The stored metrics must be the aggregate of the stored stats: otherwise the stats or the task changed."""
    for name, stored in run.metrics.items():
        value = recomputed.get(name)
        if value is None or not math.isclose(float(stored), float(value), rel_tol=0.0, abs_tol=METRIC_TOLERANCE):
            raise CrabEvalError(
                f"{label}: stored {name}={stored} but the per-sample stats aggregate to {value} "
                f"(task {run.task!r} changed since scoring? re-score the predictions)"
            )


def main_metric_of(task_id: str, split: str) -> tuple[str, bool]:
    """(main metric of the split, higher is better) as the registered task declares them."""
    task = get_task(task_id)
    main = task.main_metric_for_split(split)
    return main, task.metric(main).higher_is_better
