"""Ref-AVS (ref_avs): loader (ids, folders, GT resize), prediction checks, J / F / S of the official test loop.

Expected values: hand-worked numbers (comments), OpenCV's own pipeline for the ground truth, and a plain-loop
reference in numpy that follows GeWu-Lab/Ref-AVS utils/metric/utility.py (mask_iou at sigmoid > 0.4, Eval_Fmeasure
with its 255-threshold loop, metric_s_for_null) and scripts/train.py ``test`` (batches of 4, mean over batches) as
read, with the binary masks as logits of +-20.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crab_eval.cli import main as cli_main
from crab_eval.errors import AnnotationError, CrabEvalError, PredictionError
from crab_eval.layouts.ref_avs import Expression, gt_path, random_masks, write_mask, write_ref_avs
from crab_eval.metrics.masks import cuda_scalar_div, encode_mask
from crab_eval.pairing import main_metric_of
from crab_eval.scoring import score
from crab_eval.tasks.ref_avs import RefAVSTask, j_and_f, null_s, read_gt_mask

F32 = np.float32
SIDE = 256


def sigmoid(x):
    return F32(1) / (F32(1) + np.exp(-x.astype(F32)))


def ref_test_loop(preds: list[list[np.ndarray]], gts: list[list[np.ndarray]], batch: int = 4):
    """(J, F) x100 of ``test`` over expressions, each 10 binary masks; logits +-20 for the binary predictions."""
    thresholds = np.linspace(0, 1 - 1e-10, 255).astype(F32)
    j_sum, f_sum, n = F32(0), 0.0, 0
    for start in range(0, len(gts), batch):
        logits = np.stack([np.where(m, 20.0, -20.0) for p in preds[start : start + batch] for m in p]).astype(F32)
        target = np.stack([m for g in gts[start : start + batch] for m in g]).astype(F32)
        # mask_iou
        pred = (sigmoid(logits) > 0.4).astype(F32)
        ious = []
        for p, t in zip(pred, target, strict=True):
            if t.sum() == 0:
                inter, union = ((1 - t) * (1 - p)).sum(dtype=F32), F32(t.size)
            else:
                inter, union = (p * t).sum(dtype=F32), np.maximum(p, t).sum(dtype=F32)
            ious.append(inter / (union + F32(1e-7)))
        j_sum += np.sum(np.array(ious, dtype=F32)) / F32(len(ious))
        # Eval_Fmeasure
        prob = sigmoid(logits)
        avg, img_num, curve = None, 0, np.zeros(255, F32)
        for y_pred, y in zip(prob, target, strict=True):
            if y.mean() == 0.0:
                continue
            prec = np.zeros(255, F32)
            rec = np.zeros(255, F32)
            for i, th in enumerate(thresholds):
                y_temp = (y_pred >= th).astype(F32)
                tp = (y_temp * y).sum(dtype=F32)
                prec[i], rec[i] = tp / (y_temp.sum(dtype=F32) + F32(1e-20)), tp / (y.sum(dtype=F32) + F32(1e-20))
            with np.errstate(invalid="ignore"):
                f = F32(1.3) * prec * rec / (F32(0.3) * prec + rec)
            f[np.isnan(f)] = 0
            avg = f if avg is None else avg + f
            img_num += 1
            curve = avg / F32(img_num)
        f_sum += float(curve.max())
        n += 1
    return 100 * float(j_sum / F32(n)), 100 * f_sum / n


def _write_preds(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def _shift(rng, masks):
    out = [np.roll(m, tuple(int(v) for v in rng.integers(-8, 9, 2)), axis=(0, 1)) for m in masks]
    if rng.random() < 0.2:
        out[int(rng.integers(10))] = np.zeros((SIDE, SIDE), bool)
    return out


# ---- ground truth ----------------------------------------------------------------------------------------------
def test_gt_read_as_official_cv2_pipeline(tmp_path):
    import cv2

    mask = np.zeros((720, 1280), bool)
    mask[100:400, 200:700] = True
    mask[600, :] = True  # a 1-pixel line: bilinear downsampling keeps a trace of it, then > 0 keeps that trace
    path = str(write_mask(tmp_path / "00000.png", mask))
    expected = cv2.cvtColor(cv2.resize(cv2.imread(path), (256, 256)), cv2.COLOR_BGR2GRAY) > 0
    got = read_gt_mask(path)
    assert got.shape == (256, 256) and np.array_equal(got, expected)
    nearest = cv2.resize(mask.astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST) > 0
    assert got.sum() > nearest.sum()  # > 0 after bilinear dilates the object relative to a nearest resize
    # a 256x256 grey mask needs no resize: its own pixels
    small = np.random.default_rng(0).random((256, 256)) > 0.5
    assert np.array_equal(read_gt_mask(str(write_mask(tmp_path / "s.png", small))), small)


# ---- metrics hand-worked -------------------------------------------------------------------------------------
def test_null_s_hand_worked():
    full = 10 * SIDE * SIDE
    # batch 1 (4 rows): a quarter of all pixels predicted -> sqrt(0.25) = 0.5; batch 2 (1 row): nothing -> 0
    stats = [{"fg": full, "n_pixels": full}] + [{"fg": 0, "n_pixels": full}] * 3 + [{"fg": 0, "n_pixels": full}]
    assert null_s(stats, 4) == pytest.approx(25.0)
    assert RefAVSTask().aggregate(stats) == {"S": pytest.approx(25.0)}


def test_cuda_division_is_by_reciprocal():
    # 1/40 is not a float32; x * f32(1/40) and x / 40 differ by an ulp for some x
    xs = np.arange(1, 2000, dtype=F32) / F32(7)
    differ = [x for x in xs if cuda_scalar_div(x, 40) != x / F32(40)]
    assert differ and all(abs(cuda_scalar_div(x, 40) - x / F32(40)) <= np.spacing(x / F32(40)) for x in differ)


def test_j_and_f_hand_worked():
    # one batch of one row: frames 0-4 IoU 0.5 (GT fg), 5-9 IoU 1 (empty GT, empty prediction)
    stats = [{"iou": [0.5] * 5 + [1.0] * 5, "f_all": [0.2] * 5, "f_mask": [0.6] * 5}]
    got = j_and_f(stats, 4)
    assert got["J"] == pytest.approx(75.0) and got["F"] == pytest.approx(60.0, abs=1e-5)


# ---- against the plain-loop reference --------------------------------------------------------------------------
def test_matches_official_test_loop(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for v in range(3):
        masks = random_masks(rng, (SIDE, SIDE), p_empty=0.3)
        rows += [Expression(f"vid{v}_0_10000_dog_{k}", "test_u", masks=masks) for k in (1, 2)]
    write_ref_avs(tmp_path, rows)
    task = RefAVSTask()
    samples = task.load(tmp_path, "test_u")
    gts = [[read_gt_mask(str(gt_path(tmp_path, r.uid, r.fid, i))) for i in range(10)] for r in rows]
    preds = [_shift(rng, g) for g in gts]
    checked = [
        task.check_prediction({"masks": [encode_mask(m) for m in p]}, s, samples, tmp_path)
        for p, s in zip(preds, samples, strict=True)
    ]
    got = task.aggregate(task.score_samples(samples, checked))
    j, f = ref_test_loop(preds, gts)
    assert got["J"] == pytest.approx(j, abs=1e-5) and got["F"] == pytest.approx(f, abs=1e-5)


# ---- loader ----------------------------------------------------------------------------------------------------
def test_ids_folders_and_null_split(tmp_path):
    m = random_masks(np.random.default_rng(1), (SIDE, SIDE))
    rows = [
        Expression("abc_0_1_saw_4", "test_s", fid=4, masks=m, exp="The muted saw."),
        Expression("abc_0_1_saw_4", "test_s", fid=0, masks=m, exp="The loudest one, with a comma"),
        Expression("abc_0_1_saw_5", "val", masks=m),
        # null rows: the folder the loader reads is uid.rsplit('_', 2)[0], not the vid column
        Expression("null_c-abc_0_1_null_1", "test_n", vid="abc_0_1"),
    ]
    write_ref_avs(tmp_path, rows)
    task = RefAVSTask()
    s = task.load(tmp_path, "test_s")
    assert [x.id for x in s] == ["abc_0_1_saw_4", "abc_0_1_saw_4#2"] and s[0].group == "abc_0_1"
    assert s[1].meta["exp"] == "The loudest one, with a comma"
    assert task.prompt(s[0]).endswith("based on the referential expression: The muted saw.")
    assert (
        task.target_text(s[0])
        == "The muted saw. is <mask_start>" + "".join(f"<mask_{i}>" for i in range(6)) + "<mask_end>"
    )
    assert task.parse(task.target_text(s[0]), s) is None
    (n,) = task.load(tmp_path, "test_n")  # no GT under gt_mask/null_c-abc_0_1/: S reads none
    assert n.media["audio"] == "media/null_c-abc_0_1/audio.wav"
    assert task.annotation_files(tmp_path, "test_n") == [tmp_path / "metadata.csv"]
    assert RefAVSTask().main_metric_for_split("test_n") == "S" and RefAVSTask.metric("S").higher_is_better is False


@pytest.mark.parametrize(
    "text, message",
    [
        ("vid,uid,split\n", "no column"),
        ("vid,uid,split,fid,exp\nv,v_a_1,test_s,x,e\n", "fid must be an integer"),
        ("vid,uid,split,fid,exp\nv,va1,test_s,0,e\n", "is not '<video>_<object>_<n>'"),
        ("vid,uid,split,fid,exp\nv,v_a_1,test_s,0\n", "expected 5 fields"),
        ("vid,uid,split,fid,exp\nv,v_a_1,test_s,0,e\n", "ground-truth mask not found"),
    ],
)
def test_bad_annotations(tmp_path, text, message):
    (tmp_path / "metadata.csv").write_text(text)
    with pytest.raises(AnnotationError, match=message):
        RefAVSTask().load(tmp_path, "test_s")


def test_bad_predictions(tmp_path):
    write_ref_avs(
        tmp_path, [Expression("v_0_1_a_1", "test_s", masks=random_masks(np.random.default_rng(0), (SIDE, SIDE)))]
    )
    task = RefAVSTask()
    split = task.load(tmp_path, "test_s")
    (s,) = split
    ok = encode_mask(np.zeros((SIDE, SIDE), bool))
    for obj, message in [
        ({"frames": []}, "exactly one key, 'masks'"),
        ({"masks": {}}, "list of 10"),
        ({"masks": [ok] * 9}, "10 RLEs"),
        ({"masks": [encode_mask(np.zeros((224, 224), bool))] * 10}, "224x224 but its ground"),
        ({"masks": [ok] * 9 + [{"size": [SIDE, SIDE], "counts": 5}]}, "mask 9 .*counts"),
    ]:
        with pytest.raises(PredictionError, match=message):
            task.check_prediction(obj, s, split, tmp_path)


# ---- end to end ------------------------------------------------------------------------------------------------
def test_end_to_end_splits_and_cli(tmp_path):
    rng = np.random.default_rng(3)
    rows = [Expression(f"v{i}_0_1_cat_1", "test_s", masks=random_masks(rng, (180, 320))) for i in range(5)]
    rows += [Expression(f"null_c-v{i}_0_1_null_{k}", "test_n", vid=f"v{i}_0_1") for i in range(2) for k in (1, 2, 3)]
    data = tmp_path / "data"
    write_ref_avs(data, rows)
    task = RefAVSTask()
    samples = task.load(data, "test_s")
    oracle = _write_preds(
        tmp_path / "o.jsonl", [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in samples]
    )
    assert score("ref_avs", data, "test_s", oracle).metrics == {"J": 100.0, "F": 100.0}
    # missing predictions are empty masks: J counts empty GT frames as 1, F the all-ones map's F
    empty = score("ref_avs", data, "test_s", _write_preds(tmp_path / "e.jsonl", []))
    gts = [
        [task_mask for task_mask in (read_gt_mask(str(gt_path(data, r.uid, 0, i))) for i in range(10))]
        for r in rows[:5]
    ]
    j, f = ref_test_loop([[np.zeros((SIDE, SIDE), bool)] * 10] * 5, gts)
    assert empty.n_missing == 5
    assert empty.metrics["J"] == pytest.approx(j, abs=1e-5) and empty.metrics["F"] == pytest.approx(f, abs=1e-5)
    # null split: the first row predicts a full first frame; batch 1 = rows 1-4, batch 2 = rows 5-6
    null = task.load(data, "test_n")
    full = np.ones((SIDE, SIDE), bool)
    lines = [
        {"id": null[0].id, "prediction": {"masks": [encode_mask(full)] + [encode_mask(~full)] * 9}},
        {"id": null[1].id, "text": "<answer>false</answer>"},
    ]
    res = score("ref_avs", data, "test_n", _write_preds(tmp_path / "n.jsonl", lines))
    assert res.metrics == {"S": pytest.approx(100 * np.sqrt(1 / 40) / 2)}  # mean(sqrt(1/40), 0)
    assert res.n_unparsed == 1
    # the null split's headline is S, lower is better: result files and transfer tables use it
    assert res.main_metric == "S" and main_metric_of("ref_avs", "test_n") == ("S", False)
    assert main_metric_of("ref_avs", "test_s") == ("J", True)
    out = tmp_path / "r.json"
    assert (
        cli_main(
            [
                "score",
                "--task",
                "ref_avs",
                "--data",
                str(data),
                "--split",
                "test_s",
                "--predictions",
                str(oracle),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["metrics"] == {"J": 100.0, "F": 100.0}
    with pytest.raises(CrabEvalError):
        score("ref_avs", data, "test_n", _write_preds(tmp_path / "x.jsonl", [{"id": "zz", "prediction": {}}]))
