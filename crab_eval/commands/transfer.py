"""``crab-eval transfer``: single-task vs. unified, task by task, with intervals over test items and seeds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from crab_eval.bootstrap import DEFAULT_BOOTSTRAP
from crab_eval.commands.common import subparser
from crab_eval.errors import CrabEvalError
from crab_eval.extras import require_extras
from crab_eval.results import RunResult, read_result
from crab_eval.transfer import DEFAULT_MARGIN, compute_transfer
from crab_eval.transfer_report import to_text, write_outputs


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "transfer",
        # No percent signs: argparse %-formats help strings.
        "per-task change of the main metric from single-task to unified training, with intervals that cover "
        "test items and training seeds, Holm-corrected verdicts (negative, positive, equivalent, inconclusive), "
        "shares of negative/positive transfer and Delta_m; optionally Markdown, CSV, JSON and a PNG chart. Give "
        "every seed's result file; with one seed per arm, training noise is unmeasured and no verdict is drawn "
        "unless --seed-sd supplies its scale",
        "crab-eval transfer --single single/ave.s0.json single/ave.s1.json single/ave.s2.json "
        "--unified unified/ave.s0.json unified/ave.s1.json unified/ave.s2.json --out report/",
    )
    parser.add_argument("--single", nargs="+", required=True, metavar="RESULT", help="single-task result files")
    parser.add_argument("--unified", nargs="+", required=True, metavar="RESULT", help="unified result files")
    parser.add_argument("--out", default=None, metavar="DIR", help="write transfer.{md,csv,json,png} here")
    parser.add_argument(
        "--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="B", help="bootstrap replicates (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument(
        "--margin", type=float, default=DEFAULT_MARGIN, metavar="PCT",
        help=f"equivalence margin, percent of the single-task score (default {DEFAULT_MARGIN:g})",
    )  # fmt: skip
    parser.add_argument(
        "--seed-sd", default=None, metavar="SD|TASK=SD,...",
        help="training seed-to-seed standard deviation of the main metric (points), for tasks with one seed per arm: "
        "one number for every task, or TASK=SD pairs ('*=SD' for the rest); e.g. measured from extra seeds of "
        "another study. Ignored where an arm has several seeds (the spread is then measured)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-version-mismatch", action="store_true",
        help="pair results scored with different task versions (refused by default)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def parse_seed_sd(text: str | None) -> float | dict[str, float] | None:
    """'1.5' -> 1.5; 'ave=1.5,avvp=2' -> {'ave': 1.5, 'avvp': 2.0}."""
    if text is None:
        return None
    try:
        if "=" not in text:
            return float(text)
        pairs = (part.split("=", 1) for part in text.split(",") if part.strip())
        return {task.strip(): float(value) for task, value in pairs}
    except ValueError:
        raise CrabEvalError(f"--seed-sd: expected SD or TASK=SD,..., got {text!r}") from None


def read_labelled(paths: list[str]) -> list[RunResult]:
    """Read result files; the path becomes the label used in error messages."""
    results = []
    for path in paths:
        result = read_result(path)
        result.provenance = {**result.provenance, "result_file": str(path)}
        results.append(result)
    return results


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 2:
        raise CrabEvalError(f"--bootstrap must be at least 2, got {args.bootstrap}")
    if args.out:
        require_extras("reports")  # the chart (matplotlib) is written with the tables
    report = compute_transfer(
        read_labelled(args.single),
        read_labelled(args.unified),
        args.bootstrap,
        args.seed,
        args.confidence,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        seed_sd=parse_seed_sd(args.seed_sd),
        margin_percent=args.margin,
        allow_version_mismatch=args.allow_version_mismatch,
    )
    print(to_text(report))
    if args.out:
        for path in write_outputs(report, Path(args.out)):
            print(f"wrote {path}")
    return 0
