"""``crab-eval submit validate|score``: check and score a leaderboard submission (a folder or a .zip)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crab_eval.commands.common import add_extract_argument, subparser
from crab_eval.extras import require_extras
from crab_eval.leaderboard.submission import entry_results_dir, score_submission, validate
from crab_eval.reports.table import format_table

MAX_LISTED = 10


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "submit",
        "leaderboard submissions: 'validate' checks one (schema, archive safety, every prediction file), "
        "'score' scores it into a leaderboard entry",
        "crab-eval submit score my_model.zip --data-root benchmarks_data --out entries/my_model.json",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = subparser(
        actions,
        "validate",
        "check a submission: archive safety and size limits, submission.json against its schema, file names; with "
        "--data-root also every prediction line against its split (missing, extra, duplicate, malformed, parse "
        "rate); exit 1 if a prediction line is bad",
        "crab-eval submit validate my_model.zip --data-root benchmarks_data",
    )
    check.add_argument("submission", help="submission folder or .zip (submission.json + <task>.jsonl files)")
    check.add_argument(
        "--data-root", default=None, help="folder with one subfolder per task id holding that task's official files"
    )
    check.set_defaults(run=run_validate)
    scorer = subparser(
        actions,
        "score",
        "score every prediction file of a submission with the official metrics; write ENTRY.json and its result "
        "files (ENTRY.results/)",
        "crab-eval submit score my_model.zip --data-root benchmarks_data --out entries/my_model.json",
    )
    scorer.add_argument("submission", help="submission folder or .zip")
    scorer.add_argument(
        "--data-root", required=True, help="folder with one subfolder per task id holding that task's official files"
    )
    scorer.add_argument("--out", required=True, help="leaderboard entry to write (JSON)")
    add_extract_argument(scorer)
    scorer.set_defaults(run=run_score)


def run_validate(args: argparse.Namespace) -> int:
    require_extras("leaderboard")
    metadata, reports = validate(args.submission, args.data_root)
    print(
        f"{args.submission}: {metadata['model']} by {metadata['team']} ({metadata['variant']}), "
        f"{len(reports)} prediction files; submission.json follows the schema"
    )
    checked = args.data_root is not None
    headers = ["file", "task", "split", "variant"]
    if checked:
        headers += ["lines", "samples", "missing", "text", "parse rate", "unparsed", "bad lines"]
    rows = []
    n_bad = 0
    for rep in reports:
        row = [rep["file"], rep["task"], rep["split"], rep["variant"]]
        if checked:
            rate = "-" if rep["parse_rate"] is None else f"{rep['parse_rate']:.1f}%"
            row += [
                rep["n_lines"],
                rep["n_samples"],
                rep["n_missing"],
                rep["n_text"],
                rate,
                rep["n_unparsed"],
                len(rep["errors"]),
            ]
            n_bad += len(rep["errors"])
        rows.append([str(x) for x in row])
    print(format_table(headers, rows))
    for rep in reports:
        for error in rep.get("errors", [])[:MAX_LISTED]:
            print(f"  {error}")
        if len(rep.get("errors", [])) > MAX_LISTED:
            print(f"  ... and {len(rep['errors']) - MAX_LISTED} more in {rep['file']}")
    if not checked:
        print("prediction lines not checked against the splits (give --data-root to check them)")
    print("valid" if n_bad == 0 else "INVALID")
    return 0 if n_bad == 0 else 1


def run_score(args: argparse.Namespace) -> int:
    require_extras("leaderboard")
    entry = score_submission(args.submission, args.data_root, args.out, extract=args.extract)
    rows = [
        [
            r["variant"],
            r["task"],
            r["split"],
            r["main_metric"],
            f"{r['metrics'][r['main_metric']]:.2f}",
            str(r["n_samples"]),
            str(r["n_missing"]),
            str(r["n_unparsed"]),
        ]
        for r in entry["results"]
    ]
    print(format_table(["variant", "task", "split", "main metric", "value", "samples", "missing", "unparsed"], rows))
    print(f"wrote {args.out} and {entry_results_dir(Path(args.out)).name}/")
    return 0
