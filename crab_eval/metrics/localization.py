"""Sound-source localisation kernels: the official cIoU / AUC of hche11/Localizing-Visual-Sounds-the-Hard-Way.

Official pipeline (test.py, utils.py), per sample on a 224x224 grid:
1. heatmap -> ``cv2.resize(h, (224, 224), INTER_LINEAR)`` (float32, as the model's output) -> ``normalize_img(-h)``
   (min-max, skipped for a constant map) -> ``pred = 1 - that``;
2. ``threshold = np.sort(pred.ravel())[int(224 * 224 / 2)]`` (index 25088); ``pred[pred > threshold] = 1``;
   ``pred[pred < 1] = 0`` -- so a pixel is on iff ``pred > threshold`` or ``pred >= 1`` (values >= 1 survive);
3. ``cal_CIOU(pred, gt, 0.5)``: ``infer = pred >= 0.5``;
   ``ciou = sum(infer * gt) / (sum(gt) + sum(infer * (gt == 0)))`` (0/0 gives NaN, which passes no threshold);
4. cIoU = share of samples with ``ciou >= 0.5``; AUC = ``sklearn.metrics.auc`` over ``x = [0.05 * i for i in
   range(21)]`` of the share with ``ciou >= x_i``.

Ground truth: VGG-SS boxes ``int(224 * max(v, 0))`` sliced ``[y1:y2, x1:x2]`` and united (``gt > 0``); Flickr boxes
``int(224 * v / 256)`` summed, halved and clipped at 1 (annotator consensus: 0, 0.5 or 1).

Boxes are kept as half-open pixel bounds; a box prediction binarises to its own raster (a non-constant binary map
passes steps 1-2 unchanged), so box-vs-box cIoU is computed exactly on the compressed grid of box edges, without
224x224 maps. Heatmaps go through steps 1-2 one by one (cv2 resize) and are scored as bit masks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from crab_eval.errors import CrabEvalError

SIZE = 224
N_PIXELS = SIZE * SIZE
MEDIAN_INDEX = int(SIZE * SIZE / 2)  # 25088: the official ``np.sort(pred.flatten())[int(224 * 224 / 2)]``
CIOU_THRESHOLD = 0.5
# The official x values are Python's ``0.05 * i`` (0.15000000000000002, 0.30000000000000004, ...): a cIoU of exactly
# 0.15 does not reach the fourth threshold. NumPy's float64 product gives the same doubles.
THRESHOLDS = 0.05 * np.arange(21, dtype=np.float64)

Bounds = tuple[int, int, int, int]  # (row0, row1, col0, col1), half-open, 0 <= row0 < row1 <= 224 (non-empty)

_trapezoid = np.trapezoid  # what sklearn.metrics.auc integrates with


def slice_bounds(x1: int, y1: int, x2: int, y2: int) -> Bounds | None:
    """Pixels ``map[y1:y2, x1:x2]`` selects, with Python's slice rules (negative ends count from the far edge, ends
    past 224 are clipped), as the official ``temp[ymin:ymax, xmin:xmax] = 1``; None when it selects nothing."""
    r0, r1, _ = slice(y1, y2).indices(SIZE)
    c0, c1, _ = slice(x1, x2).indices(SIZE)
    if r1 <= r0 or c1 <= c0:
        return None
    return (r0, r1, c0, c1)


def unit_box_bounds(box: Sequence[float]) -> Bounds | None:
    """A normalised [x1, y1, x2, y2] box rasterised as the official VGG-SS ground truth: ``int(224 * max(v, 0))``."""
    x1, y1, x2, y2 = (int(SIZE * max(v, 0)) for v in box)
    return slice_bounds(x1, y1, x2, y2)


def pixel_to_unit(p: float) -> float:
    """The normalised coordinate whose official raster ``int(224 * v)`` is ``int(p)`` for a pixel ``p`` in [0, 224].

    ``p / 224`` alone fails for some integers (224 * (61 / 224) == 60.99999999999999), so step to the neighbouring
    double until the raster matches.
    """
    target = int(p)
    v = min(p / SIZE, 1.0)
    while int(SIZE * v) > target:
        v = float(np.nextafter(v, -np.inf))
    while int(SIZE * v) < target:
        v = float(np.nextafter(v, np.inf))
    return v


def bounds_to_unit_box(b: Bounds) -> list[float]:
    """Normalised [x1, y1, x2, y2] whose raster is exactly ``b``."""
    r0, r1, c0, c1 = b
    return [pixel_to_unit(c0), pixel_to_unit(r0), pixel_to_unit(c1), pixel_to_unit(r1)]


# ---- heatmaps -----------------------------------------------------------------------------------------------------
def binarise_heatmap(heatmap: np.ndarray) -> np.ndarray:
    """The official binarised 224x224 map (bool) of a finite 2-D heatmap: steps 1-3 of the module docstring.

    The float32 operations are the official ones in the official order (done in place), so every value, and the
    median picked from them, is bit-identical. Raises ``ValueError`` when the map's range overflows float32 (the
    official normalisation would make NaNs of it).
    """
    try:
        import cv2  # opencv-python-headless (the media extra); only heatmap predictions need it
    except ImportError:
        raise CrabEvalError("heatmap predictions need OpenCV: pip install 'crab-eval[media]'") from None

    h = np.ascontiguousarray(heatmap, dtype=np.float32)
    pred = -cv2.resize(h, dsize=(SIZE, SIZE), interpolation=cv2.INTER_LINEAR)  # normalize_img(-heatmap_now)
    vmin, vmax = pred.min(), pred.max()
    with np.errstate(over="ignore"):
        span = vmax - vmin
    if not np.isfinite(span):
        raise ValueError("heatmap values span more than float32 can normalise")
    if span == 0:
        # normalize_img leaves a constant map as it is: pred = 1 - (-c) everywhere, nothing is above the median,
        # and the value survives ``pred[pred < 1] = 0`` iff it is >= 1: all on or all off.
        return np.full((SIZE, SIZE), bool(1 - pred[0, 0] >= 1))
    np.subtract(pred, vmin, out=pred)
    np.divide(pred, span, out=pred)
    np.subtract(np.float32(1), pred, out=pred)  # pred = 1 - normalised, in [0, 1]: x - vmin <= span after rounding
    # Non-negative float32 values order like their bit patterns read as int32, and integer selection is several
    # times faster than float selection; the selected element is the official np.sort(...)[25088].
    key = np.partition(pred.view(np.int32).ravel(), MEDIAN_INDEX)[MEDIAN_INDEX]
    threshold = np.array(key, dtype=np.int32).view(np.float32)
    # ``pred[pred > t] = 1; pred[pred < 1] = 0`` then ``>= 0.5``: on iff above the median, or already 1 when the
    # median itself is 1 (more than half the pixels hold the maximum).
    return pred > threshold if threshold < 1 else pred >= 1


def pack_mask(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask.reshape(-1))


def unpack_masks(packed: Sequence[np.ndarray]) -> np.ndarray:
    """(n, 50176) bool from packed masks."""
    stacked = np.stack(packed) if packed else np.zeros((0, N_PIXELS // 8), np.uint8)
    return np.unpackbits(stacked, axis=1, count=N_PIXELS).view(bool)  # 0/1 bytes: a valid bool view


# ---- cIoU -------------------------------------------------------------------------------------------------------
def _ratio(inter2: np.ndarray, gsum2: np.ndarray, outside: np.ndarray) -> list[float | None]:
    """cIoU from doubled sums (ground truth in halves): exact in float64, like the official sums; 0/0 -> None."""
    num = inter2.astype(np.float64) / 2
    den = gsum2.astype(np.float64) / 2 + outside.astype(np.float64)
    return [None if d == 0 else float(n / d) for n, d in zip(num.tolist(), den.tolist(), strict=True)]


def _doubled_gt(count: np.ndarray, consensus: bool) -> np.ndarray:
    """Ground truth x 2 from box counts: union -> 2 where covered; consensus -> min(count / 2, 1) x 2."""
    return np.minimum(count, 2) if consensus else 2 * (count > 0)


def _pad(boxes: Sequence[Sequence[Bounds]], k: int) -> np.ndarray:
    out = np.zeros((len(boxes), k, 4), dtype=np.int64)  # (0, 0, 0, 0): covers nothing
    for i, bs in enumerate(boxes):
        if bs:
            out[i, : len(bs)] = bs
    return out


def _cover(lo: np.ndarray, hi: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n, k, cells): box [lo, hi) covers the cell [edges_j, edges_j+1) (every box edge is a cell edge)."""
    return (lo[:, :, None] <= edges[:, None, :-1]) & (edges[:, None, 1:] <= hi[:, :, None])


