"""Arguments and output shared by several subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.tasks.base import EXTRACT_TIERS


def subparser(sub: Any, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="example:\n  " + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_split_arguments(parser: argparse.ArgumentParser, predictions_required: bool = True) -> None:
    parser.add_argument("--task", required=True, help="task id (see 'crab-eval tasks')")
    parser.add_argument("--data", required=True, help="folder with the benchmark's official annotation files")
    parser.add_argument("--split", default=None, help="split to score (default: the task's default, usually test)")
    parser.add_argument(
        "--predictions", required=predictions_required, help="prediction file (JSONL, one sample a line)"
    )
    parser.add_argument(
        "--allow-extra", action="store_true", help="ignore (and count) predictions for ids not in the split"
    )


def add_extract_argument(parser: argparse.ArgumentParser) -> None:
    """``--extract strict|flexible``: the answer-extraction tier (score, validate, evaluate)."""
    parser.add_argument(
        "--extract",
        choices=EXTRACT_TIERS,
        default="strict",
        help="answer extraction: strict reads Crab's answer templates only (default; the published numbers), "
        "flexible also free-form answers ('The answer is two', '[30,40,150,200]'); recorded in the result, and "
        "results of different tiers are never compared",
    )


def parse_run_info(fields: Mapping[str, Any], tags: Sequence[str]) -> dict[str, Any]:
    """The run metadata a result records: ``fields`` that were given (not None), then the ``--tag KEY=VALUE``s."""
    run_info = {key: value for key, value in fields.items() if value is not None}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CrabEvalError(f"--tag takes KEY=VALUE, got {item!r}")
        run_info[key] = value
    return run_info
