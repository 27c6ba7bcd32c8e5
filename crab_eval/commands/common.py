"""Arguments and output shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any


def subparser(sub: Any, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="example:\n  " + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task id (see 'crab-eval tasks')")
    parser.add_argument("--data", required=True, help="folder with the benchmark's official annotation files")
    parser.add_argument("--split", default=None, help="split to score (default: the task's default, usually test)")
    parser.add_argument("--predictions", required=True, help="prediction file (JSONL, one sample a line)")
    parser.add_argument(
        "--allow-extra", action="store_true", help="ignore (and count) predictions for ids not in the split"
    )


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)
