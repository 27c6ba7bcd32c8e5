"""Task affinity logged during unified training: read, average over steps, plot, relate to measured transfer.

The trainer appends one JSON object a line to ``RUN_DIR/affinity.jsonl``::

    {"step": 120, "kind": "lookahead", "tasks": ["ave", "avvp"], "matrix": [[z_aa, z_av], [z_va, z_vv]]}

``kind`` "lookahead" is TAG's inter-task affinity (Fifty et al. 2021): ``matrix[i][j] = Z_{i->j} = 1 -
L_j(theta_i) / L_j(theta)`` with ``theta_i`` one step on task i; Z > 0 means training on i lowered j's loss.
"grad_cosine" is the cosine similarity of the task gradients (symmetric). A line may cover a subset of the tasks;
a cell is averaged over the steps that logged it. A null or non-finite cell (a zero gradient, a zero base loss) is
"not measured at this step": skipped, and counted in ``n_skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.errors import CrabEvalError
from crab_eval.io import atomic_open, read_json_lines, write_json

AFFINITY_FILE = "affinity.jsonl"
KINDS = ("lookahead", "grad_cosine")


@dataclass
class AffinitySummary:
    kind: str
    tasks: list[str]
    mean: np.ndarray  # T x T, NaN where never logged
    counts: np.ndarray  # T x T, number of steps averaged per cell
    steps: list[int]
    n_skipped: int = 0  # null or non-finite cells left out of the average

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tasks": self.tasks,
            "matrix": [[None if math.isnan(v) else float(v) for v in row] for row in self.mean],
            "counts": self.counts.astype(int).tolist(),
            "n_steps": len(self.steps),
            "first_step": min(self.steps),
            "last_step": max(self.steps),
            "n_skipped": self.n_skipped,
        }


def _is_number_or_null(x: Any) -> bool:
    return x is None or (isinstance(x, int | float) and not isinstance(x, bool))


def _check_record(obj: Any) -> str | None:
    """What is wrong with one affinity record, or None."""
    if not isinstance(obj, dict):
        return "expected a JSON object"
    if not isinstance(obj.get("step"), int) or isinstance(obj.get("step"), bool):
        return "'step' must be an integer"
    if obj.get("kind") not in KINDS:
        return f"'kind' must be one of {', '.join(KINDS)}, got {obj.get('kind')!r}"
    tasks = obj.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t for t in tasks):
        return "'tasks' must be a non-empty list of task ids"
    if len(set(tasks)) != len(tasks):
        return "'tasks' repeats a task id"
    matrix = obj.get("matrix")
    n = len(tasks)
    if not isinstance(matrix, list) or len(matrix) != n or not all(isinstance(r, list) and len(r) == n for r in matrix):
        return f"'matrix' must be {n} x {n} (one row and column per task)"
    if not all(_is_number_or_null(v) for row in matrix for v in row):
        return "'matrix' entries must be numbers (or null where not measured)"
    return None


def read_affinity(run_dir: str | Path) -> dict[str, AffinitySummary]:
    """Per kind, the matrix averaged over steps. A malformed line is an error naming the file and line."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / AFFINITY_FILE
    if not path.is_file():
        raise CrabEvalError("no affinity log found (the trainer writes it when affinity logging is on)", path)
    sums: dict[str, dict[tuple[str, str], float]] = {}
    counts: dict[str, dict[tuple[str, str], int]] = {}
    order: dict[str, list[str]] = {}
    steps: dict[str, list[int]] = {}
    skipped: dict[str, int] = {}
    for line_no, obj in read_json_lines(path):
        problem = _check_record(obj)
        if problem:
            raise CrabEvalError(problem, path, line_no)
        kind, tasks = obj["kind"], obj["tasks"]
        known = order.setdefault(kind, [])
        known.extend(t for t in tasks if t not in known)
        steps.setdefault(kind, []).append(obj["step"])
        cell_sum, cell_count = sums.setdefault(kind, {}), counts.setdefault(kind, {})
        for i, source in enumerate(tasks):
            for j, target in enumerate(tasks):
                value = obj["matrix"][i][j]
                if value is None or not math.isfinite(value):
                    skipped[kind] = skipped.get(kind, 0) + 1
                    continue
                cell_sum[source, target] = cell_sum.get((source, target), 0.0) + float(value)
                cell_count[source, target] = cell_count.get((source, target), 0) + 1
    if not steps:
        raise CrabEvalError("the affinity log is empty", path)
    summaries = {}
    for kind, tasks in order.items():
        n = len(tasks)
        total, count = np.zeros((n, n)), np.zeros((n, n))
        for (a, b), value in sums[kind].items():
            total[tasks.index(a), tasks.index(b)] = value
            count[tasks.index(a), tasks.index(b)] = counts[kind][a, b]
        with np.errstate(invalid="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        summaries[kind] = AffinitySummary(kind, tasks, mean, count, steps[kind], skipped.get(kind, 0))
    return summaries


def incoming_affinity(summary: AffinitySummary) -> dict[str, float]:
    """Per task j, the mean over the other tasks i of affinity[i][j]: how much training on the others helps j."""
    result = {}
    for j, task in enumerate(summary.tasks):
        others = np.delete(summary.mean[:, j], j)
        others = others[~np.isnan(others)]
        result[task] = float(others.mean()) if others.size else math.nan
    return result


def common_tasks(summary: AffinitySummary, transfer: Mapping[str, float | None]) -> list[str]:
    """Tasks with both a defined incoming affinity and a defined transfer value, in the summary's order."""
    incoming = incoming_affinity(summary)
    return [
        t
        for t in summary.tasks
        if transfer.get(t) is not None and not math.isnan(float(transfer[t])) and not math.isnan(incoming[t])  # type: ignore[arg-type]
    ]


@dataclass
class AffinityCorrelation:
    rho: float
    p_value: float
    tasks: list[str]
    affinity: list[float]
    transfer: list[float]


def affinity_transfer_correlation(
    summary: AffinitySummary, transfer: Mapping[str, float | None]
) -> AffinityCorrelation:
    """Spearman rank correlation between each task's incoming affinity and its measured transfer (Delta_t).

    ``transfer`` maps task ids to Delta_t (e.g. ``{t.task: t.rel_change for t in report.tasks}``); tasks missing on
    either side or with an undefined value are left out. Needs at least 3 tasks in common.
    """
    from scipy.stats import spearmanr

    incoming = incoming_affinity(summary)
    tasks = common_tasks(summary, transfer)
    if len(tasks) < 3:
        raise CrabEvalError(f"a rank correlation needs at least 3 tasks with both affinity and transfer, got {tasks}")
    x = [incoming[t] for t in tasks]
    y = [float(transfer[t]) for t in tasks]  # type: ignore[arg-type]
    rho, p = spearmanr(x, y)
    return AffinityCorrelation(float(rho), float(p), tasks, x, y)


def plot_heatmap(summary: AffinitySummary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(summary.tasks)
    finite = summary.mean[~np.isnan(summary.mean)]
    limit = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * n, 0.8 + 0.7 * n))
    image = ax.imshow(summary.mean, cmap="RdBu", vmin=-limit, vmax=limit)
    for i in range(n):
        for j in range(n):
            value = summary.mean[i, j]
            ax.text(j, i, "" if math.isnan(value) else f"{value:.2g}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(n), summary.tasks, rotation=45, ha="right")
    ax.set_yticks(range(n), summary.tasks)
    if summary.kind == "lookahead":
        ax.set_xlabel("j: task whose loss is measured")
        ax.set_ylabel("i: task stepped on")
        title = "TAG lookahead affinity Z(i→j)"
    else:
        title = "gradient cosine similarity"
    ax.set_title(f"{title}\nmean over {len(summary.steps)} steps", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def write_outputs(summaries: Mapping[str, AffinitySummary], out_dir: Path) -> list[Path]:
    """affinity_<kind>.png per kind and affinity_summary.json with the averaged matrices."""
    out_dir = Path(out_dir)
    written = []
    for kind, summary in summaries.items():
        png = out_dir / f"affinity_{kind}.png"
        plot_heatmap(summary, png)
        written.append(png)
    write_json(out_dir / "affinity_summary.json", {kind: s.to_dict() for kind, s in summaries.items()})
    written.append(out_dir / "affinity_summary.json")
    return written
