"""``crab-eval transfer``: single-task vs. unified, task by task, with paired-bootstrap intervals."""

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
from crab_eval.transfer import compute_transfer
from crab_eval.transfer_report import to_text, write_outputs


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "transfer",
        # No percent signs: argparse %-formats help strings.
        "per-task change of the main metric from single-task to unified training, with paired-bootstrap "
        "intervals, Holm-corrected verdicts, shares of negative/positive transfer and Delta_m; optionally "
        "Markdown, CSV, JSON and a PNG chart",
        "crab-eval transfer --single single/ave.json single/avqa.json --unified unified/ave.json unified/avqa.json "
        "--out report/",
    )
    parser.add_argument("--single", nargs="+", required=True, metavar="RESULT", help="single-task result files")
    parser.add_argument("--unified", nargs="+", required=True, metavar="RESULT", help="unified result files")
    parser.add_argument("--out", default=None, metavar="DIR", help="write transfer.{md,csv,json,png} here")
    parser.add_argument(
        "--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="B", help="bootstrap replicates (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    parser.set_defaults(run=run)


def read_labelled(paths: list[str]) -> list[RunResult]:
    """Read result files; the path becomes the label used in error messages."""
    results = []
    for path in paths:
        result = read_result(path)
        result.provenance = {**result.provenance, "result_file": str(path)}
        results.append(result)
    return results


def run(args: argparse.Namespace) -> int:
    if args.bootstrap < 1:
        raise CrabEvalError(f"--bootstrap must be at least 1, got {args.bootstrap}")
    if args.out:
        require_extras("reports")  # the chart (matplotlib) is written with the tables
    report = compute_transfer(
        read_labelled(args.single),
        read_labelled(args.unified),
        args.bootstrap,
        args.seed,
        args.confidence,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(to_text(report))
    if args.out:
        for path in write_outputs(report, Path(args.out)):
            print(f"wrote {path}")
    return 0
