"""The transfer table as text, Markdown, CSV, JSON and a PNG chart."""

from __future__ import annotations

import math
from pathlib import Path

from crab_eval.io import atomic_open, write_json
from crab_eval.reports.table import Table
from crab_eval.transfer import CORRECTION, DELTA_M_VARIANT, NOISE_MODEL, ArmSummary, TaskTransfer, TransferReport
from crab_eval.variance_components import POWER, UNMEASURED

CSV_HEADERS = [
    "task", "split", "metric", "higher_is_better", "n_items", "n_groups", "single_seeds", "single_mean",
    "single_std", "unified_seeds", "unified_mean", "unified_std", "single_n_missing", "single_n_unparsed",
    "unified_n_missing", "unified_n_unparsed", "abs_change", "abs_ci_low", "abs_ci_high", "rel_change",
    "rel_ci_low", "rel_ci_high", "se", "se_items", "se_seeds", "df", "training_noise", "p_value", "p_holm",
    "holm_confidence", "rel_ci_holm_low", "rel_ci_holm_high", "margin", "p_equivalent", "p_equivalent_holm",
    "detectable_change", "verdict",
]  # fmt: skip


def headers(report: TransferReport) -> list[str]:
    level = f"{100 * report.confidence:g}% CI Delta %"
    return [
        "task", "metric", "items", "single S", "unified U", "abs change", "Delta %", level, "p Holm",
        "detectable Delta %", "seeds S+U", "missing S / U", "unparsed S / U", "verdict",
    ]  # fmt: skip


