"""Single-task vs. unified: per-task change of the main metric with paired-bootstrap intervals and verdicts.

Definitions follow docs/transfer.md. For task t with main metric m (l = 1 if lower is better):
``abs_change = (-1)^l (U - S)`` in metric points and ``rel_change = Delta_t = (-1)^l (U - S) / S * 100``; positive
means the unified run is better. S and U are means over the seeds given for each arm.

Intervals come from one bootstrap per task: each replicate resamples the items (clusters of items sharing a clip),
applies that draw to every run of both arms (paired; the test set is common to all runs, so items are crossed with
seeds, not nested in them), then, with several seeds, resamples the seeds of each arm (hierarchical).
Verdicts: a two-sided bootstrap p-value of "no change" per task, Holm's step-down correction across tasks; a task is
negative (positive) only if Holm rejects and its interval at the Holm level lies wholly below (above) zero.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from crab_eval.bootstrap import (
    DEFAULT_BOOTSTRAP,
    bootstrap_runs,
    holm,
    percentile_interval,
    resample_seeds,
    two_sided_p_value,
)
from crab_eval.errors import CrabEvalError
from crab_eval.pairing import align_runs, check_stored_metrics, describe, main_metric_of
from crab_eval.registry import get_task
from crab_eval.results import RunResult

DELTA_M_VARIANT = (
    "Delta_m (Maninis et al. 2019; Vandenhende et al. TPAMI 2021): mean over tasks of each task's main-metric "
    "relative change, baseline = the single-task runs"
)
CORRECTION = "Holm (1979) step-down over the tasks, two-sided bootstrap p-values"
BOOTSTRAP_SCHEME = (
    "paired percentile bootstrap: items resampled by cluster (group), one draw shared by all runs; "
    "seeds of each arm resampled per replicate when several are given (hierarchical)"
)


@dataclass
class ArmSummary:
    """One arm (single or unified) of one task: the main metric of each seed, their mean and std."""

    seeds: list[Any]
    values: list[float]
    mean: float
    std: float | None  # sample std (ddof=1) over seeds; None with one seed


@dataclass
class TaskTransfer:
    task: str
    split: str
    metric: str
    higher_is_better: bool
    n_items: int
    n_groups: int
    single: ArmSummary
    unified: ArmSummary
    abs_change: float
    rel_change: float | None  # None where the baseline is 0
    abs_ci: tuple[float, float]
    rel_ci: tuple[float, float]
    p_value: float
    p_holm: float = math.nan
    holm_confidence: float = math.nan  # the level of the task's corrected interval, 1 - alpha / (T - rank)
    abs_ci_holm: tuple[float, float] = (math.nan, math.nan)
    rel_ci_holm: tuple[float, float] = (math.nan, math.nan)
    verdict: str = "neutral"
    # Replicates are kept for the Delta_m interval and plots; not written to JSON.
    abs_replicates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    rel_replicates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)


@dataclass
class TransferReport:
    tasks: list[TaskTransfer]
    n_boot: int
    seed: int
    confidence: float
    alpha: float
    delta_m: float | None
    delta_m_ci: tuple[float, float]
    delta_m_tasks: list[str]
    nt_percent: float
    pt_percent: float
    worst_task: str | None
    worst_rel_change: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        tasks = []
        for t in self.tasks:
            row = asdict(t)
            row.pop("abs_replicates")
            row.pop("rel_replicates")
            tasks.append(row)
        return {
            "kind": "crab-eval transfer",
            "version": 1,
            "baseline": "single-task runs (S); compared: unified runs (U)",
            "delta_m": {
                "variant": DELTA_M_VARIANT,
                "value": self.delta_m,
                "ci": _finite(list(self.delta_m_ci)),
                "tasks": self.delta_m_tasks,
            },
            "nt_percent": self.nt_percent,
            "pt_percent": self.pt_percent,
            "worst_task": {"task": self.worst_task, "rel_change": self.worst_rel_change},
            "correction": CORRECTION,
            "alpha": self.alpha,
            "bootstrap": {
                "scheme": BOOTSTRAP_SCHEME,
                "replicates": self.n_boot,
                "seed": self.seed,
                "confidence": self.confidence,
            },
            "notes": self.notes,
            "tasks": _finite(tasks),
        }


def _finite(obj: Any) -> Any:
    """NaN -> None, tuples -> lists: strict JSON."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def task_rng(seed: int, task: str) -> np.random.Generator:
    """A task's stream depends on the seed and its id only: adding a task does not move the others' intervals."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(task.encode())]))


def _arm(runs: Sequence[RunResult], values: np.ndarray) -> ArmSummary:
    vals = [float(v) for v in values]
    return ArmSummary(
        seeds=[r.run.get("seed") for r in runs],
        values=vals,
        mean=float(np.mean(vals)),
        std=float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
    )


def _check_arm(runs: Sequence[RunResult], arm: str) -> None:
    seeds = [r.run.get("seed") for r in runs]
    given = [s for s in seeds if s is not None]
    if len(given) != len(set(map(str, given))):
        raise CrabEvalError(f"{runs[0].task}: the {arm} runs repeat a seed ({seeds}); was a result given twice?")
    hashes = [r.provenance.get("predictions_sha256") for r in runs]
    known = [h for h in hashes if h]
    if len(known) != len(set(known)):
        raise CrabEvalError(f"{runs[0].task}: two {arm} results score the same prediction file; give each run once")


def compare_task(
    single: Sequence[RunResult],
    unified: Sequence[RunResult],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
) -> TaskTransfer:
    """One task's single-vs-unified comparison (no correction across tasks yet)."""
    _check_arm(single, "single")
    _check_arm(unified, "unified")
    runs = [*single, *unified]
    aligned = align_runs(runs)
    task = get_task(aligned.task)
    metric, higher = main_metric_of(aligned.task, aligned.split)
    rng = task_rng(seed, aligned.task)
    boot = bootstrap_runs(aligned.rows, task.aggregate, rng, n_boot, aligned.groups)
    for k, run in enumerate(runs):
        check_stored_metrics(run, dict(zip(boot.metrics, boot.point[k], strict=True)), describe(run))
    if metric not in boot.metrics:
        raise CrabEvalError(f"task {aligned.task!r} did not produce its main metric {metric!r}")
    point, reps = boot.metric(metric)
    n_single = len(single)
    s_arm, u_arm = _arm(single, point[:n_single]), _arm(unified, point[n_single:])
    s_reps = resample_seeds(reps[:, :n_single], rng)
    u_reps = resample_seeds(reps[:, n_single:], rng)
    sign = 1.0 if higher else -1.0
    abs_reps = sign * (u_reps - s_reps)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_reps = np.where(s_reps != 0, abs_reps / s_reps * 100.0, np.nan)
    abs_change = sign * (u_arm.mean - s_arm.mean) + 0.0  # + 0.0: no "-0.00"
    rel_change = abs_change / s_arm.mean * 100.0 if s_arm.mean != 0 else None
    return TaskTransfer(
        task=aligned.task,
        split=aligned.split,
        metric=metric,
        higher_is_better=higher,
        n_items=len(aligned.ids),
        n_groups=aligned.n_groups,
        single=s_arm,
        unified=u_arm,
        abs_change=float(abs_change),
        rel_change=None if rel_change is None else float(rel_change),
        abs_ci=percentile_interval(abs_reps, confidence),
        rel_ci=percentile_interval(rel_reps, confidence),
        p_value=two_sided_p_value(abs_reps),
        abs_replicates=abs_reps,
        rel_replicates=rel_reps,
    )


