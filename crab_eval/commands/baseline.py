"""``crab-eval baseline``: write a reference predictor's prediction file for a task."""

from __future__ import annotations

import argparse
import json
from typing import Any

from crab_eval.baselines.predictors import KINDS, write_baseline
from crab_eval.commands.common import subparser


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "baseline",
        "write the prediction file of a reference predictor fitted on the task's training split: majority, "
        "prior (sampled from the train answers), random (uniform over distinct train answers) or blind "
        "(question text only, QA tasks)",
        "crab-eval baseline --task music_avqa --data MUSIC-AVQA/data/json_update --kind blind --out blind.jsonl",
    )
    parser.add_argument("--task", required=True, help="task id (see 'crab-eval tasks')")
    parser.add_argument("--data", required=True, help="folder with the benchmark's official annotation files")
    parser.add_argument("--kind", required=True, choices=KINDS, help="which reference predictor")
    parser.add_argument("--out", required=True, help="prediction file to write (JSONL)")
    parser.add_argument("--split", default=None, help="split to predict (default: the task's default, usually test)")
    parser.add_argument("--train-split", default="train", help="split to fit on (default: train)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prior and random predictors")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    summary = write_baseline(
        args.task, args.data, args.kind, args.out, split=args.split, train_split=args.train_split, seed=args.seed
    )
    print(json.dumps(summary, sort_keys=True))
    print(f"wrote {args.out}")
    return 0
