"""The ``crab-eval`` command line. Each subcommand lives in ``crab_eval.commands.<name>``.

Errors in the user's input are printed as one line (file:line: what is wrong) with exit code 2; nothing is
half-written; so is a missing optional dependency, with the extra to install. Exit code 1 is reserved for a
verdict (a failed validation, a regression). ``--include DIR`` imports a folder of the user's own task modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from crab_eval import __version__
from crab_eval.errors import CrabEvalError
from crab_eval.extras import missing_extra
from crab_eval.registry import include_modules

# Order is the order of ``crab-eval --help``.
COMMANDS = (
    "tasks", "score", "validate", "transfer", "compare", "affinity", "submit", "baseline", "leaderboard", "synth",
    "convert", "train", "predict", "evaluate", "demo",
)  # fmt: skip

EPILOG = """\
examples:
  crab-eval tasks
  crab-eval --include my_tasks/ tasks
  crab-eval score --task ave --data AVE_Dataset --predictions preds.jsonl --output results/ave.json
  crab-eval validate --task music_avqa --data MUSIC-AVQA/data/json_update --predictions preds.jsonl

Run 'crab-eval COMMAND --help' for a command's options and an example."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crab-eval",
        description="Official-exact scoring, transfer tables and regression checks for audio-visual LLM benchmarks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crab-eval {__version__}")
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="DIR",
        help="import every module of DIR first: a folder of your own tasks (@register_task); repeatable",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"crab_eval.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        for folder in args.include:
            include_modules(folder)
        return int(args.run(args))
    except CrabEvalError as exc:
        print(f"crab-eval {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise
        print(f"crab-eval {args.command}: error: {missing}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crab-eval: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into `head` and closed early: not an error of ours, and no traceback
        sys.stderr.close()
        return 141
    except OSError as exc:
        # An output that cannot be written (a folder where a file goes, a file where a folder goes, no permission):
        # the user's input, reported as one line naming the path.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"crab-eval {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
