"""``crab-eval compare``: the regression check for CI (exit 0 pass, 1 regression, 2 unusable input)."""

from __future__ import annotations

import argparse
from typing import Any

from crab_eval.bootstrap import DEFAULT_BOOTSTRAP
from crab_eval.commands.common import subparser
from crab_eval.commands.transfer import read_labelled
from crab_eval.compare import compare_results
from crab_eval.compare_report import format_report
from crab_eval.errors import CrabEvalError


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "compare",
        "regression check of a new result against a reference: exact (identical predictions) or statistical "
        "(paired-bootstrap interval of the change of the main metric, or of every metric with a Holm correction); "
        "exit 0 pass, 1 regression, 2 unusable input",
        "crab-eval compare results/new/ave.json --reference results/reference/ave.json --tolerance 0.5",
    )
    parser.add_argument("new", metavar="NEW", help="result file of the new run")
    parser.add_argument("--reference", required=True, metavar="REF", help="result file of the reference run")
    parser.add_argument(
        "--tolerance", type=float, default=0.0, metavar="T",
        help="allowed drop in metric points before a confident drop counts as a regression (default 0)",
    )  # fmt: skip
    parser.add_argument("--exact", action="store_true", help="require identical per-sample predictions and metrics")
    parser.add_argument(
        "--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="B", help="bootstrap replicates (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument(
        "--metrics", choices=("main", "all"), default="main",
        help="metrics that gate: the task's main metric (default), or all with a Holm correction across them",
    )  # fmt: skip
    parser.add_argument(
        "--allow-version-mismatch", action="store_true",
        help="compare results scored with different task versions (refused by default)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 1:
        raise CrabEvalError(f"--bootstrap must be at least 1, got {args.bootstrap}")
    if not 0.0 < args.confidence < 1.0:
        raise CrabEvalError(f"--confidence must be between 0 and 1, got {args.confidence}")
    new, reference = read_labelled([args.new, args.reference])
    report = compare_results(
        new, reference, args.tolerance, args.exact, args.bootstrap, args.seed, args.confidence, args.metrics,
        args.allow_version_mismatch,
    )  # fmt: skip
    print(format_report(report))
    return 0 if report.passed else 1
