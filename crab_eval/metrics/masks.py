"""Binary-mask kernels shared by the segmentation tasks (S4, MS3; later AVSS and Ref-AVS).

Masks travel as COCO run-length encodings: runs of alternating background / foreground pixels in column-major
(Fortran) order, starting with background (``pycocotools.mask.encode``). Predictions arrive as compressed RLE
strings, which are validated and decoded here *before* anything dense is built: pycocotools' own decoder trusts
its input and writes past the mask for run lengths that add up to more than height x width.

Scoring works on runs, not pixels. The frames of a whole split are laid end to end on one line; foreground runs
become intervals on that line, and the overlap of predicted and ground-truth foreground comes from one
``searchsorted`` over the ground-truth intervals. From the per-frame counts (true positives, predicted area,
ground-truth area, frame size) follow the official AVSBench metrics:

* ``official_iou``: ``mask_iou`` of avs_scripts/avs_s4/utils/utility.py for a binary prediction;
* ``fmeasure_levels``: ``Eval_Fmeasure`` / ``_eval_pr`` of the same file, whose 255-threshold curve takes only
  two values for a binary probability map (see the function).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from crab_eval.errors import PredictionError

IOU_EPS = 1e-7  # mask_iou: inter / (union + eps)
PR_EPS = 1e-20  # _eval_pr: tp / (predicted + eps), tp / (gt + eps)
F_BETA2 = 0.3  # Eval_Fmeasure: beta^2
# A compressed-RLE character carries 5 bits; 7 characters (35 bits) hold any run of a mask below 2^34 pixels.
_MAX_CHARS_PER_COUNT = 7

Counts = np.ndarray  # int64 run lengths, background first, column-major
# Elements per vectorised pass. Whole-split arrays (millions of runs) are each a fresh ``mmap`` of tens of MB, whose
# pages the kernel must fault in and zero on every pass: ~4x slower than passes over chunks that stay in the
# allocator's reused memory and the CPU cache.
CHUNK = 1 << 18


def chunks(sizes: Sequence[int] | np.ndarray, limit: int | None = None) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges over items of the given sizes, each adding up to at most ``limit`` (default
    ``CHUNK``) or one item larger than that; the ranges cover every item, in order (none for no items)."""
    limit = CHUNK if limit is None else limit
    ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
    bounds = [0]
    while bounds[-1] < ends.size:
        start = bounds[-1]
        base = int(ends[start - 1]) if start else 0
        bounds.append(max(int(np.searchsorted(ends, base + limit, side="right")), start + 1))
    return list(pairwise(bounds))


# ---- RLE strings <-> run lengths ------------------------------------------------------------------------------
def parse_rle_strings(texts: Sequence[str]) -> list[Counts]:
    """Run lengths of COCO compressed RLE strings (vectorised, in chunks of ``CHUNK`` characters), or
    ``PredictionError`` if one is bad; which string is bad is not reported here, ``check_rles`` finds it."""
    if len(texts) == 1:
        return _parse_rle_strings(texts)
    out: list[Counts] = []
    for start, stop in chunks([len(t) for t in texts]):
        out.extend(_parse_rle_strings(texts[start:stop]))
    return out


