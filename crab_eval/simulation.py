"""Simulated transfer studies in the result-file format, for calibrating the comparator.

A study is T tasks in AVE's per-sample format (``{"correct": k, "total": 10}`` per clip; accuracy is pooled over
segments), each with K_S single-task and K_U unified runs scored on one test set of clips. A run's chance of getting
segment j of clip i right is ``sigmoid(a_i + u_k + e_ik + delta_i)``:

- ``a_i``: clip difficulty (``item_sd``), shared by every run: what makes a paired comparison pay off;
- ``u_k``: the training seed's shift of the whole run (``seed_sd``), the classic seed-to-seed spread;
- ``e_ik``: seed-by-clip noise (``seed_item_sd``): another seed gets other clips right;
- ``delta_i``: the planted transfer of the unified arm, mean ``effect`` and spread ``effect_item_sd`` over clips.

With the defaults the per-seed accuracy spreads by about 4-5 points, as the demo's models do. Nothing here is
specific to AVE but the per-sample format: the task ids given must be registered AVE-format tasks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from crab_eval.registry import get_task
from crab_eval.results import RunResult

SEGMENTS = 10


@dataclass(frozen=True)
class StudyDesign:
    n_clips: int = 128
    seeds_single: int = 1
    seeds_unified: int = 1
    base_logit: float = 0.5  # about 62 % of segments right
    item_sd: float = 1.5
    seed_sd: float = 0.2
    seed_item_sd: float = 0.5
    effect: float = 0.0  # logit shift of the unified arm
    effect_item_sd: float = 0.0


def _run(task: str, variant: str, seed: int, logits: np.ndarray, rng: np.random.Generator, version: str) -> RunResult:
    p = 1.0 / (1.0 + np.exp(-logits))
    correct = rng.binomial(SEGMENTS, p)
    rows = [
        {"id": f"c{i:05d}", "group": f"c{i:05d}", "status": "ok", "correct": int(c), "total": SEGMENTS}
        for i, c in enumerate(correct)
    ]
    accuracy = 100.0 * int(correct.sum()) / (SEGMENTS * len(correct))
    digest = hashlib.sha256(correct.tobytes() + f"{task}/{variant}/{seed}".encode()).hexdigest()
    return RunResult(
        task=task,
        split="test",
        metrics={"accuracy": accuracy},
        main_metric="accuracy",
        higher_is_better={"accuracy": True},
        n_samples=len(rows),
        n_missing=0,
        n_unparsed=0,
        provenance={
            "data_fingerprint": f"sha256:simulated-{task}",
            "task_version": version,
            "predictions_sha256": digest,
        },
        run={"model": f"simulated-{variant}", "variant": variant, "adapter": "lora", "seed": seed},
        samples=rows,
    )


def simulate_study(
    tasks: list[str], design: StudyDesign, rng: np.random.Generator
) -> tuple[list[RunResult], list[RunResult]]:
    """(single runs, unified runs) of one simulated study: every task, every seed of each arm."""
    single, unified = [], []
    # The unified arm's run k is one model for every task: its seed shift is shared across tasks.
    unified_shift = rng.normal(0.0, design.seed_sd, design.seeds_unified)
    for task in tasks:
        version = get_task(task).version
        difficulty = rng.normal(design.base_logit, design.item_sd, design.n_clips)
        transfer = rng.normal(design.effect, design.effect_item_sd, design.n_clips)
        for k in range(design.seeds_single):
            noise = rng.normal(0.0, design.seed_item_sd, design.n_clips)
            logits = difficulty + rng.normal(0.0, design.seed_sd) + noise
            single.append(_run(task, "single", k, logits, rng, version))
        for k in range(design.seeds_unified):
            noise = rng.normal(0.0, design.seed_item_sd, design.n_clips)
            logits = difficulty + unified_shift[k] + noise + transfer
            unified.append(_run(task, "unified", k, logits, rng, version))
    return single, unified


# MUSIC-AVQA's question types in the per-sample format of its adapter (tasks/music_avqa.py), for the regression gate.
QA_TYPES = (
    "audio_counting", "audio_comparative", "visual_counting", "visual_location", "av_existential", "av_counting",
    "av_location", "av_comparative", "av_temporal",
)  # fmt: skip


def simulate_qa_pair(
    n_questions: int, drop: float, rng: np.random.Generator, per_video: int = 6
) -> tuple[RunResult, RunResult]:
    """(reference, new) runs on one simulated MUSIC-AVQA-format test set; ``new`` is ``drop`` points worse on every
    question (its chance of a right answer is lower by drop / 100), each run drawn independently."""
    task = "music_avqa"
    version = get_task(task).version
    qtypes = rng.choice(QA_TYPES, n_questions)
    groups = [f"v{i // per_video:05d}" for i in range(n_questions)]
    p = 1.0 / (1.0 + np.exp(-rng.normal(1.0, 1.5, n_questions)))
    runs = []
    for name, chance in (("reference", p), ("new", np.clip(p - drop / 100.0, 0.0, 1.0))):
        correct = rng.random(n_questions) < chance
        rows = [
            {"id": f"q{i}", "group": g, "status": "ok", "correct": int(c), "qtype": str(t)}
            for i, (g, c, t) in enumerate(zip(groups, correct, qtypes, strict=True))
        ]
        metrics = get_task(task).aggregate(rows)
        runs.append(
            RunResult(
                task=task,
                split="test",
                metrics=dict(metrics),
                main_metric="overall",
                higher_is_better={m: True for m in metrics},
                n_samples=n_questions,
                n_missing=0,
                n_unparsed=0,
                provenance={"data_fingerprint": "sha256:simulated-qa", "task_version": version},
                run={"model": name},
                samples=rows,
            )
        )
    return runs[0], runs[1]