def _split_by_task(runs: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    by_task: dict[str, list[RunResult]] = {}
    for run in runs:
        by_task.setdefault(run.task, []).append(run)
    return by_task


def compute_transfer(
    single: Sequence[RunResult],
    unified: Sequence[RunResult],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
    progress: Callable[[str], None] | None = None,
) -> TransferReport:
    """The transfer table: every task present in both arms; a task in only one arm is an error.

    ``progress`` receives one line per task before its bootstrap starts (the slow part: B x runs aggregates).
    """
    if not 0.0 < confidence < 1.0:
        raise CrabEvalError(f"confidence must be between 0 and 1, got {confidence}")
    single_by, unified_by = _split_by_task(single), _split_by_task(unified)
    if not single_by or not unified_by:
        raise CrabEvalError("transfer needs at least one single-task and one unified result")
    only_single, only_unified = (
        sorted(single_by.keys() - unified_by.keys()),
        sorted(unified_by.keys() - single_by.keys()),
    )
    if only_single or only_unified:
        raise CrabEvalError(
            "every task needs results in both arms; "
            + "; ".join(
                f"{what}: {', '.join(found)}"
                for what, found in (("single only", only_single), ("unified only", only_unified))
                if found
            )
        )
    rows = []
    for task in sorted(single_by):
        if progress is not None:
            n_runs = len(single_by[task]) + len(unified_by[task])
            progress(f"{task}: bootstrapping {n_runs} runs x {n_boot} replicates")
        rows.append(compare_task(single_by[task], unified_by[task], n_boot, seed, confidence))
    return summarise(rows, n_boot, seed, confidence)


def summarise(rows: list[TaskTransfer], n_boot: int, seed: int, confidence: float) -> TransferReport:
    """Holm across tasks, verdicts, NT%/PT%, worst task and Delta_m."""
    alpha = 1.0 - confidence
    notes: list[str] = []
    adjusted, divisors = holm([r.p_value for r in rows])
    if 2.0 / (n_boot + 1) * len(rows) >= alpha:
        notes.append(
            f"{n_boot} replicates cannot reach Holm significance for {len(rows)} tasks "
            f"(smallest p = {2.0 / (n_boot + 1):.4f}); raise --bootstrap"
        )
    for row, p_adj, divisor in zip(rows, adjusted, divisors, strict=True):
        row.p_holm = float(p_adj)
        if math.isnan(divisor):
            continue
        row.holm_confidence = 1.0 - alpha / float(divisor)
        row.abs_ci_holm = percentile_interval(row.abs_replicates, row.holm_confidence)
        row.rel_ci_holm = percentile_interval(row.rel_replicates, row.holm_confidence)
        if p_adj < alpha and row.abs_ci_holm[1] < 0:
            row.verdict = "negative"
        elif p_adj < alpha and row.abs_ci_holm[0] > 0:
            row.verdict = "positive"
    n = len(rows)
    with_rel = [r for r in rows if r.rel_change is not None]
    if len(with_rel) < n:
        notes.append(
            "relative change undefined (single-task metric 0) for "
            + ", ".join(r.task for r in rows if r.rel_change is None)
            + "; left out of Delta_m"
        )
    delta_m = float(np.mean([r.rel_change for r in with_rel])) if with_rel else None
    delta_m_ci: tuple[float, float] = (math.nan, math.nan)
    if with_rel:
        # Tasks are scored on disjoint items with independent streams, so per-replicate means of independent task
        # replicates are a valid bootstrap of the mean.
        delta_m_ci = percentile_interval(np.mean([r.rel_replicates for r in with_rel], axis=0), confidence)
    # Worst by relative change where it is defined; by absolute change only if it is defined nowhere.
    worst = min(with_rel, key=lambda r: r.rel_change or 0.0) if with_rel else min(rows, key=lambda r: r.abs_change)
    return TransferReport(
        tasks=rows,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
        alpha=alpha,
        delta_m=delta_m,
        delta_m_ci=delta_m_ci,
        delta_m_tasks=[r.task for r in with_rel],
        nt_percent=100.0 * sum(r.verdict == "negative" for r in rows) / n,
        pt_percent=100.0 * sum(r.verdict == "positive" for r in rows) / n,
        worst_task=worst.task,
        worst_rel_change=worst.rel_change,
        notes=notes,
    )