def _parse_rle_strings(texts: Sequence[str]) -> list[Counts]:
    """Run lengths of COCO compressed RLE strings, all parsed at once.

    The format (pycocotools ``rleFrString``): each count is a little-endian sequence of 5-bit groups in characters
    ``chr(48 + v)``, bit 0x20 meaning "more characters follow", sign-extended from the last group's bit 0x10;
    counts after the third are stored as differences to the count two places before.
    """
    try:
        encoded = [t.encode("ascii") for t in texts]
    except UnicodeEncodeError:
        raise PredictionError("RLE counts contain a non-ASCII character") from None
    n = len(encoded)
    char_ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    raw = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    if raw.size == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(n)]
    if raw.min() < 48 or raw.max() > 48 + 63:
        bad = chr(int(raw[(raw < 48) | (raw > 48 + 63)][0]))
        raise PredictionError(f"RLE counts contain {bad!r}, not a compressed COCO RLE character")
    v = raw.astype(np.int64) - 48
    more = (v & 0x20) != 0
    last_chars = char_ends[np.diff(np.concatenate(([0], char_ends))) > 0] - 1
    if more[last_chars].any():
        raise PredictionError("RLE counts string is truncated (its last character announces more)")
    # Every string ends a count, so no count spans two strings.
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    n_chars = ends - starts + 1
    if n_chars.max() > _MAX_CHARS_PER_COUNT:
        raise PredictionError("RLE counts string holds a run length too large for any mask")
    position = np.arange(v.size) - np.repeat(starts, n_chars)
    values = np.add.reduceat((v & 0x1F) << (5 * position), starts)
    values -= np.where((v[ends] & 0x10) != 0, np.int64(1) << (5 * n_chars), 0)
    # Undo the delta coding, counts[m] += counts[m - 2] for m > 2: running sums within each string over the odd
    # indices and over the even indices from 2 (index 0 stands alone). A running sum over all strings of the values
    # in one class, minus its value where the string begins, is the running sum within the string (exact in
    # integers, even if the total wraps around).
    string_of = np.searchsorted(char_ends, ends, side="right")
    per_string = np.bincount(string_of, minlength=n)
    first = np.cumsum(per_string) - per_string
    m = np.arange(ends.size) - np.repeat(first, per_string)
    odd = (m & 1) == 1
    even = ~odd & (m > 0)
    counts = values.copy()
    for cls in (odd, even):
        running = np.concatenate(([0], np.cumsum(np.where(cls, values, 0))))
        counts[cls] = (running[1:] - np.repeat(running[first], per_string))[cls]
    return np.split(counts, np.cumsum(per_string)[:-1])


def parse_rle_string(text: str) -> Counts:
    """Run lengths of one COCO compressed RLE string (see ``parse_rle_strings``)."""
    return parse_rle_strings([text])[0]


def counts_to_string(counts: Counts) -> str:
    """The compressed COCO RLE string of run lengths (inverse of ``parse_rle_string``)."""
    counts = np.asarray(counts, dtype=np.int64)
    deltas = counts.copy()
    deltas[3:] = counts[3:] - counts[1:-2]
    out: list[str] = []
    for x in deltas.tolist():  # one short loop per run, only for writing oracle / fixture predictions
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _check_rle_fields(obj: Any, size: tuple[int, int], what: str) -> str:
    """The counts string of a contract-form RLE ``{"size": [h, w], "counts": str}`` of a ``size`` frame."""
    if not isinstance(obj, dict):
        raise PredictionError(
            f"{what} must be a COCO RLE object {{'size': [h, w], 'counts': str}}, got {type(obj).__name__}"
        )
    if set(obj) != {"size", "counts"}:
        raise PredictionError(f"{what} must have exactly the keys 'size' and 'counts', got {sorted(obj)}")
    rle_size = obj["size"]
    if (
        not isinstance(rle_size, list)
        or len(rle_size) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in rle_size)
    ):
        raise PredictionError(f"{what}: 'size' must be [height, width] (two non-negative integers), got {rle_size!r}")
    if tuple(rle_size) != tuple(size):
        raise PredictionError(
            f"{what} is {rle_size[0]}x{rle_size[1]} but its ground truth is {size[0]}x{size[1]} (height x width)"
        )
    if not isinstance(obj["counts"], str):
        raise PredictionError(
            f"{what}: 'counts' must be a compressed RLE string (pycocotools counts decoded "
            f"to str), got {type(obj['counts']).__name__}"
        )
    return obj["counts"]


def _check_counts(counts: Counts, size: tuple[int, int], what: str) -> None:
    if counts.size and counts.min() < 0:
        raise PredictionError(f"{what}: invalid RLE (a run length is negative)")
    total = int(counts.sum())
    if total != size[0] * size[1]:
        raise PredictionError(
            f"{what}: invalid RLE (run lengths add up to {total}, not "
            f"{size[0]} x {size[1]} = {size[0] * size[1]} pixels)"
        )


def check_rle(obj: Any, size: tuple[int, int], what: str = "mask") -> Counts:
    """Validate one contract-form RLE of a ``size`` (height, width) frame; its run lengths."""
    text = _check_rle_fields(obj, size, what)
    try:
        counts = parse_rle_string(text)
    except PredictionError as exc:
        raise PredictionError(f"{what}: {exc}") from None
    _check_counts(counts, size, what)
    return counts


