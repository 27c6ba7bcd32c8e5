"""Sound-source localisation adapters (vggss, flickr, arig): loading, parsing, validation and the official cIoU / AUC.

Expected values come from hand calculations (in comments), ``sklearn.metrics.auc`` and a plain loop-based reference
that follows hche11/Localizing-Visual-Sounds-the-Hard-Way as read there: test.py (cv2 INTER_LINEAR resize to 224,
``normalize_img(-h)``, ``pred = 1 - ...``, threshold ``np.sort(pred.flatten())[int(224*224/2)]``,
``pred[pred>threshold] = 1; pred[pred<1] = 0``, the cIoU and AUC loops) and utils.py (``cal_CIOU``, ``testset_gt``).
The reference builds every 224x224 map explicitly; the code under test never does for boxes.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import auc

from crab_eval.errors import AnnotationError, PredictionError, PredictionFileError
from crab_eval.layouts.localization import (
    FLICKR_ANNOTATIONS,
    VGGSS_JSON,
    arig_record,
    write_arig,
    write_flickr,
    write_vggss,
)
from crab_eval.metrics.localization import THRESHOLDS, pixel_to_unit
from crab_eval.registry import get_task
from crab_eval.scoring import score
from crab_eval.tasks.base import Split
from crab_eval.tasks.localization import parse_obj_boxes


# ---- the official code, as read, in plain loops ---------------------------------------------------------------------
def ref_normalize_img(value):
    vmin, vmax = value.min(), value.max()
    if not (vmax - vmin) == 0:  # noqa: SIM201 -- the official spelling
        value = (value - vmin) / (vmax - vmin)
    return value


def ref_binarise(heatmap):
    """test.py, one sample: resize, normalise the negated map, 1 - it, median threshold, in-place binarisation."""
    heatmap_now = cv2.resize(np.asarray(heatmap, np.float32), dsize=(224, 224), interpolation=cv2.INTER_LINEAR)
    heatmap_now = ref_normalize_img(-heatmap_now)
    pred = 1 - heatmap_now
    threshold = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] / 2)]
    pred[pred > threshold] = 1
    pred[pred < 1] = 0
    return pred


def ref_cal_ciou(infer, gtmap, thres=0.5):
    infer_map = np.zeros((224, 224))
    infer_map[infer >= thres] = 1
    with np.errstate(invalid="ignore"):
        return np.sum(infer_map * gtmap) / (np.sum(gtmap) + np.sum(infer_map * (gtmap == 0)))


def ref_vggss_gt(boxes):
    gt_map = np.zeros([224, 224])
    for item in boxes:
        item = [int(224 * max(x, 0)) for x in item]
        temp = np.zeros([224, 224])
        temp[item[1] : item[3], item[0] : item[2]] = 1
        gt_map += temp
    gt_map[gt_map > 0] = 1
    return gt_map


def ref_flickr_gt(boxes_256):
    gt_map = np.zeros([224, 224])
    for box in boxes_256:
        item = [int(224 * int(v) / 256) for v in box]
        temp = np.zeros([224, 224])
        temp[item[1] : item[3], item[0] : item[2]] = 1
        gt_map += temp
    gt_map /= 2
    gt_map[gt_map > 1] = 1
    return gt_map


def ref_box_map(boxes):
    """The contract's box -> map: ones inside each box, rasterised like the official ground truth."""
    return ref_vggss_gt(boxes)


def ref_metrics(ious):
    ious = np.array([np.nan if v is None else v for v in ious], dtype=np.float64)
    results = []
    with np.errstate(invalid="ignore"):
        for i in range(21):
            results.append(np.sum(ious >= 0.05 * i) / len(ious))
        ciou = np.sum(ious >= 0.5) / len(ious)
    return {"cIoU": 100 * ciou, "AUC": 100 * auc([0.05 * i for i in range(21)], results)}


def ref_ciou_of(pred_map_or_heatmap, gt_map):
    ciou = ref_cal_ciou(ref_binarise(pred_map_or_heatmap), gt_map)
    return None if np.isnan(ciou) else float(ciou)