def _num(x: float | None, digits: int = 2, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _p(x: float) -> str:
    """A p-value to three decimals; below 0.001 as such (0.000 would read as certainty)."""
    return "<0.001" if not math.isnan(x) and x < 0.0005 else _num(x, 3)


def _interval(ci: tuple[float, float]) -> str:
    return f"[{_num(ci[0], signed=True)}, {_num(ci[1], signed=True)}]"


def _arm(arm: ArmSummary) -> str:
    if arm.std is None:
        return _num(arm.mean)
    return f"{arm.mean:.2f} ± {arm.std:.2f}"


def _count(values: list[int]) -> str:
    """A failure count of an arm: the count with one run, the mean over runs with several."""
    if len(values) == 1:
        return str(values[0])
    mean = sum(values) / len(values)
    return f"{mean:g}" if mean == int(mean) else f"{mean:.1f}"


def _noise(t: TaskTransfer) -> str:
    seeds = f"{len(t.single.values)}+{len(t.unified.values)}"
    return seeds if t.training_noise != UNMEASURED else f"{seeds} (unmeasured)"


def _detectable(t: TaskTransfer) -> str:
    value = _num(t.relative(t.detectable_change))
    # Without training noise the figure is a lower bound: the study can detect nothing smaller, likely more.
    return f">= {value}" if t.training_noise == UNMEASURED and value != "n/a" else value


def _row(t: TaskTransfer) -> list[str]:
    arrow = "↑" if t.higher_is_better else "↓"
    items = str(t.n_items) if t.n_groups == t.n_items else f"{t.n_items} ({t.n_groups} groups)"
    return [
        t.task, f"{t.metric} {arrow}", items, _arm(t.single), _arm(t.unified), _num(t.abs_change, signed=True),
        _num(t.rel_change, signed=True), _interval(t.rel_ci), _p(t.p_holm), _detectable(t), _noise(t),
        f"{_count(t.single.n_missing)} / {_count(t.unified.n_missing)}",
        f"{_count(t.single.n_unparsed)} / {_count(t.unified.n_unparsed)}", t.verdict,
    ]  # fmt: skip


def summary_lines(report: TransferReport) -> list[str]:
    alpha = f"alpha = {report.alpha:.2f}"
    lines = [
        f"Delta_m = {_num(report.delta_m, signed=True)} % {_interval(report.delta_m_ci)} over "
        f"{len(report.delta_m_tasks)} tasks (training noise: {report.delta_m_noise or 'n/a'}); "
        f"worst task: {report.worst_task} ({_num(report.worst_rel_change, signed=True)} %)",
        f"Shares of tasks. Point estimates (Crab+'s reading): NT% = {report.nt_point_percent:.1f}, "
        f"PT% = {report.pt_point_percent:.1f}. Significant verdicts: NT% = {report.nt_percent:.1f}, "
        f"PT% = {report.pt_percent:.1f}, equivalent {report.equivalent_percent:.1f} %, "
        f"inconclusive {report.inconclusive_percent:.1f} %.",
        f"Delta_m variant: {DELTA_M_VARIANT}.",
        "Change = (-1)^l (U - S), positive = unified better; Delta % relative to S; S, U = means over seeds "
        "(± sample std over seeds).",
        f"Noise: {NOISE_MODEL}. Verdicts ({CORRECTION}, {alpha}): negative / positive if the change is "
        f"significant; equivalent if the TOST within ±{report.margin_percent:g} % of S is significant; otherwise "
        "inconclusive, always so where training noise is unmeasured.",
        f"Detectable Delta %: the smallest change found with {100 * POWER:.0f}% power at {alpha} (uncorrected). "
        f"Bootstrap: {report.n_boot} replicates, seed {report.seed}, paired over items, clustered by group.",
    ]
    lines.extend(f"Note: {note}" for note in report.notes)
    return lines


def table(report: TransferReport) -> Table:
    """The printed table (text and Markdown) in the reports' table model."""
    return Table(headers(report), [_row(t) for t in report.tasks])


def to_text(report: TransferReport) -> str:
    return table(report).to_text() + "\n\n" + "\n".join(summary_lines(report))


def to_markdown(report: TransferReport) -> str:
    lines = ["# Transfer: single-task vs. unified", "", table(report).to_markdown(), ""]
    lines.extend(f"- {line}" for line in summary_lines(report))
    return "\n".join(lines) + "\n"


def _csv_cell(value: object) -> str:
    """Numbers in full precision; an undefined one (None, NaN) as an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def to_csv(report: TransferReport) -> str:
    """One row a task with every field in full precision (through the table model, pandas' CSV writer)."""
    rows = []
    for t in report.tasks:
        s, u = t.single, t.unified
        rows.append([
            t.task, t.split, t.metric, t.higher_is_better, t.n_items, t.n_groups, " ".join(map(str, s.seeds)),
            s.mean, s.std, " ".join(map(str, u.seeds)), u.mean, u.std, " ".join(map(str, s.n_missing)),
            " ".join(map(str, s.n_unparsed)), " ".join(map(str, u.n_missing)), " ".join(map(str, u.n_unparsed)),
            t.abs_change, *t.abs_ci, t.rel_change, *t.rel_ci, t.se, t.se_items, t.se_seeds, t.df,
            t.training_noise, t.p_value, t.p_holm, t.holm_confidence, *t.rel_ci_holm, t.margin, t.p_equivalent,
            t.p_equivalent_holm, t.detectable_change, t.verdict,
        ])  # fmt: skip
    return Table(CSV_HEADERS, [[_csv_cell(v) for v in row] for row in rows]).to_csv()


_COLOURS = {"negative": "#c0392b", "positive": "#27ae60", "equivalent": "#2e86c1", "inconclusive": "#7f8c8d"}


def plot(report: TransferReport, path: Path) -> None:
    """Per-task Delta % with its interval (thin) and Holm interval (thick), coloured by verdict; a dashed interval
    covers test-set noise only. Labels carry the unparsed counts of both arms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report.tasks
    fig, ax = plt.subplots(figsize=(8.5, 0.6 * len(tasks) + 1.8))
    for y, t in enumerate(reversed(tasks)):
        if t.rel_change is None:
            continue
        colour = _COLOURS[t.verdict]
        if not math.isnan(t.rel_ci_holm[0]):
            ax.plot(t.rel_ci_holm, [y, y], color=colour, linewidth=5, alpha=0.35, solid_capstyle="butt")
        style = "--" if t.training_noise == UNMEASURED else "-"
        ax.plot(t.rel_ci, [y, y], color=colour, linewidth=1.5, linestyle=style)
        ax.plot([t.rel_change], [y], "o", color=colour)
    ax.axvline(0.0, color="black", linewidth=0.8)
    labels = [
        f"{t.task} ({t.metric}), {t.verdict}\nunparsed {_count(t.single.n_unparsed)} / {_count(t.unified.n_unparsed)}"
        f" of {t.n_items}"
        for t in reversed(tasks)
    ]
    ax.set_yticks(range(len(tasks)), labels, fontsize=8)
    ax.set_xlabel("Delta % (unified vs. single, positive = better)")
    title = (
        f"Transfer: Delta_m = {_num(report.delta_m, signed=True)} %, NT = {report.nt_percent:.0f}% significant, "
        f"{report.nt_point_percent:.0f}% of estimates"
    )
    level = f"{100 * report.confidence:g}%"
    ax.set_title(title + f"\nthin: {level} CI (dashed: test set only); thick: Holm-corrected CI", fontsize=9)
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
