"""Single-task vs. unified: per-task change of the main metric, with both noise sources, and verdicts.

Definitions follow docs/transfer.md. For task t with main metric m (l = 1 if lower is better):
``abs_change = (-1)^l (U - S)`` in metric points and ``rel_change = Delta_t = (-1)^l (U - S) / S * 100``; positive
means the unified run is better. S and U are means over the seeds given for each arm.

Noise: the paired item bootstrap (clusters of items sharing a clip, one draw shared by every run) measures the test
set's part; the spread of the per-seed scores measures training noise (``crab_eval.variance_components``). Intervals
and p-values are Student t with Satterthwaite degrees of freedom. With one seed per arm, training noise is
unmeasured unless the user supplies its scale; then the table shows test-set intervals and no verdict.

Verdicts, Holm-corrected across the tasks that can have one: negative / positive (the change is significant),
equivalent (TOST within +-margin % of S is significant), inconclusive (neither, or training noise unmeasured).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crab_eval.bootstrap import DEFAULT_BOOTSTRAP, bootstrap_runs, holm, task_rng
from crab_eval.errors import CrabEvalError
from crab_eval.io import strict_json
from crab_eval.pairing import align_runs, check_arm, check_arms, check_stored_metrics, describe, main_metric_of
from crab_eval.registry import get_task
from crab_eval.results import RunResult
from crab_eval.variance_components import ASSUMED, UNMEASURED, ArmNoise, Change, combine, estimate_change

DELTA_M_VARIANT = (
    "Delta_m (Maninis et al. 2019; Vandenhende et al. TPAMI 2021): mean over tasks of each task's main-metric "
    "relative change, baseline = the single-task runs"
)
CORRECTION = "Holm (1979) step-down over the tasks with measured training noise, t tests (Satterthwaite df)"
NOISE_MODEL = (
    "two sources: test items (paired cluster bootstrap, one draw shared by all runs) and training seeds "
    "(spread of the per-seed scores); t intervals with Welch-Satterthwaite df"
)
DEFAULT_MARGIN = 2.0  # equivalence margin, % of the single-task score
VERDICTS = ("negative", "positive", "equivalent", "inconclusive")


@dataclass
class ArmSummary:
    """One arm (single or unified) of one task: the main metric of each seed, their mean and std, and failures."""

    seeds: list[Any]
    values: list[float]
    mean: float
    std: float | None  # sample std (ddof=1) over seeds; None with one seed
    n_samples: int = 0
    n_missing: list[int] = field(default_factory=list)  # per run
    n_unparsed: list[int] = field(default_factory=list)  # per run


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
    se: float
    df: float
    se_items: float
    se_seeds: float
    training_noise: str  # measured | borrowed | assumed | unmeasured
    training_noise_detail: str
    abs_ci: tuple[float, float]
    rel_ci: tuple[float, float]
    p_value: float
    margin: float  # equivalence margin in metric points (DEFAULT_MARGIN % of S unless set)
    p_equivalent: float
    detectable_change: float  # smallest change found with 80% power at alpha (two-sided, uncorrected), points
    p_holm: float = math.nan
    p_equivalent_holm: float = math.nan
    holm_confidence: float = math.nan  # the level of the task's corrected interval, 1 - alpha / (T - rank)
    abs_ci_holm: tuple[float, float] = (math.nan, math.nan)
    rel_ci_holm: tuple[float, float] = (math.nan, math.nan)
    verdict: str = "inconclusive"
    # Kept for Delta_m; not written to JSON.
    change: Change | None = field(default=None, repr=False)
    arm_noise: tuple[ArmNoise, ArmNoise] | None = field(default=None, repr=False)

    def relative(self, value: float) -> float:
        """A change in points as % of the single-task score (the score taken as fixed)."""
        return value / abs(self.single.mean) * 100.0 if self.single.mean != 0 else math.nan


@dataclass
class TransferReport:
    tasks: list[TaskTransfer]
    n_boot: int
    seed: int
    confidence: float
    alpha: float
    margin_percent: float
    delta_m: float | None
    delta_m_ci: tuple[float, float]
    delta_m_tasks: list[str]
    delta_m_noise: str
    nt_percent: float  # share of tasks with a significant negative verdict
    pt_percent: float
    nt_point_percent: float  # share of tasks whose point estimate is negative (Crab+'s reading)
    pt_point_percent: float
    equivalent_percent: float
    inconclusive_percent: float
    worst_task: str | None
    worst_rel_change: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        skip = {"change", "arm_noise"}
        tasks = [{k: v for k, v in vars(t).items() if k not in skip} for t in self.tasks]
        for row, t in zip(tasks, self.tasks, strict=True):
            row["single"], row["unified"] = vars(t.single), vars(t.unified)
        return strict_json(
            {
                "kind": "crab-eval transfer",
                "version": 2,
                "baseline": "single-task runs (S); compared: unified runs (U)",
                "delta_m": {
                    "variant": DELTA_M_VARIANT,
                    "value": self.delta_m,
                    "ci": list(self.delta_m_ci),
                    "tasks": self.delta_m_tasks,
                    "training_noise": self.delta_m_noise,
                },
                "nt_percent": self.nt_percent,
                "pt_percent": self.pt_percent,
                "nt_point_percent": self.nt_point_percent,
                "pt_point_percent": self.pt_point_percent,
                "equivalent_percent": self.equivalent_percent,
                "inconclusive_percent": self.inconclusive_percent,
                "worst_task": {"task": self.worst_task, "rel_change": self.worst_rel_change},
                "correction": CORRECTION,
                "noise_model": NOISE_MODEL,
                "alpha": self.alpha,
                "equivalence_margin_percent": self.margin_percent,
                "bootstrap": {"replicates": self.n_boot, "seed": self.seed, "confidence": self.confidence},
                "notes": self.notes,
                "tasks": tasks,
            }
        )


def _arm(runs: Sequence[RunResult], values: np.ndarray) -> ArmSummary:
    vals = [float(v) for v in values]
    return ArmSummary(
        seeds=[r.run.get("seed") for r in runs],
        values=vals,
        mean=float(np.mean(vals)),
        std=float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
        n_samples=runs[0].n_samples,
        n_missing=[r.n_missing for r in runs],
        n_unparsed=[r.n_unparsed for r in runs],
    )


def _by_seed(runs: Sequence[RunResult]) -> list[RunResult]:
    """Runs in seed order (unrecorded seeds last, in the given order): the unified arm's run k is one model."""
    return sorted(runs, key=lambda r: (r.run.get("seed") is None, str(r.run.get("seed"))))


