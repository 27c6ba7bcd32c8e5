"""Temporal detection mAP (ActivityNet style), vectorised: the kernel behind the ``unav`` task.

The algorithm is ``ANETdetection`` / ``compute_average_precision_detection`` of ttgeng233/UnAV
``libs/utils/metrics.py`` (ActionFormer's copy of the ActivityNet evaluation), as read:

- classes are the distinct ground-truth labels of the evaluated videos, sorted (``activity_index``); predicted
  labels are renamed with the same mapping, and a predicted label that is *not* a ground-truth label keeps its raw
  value, so it is scored as whichever class has that index (pandas ``replace``; a no-op when the ground truth holds
  every label 0..K-1);
- per class and tIoU threshold, predictions are ranked by descending score and matched greedily: each one takes
  the unmatched ground truth of its video (same class) with the highest tIoU if that tIoU >= threshold, otherwise
  it is a false positive; a ground truth matched at one threshold is free again at the next (one lock per threshold);
- AP is the VOC 2011 interpolated AP: precision made non-increasing from the right, summed over the points where
  recall changes; a class with no predictions has AP 0; mAP is the mean over classes, per threshold.

Ties, which the official code leaves to numpy's unstable ``argsort()[::-1]``, are fixed here: equal scores rank in
input order, and equal tIoUs go to the ground truth listed first. tIoU 0/0 (a zero-length prediction against a
zero-length ground truth) is NaN officially, which sorts first and passes every threshold; it is ``inf`` here.

Only the greedy matching is sequential, and only within one (video, class) group; the loop runs over the k-th
prediction of every group at once, vectorised over groups, ground truths and thresholds.
"""

from __future__ import annotations

import numpy as np

# np.linspace(0.1, 0.9, 9), as UnAV's dataset attributes give them: the values are not round (0.30000000000000004,
# 0.7000000000000001), and a tIoU of exactly 0.7 fails the 0.7 threshold. Kept as computed, not as literals.
UNAV_THRESHOLDS = np.linspace(0.1, 0.9, 9)