def _ciou_box_group(gt: np.ndarray, pred: np.ndarray, consensus: bool) -> list[float | None]:
    """cIoU of box predictions, exact, on the grid cut by every box edge. gt: (n, kg, 4), pred: (n, kp, 4)."""
    n = gt.shape[0]
    both = np.concatenate([gt, pred], axis=1)
    frame = np.broadcast_to(np.array([0, SIZE]), (n, 2))
    rows = np.sort(np.concatenate([both[:, :, 0], both[:, :, 1], frame], axis=1), axis=1)
    cols = np.sort(np.concatenate([both[:, :, 2], both[:, :, 3], frame], axis=1), axis=1)
    area = np.diff(rows, axis=1)[:, :, None] * np.diff(cols, axis=1)[:, None, :]  # (n, I, J)
    g_rows, g_cols = _cover(gt[:, :, 0], gt[:, :, 1], rows), _cover(gt[:, :, 2], gt[:, :, 3], cols)
    count = np.einsum("nki,nkj->nij", g_rows.astype(np.int64), g_cols.astype(np.int64))
    g2 = _doubled_gt(count, consensus)
    p_rows, p_cols = _cover(pred[:, :, 0], pred[:, :, 1], rows), _cover(pred[:, :, 2], pred[:, :, 3], cols)
    on = (p_rows[:, :, :, None] & p_cols[:, :, None, :]).any(axis=1)  # union of the predicted boxes
    inter2 = (area * g2 * on).sum(axis=(1, 2))
    gsum2 = (area * g2).sum(axis=(1, 2))
    outside = (area * (on & (g2 == 0))).sum(axis=(1, 2))
    return _ratio(inter2, gsum2, outside)


