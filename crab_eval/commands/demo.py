"""``crab-eval demo``: synthesise, train single-task and unified models, predict, score, print the transfer tables."""

from __future__ import annotations

import argparse
from typing import Any

from crab_eval.commands.common import subparser
from crab_eval.demo_plan import ADAPTERS, DEFAULT_ADAPTERS, DEMO_TASKS, SYNTH_TASKS, DemoPlan
from crab_eval.extras import require_extras


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "demo",
        "the whole job on SynthAV: synthesise the suite, train a single-task model per task and a unified model "
        "(ilora; --adapters lora,ilora for both), predict, score, and print the transfer tables with their charts "
        "(resumable: finished stages are skipped on a rerun)",
        "crab-eval demo --out out/demo",
    )
    parser.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    parser.add_argument(
        "--size",
        choices=("tiny", "small", "demo"),
        default="demo",
        help="SynthAV size (default: demo, 256 training and 128 test clips a task, S4 16 and 64, MS3 256 and 64; "
        "small has 48 and 24; tiny is a smoke test, too few items to conclude)",
    )
    parser.add_argument("--seed", type=int, default=0, help="suite, training and bootstrap seed (default: 0)")
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps of every model (default: per size, 600 for demo)"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="training seeds per model, on one suite (default: 1); with more, training noise enters the transfer "
        "intervals, and the run takes that many times as long",
    )
    parser.add_argument(
        "--tasks",
        default=",".join(DEMO_TASKS),
        help=f"SynthAV tasks, comma-separated from {', '.join(SYNTH_TASKS)} (default: {','.join(DEMO_TASKS)})",
    )
    parser.add_argument(
        "--adapters",
        default=",".join(DEFAULT_ADAPTERS),
        help=f"unified models to train, comma-separated from {', '.join(ADAPTERS)} (default: "
        f"{','.join(DEFAULT_ADAPTERS)}); one transfer table each",
    )
    parser.add_argument(
        "--aa",
        action="store_true",
        help="also train every single-task model with --seeds more training seeds and write the A/A table "
        "(transfer_aa/: the same configuration against itself, which should claim nothing)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each (default: 2)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (default: 1000)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require_extras("model", "media", "reports")
    from crab_eval.demo import run_demo

    def names(value: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))

    plan = DemoPlan(out=args.out, size=args.size, seed=args.seed, tasks=names(args.tasks), steps=args.steps,
                    jobs=args.jobs, n_boot=args.bootstrap, seeds=args.seeds, adapters=names(args.adapters),
                    aa=args.aa)  # fmt: skip
    run_demo(plan)
    return 0
