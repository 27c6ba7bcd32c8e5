"""What the demo prints and writes besides the transfer tables: affinity outputs, the score table, the summary.

A report layer: it reads the plan (crab_eval.demo_plan) and result files, never the stages (crab_eval.demo)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crab_eval.demo_plan import BASELINES, MODEL, DemoPlan, plan_dict, result_path, run_config
from crab_eval.errors import CrabEvalError
from crab_eval.io import atomic_open, write_json

if TYPE_CHECKING:
    from crab_eval.transfer import TransferReport


def plot_correlation(corr: Any, kind: str, path: Path) -> None:
    """Scatter of each task's incoming affinity against its measured Delta_t, with Spearman's rho."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    ax.scatter(corr.affinity, corr.transfer, color="#2c3e50")
    for task, x, y in zip(corr.tasks, corr.affinity, corr.transfer, strict=True):
        ax.annotate(task, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"incoming {kind} affinity (mean over the other tasks)")
    ax.set_ylabel("measured Delta % (unified vs. single)")
    ax.set_title(f"affinity vs. transfer: Spearman rho = {corr.rho:+.2f} (p = {corr.p_value:.2f}, "
                 f"{len(corr.tasks)} tasks)", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def affinity_outputs(run_dir: Path, report: TransferReport, out: Path) -> list[str]:
    """Heatmaps of the unified run's logged affinity and the rank correlation with the measured transfer."""
    from crab_eval import affinity

    if not (run_dir / affinity.AFFINITY_FILE).is_file():
        return [f"  (no {affinity.AFFINITY_FILE} in {run_dir}: affinity not logged)"]
    summaries = affinity.read_affinity(run_dir)
    affinity.write_outputs(summaries, out)
    changes = {t.task: t.rel_change for t in report.tasks}
    lines, correlations = [], {}
    for kind, summary in summaries.items():
        if len(affinity.common_tasks(summary, changes)) < 3:
            lines.append(f"  Spearman rho(incoming {kind} affinity, Delta_t): n/a (fewer than 3 tasks)")
            continue
        corr = affinity.affinity_transfer_correlation(summary, changes)
        plot_correlation(corr, kind, out / f"affinity_vs_transfer_{kind}.png")
        correlations[kind] = {
            "rho": corr.rho,
            "p_value": None if math.isnan(corr.p_value) else corr.p_value,
            "tasks": corr.tasks,
            "incoming_affinity": corr.affinity,
            "rel_change": corr.transfer,
        }
        lines.append(f"  Spearman rho(incoming {kind} affinity, Delta_t) = {corr.rho:+.3f} "
                     f"(p = {corr.p_value:.3f}, {len(corr.tasks)} tasks)")  # fmt: skip
    write_json(out / "affinity_vs_transfer.json", correlations)
    return lines


def score_table(plan: DemoPlan) -> tuple[str, list[dict[str, Any]]]:
    """Main metric of every model (single, unified per adapter, baselines) per task, as text and rows; with several
    training seeds, the mean over them."""
    from crab_eval.reports.table import format_table
    from crab_eval.results import read_result

    columns = ["single"] + [f"unified_{k}" for k in plan.adapters] + [f"baseline_{k}" for k in BASELINES]
    rows, text_rows = [], []
    for task in plan.tasks:
        values: dict[str, float] = {}
        metric = ""
        for column in columns:
            base = f"single_{task}" if column == "single" else column
            # Baselines are fitted once (no training seed); models have one result per training seed.
            paths = [result_path(plan, base, task)] if column.startswith("baseline_") else plan.result_paths(base, task)
            results = [read_result(path, with_samples=False) for path in paths]
            metric = results[0].main_metric
            values[column] = sum(r.metrics[metric] for r in results) / len(results)
        rows.append({"task": task, "metric": metric, **values})
        text_rows.append([task, metric] + [f"{values[c]:.2f}" for c in columns])
    return format_table(["task", "metric", *columns], text_rows), rows


def write_summary(plan: DemoPlan, reports: dict[str, TransferReport], rows: list[dict[str, Any]]) -> dict[str, Any]:
    verdicts = {kind: {t.task: t.verdict for t in r.tasks} for kind, r in reports.items()}
    summary = {
        "kind": "crab-eval demo",
        "plan": plan_dict(plan),
        "model": MODEL,
        "budget": {
            model.name: {key: run_config(plan, model)["train"][key] for key in ("steps", "batch_size")}
            for model in plan.models()
        },
        "scores": rows,
        "verdicts": verdicts,
        "timings_s": {k: round(v, 1) for k, v in plan.timings.items()},
    }
    write_json(plan.out / "demo_summary.json", summary)
    return summary


def check_outputs(out: Path, tasks: list[str], adapters: list[str]) -> None:
    """Raise if a stage's outputs are missing (used by tests and by the reference-run README)."""
    for kind in adapters:
        if not (out / f"transfer_{kind}" / "transfer.json").is_file():
            raise CrabEvalError(f"missing transfer table for {kind}", out)
    for task in tasks:
        if not (out / "results" / f"single_{task}" / f"{task}.json").is_file():
            raise CrabEvalError(f"missing single-task result for {task}", out)