def _ciou_mask_group(gt: Sequence[Sequence[Bounds]], masks: np.ndarray, consensus: bool) -> list[float | None]:
    """cIoU of binarised heatmaps (n, 50176) against ground truth built, as the official map, box by box."""
    count = np.zeros((len(gt), SIZE, SIZE), dtype=np.uint8)
    for i, boxes in enumerate(gt):
        for r0, r1, c0, c1 in boxes:  # a few slices per sample
            count[i, r0:r1, c0:c1] += 1
    flat = count.reshape(len(gt), N_PIXELS)
    covered = flat >= 1
    hit1 = np.count_nonzero(masks & covered, axis=1)
    n1 = np.count_nonzero(covered, axis=1)
    if consensus:  # GT x 2 = min(count, 2): 1 per covering box, up to 2
        twice = flat >= 2
        inter2 = hit1 + np.count_nonzero(masks & twice, axis=1)
        gsum2 = n1 + np.count_nonzero(twice, axis=1)
    else:  # GT x 2 = 2 where covered
        inter2, gsum2 = 2 * hit1, 2 * n1
    outside = np.count_nonzero(masks, axis=1) - hit1
    return _ratio(inter2, gsum2, outside)


def ciou_scores(
    gt: Sequence[Sequence[Bounds]],
    predictions: Sequence[Sequence[Bounds] | np.ndarray],
    consensus: bool = False,
    chunk: int = 512,
) -> list[float | None]:
    """Official per-sample cIoU. A prediction is a tuple of box bounds (their union; empty = nothing predicted) or
    a packed binarised heatmap (``pack_mask``); ``consensus`` selects Flickr's halved-sum ground truth."""
    if len(gt) != len(predictions):
        raise ValueError("one prediction per sample")
    out: list[float | None] = [None] * len(gt)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    masks: list[int] = []
    for i, p in enumerate(predictions):
        if isinstance(p, np.ndarray):
            masks.append(i)
        else:
            groups[(len(gt[i]), len(p))].append(i)
    for (kg, kp), idx in groups.items():
        for start in range(0, len(idx), 4 * chunk):
            part = idx[start : start + 4 * chunk]
            g = _pad([gt[i] for i in part], kg)
            p = _pad([tuple(predictions[i]) for i in part], kp)  # type: ignore[arg-type]
            for i, v in zip(part, _ciou_box_group(g, p, consensus), strict=True):
                out[i] = v
    for start in range(0, len(masks), chunk):
        part = masks[start : start + chunk]
        bits = unpack_masks([predictions[i] for i in part])  # type: ignore[misc]
        for i, v in zip(part, _ciou_mask_group([gt[i] for i in part], bits, consensus), strict=True):
            out[i] = v
    return out


def localization_metrics(cious: Sequence[float | None]) -> dict[str, float]:
    """cIoU and AUC (0-100) from per-sample cIoU values; None (the official NaN of 0/0) passes no threshold."""
    n = len(cious)
    if n == 0:
        return {"cIoU": 0.0, "AUC": 0.0}
    values = np.array([np.nan if c is None else c for c in cious], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        shares = (values[None, :] >= THRESHOLDS[:, None]).sum(axis=1) / n
        ciou = np.sum(values >= CIOU_THRESHOLD) / n
    return {"cIoU": 100.0 * float(ciou), "AUC": 100.0 * float(_trapezoid(shares, THRESHOLDS))}
