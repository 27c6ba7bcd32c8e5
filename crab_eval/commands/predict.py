"""``crab-eval predict``: run a trained checkpoint over a split and write the scoring contract's prediction file."""

from __future__ import annotations

import argparse
from typing import Any

from crab_eval.commands.common import subparser
from crab_eval.extras import require_extras
from crab_eval.registry import get_task


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "predict",
        "greedy predictions of a trained checkpoint for one split, written as a prediction file (JSONL) that "
        "'crab-eval score' reads unchanged",
        "crab-eval predict --checkpoint runs/unified --task ave --data AVE_Dataset --split test --out preds.jsonl",
    )
    parser.add_argument("--checkpoint", required=True, help="run folder (newest checkpoint) or one checkpoint folder")
    parser.add_argument("--task", required=True, help="task id (see 'crab-eval tasks')")
    parser.add_argument("--data", required=True, help="folder with the benchmark's official files")
    parser.add_argument("--split", default=None, help="split (default: the task's default, usually test)")
    parser.add_argument("--out", required=True, help="prediction file to write (JSONL)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples (for a quick look)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_extras("model")
    from crab_eval.model.predict import predict

    split = args.split or get_task(args.task).default_split
    n = predict(
        args.checkpoint,
        args.task,
        args.data,
        split,
        args.out,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        limit=args.limit,
        progress=not args.no_progress,
    )
    print(f"wrote {n} predictions to {args.out}")
    return 0
