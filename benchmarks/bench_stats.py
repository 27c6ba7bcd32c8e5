"""Speed of the statistics at official test-set sizes: `crab-eval compare` and `crab-eval transfer`, whole process.

    python benchmarks/bench_stats.py [--bootstrap 1000] [--repeat 3]

Result files are simulated in the adapters' per-sample formats (crab_eval/simulation.py) and written to a temporary
folder: MUSIC-AVQA's test split (9,129 questions in clips of 6, 13 metrics) and AVE's (402 clips of 10 segments).
Each command runs as its own process (import, reading, bootstrap, printing), best of --repeat. For comparison, the
in-process bootstrap time with and without the additive fast path (identical replicates) is printed too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from crab_eval.bootstrap import bootstrap_runs, task_rng
from crab_eval.pairing import align_runs
from crab_eval.registry import get_task
from crab_eval.results import write_result
from crab_eval.simulation import StudyDesign, simulate_qa_pair, simulate_study


def best_of(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "crab_eval.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref, new = simulate_qa_pair(9129, 0.0, np.random.default_rng(0))
        write_result(ref, root / "ref.json")
        write_result(new, root / "new.json")
        boot = ["--bootstrap", str(args.bootstrap)]
        for gate in ("main", "all"):
            seconds = best_of([*cli, "compare", str(root / "new.json"), "--reference", str(root / "ref.json"),
                               *boot, "--metrics", gate], args.repeat)  # fmt: skip
            print(f"compare music_avqa (9,129 questions, gate {gate}): {seconds:.2f} s whole process")
        aligned = align_runs([ref, new])
        task = get_task("music_avqa")
        for label, additive in (("aggregate per replicate", None), ("additive fast path", task.additive)):
            start = time.perf_counter()
            bootstrap_runs(aligned.rows, task.aggregate, task_rng(0, "music_avqa"), args.bootstrap, aligned.groups,
                           additive=additive)  # fmt: skip
            print(f"  bootstrap of 2 runs x {args.bootstrap} in process, {label}: {time.perf_counter() - start:.2f} s")
        design = StudyDesign(n_clips=402, seeds_single=3, seeds_unified=3)
        single, unified = simulate_study(["ave"], design, np.random.default_rng(1))
        paths: dict[str, list[str]] = {"single": [], "unified": []}
        for arm, runs in (("single", single), ("unified", unified)):
            for run in runs:
                path = root / f"{arm}_{run.run['seed']}.json"
                write_result(run, path)
                paths[arm].append(str(path))
        seconds = best_of([*cli, "transfer", "--single", *paths["single"], "--unified", *paths["unified"], *boot],
                          args.repeat)  # fmt: skip
        print(f"transfer ave (402 clips, 3 + 3 seeds): {seconds:.2f} s whole process")


if __name__ == "__main__":
    main()
