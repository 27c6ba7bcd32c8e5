"""Vectorised kernels for segment-labelled clips: contiguous runs, segment-level and event-level F.

A clip of ``L`` one-second segments (``L`` = 10 for AVE and LLP) is labelled per class by a bit mask: bit ``i`` set
means "the class is present in segment ``i``". One integer code per (clip, class) holds a whole timeline, so every
count below is an array lookup or a bit operation over all clips and classes at once (no Python loop over clips,
classes or segments).

Event-level matching follows YapengTian/AVVP-ECCV20 ``utils/eval_metrics.py``: the events of a timeline are its
maximal runs of ones; a predicted run is a true positive if its IoU with *any* ground-truth run is >= 0.5 (the
official test ``intersection >= 0.5 * union``, so exactly 0.5 counts); a ground-truth run no predicted run matches
is a false negative. For maximal runs on one timeline this any-match rule can never count one run twice (two
disjoint, non-adjacent runs cannot both reach IoU 0.5 with one run), but the kernel implements the rule itself,
not one-to-one matching.

All the (prediction, ground truth) pairs of ``L``-bit codes are few (2^L x 2^L), so the event counts are one table
built once per ``L``: ``match[x, y]`` = number of runs of ``x`` that match some run of ``y``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MAX_SEGMENTS = 12  # the pair table has 4^L entries; 12 segments is 16M int8 (16 MB), more is not worth a table


def interval_code(onset: int, offset: int) -> int:
    """Bit mask of segments ``onset .. offset - 1`` (offset exclusive); 0 when ``offset <= onset``."""
    if offset <= onset:
        return 0
    return ((1 << offset) - 1) ^ ((1 << onset) - 1)


def code_runs(code: int, n_segments: int = 10) -> list[tuple[int, int]]:
    """Maximal runs of ``code`` as ``(onset, offset)`` pairs, offset exclusive, in time order."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(n_segments + 1):
        on = i < n_segments and bool((code >> i) & 1)
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append((start, i))
            start = None
    return runs


@lru_cache(maxsize=4)
def _intervals(n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Every interval ``[s, e)`` with ``0 <= s < e <= L`` as (starts, ends)."""
    starts, ends = np.triu_indices(n_segments + 1, k=1)
    return starts.astype(np.int64), ends.astype(np.int64)


@lru_cache(maxsize=4)
def _tables(n_segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(popcount per code, number of runs per code, pair table ``match``) for ``L``-bit codes."""
    if not 1 <= n_segments <= MAX_SEGMENTS:
        raise ValueError(f"n_segments must be in 1..{MAX_SEGMENTS}, got {n_segments}")
    n_codes = 1 << n_segments
    codes = np.arange(n_codes, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(n_segments)) & 1  # (codes, L)
    popcount = bits.sum(axis=1).astype(np.int64)

    # is_run[c, k]: interval k is a maximal run of code c (all ones inside, a zero or the clip edge on both sides).
    starts, ends = _intervals(n_segments)
    padded = np.pad(bits, ((0, 0), (1, 1)))  # edge columns are zeros, so the clip ends bound runs
    cumsum = np.concatenate([np.zeros((n_codes, 1), np.int64), np.cumsum(padded, axis=1)], axis=1)
    inside = (cumsum[:, ends + 1] - cumsum[:, starts + 1]) == (ends - starts)
    left_open = padded[:, starts] == 0
    right_open = padded[:, ends + 1] == 0
    is_run = (inside & left_open & right_open).astype(np.float64)
    n_runs = is_run.sum(axis=1).astype(np.int64)

    # iou_ok[k, l]: intervals k and l pass the official test intersection >= 0.5 * union (symmetric).
    inter = np.clip(np.minimum(ends[:, None], ends[None, :]) - np.maximum(starts[:, None], starts[None, :]), 0, None)
    lengths = ends - starts
    union = lengths[:, None] + lengths[None, :] - inter
    iou_ok = (inter >= 0.5 * union).astype(np.float64)

    # matched_by[c, k]: interval k matches at least one run of code c.
    matched_by = (is_run @ iou_ok) > 0
    # match[x, y] = runs of x that match some run of y.
    match = np.rint(is_run @ matched_by.T.astype(np.float64)).astype(np.int8)
    return popcount, n_runs, match


def segment_counts(pred: np.ndarray, gt: np.ndarray, n_segments: int = 10) -> tuple[np.ndarray, ...]:
    """Per-code segment counts (TP, FP, FN) of equally shaped integer code arrays."""
    popcount = _tables(n_segments)[0]
    pred = np.asarray(pred, dtype=np.int64)
    gt = np.asarray(gt, dtype=np.int64)
    return popcount[pred & gt], popcount[pred & ~gt & _full(n_segments)], popcount[~pred & gt & _full(n_segments)]


def event_counts(pred: np.ndarray, gt: np.ndarray, n_segments: int = 10) -> tuple[np.ndarray, ...]:
    """Per-code event counts (TP, FP, FN): runs of ``pred`` matching some run of ``gt``, runs of ``pred`` matching
    none, runs of ``gt`` matched by no run of ``pred``."""
    _, n_runs, match = _tables(n_segments)
    pred = np.asarray(pred, dtype=np.int64)
    gt = np.asarray(gt, dtype=np.int64)
    tp = match[pred, gt].astype(np.int64)
    fn = n_runs[gt] - match[gt, pred]
    return tp, n_runs[pred] - tp, fn


def mean_class_f(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Mean over the last axis (classes) of F = 2TP / (2TP + FP + FN), over the classes present in the prediction
    or the ground truth only; 1.0 where no class is present (the official "all true negatives")."""
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    fn = np.asarray(fn, dtype=np.float64)
    active = (tp + fp > 0) | (tp + fn > 0)
    denominator = np.where(active, 2 * tp + fp + fn, 1.0)
    f = np.where(active, 2 * tp / denominator, 0.0)
    n_active = active.sum(axis=-1)
    # A running sum in class order (cumsum is sequential, np.sum is pairwise): the official sum(list) order, so the
    # per-clip values match the official ones to the last bit.
    total = np.cumsum(f, axis=-1)[..., -1]
    return np.where(n_active > 0, total / np.maximum(n_active, 1), 1.0)


def _full(n_segments: int) -> int:
    return (1 << n_segments) - 1