def compare_task(
    single: Sequence[RunResult],
    unified: Sequence[RunResult],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
    seed_sd: float | None = None,
    margin_percent: float = DEFAULT_MARGIN,
    allow_version_mismatch: bool = False,
) -> TaskTransfer:
    """One task's single-vs-unified comparison (no correction across tasks yet)."""
    check_arm(single, "single")
    check_arm(unified, "unified")
    single, unified = _by_seed(single), _by_seed(unified)
    runs = [*single, *unified]
    aligned = align_runs(runs, allow_version_mismatch=allow_version_mismatch)
    task = get_task(aligned.task)
    metric, higher = main_metric_of(aligned.task, aligned.split)
    boot = bootstrap_runs(
        aligned.rows, task.aggregate, task_rng(seed, aligned.task), n_boot, aligned.groups, additive=task.additive
    )
    for k, run in enumerate(runs):
        check_stored_metrics(run, dict(zip(boot.metrics, boot.point[k], strict=True)), describe(run))
    if metric not in boot.metrics:
        raise CrabEvalError(f"task {aligned.task!r} did not produce its main metric {metric!r}")
    point, reps = boot.metric(metric)
    if np.isnan(point).any():
        raise CrabEvalError(f"{aligned.task}: the main metric {metric!r} is undefined in a run")
    n_single = len(single)
    noise = ArmNoise(point[:n_single], reps[:, :n_single]), ArmNoise(point[n_single:], reps[:, n_single:])
    sign = 1.0 if higher else -1.0
    change = estimate_change(*noise, sign, aligned.n_groups, seed_sd)
    s_arm, u_arm = _arm(single, point[:n_single]), _arm(unified, point[n_single:])
    margin = margin_percent / 100.0 * abs(s_arm.mean)
    row = TaskTransfer(
        task=aligned.task,
        split=aligned.split,
        metric=metric,
        higher_is_better=higher,
        n_items=len(aligned.ids),
        n_groups=aligned.n_groups,
        single=s_arm,
        unified=u_arm,
        abs_change=change.estimate,
        rel_change=change.estimate / s_arm.mean * 100.0 if s_arm.mean != 0 else None,
        se=change.se,
        df=change.df,
        se_items=math.sqrt(change.v_items),
        se_seeds=math.sqrt(change.v_seeds),
        training_noise=change.noise,
        training_noise_detail=change.noise_detail,
        abs_ci=change.interval(confidence),
        rel_ci=(math.nan, math.nan),
        p_value=change.p_value(),
        margin=margin,
        p_equivalent=change.p_equivalent(margin),
        detectable_change=change.detectable(1.0 - confidence),
        change=change,
        arm_noise=noise,
    )
    row.rel_ci = (row.relative(row.abs_ci[0]), row.relative(row.abs_ci[1]))
    return row


