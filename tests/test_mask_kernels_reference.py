"""The run-length mask kernels against straightforward dense references, on random cases and chunk boundaries.

The AVSS per-sample stats are checked value for value against a per-pixel reference written from
docs/tasks/avss.md (per frame and class: intersection, predicted and ground-truth areas from class maps;
IoU = inter / (2.22e-16 + union) and F = 1.3 p r / (0.3 p + r), NaN -> 0, in float32; a record where the union is
non-empty; padding to 10 background frames), and the aggregate against a plain loop over batches of 4 videos. The
kernels work in chunks of ``masks.CHUNK`` runs; the tests shrink it so that chunk boundaries fall everywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from crab_eval.layouts.avss import Video, random_label_maps, write_avss
from crab_eval.metrics import masks
from crab_eval.metrics.masks import encode_mask
from crab_eval.tasks.avss import AVSSTask

F32 = np.float32
SIDE = 224
N_PIX = SIDE * SIDE


# ---- dense references ------------------------------------------------------------------------------------------
def reference_records(pred_maps: list[np.ndarray], gt_maps: list[np.ndarray]) -> dict[tuple[int, int], tuple]:
    """{(frame position, class): (IoU, F)} of one video by pixels, padding frames included."""
    pad = [np.zeros((SIDE, SIDE), np.int64)] * (10 - len(gt_maps))
    out = {}
    for t, (p, g) in enumerate(zip(list(pred_maps) + pad, list(gt_maps) + pad, strict=True)):
        for c in sorted(set(np.unique(p).tolist()) | set(np.unique(g).tolist())):
            inter = int(np.sum((p == c) & (g == c)))
            pa, ga = int(np.sum(p == c)), int(np.sum(g == c))
            union = pa + ga - inter
            if union == 0:
                continue
            iou = F32(inter) / (F32(2.220446049250313e-16) + F32(union))
            with np.errstate(invalid="ignore", divide="ignore"):
                prec, rec = F32(inter) / F32(pa), F32(inter) / F32(ga)
                f = F32(1.3) * prec * rec / (F32(0.3) * prec + rec)
            out[(t, c)] = (float(iou), 0.0 if np.isnan(f) else float(f))
    return out


def reference_aggregate(videos: list[dict[tuple[int, int], tuple]]) -> dict[str, float]:
    """test.py's accumulation as a plain loop: per batch of 4 videos, per class, float32 sums frame by frame in
    stack order; batch sums added in order; sum / count (0 if never counted); mean over the 71 classes."""
    iou_tot = np.zeros(71, F32)
    f_tot = np.zeros(71, F32)
    count = np.zeros(71, F32)
    for start in range(0, len(videos), 4):
        iou_b = np.zeros(71, F32)
        f_b = np.zeros(71, F32)
        for video in videos[start : start + 4]:
            for t in range(10):
                for (pos, c), (iou, f) in video.items():
                    if pos == t:
                        iou_b[c] = F32(iou_b[c] + F32(iou))
                        f_b[c] = F32(f_b[c] + F32(f))
                        count[c] += 1
        iou_tot = (iou_tot + iou_b).astype(F32)
        f_tot = (f_tot + f_b).astype(F32)
    with np.errstate(invalid="ignore", divide="ignore"):
        miou = np.nan_to_num(iou_tot / count).astype(F32)
        fs = np.nan_to_num(f_tot / count).astype(F32)
    # torch.mean of 71 float32 values: the sum rounded to float32, divided by 71 in float32 (docs/tasks/avss.md)
    return {
        "mIoU": 100.0 * float(F32(np.sum(miou.astype(np.float64))) / F32(71)),
        "F": 100.0 * float(F32(np.sum(fs.astype(np.float64))) / F32(71)),
    }


def dense_counts(mask: np.ndarray) -> list[int]:
    """Column-major run lengths, background first, by a loop over the pixels."""
    runs, value, length = [], False, 0
    for v in mask.T.ravel().tolist():
        if bool(v) == value:
            length += 1
        else:
            runs.append(length)
            value, length = bool(v), 1
    return [*runs, length]


# ---- random cases ----------------------------------------------------------------------------------------------
def _gt_map(rng: np.random.Generator) -> np.ndarray:
    kind = rng.integers(0, 5)
    if kind == 0:  # one class over the whole frame: no background in the ground truth
        return np.full((SIDE, SIDE), int(rng.integers(1, 71)), np.uint8)
    if kind == 1:  # speckle of a few classes: many short runs, foreground at pixel (0, 0)
        return rng.choice(np.array([0, 3, 70], np.uint8), size=(SIDE, SIDE), p=[0.5, 0.3, 0.2])
    return random_label_maps(rng, 1)[0]


def _pred_map(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    kind = rng.integers(0, 6)
    if kind == 0:
        return np.zeros_like(gt)  # all background
    if kind == 1:
        return np.full_like(gt, int(rng.integers(1, 71)))  # one class everywhere
    out = np.roll(gt, tuple(int(v) for v in rng.integers(-15, 16, 2)), axis=(0, 1))
    if kind == 2:
        out[out == out.max()] = rng.integers(1, 71)  # a wrong class
    return out


@pytest.mark.parametrize("chunk", [masks.CHUNK, 37])
def test_avss_stats_and_aggregate_match_dense_reference(tmp_path, monkeypatch, chunk):
    monkeypatch.setenv("CRAB_EVAL_NO_CACHE", "1")
    monkeypatch.setattr(masks, "CHUNK", chunk)
    rng = np.random.default_rng(11 + chunk)
    labels = ["v2", "v1s", "v1m", "v2", "v1s", "v2", "v1s"]  # two batches, the second of three videos
    videos = [
        Video(f"vid_{i}", "test", lab, [_gt_map(rng) for _ in range(10 if lab == "v2" else 5)])
        for i, lab in enumerate(labels)
    ]
    write_avss(tmp_path, videos)
    task = AVSSTask()
    split = task.load(tmp_path, "test")
    preds = [[_pred_map(rng, g) for g in v.labels] for v in videos]
    checked = []
    for i, (p, sample) in enumerate(zip(preds, split.samples, strict=True)):
        frames = [{str(c): encode_mask(m == c) for c in np.unique(m) if c != 0 or i % 2 == 0} for m in p]
        checked.append(task.check_prediction(json.loads(json.dumps({"frames": frames})), sample, split, tmp_path))
    stats = task.score_samples(split.samples, checked)
    expected = [reference_records(p, v.labels) for p, v in zip(preds, videos, strict=True)]
    for got, want, video in zip(stats, expected, videos, strict=True):
        records = {(t, c): (i, f) for t, c, i, f in zip(got["pos"], got["cls"], got["iou"], got["f"], strict=True)}
        assert len(records) == len(got["cls"])  # one record per (frame, class)
        assert records == want
        assert got["n_annotated"] == len(video.labels)
    assert task.aggregate(stats) == reference_aggregate(expected)


@pytest.mark.parametrize("chunk", [masks.CHUNK, 1, 23])
def test_chunked_kernels_match_dense(monkeypatch, chunk):
    monkeypatch.setattr(masks, "CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    shapes = [(1, 1), (3, 5), (7, 4), (6, 6)]
    preds, gts = [], []
    for _ in range(40):
        h, w = shapes[int(rng.integers(0, len(shapes)))]
        preds.append(rng.random((h, w)) < rng.random())
        gts.append(rng.random((h, w)) < rng.random())
    texts = [encode_mask(m)["counts"] for m in preds + gts]  # pycocotools' own encoder
    parsed = masks.parse_rle_strings(texts)
    assert [c.tolist() for c in parsed] == [dense_counts(m) for m in preds + gts]
    assert all(c.dtype == np.int64 for c in parsed)
    tp, pred_area, gt_area = masks.overlap_counts(parsed[:40], parsed[40:])
    assert tp.tolist() == [int(np.sum(p & g)) for p, g in zip(preds, gts, strict=True)]
    assert pred_area.tolist() == [int(p.sum()) for p in preds]
    assert gt_area.tolist() == [int(g.sum()) for g in gts]
    totals, foreground, low = masks.run_sums(parsed)
    assert totals.tolist() == [m.size for m in preds + gts]
    assert foreground.tolist() == [int(m.sum()) for m in preds + gts]
    assert low == 0 and masks.run_sums([np.array([3, -1, 2])])[2] == -1


def test_chunks_cover_every_item_in_order():
    assert masks.chunks([]) == []
    assert masks.chunks([5, 1, 1, 9, 0, 2], limit=6) == [(0, 2), (2, 3), (3, 4), (4, 6)]
    assert masks.chunks([0, 0], limit=1) == [(0, 2)]
