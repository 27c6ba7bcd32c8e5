"""``crab-eval score``: the scoring contract's command."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crab_eval.clients import write_predictions
from crab_eval.commands.common import add_extract_argument, add_split_arguments, parse_run_info, subparser
from crab_eval.commands.convert import add_client_arguments, run_conversion
from crab_eval.errors import CrabEvalError
from crab_eval.registry import get_task
from crab_eval.reports.table import format_table
from crab_eval.results import samples_path_for, write_result
from crab_eval.scoring import score


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "score",
        "score a prediction file (or, with --from, a client's own output: Crab, Crab+, lmms-eval) against a split "
        "with the official metric; write RESULT.json (+ RESULT.samples.jsonl with per-sample stats)",
        "crab-eval score --task avvp --data LLP --split test --predictions preds.jsonl --output avvp.json\n"
        "  crab-eval score --from crab --task ave --data AVE_Dataset RUN --output ave.json   (Crab's run folder)\n"
        "  crab-eval score --from crab-plus --task music_avqa --data json_update CKPT --output avqa.json",
    )
    add_split_arguments(parser, predictions_required=False)
    add_client_arguments(parser, required=False)
    parser.add_argument(
        "--output", "--out", dest="output", required=True, help="result file to write (JSON); --out as elsewhere"
    )
    add_extract_argument(parser)
    parser.add_argument("--model", default=None, help="model or checkpoint id, recorded in the result")
    parser.add_argument("--variant", default=None, help="e.g. single or unified, recorded in the result")
    parser.add_argument("--seed", type=int, default=None, help="training seed, recorded in the result")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="extra run information (repeatable)"
    )
    parser.set_defaults(run=run)


def converted_path_for(result_path: Path) -> Path:
    """Where score --from keeps the converted predictions: RESULT.predictions.jsonl beside RESULT.json."""
    stem = result_path.name[: -len(".json")] if result_path.name.endswith(".json") else result_path.name
    return result_path.with_name(stem + ".predictions.jsonl")


def run(args: argparse.Namespace) -> int:
    run_info = parse_run_info({"model": args.model, "variant": args.variant, "seed": args.seed}, args.tag)
    task = get_task(args.task)
    split = args.split or task.default_split
    predictions, client = args.predictions, None
    if args.source is not None:
        # convert + score: the converted predictions are kept beside the result (its predictions_file).
        if args.predictions is not None:
            raise CrabEvalError("give either --predictions or --from with the client's files, not both")
        conversion = run_conversion(args)
        predictions = converted_path_for(Path(args.output))
        write_predictions(conversion.rows, predictions)
        client = {"from": args.source, **conversion.report.to_json()}
    elif args.inputs:
        raise CrabEvalError(f"INPUT files ({args.inputs[0]}...) need --from crab|crab-plus|lmms-eval|jsonl")
    elif args.predictions is None:
        raise CrabEvalError("give --predictions FILE, or --from SOURCE with the client's files")
    result = score(
        task.id,
        args.data,
        split,
        predictions,
        allow_extra=args.allow_extra,
        run=run_info,
        extract=args.extract,
        client=client,
    )
    write_result(result, args.output)
    rows = [
        [name, f"{value:.2f}" + (" *" if name == result.main_metric else "")] for name, value in result.metrics.items()
    ]
    print(format_table(["metric", "value"], rows))
    print(
        f"{result.task}/{result.split}: {result.n_samples} samples, {result.n_missing} missing, "
        f"{result.n_unparsed} unparsed ({args.extract}), {result.n_extra} extra ignored"
    )
    rates = ", ".join(f"{tier} {n}" for tier, n in result.n_unparsed_by_extract.items())
    print(f"unparsed under each extraction tier: {rates}")
    written = [samples_path_for(Path(args.output)).name] + ([Path(predictions).name] if client else [])
    print(f"wrote {args.output} and {' and '.join(written)}")
    return 0