def _split_by_task(runs: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    by_task: dict[str, list[RunResult]] = {}
    for run in runs:
        by_task.setdefault(run.task, []).append(run)
    return by_task


def _seed_sd_for(seed_sd: float | Mapping[str, float] | None, task: str) -> float | None:
    if seed_sd is None or isinstance(seed_sd, int | float):
        return None if seed_sd is None else float(seed_sd)
    return seed_sd.get(task, seed_sd.get("*"))


def compute_transfer(
    single: Sequence[RunResult],
    unified: Sequence[RunResult],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
    progress: Callable[[str], None] | None = None,
    seed_sd: float | Mapping[str, float] | None = None,
    margin_percent: float = DEFAULT_MARGIN,
    allow_version_mismatch: bool = False,
) -> TransferReport:
    """The transfer table: every task present in both arms; a task in only one arm is an error.

    ``seed_sd``: the training seed-to-seed standard deviation of the main metric (points), one number for every task
    or ``{task: sd}`` (``"*"`` for the rest); used only where both arms have a single seed.
    ``progress`` receives one line per task before its bootstrap starts.
    """
    if not 0.0 < confidence < 1.0:
        raise CrabEvalError(f"confidence must be between 0 and 1, got {confidence}")
    if margin_percent < 0 or math.isnan(margin_percent):
        raise CrabEvalError(f"the equivalence margin must be >= 0 (% of the single-task score), got {margin_percent}")
    if n_boot < 2:
        raise CrabEvalError(f"the bootstrap needs at least 2 replicates, got {n_boot}")
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
    if isinstance(seed_sd, Mapping):
        unknown = sorted(set(seed_sd) - set(single_by) - {"*"})
        if unknown:
            tasks = ", ".join(sorted(single_by))
            raise CrabEvalError(
                f"--seed-sd names tasks that are not in the table: {', '.join(unknown)} (tasks: {tasks})"
            )
    rows: list[TaskTransfer] = []
    arm_notes: dict[str, list[str]] = {}  # note -> the tasks it is about
    for task in sorted(single_by):
        for note in check_arms(single_by[task], unified_by[task]):
            arm_notes.setdefault(note, []).append(task)
        if progress is not None:
            n_runs = len(single_by[task]) + len(unified_by[task])
            progress(f"{task}: bootstrapping {n_runs} runs x {n_boot} replicates")
        sd = _seed_sd_for(seed_sd, task)
        if sd is not None and (sd < 0 or math.isnan(sd)):
            raise CrabEvalError(f"{task}: the seed standard deviation must be >= 0, got {sd}")
        row = compare_task(
            single_by[task], unified_by[task], n_boot, seed, confidence, sd, margin_percent, allow_version_mismatch
        )
        if sd is not None and row.training_noise != ASSUMED:
            arm_notes.setdefault("the supplied seed sd was not used; the spread is measured from the seeds", []).append(
                task
            )
        rows.append(row)
    notes = [f"{note}: {', '.join(tasks)}" for note, tasks in arm_notes.items()]
    return summarise(rows, n_boot, seed, confidence, margin_percent, notes)


def _holm_verdicts(rows: list[TaskTransfer], alpha: float) -> None:
    """Holm over the tasks that can have a verdict: once for "changed", once (TOST) for "equivalent"."""
    family = [r for r in rows if r.change is not None and r.change.verdict_possible]
    adjusted, divisors = holm([r.p_value for r in family])
    adjusted_eq, _ = holm([r.p_equivalent for r in family])
    for row, p_adj, p_eq, divisor in zip(family, adjusted, adjusted_eq, divisors, strict=True):
        assert row.change is not None
        row.p_holm, row.p_equivalent_holm = float(p_adj), float(p_eq)
        row.holm_confidence = 1.0 - alpha / float(divisor)
        row.abs_ci_holm = row.change.interval(row.holm_confidence)
        row.rel_ci_holm = (row.relative(row.abs_ci_holm[0]), row.relative(row.abs_ci_holm[1]))
        if p_adj < alpha:
            row.verdict = "negative" if row.abs_change < 0 else "positive"
        elif p_eq < alpha:
            row.verdict = "equivalent"


def _delta_m(rows: list[TaskTransfer]) -> tuple[Change | None, str]:
    """Delta_m with both noise sources. The unified arm's run k is one model for every task, so its seed effects
    are shared across tasks. Where every task has the same unified seeds and the same number of single seeds,
    Delta_m is computed per seed and its spread measured directly. Otherwise the tasks' changes are combined term by
    term (``combine``): the unified part measured per seed where the unified seeds line up, else bounded."""
    parts = [r for r in rows if r.rel_change is not None and r.change is not None and r.arm_noise is not None]
    if not parts:
        return None, ""
    weights = [(1.0 if r.higher_is_better else -1.0) * 100.0 / (len(parts) * r.single.mean) for r in parts]
    unified_seeds = {tuple(map(str, r.unified.seeds)) for r in parts}
    single_k = {len(r.single.values) for r in parts}
    unified_aligned = len(unified_seeds) == 1 and None not in parts[0].unified.seeds
    k_unified = len(parts[0].unified.values)
    if unified_aligned and len(single_k) == 1 and max(*single_k, k_unified) >= 2:
        arms = [_weighted_arm(parts, weights, side) for side in (0, 1)]
        change = estimate_change(arms[0], arms[1], 1.0, sum(r.n_groups for r in parts))
        return change, "computed per seed: the unified seeds are the same models across tasks"
    changes: list[Change] = [r.change for r in parts if r.change is not None]
    measured = None
    if unified_aligned and k_unified >= 2 and all(c.noise != UNMEASURED for c in changes):
        measured = (_weighted_arm(parts, weights, 1).seed_variance() / k_unified, k_unified - 1.0)
        detail = "tasks combined, the unified seeds' shared effect measured per seed"
    elif any(c.unified_seed[0] > 0.0 for c in changes):
        detail = "tasks combined, the unified model's seed effect bounded as fully shared"
    elif all(c.noise == UNMEASURED for c in changes):
        # Measured: such an interval misses a true Delta_m of 0 in 61 % of A/A studies (docs/transfer.md).
        detail = "the interval covers test items only"
    else:
        detail = "tasks taken as independent"
    # Each change is already signed (positive = better): only the scale of Delta_t remains.
    scaled = [(100.0 / (len(parts) * r.single.mean), c) for r, c in zip(parts, changes, strict=True)]
    return combine(scaled, detail, measured), detail


def _weighted_arm(parts: list[TaskTransfer], weights: list[float], side: int) -> ArmNoise:
    """One arm's per-seed sum over tasks, sum_t w_t Y_{t,k}, with its item replicates. Tasks' item draws are
    independent streams: replicate b of every task together is a joint draw."""
    arms = [r.arm_noise[side] for r in parts]  # type: ignore[index]
    values = np.sum([w * a.values for w, a in zip(weights, arms, strict=True)], axis=0)
    replicates = np.sum([w * a.replicates for w, a in zip(weights, arms, strict=True)], axis=0)
    return ArmNoise(values, replicates)


def summarise(
    rows: list[TaskTransfer],
    n_boot: int,
    seed: int,
    confidence: float,
    margin_percent: float = DEFAULT_MARGIN,
    notes: list[str] | None = None,
) -> TransferReport:
    """Holm across tasks, verdicts, NT%/PT% (two readings), worst task and Delta_m."""
    alpha = 1.0 - confidence
    notes = list(notes or [])
    _holm_verdicts(rows, alpha)
    unmeasured = [r.task for r in rows if r.training_noise == UNMEASURED]
    if unmeasured:
        notes.append(
            "training noise unmeasured (one seed per arm) for " + ", ".join(unmeasured) + ": their intervals cover "
            "test-set noise only and their verdict is inconclusive; train more seeds of either arm, or supply the "
            "seed-to-seed spread (--seed-sd)"
        )
    n = len(rows)
    with_rel = [r for r in rows if r.rel_change is not None]
    if len(with_rel) < n:
        notes.append(
            "relative change undefined (single-task metric 0) for "
            + ", ".join(r.task for r in rows if r.rel_change is None)
            + "; left out of Delta_m"
        )
    change, detail = _delta_m(rows)
    delta_m_ci = change.interval(confidence) if change is not None else (math.nan, math.nan)
    delta_m_noise = "" if change is None else f"{change.noise}, {detail}"
    # Worst by relative change where it is defined; by absolute change only if it is defined nowhere.
    worst = min(with_rel, key=lambda r: r.rel_change or 0.0) if with_rel else min(rows, key=lambda r: r.abs_change)

    def share(condition: Callable[[TaskTransfer], bool]) -> float:
        return 100.0 * sum(condition(r) for r in rows) / n

    return TransferReport(
        tasks=rows,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
        alpha=alpha,
        margin_percent=margin_percent,
        delta_m=None if change is None else change.estimate,
        delta_m_ci=delta_m_ci,
        delta_m_tasks=[r.task for r in with_rel],
        delta_m_noise=delta_m_noise,
        nt_percent=share(lambda r: r.verdict == "negative"),
        pt_percent=share(lambda r: r.verdict == "positive"),
        nt_point_percent=share(lambda r: r.abs_change < 0),
        pt_point_percent=share(lambda r: r.abs_change > 0),
        equivalent_percent=share(lambda r: r.verdict == "equivalent"),
        inconclusive_percent=share(lambda r: r.verdict == "inconclusive"),
        worst_task=worst.task,
        worst_rel_change=worst.rel_change,
        notes=notes,
    )
