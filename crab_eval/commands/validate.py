"""``crab-eval validate``: check a prediction file against a split without scoring."""

from __future__ import annotations

import argparse
from typing import Any

from crab_eval.commands.common import add_extract_argument, add_split_arguments, subparser
from crab_eval.predictions import read_predictions
from crab_eval.registry import get_task
from crab_eval.scoring import load_split

MAX_LISTED = 20


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "validate",
        "check a prediction file against a split: malformed, duplicate, unknown and missing ids, parse rate of "
        "text lines; exit 1 if any line is bad",
        "crab-eval validate --task ave --data AVE_Dataset --predictions preds.jsonl",
    )
    add_split_arguments(parser)
    add_extract_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    task = get_task(args.task)
    split = args.split or task.default_split
    samples = load_split(task, args.data, split)
    preds = read_predictions(
        args.predictions, task, samples, allow_extra=args.allow_extra, collect_errors=True, extract=args.extract
    )
    n = len(samples)
    print(f"{args.predictions}: {preds.n_lines} lines for {task.id}/{split} ({n} samples)")
    print(f"  structured predictions: {preds.n_structured}")
    rates = ", ".join(f"{tier} {_percent(preds.parse_rate(tier))}" for tier in preds.unparsed_by_tier)
    print(f"  text predictions:       {preds.n_text} (parse rate: {rates})")
    print(f"  unparsed (scored wrong): {preds.n_unparsed} ({args.extract} tier)")
    print(f"  missing (scored wrong):  {preds.n_missing} of {n}")
    print(f"  extra ids ignored:       {preds.n_extra}")
    print(f"  bad lines:               {len(preds.errors)}")
    for error in preds.errors[:MAX_LISTED]:
        print(f"    {error}")
    if len(preds.errors) > MAX_LISTED:
        print(f"    ... and {len(preds.errors) - MAX_LISTED} more")
    for label, ids in (("missing", preds.missing_ids), ("unparsed", preds.unparsed_ids)):
        if ids:
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            print(f"  first {label} ids: {shown}")
    print("valid" if not preds.errors else "INVALID")
    return 0 if not preds.errors else 1


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}%"
