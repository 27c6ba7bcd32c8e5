"""The transfer table as text, Markdown, CSV, JSON and a PNG chart."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from crab_eval.io import atomic_open, write_json
from crab_eval.reports.table import format_table
from crab_eval.transfer import CORRECTION, DELTA_M_VARIANT, ArmSummary, TaskTransfer, TransferReport

HEADERS = [
    "task", "metric", "items", "single S", "unified U", "abs change", "Delta %", "95% CI Delta %",
    "Holm CI Delta %", "p Holm", "verdict",
]  # fmt: skip
CSV_HEADERS = [
    "task", "split", "metric", "higher_is_better", "n_items", "n_groups", "single_seeds", "single_mean",
    "single_std", "unified_seeds", "unified_mean", "unified_std", "abs_change", "abs_ci_low", "abs_ci_high",
    "rel_change", "rel_ci_low", "rel_ci_high", "holm_confidence", "rel_ci_holm_low", "rel_ci_holm_high", "p_value",
    "p_holm", "verdict",
]  # fmt: skip


def _num(x: float | None, digits: int = 2, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _interval(ci: tuple[float, float]) -> str:
    return f"[{_num(ci[0], signed=True)}, {_num(ci[1], signed=True)}]"


def _arm(arm: ArmSummary) -> str:
    if arm.std is None:
        return _num(arm.mean)
    return f"{arm.mean:.2f} ± {arm.std:.2f} (n={len(arm.values)})"


def _row(t: TaskTransfer) -> list[str]:
    arrow = "↑" if t.higher_is_better else "↓"
    items = str(t.n_items) if t.n_groups == t.n_items else f"{t.n_items} ({t.n_groups} groups)"
    return [
        t.task, f"{t.metric} {arrow}", items, _arm(t.single), _arm(t.unified), _num(t.abs_change, signed=True),
        _num(t.rel_change, signed=True), _interval(t.rel_ci), _interval(t.rel_ci_holm), _num(t.p_holm, 3), t.verdict,
    ]  # fmt: skip


def summary_lines(report: TransferReport) -> list[str]:
    lines = [
        f"Delta_m = {_num(report.delta_m, signed=True)} % {_interval(report.delta_m_ci)} over "
        f"{len(report.delta_m_tasks)} tasks; NT% = {report.nt_percent:.1f}, PT% = {report.pt_percent:.1f}; "
        f"worst task: {report.worst_task} ({_num(report.worst_rel_change, signed=True)} %)",
        f"Delta_m variant: {DELTA_M_VARIANT}.",
        f"Change = (-1)^l (U - S), positive = unified better; Delta % relative to S. Verdicts: {CORRECTION}, "
        f"alpha = {report.alpha:.2f}; negative/positive only if the Holm interval lies wholly below/above 0.",
        f"Bootstrap: {report.n_boot} replicates, seed {report.seed}, paired over items (clustered by group), "
        "hierarchical over seeds.",
    ]
    lines.extend(f"Note: {note}" for note in report.notes)
    return lines


def to_text(report: TransferReport) -> str:
    return format_table(HEADERS, [_row(t) for t in report.tasks]) + "\n\n" + "\n".join(summary_lines(report))


def to_markdown(report: TransferReport) -> str:
    def cells(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    lines = ["# Transfer: single-task vs. unified", "", cells(HEADERS), cells(["---"] * len(HEADERS))]
    lines.extend(cells(_row(t)) for t in report.tasks)
    lines.append("")
    lines.extend(f"- {line}" for line in summary_lines(report))
    return "\n".join(lines) + "\n"


def to_csv(report: TransferReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    for t in report.tasks:
        writer.writerow([
            t.task, t.split, t.metric, t.higher_is_better, t.n_items, t.n_groups,
            " ".join(map(str, t.single.seeds)), t.single.mean, t.single.std,
            " ".join(map(str, t.unified.seeds)), t.unified.mean, t.unified.std,
            t.abs_change, *t.abs_ci, t.rel_change, *t.rel_ci, t.holm_confidence, *t.rel_ci_holm, t.p_value,
            t.p_holm, t.verdict,
        ])  # fmt: skip
    return buffer.getvalue()


_COLOURS = {"negative": "#c0392b", "positive": "#27ae60", "neutral": "#7f8c8d"}


def plot(report: TransferReport, path: Path) -> None:
    """Per-task Delta % with its 95% interval (thin) and Holm interval (thick), coloured by verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report.tasks
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(tasks) + 1.6))
    for y, t in enumerate(reversed(tasks)):
        if t.rel_change is None:
            continue
        colour = _COLOURS[t.verdict]
        ax.plot(t.rel_ci_holm, [y, y], color=colour, linewidth=5, alpha=0.35, solid_capstyle="butt")
        ax.plot(t.rel_ci, [y, y], color=colour, linewidth=1.5)
        ax.plot([t.rel_change], [y], "o", color=colour)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(tasks)), [f"{t.task} ({t.metric})" for t in reversed(tasks)])
    ax.set_xlabel("Delta % (unified vs. single, positive = better)")
    title = f"Transfer: Delta_m = {_num(report.delta_m, signed=True)} %, NT = {report.nt_percent:.0f}%"
    ax.set_title(title + "\nthin: 95% CI; thick: Holm-corrected CI", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def write_outputs(report: TransferReport, out_dir: Path, stem: str = "transfer") -> list[Path]:
    """transfer.md, transfer.csv, transfer.json and transfer.png in ``out_dir``."""
    out_dir = Path(out_dir)
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "json", "png")}
    for ext, render in (("md", to_markdown), ("csv", to_csv)):
        with atomic_open(paths[ext]) as handle:
            handle.write(render(report))
    write_json(paths["json"], report.to_dict())
    plot(report, paths["png"])
    return list(paths.values())
