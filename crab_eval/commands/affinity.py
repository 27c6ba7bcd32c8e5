"""``crab-eval affinity``: heatmaps of the task affinity logged in unified training, and its rank correlation
with measured transfer."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from crab_eval.affinity import affinity_transfer_correlation, common_tasks, read_affinity, write_outputs
from crab_eval.commands.common import subparser
from crab_eval.errors import CrabEvalError
from crab_eval.extras import require_extras
from crab_eval.reports.table import format_table


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "affinity",
        "average the task-affinity log of a unified run (RUN_DIR/affinity.jsonl) over steps, print it and draw "
        "heatmaps; with --transfer, the Spearman rank correlation of affinity with measured transfer",
        "crab-eval affinity runs/unified-lora --transfer report/transfer.json --out report/",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="training run folder holding affinity.jsonl")
    parser.add_argument("--out", default=None, metavar="DIR", help="where to write the heatmaps (default RUN_DIR)")
    parser.add_argument(
        "--transfer", default=None, metavar="JSON", help="transfer.json from 'crab-eval transfer --out'"
    )
    parser.set_defaults(run=run)


def read_transfer_changes(path: str) -> dict[str, float | None]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {row["task"]: row["rel_change"] for row in data["tasks"]}
    except FileNotFoundError:
        raise CrabEvalError("transfer file not found", path) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CrabEvalError(f"not a crab-eval transfer.json ({exc!r})", path) from None


def run(args: argparse.Namespace) -> int:
    require_extras("reports")
    summaries = read_affinity(args.run_dir)
    changes = read_transfer_changes(args.transfer) if args.transfer else None
    for kind, summary in summaries.items():
        print(f"{kind}: rows = i, columns = j, mean over {len(summary.steps)} steps")
        rows = [
            [source] + ["n/a" if math.isnan(v) else f"{v:+.3f}" for v in summary.mean[i]]
            for i, source in enumerate(summary.tasks)
        ]
        print(format_table(["i \\ j", *summary.tasks], rows))
        if summary.n_skipped:
            print(f"({summary.n_skipped} null or non-finite cells left out of the averages)")
        if changes is not None and len(common_tasks(summary, changes)) < 3:
            print(f"Spearman rho: n/a (fewer than 3 tasks with both {kind} affinity and transfer)")
        elif changes is not None:
            corr = affinity_transfer_correlation(summary, changes)
            print(f"Spearman rho(incoming {kind} affinity, Delta_t) = {corr.rho:+.3f} "
                  f"(p = {corr.p_value:.3f}, {len(corr.tasks)} tasks)")  # fmt: skip
        print()
    out = Path(args.out) if args.out else Path(args.run_dir)
    if out.is_file():
        out = out.parent
    for path in write_outputs(summaries, out):
        print(f"wrote {path}")
    return 0
