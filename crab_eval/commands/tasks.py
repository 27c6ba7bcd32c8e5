"""``crab-eval tasks``: every task with its splits, metrics and main metric."""

from __future__ import annotations

import argparse
import json
from typing import Any

from crab_eval.commands.common import subparser
from crab_eval.registry import get_task, task_ids
from crab_eval.reports.table import format_table


def add_parser(sub: Any) -> None:
    parser = subparser(sub, "tasks", "list tasks, their splits, metrics and main metric", "crab-eval tasks --json")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def describe() -> list[dict[str, Any]]:
    out = []
    for task_id in task_ids():
        task = get_task(task_id)
        out.append(
            {
                "id": task.id,
                "version": task.version,
                "description": task.description,
                "splits": list(task.splits),
                "default_split": task.default_split,
                "main_metric": task.main_metric,
                "metrics": [
                    {"name": m.name, "higher_is_better": m.higher_is_better, "scale": m.scale} for m in task.metrics
                ],
            }
        )
    return out


def run(args: argparse.Namespace) -> int:
    info = describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    rows = []
    for t in info:
        metrics = ", ".join(
            ("*" if m["name"] == t["main_metric"] else "") + m["name"] + ("" if m["higher_is_better"] else " (lower)")
            for m in t["metrics"]
        )
        splits = ",".join(("*" if s == t["default_split"] else "") + s for s in t["splits"])
        rows.append([t["id"], t["version"], splits, metrics])
    print(format_table(["task", "version", "splits (* = default)", "metrics (* = main)"], rows))
    return 0
