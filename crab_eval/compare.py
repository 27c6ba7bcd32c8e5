"""Regression check of a new result against a reference result, for CI.

Exact tier (``exact=True``): same annotation files, identical per-sample predictions (``pred_hash``) and identical
metrics; any change fails. Statistical tier: per metric, a paired bootstrap of ``d = (-1)^l (new - ref)`` (positive
= new is better); a regression where the upper end of its interval is below ``-tolerance``, i.e. the data rule out
a drop as small as the tolerance. Pairing problems are errors (exit 2), never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from crab_eval.bootstrap import DEFAULT_BOOTSTRAP, bootstrap_runs, percentile_interval
from crab_eval.errors import CrabEvalError
from crab_eval.pairing import METRIC_TOLERANCE, align_runs, check_stored_metrics, describe
from crab_eval.registry import get_task
from crab_eval.reports.table import format_table
from crab_eval.results import RunResult
from crab_eval.transfer import task_rng


@dataclass
class MetricCheck:
    metric: str
    higher_is_better: bool
    reference: float
    new: float
    change: float  # (-1)^l (new - ref): positive = better
    ci: tuple[float, float] = (math.nan, math.nan)
    verdict: str = "ok"  # ok | regression | changed (exact tier)


@dataclass
class CompareReport:
    task: str
    split: str
    mode: str  # "exact" or "statistical"
    tolerance: float
    confidence: float
    n_items: int
    n_changed_predictions: int | None  # None when the rows carry no pred_hash
    checks: list[MetricCheck] = field(default_factory=list)
    labels: tuple[str, str] = ("", "")

    @property
    def passed(self) -> bool:
        if self.mode == "exact" and self.n_changed_predictions:
            return False
        return all(c.verdict == "ok" for c in self.checks)


def _changed_predictions(ref_rows: tuple, new_rows: tuple) -> int | None:
    if not all("pred_hash" in r for r in (*ref_rows, *new_rows)):
        return None
    return sum(a["pred_hash"] != b["pred_hash"] for a, b in zip(ref_rows, new_rows, strict=True))


def compare_results(
    new: RunResult,
    reference: RunResult,
    tolerance: float = 0.0,
    exact: bool = False,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
) -> CompareReport:
    if not 0.0 < confidence < 1.0:
        raise CrabEvalError(f"confidence must be between 0 and 1, got {confidence}")
    if tolerance < 0 or math.isnan(tolerance):
        raise CrabEvalError(f"the tolerance must be >= 0 metric points, got {tolerance}")
    labels = (describe(reference), describe(new))
    aligned = align_runs([reference, new], labels)
    task = get_task(aligned.task)
    ref_rows, new_rows = aligned.rows
    changed = _changed_predictions(ref_rows, new_rows)
    if exact and changed is None:
        raise CrabEvalError("--exact needs per-sample pred_hash in both results; re-score them with this version")
    names = [m.name for m in task.metrics if m.name in reference.metrics or m.name in new.metrics]
    report = CompareReport(
        aligned.task, aligned.split, "exact" if exact else "statistical", tolerance, confidence,
        len(aligned.ids), changed, labels=labels,
    )  # fmt: skip
    if exact or ref_rows == new_rows:
        # Identical per-sample stats need no bootstrap: every replicate difference would be exactly 0.
        ref_point, new_point = task.aggregate(ref_rows), task.aggregate(new_rows)
        check_stored_metrics(reference, ref_point, labels[0])
        check_stored_metrics(new, new_point, labels[1])
        for name in names:
            higher = task.metric(name).higher_is_better
            ref_v, new_v = ref_point.get(name, math.nan), new_point.get(name, math.nan)
            change = (1.0 if higher else -1.0) * (new_v - ref_v) + 0.0  # + 0.0: no "-0.00"
            same = math.isclose(ref_v, new_v, abs_tol=METRIC_TOLERANCE) or (math.isnan(ref_v) and math.isnan(new_v))
            verdict = "ok" if same else "changed"
            report.checks.append(MetricCheck(name, higher, ref_v, new_v, change, (change, change), verdict))
        return report
    boot = bootstrap_runs(aligned.rows, task.aggregate, task_rng(seed, aligned.task), n_boot, aligned.groups, names)
    check_stored_metrics(reference, dict(zip(names, boot.point[0], strict=True)), labels[0])
    check_stored_metrics(new, dict(zip(names, boot.point[1], strict=True)), labels[1])
    for name in names:
        higher = task.metric(name).higher_is_better
        point, reps = boot.metric(name)
        sign = 1.0 if higher else -1.0
        ci = percentile_interval(sign * (reps[:, 1] - reps[:, 0]), confidence)
        check = MetricCheck(name, higher, float(point[0]), float(point[1]), float(sign * (point[1] - point[0])), ci)
        if not np.isnan(ci[1]) and ci[1] < -tolerance:
            check.verdict = "regression"
        report.checks.append(check)
    return report


def format_report(report: CompareReport) -> str:
    def num(x: float, signed: bool = False) -> str:
        return "n/a" if math.isnan(x) else (f"{x:+.2f}" if signed else f"{x:.2f}")

    level = f"{100 * report.confidence:.0f}% CI"
    rows = [
        [c.metric + (" ↑" if c.higher_is_better else " ↓"), num(c.reference), num(c.new), num(c.change, True),
         f"[{num(c.ci[0], True)}, {num(c.ci[1], True)}]", c.verdict.upper() if c.verdict != "ok" else "ok"]
        for c in report.checks
    ]  # fmt: skip
    table = format_table(["metric", "reference", "new", "change", level, "verdict"], rows)
    changed = "unknown (no pred_hash)" if report.n_changed_predictions is None else str(report.n_changed_predictions)
    if report.mode == "exact":
        rule = "exact: identical predictions and metrics required"
    else:
        bound = f"-{report.tolerance:g}" if report.tolerance else "0"
        rule = f"statistical: regression if the upper end of the {level} of the change is below {bound}"
    lines = [
        f"{report.task}/{report.split}: new {report.labels[1]} vs. reference {report.labels[0]}",
        table,
        f"{report.n_items} items, predictions changed: {changed}; change = (-1)^l (new - ref), positive = better",
        f"rule: {rule}",
        "PASS" if report.passed else "FAIL",
    ]
    return "\n".join(lines)
