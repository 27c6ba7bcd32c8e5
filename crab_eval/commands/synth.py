"""``crab-eval synth``: write the SynthAV suite (every task's official layout, real media) under a folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from crab_eval.commands.common import subparser
from crab_eval.errors import CrabEvalError
from crab_eval.extras import require_extras
from crab_eval.reports.table import format_table


def add_parser(sub: Any) -> None:
    from crab_eval.synth.config import SIZES, TASKS

    parser = subparser(
        sub,
        "synth",
        "write SynthAV, a procedurally generated audio-visual suite in the official layouts (AVE, AVVP, S4, MS3, "
        "MUSIC-AVQA and the planted-conflict task), with planted transfer relations (synth_config.json)",
        "crab-eval synth --out synthav --seed 0 --size tiny",
    )
    parser.add_argument("--out", required=True, help="folder to write (each task's sub-folder is replaced)")
    parser.add_argument("--seed", type=int, default=0, help="suite seed: the same seed gives byte-identical files")
    parser.add_argument("--size", choices=tuple(SIZES), default="tiny", help="clips per split (default: tiny)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for rendering (output is identical)")
    parser.add_argument(
        "--task", action="append", choices=tuple(TASKS), default=None, help="build only this task (repeatable)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_extras("media")
    from crab_eval.synth.config import TASKS
    from crab_eval.synth.suite import build, tree_size

    if args.jobs < 1:
        raise CrabEvalError(f"--jobs must be at least 1, got {args.jobs}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CrabEvalError("--out exists and is not a folder", out)
    start = time.perf_counter()
    manifest = build(out, seed=args.seed, size=args.size, jobs=args.jobs, tasks=tuple(args.task or ()))
    rows = []
    for task in manifest["tasks"]:
        folder = out / TASKS[task][1]
        n_files, n_bytes = tree_size(folder)
        rows.append([task, str(folder), str(n_files), f"{n_bytes / 1e6:.1f} MB"])
    print(format_table(["task", "data dir", "files", "size"], rows))
    print(
        f"SynthAV {args.size}, seed {args.seed}: built in {time.perf_counter() - start:.1f} s; "
        f"relations in {out / 'synth_config.json'}"
    )
    return 0
