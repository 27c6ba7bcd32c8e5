"""``crab-eval evaluate``: a model over a suite of tasks, predicted, scored and summarised (crab_eval/evaluation.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crab_eval.commands.common import add_extract_argument, parse_run_info, subparser
from crab_eval.models.base import parse_pairs


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "evaluate",
        "run a model (--model, see --list-models) over tasks read from DATA_ROOT/<task>/, score each with the "
        "official metric and write OUT/predictions/, OUT/results/ and OUT/summary.{md,csv,json}; resumes a stopped "
        "run; data-parallel under 'accelerate launch -m crab_eval evaluate ...'",
        "crab-eval evaluate --model hf --model-args path=Qwen2.5-Omni-7B --tasks ave,avvp,music_avqa "
        "--data-root data --out runs/omni",
    )
    parser.add_argument("--model", default=None, help="model name (crab-av, hf, replay, majority, ...)")
    parser.add_argument("--model-args", default="", metavar="K=V,...", help="the model's arguments")
    parser.add_argument("--list-models", action="store_true", help="list the models and exit")
    parser.add_argument("--tasks", default=None, help="task ids, comma-separated; TASK:SPLIT for another split")
    parser.add_argument("--data-root", default=None, help="folder with one subfolder per task id (official files)")
    parser.add_argument("--out", default=None, help="output folder (created; a stopped run resumes there)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples of each split")
    parser.add_argument("--batch-size", type=int, default=8, help="requests per model call (default 8)")
    parser.add_argument(
        "--gen-kwargs", default="", metavar="K=V,...",
        help="generation settings passed to generate() (default max_new_tokens=64,do_sample=false)",
    )  # fmt: skip
    parser.add_argument("--name", default=None, help="model name recorded in the results (run.model)")
    parser.add_argument("--variant", default=None, help="e.g. single or unified, recorded in the results")
    parser.add_argument("--adapter", default=None, help="adapter kind, recorded in the results")
    parser.add_argument("--seed", type=int, default=None, help="training seed, recorded in the results")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="extra run information (repeatable)"
    )
    parser.add_argument(
        "--entry", default=None, metavar="SUBMISSION_JSON",
        help="also score the predictions as a leaderboard submission with this metadata (OUT/entry.json)",
    )  # fmt: skip
    add_extract_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from crab_eval.errors import CrabEvalError

    if args.list_models:
        return list_models()
    for option in ("model", "tasks", "data_root", "out"):
        if getattr(args, option) is None:
            raise CrabEvalError(f"--{option.replace('_', '-')} is required (see crab-eval evaluate --help)")
    from crab_eval.evaluation import evaluate

    run_info = parse_run_info({"model": args.name, "variant": args.variant, "seed": args.seed}, args.tag)
    if args.adapter is not None:
        run_info["adapter"] = args.adapter
    evaluation = evaluate(
        args.model,
        args.tasks,
        args.data_root,
        args.out,
        model_args=parse_pairs(args.model_args, "--model-args"),
        generation=args.gen_kwargs,
        batch_size=args.batch_size,
        limit=args.limit,
        run=run_info,
        progress=not args.no_progress,
        entry=read_entry(args.entry) if args.entry else None,
        extract=args.extract,
    )
    if evaluation.summary is not None:  # the main process
        print(evaluation.summary.to_text())
        hint = tier_hint(evaluation.results.values(), args.extract)
        if hint:
            print(hint)
        print(f"wrote {Path(args.out) / 'summary.md'} (and .csv, .json), results/ and predictions/")
    return 0


def tier_hint(results: Any, extract: str) -> str:
    """A line naming the tasks whose answers the other extraction tier reads more of (a model that is not Crab
    answers in free text: strict leaves it unparsed, and the user should know before reading the scores)."""
    other = "flexible" if extract == "strict" else "strict"
    gains = [
        f"{r.task} {r.n_unparsed_by_extract[extract]} -> {r.n_unparsed_by_extract[other]}"
        for r in results
        if r.n_unparsed_by_extract.get(other, 0) < r.n_unparsed_by_extract.get(extract, 0)
    ]
    if not gains:
        return ""
    return f"unparsed answers under --extract {other} instead of {extract}: " + ", ".join(gains)


def read_entry(path: str) -> dict[str, Any]:
    from crab_eval.leaderboard.submission import load_json_text

    if not Path(path).is_file():
        from crab_eval.errors import CrabEvalError

        raise CrabEvalError("submission metadata file not found", path)
    return dict(load_json_text(Path(path), path))


def list_models() -> int:
    from crab_eval.models import MODELS
    from crab_eval.reports.table import format_table

    rows = []
    for name in MODELS.ids():
        try:
            description = MODELS.get_class(name).description
        except ModuleNotFoundError as exc:  # a model whose extra is not installed is still listed
            description = f"(needs {exc.name})"
        rows.append([name, description])
    print(format_table(["model", "description"], rows))
    return 0
