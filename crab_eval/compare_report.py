"""The regression check as text: the table ``crab-eval compare`` prints, with the rule it applied and PASS/FAIL."""

from __future__ import annotations

import math

from crab_eval.compare import CompareReport
from crab_eval.reports.table import format_table


def format_report(report: CompareReport) -> str:
    def num(x: float, signed: bool = False) -> str:
        return "n/a" if math.isnan(x) else (f"{x:+.2f}" if signed else f"{x:.2f}")

    level = f"{100 * report.confidence:g}% CI"
    rows = [
        [c.metric + (" ↑" if c.higher_is_better else " ↓"), num(c.reference), num(c.new), num(c.change, True),
         f"[{num(c.ci[0], True)}, {num(c.ci[1], True)}]",
         f"[{num(c.ci_holm[0], True)}, {num(c.ci_holm[1], True)}]" if c.gated and report.mode != "exact" else "",
         c.verdict.upper() if c.verdict in ("regression", "changed") else c.verdict]
        for c in report.checks
    ]  # fmt: skip
    table = format_table(["metric", "reference", "new", "change", level, "gate CI (Holm)", "verdict"], rows)
    changed = "unknown (no pred_hash)" if report.n_changed_predictions is None else str(report.n_changed_predictions)
    if report.mode == "exact":
        rule = "exact: identical predictions and metrics required"
    else:
        bound = f"-{report.tolerance:g}" if report.tolerance else "0"
        gated = "the main metric" if report.gate == "main" else "every metric, Holm-corrected across them"
        rule = (
            f"statistical, gating {gated}: regression if the upper end of the gate interval of the change is below "
            f"{bound}; a run of equal quality fails with probability <= {100 * (1 - report.confidence) / 2:g}%"
        )
    lines = [
        f"{report.task}/{report.split}: new {report.labels[1]} vs. reference {report.labels[0]}",
        table,
        f"{report.n_items} items, predictions changed: {changed}; change = (-1)^l (new - ref), positive = better",
        f"rule: {rule}",
        "PASS" if report.passed else "FAIL",
    ]
    return "\n".join(lines)
