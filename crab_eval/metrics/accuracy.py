"""Accuracy pooled within groups of questions (MUSIC-AVQA's question types and modalities, AVQA's question types).

The official QA test loops count right answers per group and divide once per reported number; pooling the counts of
several groups (MUSIC-AVQA's modality averages) is the same division over their summed counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crab_eval.additive import Additive

ALL = None  # a pool of every question, of whatever group


def grouped_accuracy(
    stats: Sequence[Mapping[str, Any]], pools: Mapping[str, Sequence[str] | None], key: str = "qtype"
) -> dict[str, float]:
    """Accuracy (0-100) of each pool of groups (``ALL``: every question), from per-question stats with ``correct``
    (0/1) and the group under ``key``; a pool without questions is left out (the official code divides by zero
    there). Results follow the order of ``pools``."""
    if not stats:
        return {}
    correct = np.fromiter((s["correct"] for s in stats), dtype=np.float64, count=len(stats))
    # Integer codes by dict lookup: np.unique on an object array costs more than the rest (bootstrap hot path).
    codes: dict[str, int] = {}
    inverse = np.fromiter((codes.setdefault(s[key], len(codes)) for s in stats), dtype=np.intp, count=len(stats))
    right = np.bincount(inverse, weights=correct, minlength=len(codes))
    total = np.bincount(inverse, minlength=len(codes)).astype(np.float64)
    right_by, total_by = dict(zip(codes, right, strict=True)), dict(zip(codes, total, strict=True))
    results = {}
    for name, members in pools.items():
        if members is ALL:
            results[name] = float(100.0 * correct.sum() / len(correct))
            continue
        n = sum(total_by.get(m, 0.0) for m in members)
        if n:
            results[name] = float(100.0 * sum(right_by.get(m, 0.0) for m in members) / n)
    return results


def grouped_accuracy_additive(pools: Mapping[str, Sequence[str] | None], key: str = "qtype") -> Additive:
    """``grouped_accuracy`` as column sums (the bootstrap's fast path, crab_eval/additive.py): right answers and
    questions of every group a pool names, then of all questions; the same divisions on the summed counts."""
    groups = tuple(dict.fromkeys(m for members in pools.values() if members is not ALL for m in members))
    index = {g: i for i, g in enumerate(groups)}

    def columns(stats: Sequence[Mapping[str, Any]]) -> np.ndarray:
        out = np.zeros((len(stats), 2 * len(groups) + 2), dtype=np.float64)
        for i, s in enumerate(stats):
            j = index.get(s[key])
            if j is not None:
                out[i, 2 * j], out[i, 2 * j + 1] = s["correct"], 1.0
            out[i, -2], out[i, -1] = s["correct"], 1.0
        return out

    def finish(sums: np.ndarray) -> dict[str, np.ndarray]:
        results = {}
        for name, members in pools.items():
            if members is ALL:
                results[name] = 100.0 * sums[:, -2] / sums[:, -1]
                continue
            # Counts are integers: summing them in any order gives the values grouped_accuracy divides.
            right = sum(sums[:, 2 * index[m]] for m in members)
            total = sum(sums[:, 2 * index[m] + 1] for m in members)
            with np.errstate(divide="ignore", invalid="ignore"):
                results[name] = np.where(total > 0, 100.0 * np.asarray(right) / np.asarray(total), np.nan)
        return results

    return Additive(columns, finish)
