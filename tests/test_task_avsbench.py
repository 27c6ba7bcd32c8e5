"""AVSBench S4 / MS3: RLE kernels, official J and F, loaders, prediction checks and end-to-end scoring.

Expected values come from hand-worked masks (comments), pycocotools, PIL's own conversions, and a plain-loop
reference below that follows the official avs_scripts/avs_s4/utils/utility.py (mask_iou, Eval_Fmeasure with its
255-threshold loop) and test.py (batches, mean over batches) as read, with the binary mask as the probability map.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycocotools.mask as coco_mask
import pytest
from PIL import Image

from crab_eval.errors import AnnotationError, CrabEvalError, PredictionError, PredictionFileError
from crab_eval.layouts.avsbench import (
    S4_HEADER,
    Video,
    random_blob_masks,
    write_mask_png,
    write_meta_csv,
    write_ms3,
    write_s4,
)
from crab_eval.metrics import masks as mm
from crab_eval.scoring import score
from crab_eval.tasks.avsbench import MS3Task, S4Task, aggregate_batches
from crab_eval.tasks.base import Split


# ---- plain-loop reference of the official code (independent of the vectorised kernels) ----------------------
# ``dtype`` float32 follows the official tensors' arithmetic; float64 is the same algorithm in exact-ish maths.
def ref_mask_iou(prob: np.ndarray, target: np.ndarray, dtype=np.float32):
    """mask_iou over a batch [N, H, W]; ``prob`` is the map after the sigmoid."""
    n = prob.shape[0]
    ious = []
    for i in range(n):
        p = (prob[i] > 0.5).astype(dtype)
        t = target[i].astype(dtype)
        if t.sum() == 0:
            inter = ((1 - t) * (1 - p)).sum(dtype=dtype)
            union = dtype(t.size)
        else:
            inter = (p * t).sum(dtype=dtype)
            union = np.maximum(p, t).sum(dtype=dtype)
        ious.append(inter / (union + dtype(1e-7)))
    return np.sum(np.array(ious, dtype=dtype)) / dtype(n)


def ref_fmeasure(prob: np.ndarray, gt: np.ndarray, dtype=np.float32) -> float:
    """Eval_Fmeasure over a batch [N, H, W]: 255 thresholds, skip all-black GT, mean curve, max."""
    thresholds = np.linspace(0, 1 - 1e-10, 255).astype(np.float32)
    avg = 0.0
    n_img = 0
    score_curve = np.zeros(255, dtype=dtype)
    for i in range(prob.shape[0]):
        y = gt[i].astype(dtype)
        if y.mean() == 0.0:
            continue
        prec = np.zeros(255, dtype=dtype)
        rec = np.zeros(255, dtype=dtype)
        for k, th in enumerate(thresholds):
            sel = (prob[i] >= th).astype(dtype)
            tp = (sel * y).sum(dtype=dtype)
            prec[k] = tp / (sel.sum(dtype=dtype) + dtype(1e-20))
            rec[k] = tp / (y.sum(dtype=dtype) + dtype(1e-20))
        with np.errstate(invalid="ignore"):
            f = dtype(1.3) * prec * rec / (dtype(0.3) * prec + rec)
        f[np.isnan(f)] = 0
        avg = avg + f
        n_img += 1
        score_curve = avg / n_img
    return float(score_curve.max())


def ref_test_loop(preds: list[np.ndarray], gts: list[np.ndarray], batch: int, dtype=np.float32) -> dict:
    """test.py: videos in order, ``batch`` per batch (frames concatenated), AverageMeter mean over batches."""
    j_sum, f_sum, count = 0.0, 0.0, 0
    for start in range(0, len(gts), batch):
        p = np.concatenate(preds[start : start + batch]).astype(float)
        g = np.concatenate(gts[start : start + batch]).astype(float)
        j_sum = j_sum + ref_mask_iou(p, g, dtype)  # a float32 tensor in the official AverageMeter
        f_sum = f_sum + ref_fmeasure(p, g, dtype)  # a Python float (.item())
        count += 1
    return {"J": 100 * float(j_sum / count), "F": 100 * (f_sum / count)}


def rle(mask: np.ndarray) -> dict:
    enc = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in enc["size"]], "counts": enc["counts"].decode()}


def frames_of(task, sample) -> np.ndarray:
    return np.stack([mm.counts_to_mask(c, s) for c, s in zip(sample.target.counts, sample.target.sizes, strict=True)])


# ---- RLE kernels ----------------------------------------------------------------------------------------------
def test_rle_roundtrip_against_pycocotools():
    rng = np.random.default_rng(0)
    shapes = [(1, 1), (3, 7), (16, 16), (224, 224), (5, 40)]
    masks = []
    for shape in shapes:
        for density in (0.0, 0.02, 0.5, 1.0):
            masks.append(rng.random(shape) < density)
    masks.append(random_blob_masks(rng, 1, (224, 224))[0])
    encoded = [rle(m) for m in masks]
    parsed = mm.parse_rle_strings([e["counts"] for e in encoded])
    for m, e, counts in zip(masks, encoded, parsed, strict=True):
        decoded = coco_mask.decode({"size": e["size"], "counts": e["counts"].encode()}).astype(bool)
        assert np.array_equal(mm.counts_to_mask(counts, m.shape), decoded)
        assert np.array_equal(mm.counts_to_mask(mm.check_rle(e, m.shape), m.shape), m)
        assert mm.counts_to_string(counts) == e["counts"]
        assert mm.encode_mask(m) == e
    for m, counts in zip(masks, mm.masks_to_counts(masks), strict=True):
        assert np.array_equal(counts, mm.parse_rle_string(rle(m)["counts"]))


def test_rle_hand_worked():
    # 2x2 mask [[1, 0], [1, 1]] in column order: 1, 1, 0, 1 -> runs 0 (bg), 2 (fg), 1 (bg), 1 (fg)
    mask = np.array([[1, 0], [1, 1]], dtype=bool)
    assert mm.mask_to_counts(mask).tolist() == [0, 2, 1, 1]
    assert mm.check_rle(rle(mask), (2, 2)).tolist() == [0, 2, 1, 1]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "COCO RLE object"),
        ({"size": [2, 2]}, "exactly the keys"),
        ({"size": [2, 2], "counts": "4", "extra": 1}, "exactly the keys"),
        ({"size": [2, 3], "counts": "6"}, "ground truth is 2x2"),
        ({"size": [True, 2], "counts": "4"}, "'size' must be"),
        ({"size": [2], "counts": "4"}, "'size' must be"),
        ({"size": [2, 2], "counts": [4]}, "compressed RLE string"),
        ({"size": [2, 2], "counts": b"4"}, "compressed RLE string"),
        ({"size": [2, 2], "counts": "4!"}, "not a compressed COCO RLE character"),
        ({"size": [2, 2], "counts": "p"}, "not a compressed COCO RLE character"),
        ({"size": [2, 2], "counts": "é"}, "non-ASCII"),
        ({"size": [2, 2], "counts": "P"}, "truncated"),  # 'P' = 48 + 32: "more follows" on the last character
        ({"size": [2, 2], "counts": "PPPPPPP0"}, "too large"),
        ({"size": [2, 2], "counts": "5"}, "add up to 5, not 2 x 2 = 4"),  # pycocotools would write past the mask
        ({"size": [2, 2], "counts": "3"}, "add up to 3"),
        ({"size": [2, 2], "counts": ""}, "add up to 0"),
    ],
)
def test_rle_invalid(obj, message):
    with pytest.raises(PredictionError, match=message):
        mm.check_rle(obj, (2, 2))


def test_rle_negative_run():
    # counts [1, 2, 3, -1, 0]: sum 5 would be plausible for a 1x5 frame, but a run is negative
    text = mm.counts_to_string(np.array([1, 2, 3, -1, 0]))
    with pytest.raises(PredictionError, match="negative"):
        mm.check_rle({"size": [1, 5], "counts": text}, (1, 5))


def test_check_rles_names_the_bad_mask():
    good = rle(np.zeros((2, 2), bool))
    with pytest.raises(PredictionError, match="mask 3"):
        mm.check_rles([good, good, {"size": [2, 2], "counts": "5"}], [(2, 2)] * 3, ["mask 1", "mask 2", "mask 3"])


def test_overlap_counts_against_pycocotools_and_dense():
    rng = np.random.default_rng(1)
    preds, gts = [], []
    for shape in [(13, 9), (13, 9), (4, 30), (1, 1), (224, 224)]:
        for _ in range(4):
            preds.append(rng.random(shape) < rng.random())
            gts.append(rng.random(shape) < rng.random())
    gts[0][:] = False
    preds[1][:] = False
    tp, pred_area, gt_area = mm.overlap_counts(mm.masks_to_counts(preds), mm.masks_to_counts(gts))
    for i, (p, g) in enumerate(zip(preds, gts, strict=True)):
        assert tp[i] == np.count_nonzero(p & g)
        assert pred_area[i] == p.sum() and gt_area[i] == g.sum()
        union = np.count_nonzero(p | g)
        if union:
            iou = coco_mask.iou(
                [coco_mask.encode(np.asfortranarray(p.astype(np.uint8)))],
                [coco_mask.encode(np.asfortranarray(g.astype(np.uint8)))],
                [0],
            )[0][0]
            assert tp[i] / union == pytest.approx(iou, abs=1e-12)


# ---- the official J and F on hand-worked masks --------------------------------------------------------------
def test_official_iou_and_f_hand_worked():
    # frame a: GT 1 pixel of 4, prediction 2 pixels covering it: IoU 1/2;
    #   F(mask): p = 1/2, r = 1 -> 1.3 * 0.5 / (0.15 + 1) = 0.565217...; F(all ones): p = 1/4 -> 0.325 / 1.075
    # frame b: empty GT, prediction 1 pixel: IoU = true negatives / all = 3/4
    # frame c: GT 1 pixel, empty prediction: IoU 0, F(mask) 0 (0/0 -> NaN -> 0), F(all ones) 0.325 / 1.075
    tp = np.array([1, 0, 0])
    pred = np.array([2, 1, 0])
    gt = np.array([1, 0, 1])
    n = np.array([4, 4, 4])
    assert mm.official_iou(tp, pred, gt, n).tolist() == [0.5, 0.75, 0.0]  # eps 1e-7 vanishes in float32
    f_all, f_mask = mm.fmeasure_levels(tp, pred, gt, n)
    assert f_mask[0] == pytest.approx(0.65 / 1.15, rel=1e-6)
    assert f_all[0] == pytest.approx(0.325 / 1.075, rel=1e-6)
    assert f_mask[2] == 0.0 and f_all[2] == pytest.approx(0.325 / 1.075, rel=1e-6)
    # a one-pixel union is the only case where eps shows in float32: 1 / (1 + 1e-7) rounds below 1
    assert mm.official_iou([1], [1], [1], [4])[0] < 1.0


def test_aggregate_batches_hand_worked():
    # video A: F(all) 0.3, F(mask) 0.9 on its one foreground frame; video B: F(all) 0.5, F(mask) 0.1.
    # Alone (batch 1): max per video 0.9 and 0.5 -> F 70. Together (batch 2): curve (0.8, 1.0) / 2 -> F 50.
    a = {"iou": [1.0, 0.5], "f_all": [0.3], "f_mask": [0.9]}
    b = {"iou": [0.0], "f_all": [0.5], "f_mask": [0.1]}
    assert aggregate_batches([a, b], 1) == pytest.approx({"J": 100 * (0.75 + 0.0) / 2, "F": 70.0}, abs=1e-5)
    # together: J = (1 + 0.5 + 0) / 3 frames
    assert aggregate_batches([a, b], 2) == pytest.approx({"J": 100 * 0.5, "F": 50.0}, abs=1e-5)
    empty_gt = {"iou": [1.0], "f_all": [], "f_mask": []}
    assert aggregate_batches([empty_gt], 4) == {"J": 100.0, "F": 0.0}  # all-black batch: F contributes 0


def _random_videos(rng, n_videos, shape=(12, 10)):
    gts, preds = [], []
    for v in range(n_videos):
        g = np.stack(random_blob_masks(rng, 5, shape, p_empty=0.3))
        if v == 2:
            g[:] = False  # a video with no sounding object at all
        kind = v % 4
        if kind == 0:
            p = g.copy()
        elif kind == 1:
            p = np.zeros_like(g)  # empty prediction: F falls back to the all-ones threshold
        elif kind == 2:
            p = rng.random(g.shape) < 0.3
        else:
            p = np.roll(g, 2, axis=2) | (rng.random(g.shape) < 0.05)
        gts.append(g)
        preds.append(p)
    return gts, preds


@pytest.mark.parametrize("batch", [1, 3, 4])
def test_task_scoring_matches_plain_loop_reference(batch):
    rng = np.random.default_rng(7)
    gts, preds = _random_videos(rng, 11)  # 11 videos: the last batch is partial
    task = MS3Task()
    samples = [_sample_from_masks(task, f"v{i}", g) for i, g in enumerate(gts)]
    split = Split(task.id, "test", Path("."), samples)
    internal = [
        task.check_prediction({"masks": [rle(m) for m in p]}, s, split, Path("."))
        for s, p in zip(samples, preds, strict=True)
    ]
    stats = task.score_samples(samples, internal)
    json.dumps(stats)  # per-sample stats are JSON
    got = aggregate_batches(stats, batch)
    # float32 as the official tensors: equal up to the order of the in-batch sum (torch.sum's is unknown)
    assert got == pytest.approx(ref_test_loop(preds, gts, batch, np.float32), abs=1e-5)
    assert got == pytest.approx(ref_test_loop(preds, gts, batch, np.float64), abs=1e-3)
    for s, p, g in zip(stats, preds, gts, strict=True):
        assert s["j"] == pytest.approx(ref_mask_iou(p.astype(float), g.astype(float)), abs=1e-7)
        assert s["f"] == pytest.approx(ref_fmeasure(p.astype(float), g.astype(float)), abs=1e-7)


def test_default_batch_is_official_test_sh():
    assert S4Task.eval_batch_videos == 4 and MS3Task.eval_batch_videos == 4


def _sample_from_masks(task, name, frames):
    from crab_eval.tasks.avsbench import VideoTruth
    from crab_eval.tasks.base import Sample

    truth = VideoTruth(
        frames=tuple(range(1, len(frames) + 1)),
        sizes=tuple(f.shape for f in frames),
        counts=tuple(mm.masks_to_counts(list(frames))),
    )
    return Sample(id=name, instruction="", target=truth, group=name)


# ---- loaders ------------------------------------------------------------------------------------------------
def _s4_videos(rng, split="test", n=3, shape=(16, 12)):
    k = 1 if split == "train" else 5
    return [
        Video(
            name=f"{split}_vid{i}",
            split=split,
            category=("dog_barking", "male_speech")[i % 2],
            masks=random_blob_masks(rng, k, shape),
        )
        for i in range(n)
    ]


def test_s4_load_layout_and_frames(tmp_path):
    rng = np.random.default_rng(3)
    videos = _s4_videos(rng, "train", 2) + _s4_videos(rng, "test", 3) + _s4_videos(rng, "val", 1)
    write_s4(tmp_path, videos)
    task = S4Task()
    train = task.load(tmp_path, "train")
    assert [s.id for s in train] == ["train_vid0", "train_vid1"]
    assert train[0].target.frames == (1,)  # S4 train annotates the first frame only
    test = task.load(tmp_path, "test")
    assert [s.id for s in test] == [v.name for v in videos if v.split == "test"]
    for sample, video in zip(test, videos[2:5], strict=True):
        assert sample.target.frames == (1, 2, 3, 4, 5)
        assert np.array_equal(frames_of(task, sample), np.stack(video.masks))
        assert (
            sample.media["frames"][0] == f"s4_data/visual_frames/test/{video.category}/{video.name}/{video.name}_1.png"
        )
    files = task.annotation_files(tmp_path, "test")
    assert len(files) == 1 + 15 and all(f.is_file() for f in files)
    # text: Crab's per-frame instruction, answer with the category and the six mask tokens; parse gives None
    assert test[0].meta["frame_instructions"][2].endswith("at the third second of the video.")
    assert task.target_text(test[0]) == (
        "The object making the sound in the video is dog barking. The mask of the object that makes the sound "
        "at the first second is <mask_start><mask_0><mask_1><mask_2><mask_3><mask_4><mask_5><mask_end>"
    )
    assert task.parse(task.target_text(test[0]), test) is None and not task.text_predictions


def test_csv_read_by_position_and_split_column(tmp_path):
    rng = np.random.default_rng(4)
    videos = _s4_videos(rng, "test", 2)
    write_s4(tmp_path, videos, flat=True)
    # headers named anything: name from column 0, category from column 2, split by name (4th here, 1st below)
    write_meta_csv(
        tmp_path / "s4_meta_data.csv",
        ("vid", "t0", "cls", "split"),
        [(v.name, 0, v.category, v.split) for v in videos] + [("other", 0, "x", "train")],
    )
    assert [s.id for s in S4Task().load(tmp_path, "test")] == [v.name for v in videos]
    ms3 = [Video(name=f"m{i}", split="val", masks=random_blob_masks(rng, 5, (8, 8))) for i in range(2)]
    write_ms3(tmp_path / "ms3", ms3)
    write_meta_csv(tmp_path / "ms3" / "ms3_meta_data.csv", ("split", "video_id"), [("val", "m0"), ("val", "m1")])
    with pytest.raises(AnnotationError):  # column 0 is now the split: names "val" have no masks
        MS3Task().load(tmp_path / "ms3", "val")


def test_release_folder_one_level_up(tmp_path):
    rng = np.random.default_rng(5)
    write_ms3(tmp_path / "Multi-sources", [Video(name="a", split="test", masks=random_blob_masks(rng, 5, (8, 8)))])
    samples = MS3Task().load(tmp_path, "test")
    assert [s.id for s in samples] == ["a"]
    assert samples[0].media["frames"][4] == "Multi-sources/ms3_data/visual_frames/a/a.mp4_5.png"


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([("a", 0, "c", "test", "extra")], S4_HEADER, "expected 4 fields"),
        ([("a", 0, "c", "test"), ("a", 0, "c", "test")], S4_HEADER, "listed twice"),
        ([("a", 0, "c", "test")], ("name", "start_time", "category", "Split"), r"no column\(s\) \['split'\]"),
        ([("", 0, "c", "test")], S4_HEADER, "empty video name"),
    ],
)
def test_bad_csv(tmp_path, rows, header, message):
    (tmp_path / "s4_data" / "gt_masks").mkdir(parents=True)
    write_meta_csv(tmp_path / "s4_meta_data.csv", header, rows)
    with pytest.raises(AnnotationError, match=message) as info:
        S4Task().load(tmp_path, "test")
    assert info.value.path.endswith("s4_meta_data.csv")


def test_missing_files(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        S4Task().load(tmp_path, "test")
    rng = np.random.default_rng(6)
    videos = _s4_videos(rng, "test", 1)
    write_s4(tmp_path, videos)
    (tmp_path / "s4_data/gt_masks/test/dog_barking/test_vid0/test_vid0_4.png").unlink()
    with pytest.raises(AnnotationError, match="ground-truth mask not found") as info:
        S4Task().load(tmp_path, "test")
    assert info.value.path.endswith("test_vid0_4.png")


@pytest.mark.parametrize(
    ("task_cls", "mode"),
    [(S4Task, "L"), (S4Task, "1"), (S4Task, "P"), (S4Task, "RGB"), (MS3Task, "L"), (MS3Task, "1"), (MS3Task, "P")],
)
def test_gt_png_modes_read_as_the_official_loader(tmp_path, task_cls, mode):
    rng = np.random.default_rng(8)
    masks = random_blob_masks(rng, 5, (20, 16))
    video = Video(name="v", split="test", category="dog_barking", masks=masks)
    (write_s4 if task_cls is S4Task else write_ms3)(tmp_path, [video], mode=mode)
    sample = task_cls().load(tmp_path, "test")[0]
    for k, mask in enumerate(frames_of(task_cls(), sample), start=1):
        if task_cls is S4Task:
            path = tmp_path / f"s4_data/gt_masks/test/dog_barking/v/v_{k}.png"
            official = np.asarray(Image.open(path).convert("1")).astype(float)  # S4Dataset: mode '1'
        else:
            path = tmp_path / f"ms3_data/gt_masks/test/v/v_{k}.png"
            official = np.asarray(Image.open(path).convert("P")) / 255.0  # MS3Dataset: mode 'P', ToTensor /255
        assert np.array_equal(mask.astype(float), official)


@pytest.mark.parametrize(
    ("task_cls", "mode", "fg"), [(S4Task, "L", 1), (S4Task, "L", 128), (MS3Task, "L", 1), (MS3Task, "RGB", 255)]
)
def test_gt_png_not_0_255_is_refused(tmp_path, task_cls, mode, fg):
    rng = np.random.default_rng(9)
    video = Video(name="v", split="test", category="cat_meowing", masks=random_blob_masks(rng, 5, (10, 10)))
    (write_s4 if task_cls is S4Task else write_ms3)(tmp_path, [video])
    bad = next(tmp_path.rglob("v_3.png"))
    write_mask_png(bad, video.masks[2], mode=mode, fg_value=fg)
    with pytest.raises(AnnotationError, match="only 0 and 255") as info:
        task_cls().load(tmp_path, "test")
    assert info.value.path.endswith("v_3.png")


def test_unreadable_png(tmp_path):
    rng = np.random.default_rng(10)
    write_ms3(tmp_path, [Video(name="v", split="test", masks=random_blob_masks(rng, 5, (10, 10)))])
    next(tmp_path.rglob("v_1.png")).write_bytes(b"not a png")
    with pytest.raises(AnnotationError, match="not a readable image"):
        MS3Task().load(tmp_path, "test")


# ---- predictions ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prediction", "message"),
    [
        ([], "exactly one key"),
        ({"masks": [], "x": 1}, "exactly one key"),
        ({"masks": "abc"}, "must be a list"),
        ({"masks": [None] * 4}, "must hold 5 RLE"),
        (
            {"masks": [{"size": [10, 10], "counts": ";4"}] * 4 + [{"size": [10, 9], "counts": ";4"}]},
            r"mask 5 \(frame 5\) is 10x9 but its ground truth is 10x10",
        ),
    ],
)
def test_bad_predictions(prediction, message):
    task = MS3Task()
    sample = _sample_from_masks(task, "v", np.zeros((5, 10, 10), bool))
    with pytest.raises(PredictionError, match=message):
        task.check_prediction(prediction, sample, Split(task.id, "test", Path("."), [sample]), Path("."))


# ---- end to end ------------------------------------------------------------------------------------------------
def _write_predictions(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_end_to_end_oracle_missing_text_and_reference(tmp_path):
    rng = np.random.default_rng(11)
    videos = [
        Video(name=f"ms3_{i}", split="test", masks=random_blob_masks(rng, 5, (18, 14), p_empty=0.2)) for i in range(6)
    ]
    write_ms3(tmp_path / "data", videos)
    task = MS3Task()
    samples = task.load(tmp_path / "data", "test")

    oracle = _write_predictions(
        tmp_path / "oracle.jsonl", [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in samples]
    )
    result = score("ms3", tmp_path / "data", "test", oracle)
    assert result.metrics == pytest.approx({"J": 100.0, "F": 100.0})
    assert result.n_samples == 6 and result.n_missing == 0

    # video 0 predicted shifted, video 1 missing, video 2 a text line (unparsed), others oracle
    shifted = [np.roll(m, 3, axis=1) for m in videos[0].masks]
    lines = [
        {"id": "ms3_0", "prediction": {"masks": [rle(m) for m in shifted]}},
        {"id": "ms3_2", "text": "<mask_start><mask_0><mask_end>"},
    ]
    lines += [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in samples[3:]]
    result = score("ms3", tmp_path / "data", "test", _write_predictions(tmp_path / "p.jsonl", lines))
    assert (result.n_missing, result.n_unparsed) == (1, 1)
    empty = [np.zeros((5, 18, 14), bool)] * 2
    preds = [np.stack(shifted), *empty] + [np.stack(v.masks) for v in videos[3:]]
    expected = ref_test_loop(preds, [np.stack(v.masks) for v in videos], 4)
    assert result.metrics == pytest.approx(expected, abs=1e-5)
    assert [row["status"] for row in result.samples[:3]] == ["ok", "missing", "unparsed"]


def test_end_to_end_all_black_video_quirk(tmp_path):
    # One video whose frames are all background: the oracle earns J 100 (true negatives / all pixels) but F 0
    # (Eval_Fmeasure skips black frames, and a batch without foreground keeps its zero curve).
    write_ms3(tmp_path, [Video(name="silent", split="val", masks=[np.zeros((6, 6), bool)] * 5)])
    task = MS3Task()
    sample = task.load(tmp_path, "val")[0]
    preds = _write_predictions(tmp_path / "p.jsonl", [{"id": "silent", "prediction": task.oracle_prediction(sample)}])
    assert score("ms3", tmp_path, "val", preds).metrics == {"J": 100.0, "F": 0.0}


def test_end_to_end_errors(tmp_path):
    rng = np.random.default_rng(12)
    write_s4(tmp_path / "d", _s4_videos(rng, "test", 2))
    bad = _write_predictions(tmp_path / "bad.jsonl", [{"id": "test_vid0", "prediction": {"masks": []}}])
    with pytest.raises(PredictionFileError, match=r"bad.jsonl:1: id 'test_vid0': 'masks' must hold 5"):
        score("s4", tmp_path / "d", "test", bad)
    unknown = _write_predictions(tmp_path / "u.jsonl", [{"id": "nope", "prediction": {"masks": []}}])
    with pytest.raises(PredictionFileError, match="not in the split"):
        score("s4", tmp_path / "d", "test", unknown)
    with pytest.raises(CrabEvalError, match="no split"):
        score("s4", tmp_path / "d", "testing", unknown)


def test_cli_score(tmp_path):
    from crab_eval import cli

    rng = np.random.default_rng(13)
    write_s4(tmp_path / "d", _s4_videos(rng, "test", 2))
    task = S4Task()
    samples = task.load(tmp_path / "d", "test")
    preds = _write_predictions(
        tmp_path / "p.jsonl", [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in samples]
    )
    out = tmp_path / "result.json"
    code = cli.main(
        [
            "score",
            "--task",
            "s4",
            "--data",
            str(tmp_path / "d"),
            "--split",
            "test",
            "--predictions",
            str(preds),
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads(out.read_text())["metrics"] == {"J": 100.0, "F": 100.0}
    bad = _write_predictions(tmp_path / "bad.jsonl", [{"id": samples[0].id, "prediction": {"masks": [1]}}])
    assert (
        cli.main(
            [
                "score",
                "--task",
                "s4",
                "--data",
                str(tmp_path / "d"),
                "--predictions",
                str(bad),
                "--output",
                str(tmp_path / "r2.json"),
            ]
        )
        != 0
    )
    assert not (tmp_path / "r2.json").exists()