# ---- helpers -----------------------------------------------------------------------------------------------------
def _write_preds(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _check(task, obj, sample=None, base_dir=Path(".")):
    # The localisation checkers read nothing from the split: one of the sample alone stands for it.
    split = Split(task.id, "test", Path("."), [] if sample is None else [sample])
    return task.check_prediction(obj, sample, split, base_dir)


def _score(task, samples, objs, base_dir=Path(".")):
    preds = [
        task.empty_prediction(s) if o is None else _check(task, o, s, base_dir)
        for s, o in zip(samples, objs, strict=True)
    ]
    return [row["ciou"] for row in task.score_samples(samples, preds)]


@pytest.fixture
def vggss():
    return get_task("vggss")


def _vggss_dir(tmp_path, records, test_ids=None):
    return write_vggss(tmp_path / "vggss", records, test_ids)


# ---- hand-worked values ---------------------------------------------------------------------------------------------
def test_hand_worked_box_ciou(tmp_path, vggss):
    data = _vggss_dir(tmp_path, [("a", "dog", [[0, 0, 0.5, 0.5]]), ("b", "cat", [[0, 0, 0.5, 0.5]])])
    samples = vggss.load(data, "test")
    # GT rows/cols 0..111 (112x112 = 12544); prediction 56..167: overlap 56x56 = 3136;
    # ciou = 3136 / (12544 + 12544 - 3136) = 3136 / 21952 = 1/7.
    cious = _score(vggss, samples, [{"bbox": [0.25, 0.25, 0.75, 0.75]}, {"bbox": [0, 0, 0.5, 0.5]}])
    assert cious == [3136 / 21952, 1.0]
    assert cious[0] == pytest.approx(1 / 7)
    # cIoU: 1 of 2 samples >= 0.5 -> 50; AUC from sklearn on the official x values.
    shares = [np.mean(np.array(cious) >= 0.05 * i) for i in range(21)]
    assert vggss.aggregate([{"ciou": c} for c in cious]) == {"cIoU": 50.0, "AUC": 100 * auc(THRESHOLDS, shares)}


def test_flickr_consensus_hand_worked(tmp_path):
    # Annotators 1 and 2: [0, 128) on the 256 frame -> [0, 112) on 224; annotator 3: the whole frame.
    # GT = (count / 2) clipped at 1: 1 on the 112x112 corner (count 3), 0.5 elsewhere (count 1).
    data = write_flickr(tmp_path / "flickr", {"111": [[0, 0, 128, 128], [0, 0, 128, 128], [0, 0, 256, 256]]})
    task = get_task("flickr")
    samples = task.load(data, "test")
    # Predicting the corner: 12544 / (12544 + 0.5 * (50176 - 12544) + 0) = 12544 / 31360 = 0.4.
    assert _score(task, samples, [{"bbox": [0, 0, 0.5, 0.5]}]) == [0.4]
    # Predicting everything: 31360 / 31360 = 1 -- and it is what the oracle (union of all boxes) predicts.
    assert _score(task, samples, [{"bbox": [0, 0, 1, 1]}]) == [1.0]
    assert _score(task, samples, [task.oracle_prediction(samples[0])]) == [1.0]


def test_auc_thresholds_are_the_official_doubles(vggss):
    # 0.05 * 3 == 0.15000000000000002 > 0.15: a cIoU of exactly 0.15 passes only t = 0, 0.05, 0.1.
    assert list(THRESHOLDS) == [0.05 * i for i in range(21)]
    result = vggss.aggregate([{"ciou": 0.15}])
    assert result["AUC"] == pytest.approx(100 * auc([0.05 * i for i in range(21)], [1, 1, 1] + [0] * 18))
    assert result["AUC"] == pytest.approx(12.5)  # trapezoid: 0.05 * 2 + 0.05 * 0.5 = 0.125
    assert result["cIoU"] == 0.0


def test_none_ciou_passes_no_threshold_but_zero_passes_t0(vggss):
    # 0 >= 0 counts at t = 0 (every wrong prediction earns that first trapezoid); NaN (0/0) never counts.
    assert vggss.aggregate([{"ciou": 0.0}])["AUC"] == pytest.approx(2.5)  # 0.05 * (1 + 0) / 2
    assert vggss.aggregate([{"ciou": None}]) == {"cIoU": 0.0, "AUC": 0.0}
    stats = [{"ciou": v} for v in (1.0, 0.5, 0.2, None, 0.0)]
    assert vggss.aggregate(stats) == pytest.approx(ref_metrics([s["ciou"] for s in stats]), abs=1e-12)
    assert vggss.aggregate(stats)["cIoU"] == 40.0  # 1.0 and 0.5 of 5


def test_median_binarisation_is_strictly_greater(tmp_path, vggss):
    # Three bands: 30% of the pixels 0, 40% 1, 30% 2 -> normalised 0, 0.5, 1. The sorted value at index 25088 falls
    # in the middle band (0.5): only pixels > 0.5 survive, the 0.5 band is dropped although it equals the median.
    h = np.zeros((224, 224), np.float32)
    h[67:157] = 1
    h[157:] = 2
    np.save(tmp_path / "bands.npy", h)
    data = _vggss_dir(tmp_path, [("a", "x", [[0, 157 / 224, 1, 1]])])
    samples = vggss.load(data, "test")
    # GT rows int(224 * 157/224) .. 224: 157 (or 156 after rounding); the prediction is rows 157..223.
    gt = ref_vggss_gt([[0, 157 / 224, 1, 1]])
    expected = ref_ciou_of(h, gt)
    assert _score(vggss, samples, [{"heatmap": "bands.npy"}], tmp_path) == [expected]
    mask = ref_binarise(h) >= 0.5
    assert mask[157:].all() and not mask[:157].any()


def test_ties_at_the_top_keep_the_maximum(tmp_path, vggss):
    # 60% of the pixels hold the maximum: the threshold is 1 itself, nothing is > 1, and pred < 1 -> 0 leaves the
    # maximum's pixels at 1: the binarised map is that 60%.
    h = np.zeros((224, 224), np.float32)
    h[:135] = 5.0
    np.save(tmp_path / "top.npy", h)
    data = _vggss_dir(tmp_path, [("a", "x", [[0, 0, 1, 135 / 224]])])
    samples = vggss.load(data, "test")
    assert _score(vggss, samples, [{"heatmap": "top.npy"}], tmp_path) == [
        ref_ciou_of(h, ref_vggss_gt([[0, 0, 1, 135 / 224]]))
    ]


def test_constant_heatmaps(tmp_path, vggss):
    # A constant map is not normalised: pred = 1 - (-c) = 1 + c. c >= 0 -> every pixel stays >= 1: all on;
    # c < 0 -> every pixel < 1: all off. GT 112x112: all on gives 12544 / 50176 = 0.25; all off gives 0.
    data = _vggss_dir(tmp_path, [("a", "x", [[0, 0, 0.5, 0.5]])] * 1)
    samples = vggss.load(data, "test")
    for name, value, expected in (("zero", 0.0, 0.25), ("pos", 3.0, 0.25), ("neg", -0.5, 0.0)):
        np.save(tmp_path / f"{name}.npy", np.full((7, 7), value, np.float32))
        assert _score(vggss, samples, [{"heatmap": f"{name}.npy"}], tmp_path) == [expected]
        assert ref_ciou_of(np.full((7, 7), value, np.float32), ref_vggss_gt([[0, 0, 0.5, 0.5]])) == expected
    np.save(tmp_path / "one.npy", np.ones((1, 1)))  # 1x1: constant after the resize too
    assert _score(vggss, samples, [{"heatmap": "one.npy"}], tmp_path) == [0.25]


def test_full_box_and_degenerate_box(tmp_path, vggss):
    data = _vggss_dir(tmp_path, [("a", "x", [[0, 0, 0.5, 0.5]])])
    samples = vggss.load(data, "test")
    # [0, 0, 1, 1] is an all-ones map: constant, pred = 2, all on -> 0.25 (the official result of that map).
    assert (
        _score(vggss, samples, [{"bbox": [0, 0, 1, 1]}])
        == [0.25]
        == [ref_ciou_of(ref_box_map([[0, 0, 1, 1]]), ref_vggss_gt([[0, 0, 0.5, 0.5]]))]
    )
    # A box with an empty raster predicts nothing: 0 -- deliberately NOT the official whole-image result (0.25) of
    # an all-zero map, and the same as a missing prediction.
    assert ref_ciou_of(ref_box_map([[0.3, 0.3, 0.3, 0.6]]), ref_vggss_gt([[0, 0, 0.5, 0.5]])) == 0.25
    assert _score(vggss, samples, [{"bbox": [0.3, 0.3, 0.3, 0.6]}]) == [0.0]
    assert _score(vggss, samples, [None]) == [0.0]


def test_pixel_to_unit_round_trips():
    # 224 * (61 / 224) == 60.99999999999999: plain division would lose a pixel.
    assert int(224 * (61 / 224)) == 60
    for p in np.arange(0, 224.01, 0.25):
        v = pixel_to_unit(float(p))
        assert 0 <= v <= 1 and int(224 * v) == int(p)


# ---- the official loop vs the vectorised kernel on random inputs ----------------------------------------------------
def _random_unit_box(rng):
    x1, x2 = sorted(rng.random(2))
    y1, y2 = sorted(rng.random(2))
    return [float(x1), float(y1), float(x2), float(y2)]


def test_matches_official_loop_on_random_inputs(tmp_path, vggss):
    rng = np.random.default_rng(7)
    records, objs, gts, refs = [], [], [], []
    for i in range(160):
        boxes = [_random_unit_box(rng) for _ in range(int(rng.integers(1, 4)))]
        if i % 17 == 0:
            boxes.append([0.5, 0.5, -2.8823037615171176e16, 0.9])  # the release's negative sentinel
        if i % 23 == 0:
            boxes = [[0.2, 1.0, 0.7, 1.0]]  # rasterises to nothing (as two official records do): 0/0 for empty preds
        records.append((f"v{i}", "c", boxes))
        gt = ref_vggss_gt(boxes)
        kind = i % 5
        if kind == 0:
            box = _random_unit_box(rng)
            objs.append({"bbox": box})
            refs.append(ref_ciou_of(ref_box_map([box]), gt) if ref_box_map([box]).any() else None)
        elif kind == 1:
            many = [_random_unit_box(rng) for _ in range(3)]
            objs.append({"bboxes": many})
            refs.append(ref_ciou_of(ref_box_map(many), gt) if ref_box_map(many).any() else None)
        elif kind == 4 and i % 3 == 0:
            objs.append(None)  # missing
            refs.append(None)
        else:
            shape = [(7, 7), (14, 14), (224, 224), (20, 33), (3, 500)][i % 5 if kind != 4 else 2]
            h = rng.normal(size=shape)
            if i % 4 == 0:
                h = np.round(h * 2) / 2  # heavy ties around the median
            np.save(tmp_path / f"h{i}.npy", h)
            objs.append({"heatmap": f"h{i}.npy"})
            refs.append(ref_ciou_of(h, gt))
        gts.append(gt)
    samples = vggss.load(_vggss_dir(tmp_path, records), "test")
    got = _score(vggss, samples, objs, tmp_path)
    for i, (g, r, obj, gt) in enumerate(zip(got, refs, objs, gts, strict=True)):
        if obj is None or (r is None and "heatmap" not in obj):
            # nothing predicted: our 0 (or 0/0 on an empty GT), the deliberate deviation documented above
            assert g == (0.0 if gt.sum() else None), i
        else:
            assert g == r, (i, obj)
    assert vggss.aggregate([{"ciou": c} for c in got]) == pytest.approx(ref_metrics(got), abs=1e-12)


def test_flickr_matches_official_loop(tmp_path):
    rng = np.random.default_rng(3)
    annotations, refs_gt = {}, []
    for i in range(40):
        boxes = []
        for _ in range(int(rng.integers(0, 6))):
            x1, x2 = sorted(rng.integers(-20, 300, 2).tolist())  # negative and past-the-frame ends: slice rules
            y1, y2 = sorted(rng.integers(-20, 300, 2).tolist())
            boxes.append([x1, y1, x2, y2])
        annotations[str(10000 + i)] = boxes
        refs_gt.append(ref_flickr_gt(boxes))
    task = get_task("flickr")
    samples = task.load(write_flickr(tmp_path / "f", annotations), "test")
    preds = [{"bbox": _random_unit_box(rng)} for _ in samples]
    expected = [
        ref_ciou_of(ref_box_map([p["bbox"]]), gt) if ref_box_map([p["bbox"]]).any() else None
        for p, gt in zip(preds, refs_gt, strict=True)
    ]
    got = _score(task, samples, preds)
    for g, e, gt in zip(got, expected, refs_gt, strict=True):
        assert g == (e if e is not None else (0.0 if gt.sum() else None))
    oracle = _score(task, samples, [task.oracle_prediction(s) for s in samples])
    assert all(c == 1.0 or (c is None and not gt.any()) for c, gt in zip(oracle, refs_gt, strict=True))


# ---- loading ------------------------------------------------------------------------------------------------------
def test_vggss_load_and_errors(tmp_path, vggss):
    data = _vggss_dir(tmp_path, [("a", "dog", [[0, 0, 1, 1]]), ("b", "cat", [[0.1, 0.1, 0.2, 0.2]])], ["b", "a"])
    samples = vggss.load(data, "test")
    assert [s.id for s in samples] == ["b", "a"]  # CSV order
    assert samples[0].target == ((22, 44, 22, 44),)  # int(224 * 0.1) = 22, int(224 * 0.2) = 44
    assert samples[0].media == {"image": "frames/b.jpg", "audio": "audio/b.wav"}
    write_vggss(data, [("a", "dog", [[0, 0, 1, 1]])], ["a", "zz"])
    with pytest.raises(AnnotationError, match="'zz' has no record"):
        vggss.load(data, "test")
    write_vggss(data, [("a", "dog", [[0, 0, 1, 1]])], ["a", "a"])
    with pytest.raises(AnnotationError, match="repeats line 1"):
        vggss.load(data, "test")
    (data / VGGSS_JSON).write_text('[{"file": "a", "bbox": [[0, 0, NaN, 1]]}]')
    with pytest.raises(AnnotationError, match="4 finite numbers"):
        vggss.load(data, "test")
    (data / VGGSS_JSON).write_text('{"file": "a"}')
    with pytest.raises(AnnotationError, match="JSON list"):
        vggss.load(data, "test")
    (data / VGGSS_JSON).write_text("[{")
    with pytest.raises(AnnotationError, match="malformed JSON"):
        vggss.load(data, "test")
    with pytest.raises(AnnotationError, match="not found"):
        vggss.load(tmp_path / "nowhere", "test")


def test_flickr_load_errors(tmp_path):
    task = get_task("flickr")
    data = write_flickr(tmp_path / "f", {"1": [[0, 0, 128, 128]], "2": [[10, 10, 20, 20]]})
    assert [s.id for s in task.load(data, "test")] == ["1", "2"]
    assert task.load(data, "test")[0].target == ((0, 112, 0, 112),)
    xml = data / FLICKR_ANNOTATIONS / "2.xml"
    xml.write_text("<annotation><object><bbox><a>1</a><b>1</b><c>x</c><d>4</d><e>5</e></bbox></object></annotation>")
    with pytest.raises(AnnotationError, match="integers"):
        task.load(data, "test")
    xml.write_text("<annotation><object><size>3</size></object></annotation>")
    with pytest.raises(AnnotationError, match="only <bbox>"):
        task.load(data, "test")
    xml.write_text("<annotation><object><bbox><a>1</a><b>1</b></bbox></object></annotation>")
    with pytest.raises(AnnotationError, match="xmin, ymin"):
        task.load(data, "test")
    xml.write_text("<annotation><object>")
    with pytest.raises(AnnotationError, match="malformed XML"):
        task.load(data, "test")
    xml.unlink()
    with pytest.raises(AnnotationError, match="annotation of '2' not found"):
        task.load(data, "test")


def test_arig_layouts(tmp_path):
    task = get_task("arig")
    recs = [
        arig_record("AVS/v1s/clipA/frames/0.jpg", "dog", [10, 20], [110, 120]),
        arig_record("AVS/v1s/clipA/frames/1.jpg", "dog", [1000, 1000], [0, 0]),  # no sounding object: skipped
        arig_record("AVS/v1s/clipB/frames/3.jpg", "guitar", [0, 0], [224, 224], frame_idx=3),
    ]
    write_arig(tmp_path / "plus", recs)
    samples = task.load(tmp_path / "plus", "test")
    assert [s.id for s in samples] == ["AVS/v1s/clipA/frames/0.jpg", "AVS/v1s/clipB/frames/3.jpg"]
    assert samples[0].group == "AVS/v1s/clipA" and samples[0].target == ((20, 120, 10, 110),)
    assert task.target_text(samples[0]) == (
        "The sounding object is dog. Its coordinates are <obj>(10,20)(110,120)</obj>."
    )
    assert task.prompt(samples[0]).startswith("This is an image:\n<image_start><image><image_end>\n")
    # Crab's file: rows of other splits are skipped.
    rows = [dict(r, split="test") for r in recs] + [dict(recs[0], split="train", visual_path="AVS/x/y/frames/9.jpg")]
    write_arig(tmp_path / "crab", rows, crab=True)
    assert [s.id for s in task.load(tmp_path / "crab", "test")] == [s.id for s in samples]
    assert len(task.load(tmp_path / "crab", "train")) == 1
    # Corners beyond the 224 frame mean another scale: refuse rather than mis-score.
    write_arig(tmp_path / "big", [arig_record("c/frames/0.jpg", "dog", [10, 20], [640, 360])])
    with pytest.raises(AnnotationError, match="outside the 224x224 frame"):
        task.load(tmp_path / "big", "test")
    write_arig(tmp_path / "rev", [arig_record("c/frames/0.jpg", "dog", [100, 20], [50, 60])])
    with pytest.raises(AnnotationError, match="past bottom_right"):
        task.load(tmp_path / "rev", "test")
    write_arig(tmp_path / "dup", [arig_record("c/frames/0.jpg", "dog", [1, 2], [50, 60])] * 2)
    assert [s.id for s in task.load(tmp_path / "dup", "test")] == ["c/frames/0.jpg", "c/frames/0.jpg#2"]


# ---- parsing ------------------------------------------------------------------------------------------------------
def test_parse():
    assert parse_obj_boxes("The sounding object is dog. Its coordinates are <obj>(0,0)(112,224)</obj>.") == {
        "bbox": [0.0, 0.0, 0.5, 1.0]
    }
    assert parse_obj_boxes("<OBJ> ( 0 , 0 ),( 112.5 , 224 ) </ obj>") == {"bbox": [0.0, 0.0, pixel_to_unit(112.5), 1.0]}
    two = parse_obj_boxes("<obj>(0,0)(10,10)</obj><obj>(20,20)(30,30)</obj>")
    assert set(two) == {"bboxes"} and len(two["bboxes"]) == 2
    for bad in (
        "no tags",
        "<obj>(0,0)</obj>",
        "<obj>(0,0)(225,10)</obj>",
        "<obj>(50,0)(10,10)</obj>",
        "<obj>(0,0)(10,10)</obj><obj>oops</obj>",
        "<obj>(-1,0)(10,10)</obj>",
        "<obj>(0,0)(10,10)",
    ):
        assert parse_obj_boxes(bad) is None, bad
    assert pixel_to_unit(61) != 61 / 224  # the round-trip guard at work


@pytest.mark.parametrize("task_id", ["vggss", "flickr", "arig"])
def test_parse_target_text_scores_perfectly(tmp_path, task_id):
    task = get_task(task_id)
    if task_id == "vggss":
        data = _vggss_dir(
            tmp_path, [("a", "dog", [[0.1, 0.2, 0.61, 0.7]]), ("b", "cat", [[0, 0, 0.3, 0.3], [0.5, 0.5, 0.9, 1.2]])]
        )
    elif task_id == "flickr":
        data = write_flickr(tmp_path / "f", {"1": [[0, 0, 128, 128], [30, 40, 200, 250], [5, 5, 100, 255]]})
    else:
        data = tmp_path / "a"
        write_arig(
            data,
            [
                arig_record("c/frames/0.jpg", "dog", [61, 115], [122, 223]),
                arig_record("c/frames/1.jpg", "cat", [0.5, 3.25], [100.75, 224]),
            ],
        )
    samples = task.load(data, "test")
    for s in samples:
        parsed = task.parse(task.target_text(s), samples)
        assert parsed is not None
        assert _score(task, [s], [parsed]) == [1.0]
        assert _score(task, [s], [task.oracle_prediction(s)]) == [1.0]


# ---- bad predictions ------------------------------------------------------------------------------------------------
def test_bad_predictions(tmp_path, vggss):
    sample = vggss.load(_vggss_dir(tmp_path, [("a", "dog", [[0, 0, 1, 1]])]), "test")[0]
    bad = [
        [0, 0, 1, 1],
        {"bbox": [0, 0, 1]},
        {"bbox": "0 0 1 1"},
        {"bbox": [0, 0, 1, True]},
        {"bbox": [0, 0, 1, 1.5]},
        {"bbox": [0, 0, float("nan"), 1]},
        {"bbox": [0.6, 0, 0.5, 1]},
        {"bbox": [0, 0.6, 1, 0.5]},
        {"bbox": [-0.1, 0, 1, 1]},
        {"box": [0, 0, 1, 1]},
        {"bbox": [0, 0, 1, 1], "heatmap": "x.npy"},
        {"bboxes": []},
        {"bboxes": [[0, 0, 1, 1], [2, 0, 1, 1]]},
        {"bboxes": [[0, 0, 1, 1]] * 101},
        {"heatmap": 3},
        {"heatmap": "missing.npy"},
        {"heatmap": "h.txt"},
    ]
    (tmp_path / "h.txt").write_text("1 2 3")
    for obj in bad:
        with pytest.raises(PredictionError):
            _check(vggss, obj, sample, tmp_path)
    np.save(tmp_path / "three_d.npy", np.zeros((2, 3, 4)))
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan]]))
    np.save(tmp_path / "inf.npy", np.array([[0.0, np.inf]]))
    np.save(tmp_path / "huge.npy", np.array([[0.0, 1e300]]))  # beyond float32
    np.save(tmp_path / "objects.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    np.save(tmp_path / "complex.npy", np.ones((2, 2), np.complex64))
    np.save(tmp_path / "empty.npy", np.zeros((0, 5)))
    np.save(tmp_path / "span.npy", np.array([[-3e38, 3e38]], np.float32))  # finite, but max - min overflows
    (tmp_path / "garbage.npy").write_bytes(b"not an array at all")
    for name in ("three_d", "nan", "inf", "huge", "objects", "complex", "empty", "span", "garbage"):
        with pytest.raises(PredictionError, match="heatmap"):
            _check(vggss, {"heatmap": f"{name}.npy"}, sample, tmp_path)
    # Good heatmaps of other dtypes and an absolute path are fine.
    np.save(tmp_path / "ints.npy", np.arange(12).reshape(3, 4))
    np.save(tmp_path / "bools.npy", np.eye(5, dtype=bool))
    for name in ("ints.npy", "bools.npy", str(tmp_path / "ints.npy")):
        assert isinstance(_check(vggss, {"heatmap": name}, sample, tmp_path), np.ndarray)


# ---- end to end -----------------------------------------------------------------------------------------------------
@pytest.fixture
def scored_dir(tmp_path):
    records = [(f"v{i}", "dog", [[0.1 * i, 0.1, 0.1 * i + 0.3, 0.5]]) for i in range(6)]
    data = _vggss_dir(tmp_path, records)
    preds_dir = tmp_path / "preds"
    preds_dir.mkdir()
    np.save(preds_dir / "h0.npy", np.random.default_rng(0).random((14, 14)))
    lines = [
        {"id": "v0", "prediction": {"heatmap": "h0.npy"}},
        {"id": "v1", "text": "The sounding object is dog. Its coordinates are <obj>(22,22)(89,112)</obj>."},
        {"id": "v2", "prediction": {"bbox": [0.2, 0.1, 0.5, 0.5]}},
        {"id": "v3", "text": "I cannot tell."},  # unparsed
        {"id": "v4", "prediction": {"bboxes": [[0.4, 0.1, 0.5, 0.5], [0.5, 0.1, 0.7, 0.5]]}},
        # v5 missing
    ]
    preds = _write_preds(preds_dir / "p.jsonl", lines)
    gt = [ref_vggss_gt(r[2]) for r in records]
    refs = [
        ref_ciou_of(np.load(preds_dir / "h0.npy"), gt[0]),
        ref_ciou_of(ref_box_map([[22 / 224, 22 / 224, 89 / 224, 112 / 224]]), gt[1]),
        ref_ciou_of(ref_box_map([[0.2, 0.1, 0.5, 0.5]]), gt[2]),
        0.0,
        ref_ciou_of(ref_box_map([[0.4, 0.1, 0.5, 0.5], [0.5, 0.1, 0.7, 0.5]]), gt[4]),
        0.0,
    ]
    return data, preds, refs


def test_end_to_end_score(scored_dir):
    data, preds, refs = scored_dir
    result = score("vggss", data, "test", preds)
    assert result.n_samples == 6 and result.n_missing == 1 and result.n_unparsed == 1
    assert [row["ciou"] for row in result.samples] == refs
    assert [row["status"] for row in result.samples] == ["ok", "ok", "ok", "unparsed", "ok", "missing"]
    assert result.metrics == pytest.approx(ref_metrics(refs), abs=1e-12)
    assert refs[2] == 1.0 and refs[4] == 1.0  # bbox and bboxes hit their boxes exactly


def test_unknown_id_and_bad_line_name_the_line(scored_dir, tmp_path):
    data, _, _ = scored_dir
    bad = _write_preds(tmp_path / "bad.jsonl", [{"id": "v0", "prediction": {"bbox": [0, 0, 2, 1]}}])
    with pytest.raises(PredictionFileError, match=r"bad.jsonl:1: id 'v0'"):
        score("vggss", data, "test", bad)


def test_cli_score(scored_dir, tmp_path):
    from crab_eval import cli

    data, preds, refs = scored_dir
    out = tmp_path / "result.json"
    assert (
        cli.main(["score", "--task", "vggss", "--data", str(data), "--predictions", str(preds), "--output", str(out)])
        == 0
    )
    result = json.loads(out.read_text())
    assert result["metrics"] == pytest.approx(ref_metrics(refs), abs=1e-12)
    bad = _write_preds(tmp_path / "bad.jsonl", [{"id": "v0", "prediction": {"heatmap": "nope.npy"}}])
    assert (
        cli.main(
            [
                "score",
                "--task",
                "vggss",
                "--data",
                str(data),
                "--predictions",
                str(bad),
                "--output",
                str(tmp_path / "bad.json"),
            ]
        )
        != 0
    )
    assert not (tmp_path / "bad.json").exists()


def test_official_size_is_fast(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "localization_scoring_case", Path(__file__).parents[1] / "benchmarks" / "scoring_cases" / "localization.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for task_id, data_dir, split, preds in module.build_vggss(tmp_path, seed=0, heatmap_case=False):
        start = time.perf_counter()
        result = score(task_id, data_dir, split, preds)
        elapsed = time.perf_counter() - start
        assert result.n_samples == 5158
        assert elapsed < 5  # generous for CI; the benchmark prints the real figure
