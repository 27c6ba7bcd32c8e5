"""Accuracy pooled within groups of questions (MUSIC-AVQA's question types and modalities, AVQA's question types).

The official QA test loops count right answers per group and divide once per reported number; pooling the counts of
several groups (MUSIC-AVQA's modality averages) is the same division over their summed counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
