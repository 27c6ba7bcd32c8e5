"""Scoring speed and memory at official test-set sizes; prints a table, never fails on time.

    python benchmarks/bench_scoring.py [--repeat 3] [--only ave,avvp]

For each task: the inputs are built once (benchmarks/scoring_cases/), then timed in three stages: loading the
official annotation files, reading and validating the prediction file, and scoring (per-sample stats +
aggregate). "total" is the whole ``crab_eval.scoring.score`` call, as ``crab-eval score`` runs it (it also
fingerprints the annotation files). Peak memory is traced in a separate pass (tracemalloc slows Python code).
Target: scoring each task's test set in under 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scoring_cases

from crab_eval.predictions import read_predictions
from crab_eval.registry import get_task
from crab_eval.scoring import load_split, score, score_predictions


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage; the best is reported")
    parser.add_argument("--only", default="", help="comma-separated task ids")
    args = parser.parse_args()
    only = {t for t in args.only.split(",") if t}
    header = f"{'task':<12}{'samples':>9}{'load s':>9}{'read s':>9}{'score s':>9}{'total s':>9}{'peak MiB':>10}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for info in pkgutil.iter_modules(scoring_cases.__path__):
            module = importlib.import_module(f"scoring_cases.{info.name}")
            for task_id, data_dir, split, preds_path in module.build(Path(tmp) / info.name, seed=0):
                if only and task_id not in only:
                    continue
                task = get_task(task_id)
                t_load, samples = best_of(args.repeat, lambda: load_split(task, data_dir, split))  # noqa: B023
                t_read, preds = best_of(args.repeat, lambda: read_predictions(preds_path, task, samples))  # noqa: B023
                t_score, _ = best_of(
                    args.repeat,
                    lambda: task.aggregate(score_predictions(task, samples, preds)),  # noqa: B023
                )
                t_total, _ = best_of(args.repeat, lambda: score(task_id, data_dir, split, preds_path))  # noqa: B023
                tracemalloc.start()
                score(task_id, data_dir, split, preds_path)
                peak = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                print(
                    f"{task_id:<12}{len(samples):>9}{t_load:>9.3f}{t_read:>9.3f}{t_score:>9.3f}{t_total:>9.3f}"
                    f"{peak:>10.1f}"
                )


if __name__ == "__main__":
    main()
