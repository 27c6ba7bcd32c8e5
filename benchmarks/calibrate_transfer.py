"""Calibration of `crab-eval transfer` on simulated studies: false claims with no transfer, power with planted ones.

    python benchmarks/calibrate_transfer.py [--experiments 400] [--tasks 4] [--bootstrap 300]

Each experiment is one simulated study (crab_eval/simulation.py: clips of 10 segments, seed shifts and seed-by-clip
noise giving a seed-to-seed spread of about 4-5 points) pushed through `compute_transfer` as result files. Printed
per cell (seeds per arm, planted effect): the share of task verdicts that claim transfer (negative or positive,
Holm-corrected), the share of tables with at least one claim, the share of tasks whose own test rejects at 5 %
(uncorrected; tasks with training noise measured or supplied), the share that say equivalent, and the share of
studies whose Delta_m interval excludes 0 (a false Delta_m claim with no effect, power with a planted one).
docs/transfer.md quotes these figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from crab_eval.registry import register_task
from crab_eval.simulation import StudyDesign, simulate_study
from crab_eval.tasks.ave import AveTask
from crab_eval.transfer import compute_transfer

_REGISTERED: dict[str, type] = {}


def sim_tasks(n: int) -> list[str]:
    """``sim_0`` ... : AVE's adapter under other ids, one per simulated task."""
    ids = [f"sim_{i}" for i in range(n)]
    for task_id in ids:
        if task_id not in _REGISTERED:
            _REGISTERED[task_id] = register_task(type(f"Sim{task_id}", (AveTask,), {"id": task_id}))
    return ids


def true_seed_sd(design: StudyDesign, rng: np.random.Generator, runs: int = 400) -> float:
    """The seed-to-seed sd of one run's accuracy on a fixed test set, by simulation."""
    (task,) = sim_tasks(1)
    wide = StudyDesign(**{**design.__dict__, "seeds_single": runs, "seeds_unified": 1})
    single, _ = simulate_study([task], wide, rng)
    return float(np.std([r.metrics["accuracy"] for r in single], ddof=1))


def cell(tasks: list[str], design: StudyDesign, n_exp: int, n_boot: int, seed_sd: float | None) -> dict[str, float]:
    claims = equivalent = tables = uncorrected = delta_m = 0
    for e in range(n_exp):
        single, unified = simulate_study(tasks, design, np.random.default_rng([7, e]))
        report = compute_transfer(single, unified, n_boot, seed=e, seed_sd=seed_sd)
        verdicts = [t.verdict for t in report.tasks]
        claims += sum(v in ("negative", "positive") for v in verdicts)
        equivalent += sum(v == "equivalent" for v in verdicts)
        tables += any(v in ("negative", "positive") for v in verdicts)
        uncorrected += sum(t.p_value < 0.05 for t in report.tasks if t.training_noise != "unmeasured")
        delta_m += not report.delta_m_ci[0] <= 0.0 <= report.delta_m_ci[1]
    n = n_exp * len(tasks)
    return {
        "claims": claims / n,
        "equivalent": equivalent / n,
        "tables": tables / n_exp,
        "uncorrected": uncorrected / n,
        "delta_m": delta_m / n_exp,
    }


def delta_m_paths(tasks: list[str], k: int, effect: float, n_exp: int, n_boot: int) -> dict[str, float]:
    """Share of studies whose Delta_m interval excludes 0, on each path of ``_delta_m``: every seed lines up (per
    seed), one single-task run of the first task lost (unified seeds line up: their spread measured per seed, the
    rest combined), and unified runs whose seeds do not line up across tasks (the shared part bounded)."""
    out = {"aligned": 0, "one single run lost": 0, "unified seeds not aligned": 0}
    for e in range(n_exp):
        design = StudyDesign(seeds_single=k, seeds_unified=k, effect=effect)
        single, unified = simulate_study(tasks, design, np.random.default_rng([13, k, e]))
        lost = [r for r in single if r.task == tasks[0]][-1]
        renamed = [replace(r, run={**r.run, "seed": r.run["seed"] + 100 * tasks.index(r.task)}) for r in unified]
        cases = {
            "aligned": (single, unified),
            "one single run lost": ([r for r in single if r is not lost], unified),
            "unified seeds not aligned": (single, renamed),
        }
        for name, (s, u) in cases.items():
            low, high = compute_transfer(s, u, n_boot, seed=e).delta_m_ci
            out[name] += not low <= 0.0 <= high
    return {name: count / n_exp for name, count in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--bootstrap", type=int, default=300)
    parser.add_argument("--clips", type=int, default=128)
    args = parser.parse_args()
    tasks = sim_tasks(args.tasks)
    base = StudyDesign(n_clips=args.clips)
    sd = true_seed_sd(base, np.random.default_rng(1))
    print(f"design: {base}; true seed-to-seed sd of accuracy {sd:.2f} points")
    print(
        "| seeds S+U | effect (logit) | seed sd given | task claims (Holm) | tables with a claim | "
        "uncorrected p < 0.05 | equivalent | Delta_m CI excludes 0 | s / study |\n|---|---|---|---|---|---|---|---|---|"
    )
    cells = [(1, None), (1, sd), (2, None), (3, None), (5, None)]
    for effect in (0.0, 0.3, 0.6):
        for k, given in cells:
            design = StudyDesign(n_clips=args.clips, seeds_single=k, seeds_unified=k, effect=effect)
            start = time.perf_counter()
            rates = cell(tasks, design, args.experiments, args.bootstrap, given)
            per = (time.perf_counter() - start) / args.experiments
            given_text = "-" if given is None else f"{given:.2f}"
            print(
                f"| {k}+{k} | {effect:+.2f} | {given_text} | {100 * rates['claims']:.1f} % | "
                f"{100 * rates['tables']:.1f} % | {100 * rates['uncorrected']:.1f} % | "
                f"{100 * rates['equivalent']:.1f} % | {100 * rates['delta_m']:.1f} % | {per:.3f} |",
                flush=True,
            )
    print(
        "\nDelta_m's interval excludes 0, by path (share of studies):\n"
        "| seeds S+U | effect (logit) | aligned (per seed) | one single run lost | unified seeds not aligned |\n"
        "|---|---|---|---|---|"
    )
    for effect in (0.0, 0.6):
        for k in (2, 3, 5):
            rates = delta_m_paths(tasks, k, effect, args.experiments, args.bootstrap)
            cells = " | ".join(f"{100 * v:.1f} %" for v in rates.values())
            print(f"| {k}+{k} | {effect:+.2f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
