"""Calibration of `crab-eval compare` (the CI gate) on simulated MUSIC-AVQA-format runs.

    python benchmarks/calibrate_compare.py [--experiments 400] [--questions 9129] [--bootstrap 1000]

Two runs of equal quality (every question answered right with the same chance, each run drawn independently) should
fail the gate at most (1 - confidence) / 2 = 2.5 % of the time; a run 3 points worse should fail. Printed per gate
(main metric; all 13 metrics with Holm; all 13 metrics uncorrected, the old rule): the share of experiments that fail.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crab_eval.compare import compare_results
from crab_eval.simulation import simulate_qa_pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--questions", type=int, default=9129)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    print(f"{args.questions} questions in clips of 6, {args.bootstrap} replicates, {args.experiments} experiments")
    print("| drop (points) | fails: main metric | all metrics, Holm | all metrics, uncorrected | s / experiment |")
    print("|---|---|---|---|---|")
    for drop in (0.0, 1.0, 3.0):
        fails = {"main": 0, "all": 0, "uncorrected": 0}
        start = time.perf_counter()
        for e in range(args.experiments):
            ref, new = simulate_qa_pair(args.questions, drop, np.random.default_rng([3, e]))
            fails["main"] += not compare_results(new, ref, n_boot=args.bootstrap, seed=e).passed
            report = compare_results(new, ref, n_boot=args.bootstrap, seed=e, metrics="all")
            fails["all"] += not report.passed
            fails["uncorrected"] += any(c.ci[1] < 0 for c in report.checks)
        per = (time.perf_counter() - start) / args.experiments
        rates = " | ".join(f"{100 * fails[k] / args.experiments:.1f} %" for k in ("main", "all", "uncorrected"))
        print(f"| {drop:g} | {rates} | {per:.3f} |", flush=True)


if __name__ == "__main__":
    main()