def _group_ground_truth(key: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
    """(unique keys, padded starts, padded ends, valid) with one row per key, ground truths in input order."""
    order = np.argsort(key, kind="stable")
    keys, first, counts = np.unique(key[order], return_index=True, return_counts=True)
    width = int(counts.max()) if len(counts) else 0
    row = np.repeat(np.arange(len(keys)), counts)
    col = np.arange(len(order)) - np.repeat(first, counts)
    starts = np.zeros((len(keys), width))
    ends = np.zeros((len(keys), width))
    valid = np.zeros((len(keys), width), dtype=bool)
    starts[row, col] = start[order]
    ends[row, col] = end[order]
    valid[row, col] = True
    return keys, starts, ends, valid


def _tiou(p_start: np.ndarray, p_end: np.ndarray, g_start: np.ndarray, g_end: np.ndarray) -> np.ndarray:
    """tIoU of each prediction (rows) with its group's ground truths (columns), in the official operation order."""
    inter = (np.minimum(p_end[:, None], g_end) - np.maximum(p_start[:, None], g_start)).clip(0)
    union = (g_end - g_start) + (p_end - p_start)[:, None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        tiou = inter / union
    return np.where(union == 0, np.inf, tiou)


def _interpolated_ap(tp: np.ndarray, n_positive: int) -> np.ndarray:
    """VOC 2011 interpolated AP of ranked hits ``tp`` (thresholds x predictions), one value per threshold."""
    tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_cum = np.cumsum(~tp, axis=1, dtype=np.float64)
    recall = tp_cum / n_positive
    precision = tp_cum / (tp_cum + fp_cum)
    # Official: mprec = [0, prec, 0], mrec = [0, rec, 1]; the envelope is the running max from the right. The
    # trailing point (recall 1, precision 0) adds nothing, so it is left out.
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    previous = np.concatenate([np.zeros((len(tp), 1)), recall[:, :-1]], axis=1)
    step = recall - previous
    return np.where(step != 0, step * envelope, 0.0).sum(axis=1)


def detection_ap(
    gt_video: np.ndarray,
    gt_label: np.ndarray,
    gt_start: np.ndarray,
    gt_end: np.ndarray,
    pred_video: np.ndarray,
    pred_label: np.ndarray,
    pred_start: np.ndarray,
    pred_end: np.ndarray,
    pred_score: np.ndarray,
    thresholds: np.ndarray = UNAV_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """AP per (threshold, class) and the evaluated classes (sorted ground-truth labels).

    Videos and labels are non-negative integers; predictions are given in tie-breaking order (earlier wins).
    """
    gt_video, gt_label = np.asarray(gt_video, np.int64), np.asarray(gt_label, np.int64)
    pred_video, pred_label = np.asarray(pred_video, np.int64), np.asarray(pred_label, np.int64)
    gt_start, gt_end = np.asarray(gt_start, np.float64), np.asarray(gt_end, np.float64)
    pred_start, pred_end = np.asarray(pred_start, np.float64), np.asarray(pred_end, np.float64)
    pred_score = np.asarray(pred_score, np.float64)
    thresholds = np.asarray(thresholds, np.float64)
    classes, gt_class = np.unique(gt_label, return_inverse=True)
    n_classes, n_thresholds = len(classes), len(thresholds)
    ap = np.zeros((n_thresholds, n_classes))
    if n_classes == 0:
        return ap, classes

    # The official renaming: a ground-truth label becomes its index, any other label keeps its raw value.
    position = np.searchsorted(classes, pred_label).clip(max=n_classes - 1)
    pred_class = np.where(classes[position] == pred_label, position, pred_label)
    kept = np.flatnonzero((pred_class >= 0) & (pred_class < n_classes))
    # Rank: class, then descending score, then input order (np.lexsort: last key is the primary one).
    kept = kept[np.lexsort((kept, -pred_score[kept], pred_class[kept]))]
    p_class = pred_class[kept]

    keys, g_start, g_end, g_valid = _group_ground_truth(gt_video * n_classes + gt_class, gt_start, gt_end)
    p_key = pred_video[kept] * n_classes + p_class
    slot = np.searchsorted(keys, p_key).clip(max=len(keys) - 1)
    has_gt = keys[slot] == p_key

    tp = np.zeros((n_thresholds, len(kept)), dtype=bool)
    rows = np.flatnonzero(has_gt)  # ranked predictions whose video holds ground truth of their class
    if len(rows):
        group = slot[rows]
        tiou = _tiou(pred_start[kept[rows]], pred_end[kept[rows]], g_start[group], g_end[group])
        tiou[~g_valid[group]] = -np.inf
        # k-th prediction of its group, in rank order: a stable sort by group keeps the rank order inside groups.
        by_group = np.argsort(group, kind="stable")
        _, first, counts = np.unique(group[by_group], return_index=True, return_counts=True)
        rank_in_group = np.empty(len(rows), dtype=np.int64)
        rank_in_group[by_group] = np.arange(len(rows)) - np.repeat(first, counts)
        locked = np.zeros((n_thresholds, len(keys), g_start.shape[1]), dtype=bool)
        for k in range(int(counts.max())):
            now = np.flatnonzero(rank_in_group == k)  # at most one prediction per group
            g = group[now]
            candidate = (tiou[now][None] >= thresholds[:, None, None]) & ~locked[:, g, :]
            best = np.argmax(np.where(candidate, tiou[now][None], -np.inf), axis=2)  # first max: earlier GT
            hit = candidate.any(axis=2)
            tp[:, rows[now]] = hit
            t_idx, i_idx = np.nonzero(hit)
            locked[t_idx, g[i_idx], best[t_idx, i_idx]] = True

    n_positive = np.bincount(gt_class, minlength=n_classes)
    bounds = np.searchsorted(p_class, np.arange(n_classes + 1))
    for c in range(n_classes):  # a loop over classes only; each step is vectorised over thresholds and ranks
        lo, hi = bounds[c], bounds[c + 1]
        if hi > lo:
            ap[:, c] = _interpolated_ap(tp[:, lo:hi], int(n_positive[c]))
    return ap, classes