def check_rles(objs: Sequence[Any], sizes: Sequence[tuple[int, int]], whats: Sequence[str]) -> list[Counts]:
    """``check_rle`` of several RLEs, parsed together (the fast path); the first bad one is named."""
    texts = [_check_rle_fields(o, s, w) for o, s, w in zip(objs, sizes, whats, strict=True)]
    try:
        parsed = parse_rle_strings(texts)
        for counts, size, what in zip(parsed, sizes, whats, strict=True):
            _check_counts(counts, size, what)
        return parsed
    except PredictionError:
        for obj, size, what in zip(objs, sizes, whats, strict=True):
            check_rle(obj, size, what)  # raises, naming the bad one
        raise


# ---- dense masks <-> run lengths -----------------------------------------------------------------------------
def masks_to_counts(masks: Sequence[np.ndarray]) -> list[Counts]:
    """Column-major run lengths of 2-D masks (non-zero = foreground), background first, all frames at once.

    A frame whose pixel (0, 0) is foreground starts with a 0-length background run, as in COCO RLE.
    """
    if not masks:
        return []
    if len({m.shape for m in masks}) == 1:
        h, w = masks[0].shape
        columns = np.empty((len(masks), w, h), dtype=masks[0].dtype)
        for i, m in enumerate(masks):
            columns[i] = m.T  # one strided copy per frame into column-major order
        flat = columns.reshape(-1)
    else:
        flat = np.concatenate([np.asarray(m).ravel(order="F") for m in masks])
    sizes = np.array([m.size for m in masks], dtype=np.int64)
    frame_end = np.cumsum(sizes)
    frame_start = frame_end - sizes
    if flat.size == 0:
        return [np.zeros(0, dtype=np.int64) for _ in masks]
    fg = flat != 0
    step = fg[1:] != fg[:-1]
    inner_starts = frame_start[(frame_start > 0) & (frame_start < flat.size)]
    step[inner_starts - 1] = True  # a run never spans two frames
    bounds = np.concatenate(([0], np.flatnonzero(step) + 1, [flat.size]))
    lengths = np.diff(bounds)
    runs_per_frame = np.diff(np.searchsorted(bounds, np.concatenate((frame_start, frame_end[-1:]))))
    # Frames whose first pixel is foreground get a leading 0-length background run.
    nonempty = sizes > 0
    opens_fg = np.zeros(len(masks), dtype=bool)
    opens_fg[nonempty] = fg[frame_start[nonempty]]
    first_run = np.cumsum(runs_per_frame) - runs_per_frame
    lengths = np.insert(lengths, first_run[opens_fg], 0)
    return np.split(lengths.astype(np.int64), np.cumsum(runs_per_frame + opens_fg)[:-1])


def mask_to_counts(mask: np.ndarray) -> Counts:
    """Column-major run lengths of one 2-D mask (see ``masks_to_counts``)."""
    return masks_to_counts([np.asarray(mask)])[0]


def counts_to_mask(counts: Counts, size: tuple[int, int]) -> np.ndarray:
    """The boolean ``size`` mask of validated run lengths."""
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, np.asarray(counts, dtype=np.int64))
    return flat.reshape((size[1], size[0])).T


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """The contract-form RLE of a 2-D mask, exactly as ``pycocotools.mask.encode`` gives it (counts as str)."""
    import pycocotools.mask as coco_mask  # here: the kernels above need no pycocotools

    rle = coco_mask.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(d) for d in rle["size"]], "counts": rle["counts"].decode("ascii")}


def empty_counts(size: tuple[int, int]) -> Counts:
    return np.array([size[0] * size[1]], dtype=np.int64)


