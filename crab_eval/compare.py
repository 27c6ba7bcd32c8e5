"""Regression check of a new result against a reference result, for CI.

Exact tier (``exact=True``): same annotation files, identical per-sample predictions (``pred_hash``) and identical
metrics; any change fails. Statistical tier: a paired bootstrap of ``d = (-1)^l (new - ref)`` per metric (positive
= new is better). The gated metrics are the task's main metric (default) or all of them (``metrics="all"``); a
gated metric is a regression where the upper end of its interval is below ``-tolerance``, i.e. the data rule out a
drop as small as the tolerance. With several gated metrics the intervals are Holm-corrected (step-down, ordered by
one-sided bootstrap p-values), so the chance that a run of equal quality fails stays at (1 - confidence) / 2
whatever the number of metrics. Pairing problems are errors (exit 2), never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from crab_eval.bootstrap import DEFAULT_BOOTSTRAP, bootstrap_runs, percentile_interval, task_rng
from crab_eval.errors import CrabEvalError
from crab_eval.pairing import METRIC_TOLERANCE, align_runs, check_stored_metrics, describe
from crab_eval.registry import get_task
from crab_eval.results import RunResult


@dataclass
class MetricCheck:
    metric: str
    higher_is_better: bool
    reference: float
    new: float
    change: float  # (-1)^l (new - ref): positive = better
    ci: tuple[float, float] = (math.nan, math.nan)
    verdict: str = "ok"  # ok | regression | changed (exact tier) | not gated
    gated: bool = True
    p_value: float = math.nan  # one-sided bootstrap p of "no drop beyond the tolerance"
    ci_holm: tuple[float, float] = (math.nan, math.nan)  # the interval at the metric's Holm level


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
    gate: str = "main"  # "main" or "all"

    @property
    def passed(self) -> bool:
        if self.mode == "exact" and self.n_changed_predictions:
            return False
        return all(c.verdict in ("ok", "not gated") for c in self.checks)


def _changed_predictions(ref_rows: tuple, new_rows: tuple) -> int | None:
    if not all("pred_hash" in r for r in (*ref_rows, *new_rows)):
        return None
    return sum(a["pred_hash"] != b["pred_hash"] for a, b in zip(ref_rows, new_rows, strict=True))


def one_sided_p_value(changes: np.ndarray, tolerance: float) -> float:
    """Bootstrap p-value of "the change is not below -tolerance": (#{d* >= -T} + 1) / (B + 1)."""
    finite = changes[~np.isnan(changes)]
    if finite.size == 0:
        return math.nan
    return float((np.count_nonzero(finite >= -tolerance) + 1) / (finite.size + 1))


def _holm_gate(checks: list[MetricCheck], reps: dict[str, np.ndarray], tolerance: float, confidence: float) -> None:
    """Holm's step-down over the gated metrics: the i-th smallest p is judged by its interval at the two-sided level
    1 - (1 - confidence) / (m - i); the first metric that is no regression stops the descent."""
    gated = sorted((c for c in checks if c.gated), key=lambda c: (math.isnan(c.p_value), c.p_value))
    rejecting = True
    for rank, check in enumerate(gated):
        level = 1.0 - (1.0 - confidence) / (len(gated) - rank)
        check.ci_holm = percentile_interval(reps[check.metric], level)
        rejecting = rejecting and not math.isnan(check.ci_holm[1]) and check.ci_holm[1] < -tolerance
        check.verdict = "regression" if rejecting else "ok"


def compare_results(
    new: RunResult,
    reference: RunResult,
    tolerance: float = 0.0,
    exact: bool = False,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
    metrics: str = "main",
    allow_version_mismatch: bool = False,
) -> CompareReport:
    if not 0.0 < confidence < 1.0:
        raise CrabEvalError(f"confidence must be between 0 and 1, got {confidence}")
    if tolerance < 0 or math.isnan(tolerance):
        raise CrabEvalError(f"the tolerance must be >= 0 metric points, got {tolerance}")
    if metrics not in ("main", "all"):
        raise CrabEvalError(f"metrics to gate must be 'main' or 'all', got {metrics!r}")
    labels = (describe(reference), describe(new))
    aligned = align_runs([reference, new], labels, allow_version_mismatch=allow_version_mismatch)
    task = get_task(aligned.task)
    ref_rows, new_rows = aligned.rows
    changed = _changed_predictions(ref_rows, new_rows)
    if exact and changed is None:
        raise CrabEvalError("--exact needs per-sample pred_hash in both results; re-score them with this version")
    names = [m.name for m in task.metrics if m.name in reference.metrics or m.name in new.metrics]
    main = task.main_metric_for_split(aligned.split)
    report = CompareReport(
        aligned.task, aligned.split, "exact" if exact else "statistical", tolerance, confidence,
        len(aligned.ids), changed, labels=labels, gate=metrics,
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
            gated = exact or metrics == "all" or name == main
            verdict = ("ok" if same else "changed") if gated else "not gated"
            flat = (change, change)
            report.checks.append(MetricCheck(name, higher, ref_v, new_v, change, flat, verdict, gated, ci_holm=flat))
        return report
    boot = bootstrap_runs(
        aligned.rows, task.aggregate, task_rng(seed, aligned.task), n_boot, aligned.groups, names, task.additive
    )
    check_stored_metrics(reference, dict(zip(names, boot.point[0], strict=True)), labels[0])
    check_stored_metrics(new, dict(zip(names, boot.point[1], strict=True)), labels[1])
    changes: dict[str, np.ndarray] = {}
    for name in names:
        higher = task.metric(name).higher_is_better
        point, reps = boot.metric(name)
        sign = 1.0 if higher else -1.0
        changes[name] = sign * (reps[:, 1] - reps[:, 0])
        check = MetricCheck(
            name, higher, float(point[0]), float(point[1]), float(sign * (point[1] - point[0])),
            percentile_interval(changes[name], confidence), gated=metrics == "all" or name == main,
            p_value=one_sided_p_value(changes[name], tolerance),
        )  # fmt: skip
        if not check.gated:
            check.verdict = "not gated"
        report.checks.append(check)
    _holm_gate(report.checks, changes, tolerance, confidence)
    return report