# ---- overlap of run-length masks -----------------------------------------------------------------------------
def _foreground_intervals(frames: Sequence[Counts]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Foreground runs of all frames as [start, end) intervals on one line, their frame index and length."""
    lengths = np.fromiter((c.size for c in frames), dtype=np.int64, count=len(frames))
    allc = np.concatenate(frames) if len(frames) else np.zeros(0, dtype=np.int64)
    ends = np.cumsum(allc)
    frame_end = np.cumsum(lengths)
    # A run is foreground where its index within the frame is odd: its index on the line has the other parity
    # than the frame's first run.
    odd_line = np.zeros(allc.size, dtype=bool)
    odd_line[1::2] = True
    fg = np.flatnonzero((odd_line != np.repeat((frame_end - lengths) % 2 == 1, lengths)) & (allc > 0))
    frame = np.searchsorted(frame_end, fg, side="right")
    return ends[fg] - allc[fg], ends[fg], frame, allc[fg]


def overlap_counts(pred: Sequence[Counts], gt: Sequence[Counts]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: (true-positive pixels, predicted pixels, ground-truth pixels) of matching run-length masks
    (vectorised over frames, in chunks of about ``CHUNK`` runs).

    Frame ``i`` of ``pred`` and of ``gt`` must cover the same number of pixels (checked by ``check_rle``).
    """
    if len(pred) != len(gt):
        raise ValueError("pred and gt must list the same frames")
    parts = [
        _overlap_counts(pred[start:stop], gt[start:stop])
        for start, stop in chunks([p.size + g.size for p, g in zip(pred, gt, strict=True)])
    ]
    if not parts:
        return (np.zeros(0, dtype=np.int64),) * 3
    tp, pred_area, gt_area = (np.concatenate(col) for col in zip(*parts, strict=True))
    return tp, pred_area, gt_area


def _overlap_counts(pred: Sequence[Counts], gt: Sequence[Counts]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(gt)
    ps, pe, pf, plen = _foreground_intervals(pred)
    gs, ge, gf, glen = _foreground_intervals(gt)
    pred_area = np.bincount(pf, weights=plen, minlength=n).astype(np.int64)
    gt_area = np.bincount(gf, weights=glen, minlength=n).astype(np.int64)
    if gs.size == 0 or ps.size == 0:
        return np.zeros(n, dtype=np.int64), pred_area, gt_area
    # Both sets of intervals sit on the same line (frames end to end, same frame sizes), sorted and disjoint.
    # covered(x) = ground-truth foreground pixels before position x; a predicted interval's overlap is
    # covered(end) - covered(start), and it cannot reach into another frame's pixels.
    cum = np.concatenate(([0], np.cumsum(ge - gs)))

    def covered(x: np.ndarray) -> np.ndarray:
        i = np.searchsorted(gs, x, side="right") - 1
        j = np.maximum(i, 0)
        inside = cum[j] + np.minimum(x, ge[j]) - gs[j]
        return np.where(i >= 0, inside, 0)

    tp_interval = covered(pe) - covered(ps)
    tp = np.bincount(pf, weights=tp_interval, minlength=n).astype(np.int64)
    return tp, pred_area, gt_area


# ---- official AVSBench metrics from counts -------------------------------------------------------------------
# The official code runs on float32 tensors; the per-frame values below are computed with the same float32
# operations, so they equal the official per-frame values bit for bit (pixel counts are exact in float32).
_F32 = np.float32


def official_iou(tp: np.ndarray, pred: np.ndarray, gt: np.ndarray, n_pixels: np.ndarray) -> np.ndarray:
    """Per-frame IoU of ``mask_iou`` (avs_scripts/avs_s4/utils/utility.py) for binary predictions, float32.

    ``inter / (union + 1e-7)`` with union = |pred OR gt|; a frame with empty ground truth scores its true
    negatives over all pixels instead (``inter = sum((1-gt)(1-pred))``, ``union = num_pixels``). In float32 the
    eps vanishes unless the union is 1 pixel.
    """
    tp, pred, gt, n_pixels = (np.asarray(a, dtype=_F32) for a in (tp, pred, gt, n_pixels))
    empty = gt == 0
    inter = np.where(empty, n_pixels - pred, tp)
    union = np.where(empty, n_pixels, pred + gt - tp)
    return inter / (union + _F32(IOU_EPS))


def f_beta(tp: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """F-beta of ``Eval_Fmeasure`` at one threshold, float32: beta^2 = 0.3, eps 1e-20, NaN (0/0) -> 0."""
    tp, pred, gt = (np.asarray(a, dtype=_F32) for a in (tp, pred, gt))
    prec = tp / (pred + _F32(PR_EPS))
    rec = tp / (gt + _F32(PR_EPS))
    with np.errstate(invalid="ignore", divide="ignore"):
        # evaluated in the official order: (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f = _F32(1 + F_BETA2) * prec * rec / (_F32(F_BETA2) * prec + rec)
    return np.where(np.isnan(f), _F32(0), f).astype(_F32)


def fmeasure_levels(
    tp: np.ndarray, pred: np.ndarray, gt: np.ndarray, n_pixels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the two values of ``Eval_Fmeasure``'s F curve for a binary probability map.

    The official thresholds are ``linspace(0, 1 - 1e-10, 255)`` applied as ``prob >= t``. For probabilities in
    {0, 1} the first threshold (0) selects every pixel and the other 254 (in (0, 1], float32 rounds the last to
    1.0) select the mask, so the curve is ``[F(all ones), F(mask) x 254]``. Returns (F(all ones), F(mask)).
    """
    gt = np.asarray(gt)
    return f_beta(gt, n_pixels, gt), f_beta(tp, pred, gt)


def float32_sum(values: Sequence[Any] | np.ndarray) -> np.float32:
    """Sequential float32 sum, as the official ``avg += x`` loops over float32 tensors accumulate."""
    arr = np.asarray(values, dtype=_F32)
    return np.cumsum(arr, dtype=_F32)[-1] if arr.size else _F32(0)


# ---- additions for AVSBench-semantic (AVSS) and Ref-AVS ---------------------------------------------------------
HISTC_EPS = 2.220446049250313e-16  # avss compute_color_metrics: inter / (eps + union); vanishes in float32


def class_iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Per-class IoU of AVSS ``_batch_miou_fscore`` in float32: ``inter / (2.22e-16 + union)`` (0 where union 0)."""
    inter, union = (np.asarray(a, dtype=_F32) for a in (inter, union))
    return inter / (_F32(HISTC_EPS) + union)


def cuda_scalar_div(value: Any, n: int) -> np.float32:
    """``tensor / n`` for a float32 CUDA tensor and a Python number: PyTorch's CUDA kernel multiplies by the
    float32 reciprocal (``div_true_kernel_cuda``), which can differ from true division by one ulp."""
    return _F32(value) * (_F32(1) / _F32(n))


def _local_intervals(masks: Sequence[Counts]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foreground runs of each mask as [start, end) in that mask's own column-major pixel index, and the mask."""
    starts, ends, which, _ = _foreground_intervals(masks)
    totals = np.array([int(np.sum(c)) for c in masks], dtype=np.int64)
    offset = np.cumsum(totals) - totals
    return starts - offset[which], ends - offset[which], which


def first_overlap(groups: Sequence[Sequence[Counts]]) -> tuple[int, int, int] | None:
    """(group, mask a, mask b) of the first group whose masks share a foreground pixel, or None (vectorised).

    A group is the masks of one frame (same pixel count); masks are indexed within their group.
    """
    flat = [m for g in groups for m in g]
    if len(flat) < 2:
        return None
    group_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    first_mask = np.cumsum([len(g) for g in groups]) - np.array([len(g) for g in groups])
    starts, ends, which = _local_intervals(flat)
    group = group_of[which]
    order = np.lexsort((starts, group))
    s, e, g, w = starts[order], ends[order], group[order], which[order]
    clash = np.flatnonzero((g[1:] == g[:-1]) & (s[1:] < e[:-1]))
    if clash.size == 0:
        return None
    k = int(clash[0])
    grp = int(g[k])
    return grp, int(w[k] - first_mask[grp]), int(w[k + 1] - first_mask[grp])


def run_sums(masks: Sequence[Counts]) -> tuple[np.ndarray, np.ndarray, int]:
    """Per run-length mask, the sum of its runs (pixels covered) and of its odd runs (foreground pixels), int64;
    and the smallest run of all (0 if none). Vectorised in chunks of ``CHUNK`` runs."""
    totals, fgs, low = [], [], 0
    for start, stop in chunks([c.size for c in masks]):
        part = masks[start:stop]
        lengths = np.fromiter((c.size for c in part), dtype=np.int64, count=len(part))
        flat = np.concatenate(part)
        if flat.size:
            low = min(low, int(flat.min()))
        ends = np.cumsum(lengths)
        starts = ends - lengths
        running = np.concatenate(([0], np.cumsum(flat)))
        odd_only = flat.copy()
        odd_only[::2] = 0  # runs at odd line indices
        odd_running = np.concatenate(([0], np.cumsum(odd_only)))
        total = running[ends] - running[starts]
        odd_line = odd_running[ends] - odd_running[starts]
        # a mask that starts at an odd line index has its odd runs at even line indices
        totals.append(total)
        fgs.append(np.where(starts % 2 == 0, odd_line, total - odd_line))
    if not totals:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
    return np.concatenate(totals), np.concatenate(fgs), low


def foreground_area(masks: Sequence[Counts]) -> np.ndarray:
    """Foreground pixels of each run-length mask (int64)."""
    return run_sums(masks)[1]
