"""Reference predictors on the real task adapters, with fixtures written by their layout writers.

Expected values are worked by hand in the comments, or (masks) computed by a plain loop written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crab_eval.baselines.predictors import predict, write_baseline
from crab_eval.layouts import ave as ave_layout
from crab_eval.layouts import avsbench
from crab_eval.layouts import avvp as avvp_layout
from crab_eval.layouts import music_avqa as avqa_layout
from crab_eval.registry import get_task
from crab_eval.scoring import load_split, score


def write_ave(root: Path) -> Path:
    # Train: Bark 0-10 three times, Church bell 2-5 once -> the majority answer is "Bark, 0 to 10".
    train = [("Bark", "tr1", 0, 10), ("Bark", "tr2", 0, 10), ("Church bell", "tr3", 2, 5), ("Bark", "tr4", 0, 10)]
    test = [("Bark", "te1", 0, 10), ("Church bell", "te2", 2, 5)]
    ave_layout.write_dataset(root, {"train": train, "val": test, "test": test})
    return root


def write_music_avqa(root: Path) -> Path:
    entry = avqa_layout.make_entry
    count, exist, where = ("Audio", "Counting"), ("Audio-Visual", "Existential"), ("Visual", "Location")
    train = [
        entry("v1", 1, count, "How many instruments are sounding?", "two"),
        entry("v2", 2, count, "How many instruments are sounding?", "two"),
        entry("v3", 3, count, "How many instruments are sounding?", "three"),
        entry("v4", 4, exist, "Is there a <Object> sound?", "yes", ["piano"]),
        entry("v5", 5, exist, "Is there a <Object> sound?", "no", ["violin"]),
        entry("v6", 6, exist, "Is there a <Object> sound?", "no", ["violin"]),
    ]
    test = [
        entry("w1", 11, count, "How many instruments are sounding?", "two"),
        entry("w2", 12, exist, "Is there a <Object> sound?", "no", ["piano"]),
        entry("w3", 13, exist, "Is there a <Object> sound?", "no", ["cello"]),
        entry("w4", 14, where, "Where is the <Object>?", "left", ["flute"]),
    ]
    for split, entries in (("train", train), ("val", test), ("test", test)):
        avqa_layout.write_split(root, split, entries)
    return root


def test_ave_majority_by_hand(tmp_path: Path) -> None:
    data = write_ave(tmp_path / "ave")
    out = tmp_path / "maj.jsonl"
    write_baseline("ave", data, "majority", out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {json.dumps(x["prediction"], sort_keys=True) for x in lines} == {
        json.dumps({"event": "Bark", "start": 0, "end": 10}, sort_keys=True)
    }
    # te1: 10 of 10 segments right; te2: Church bell on 2..4 and background elsewhere, all predicted Bark: 0 of 10.
    assert score("ave", data, "test", out).metrics["accuracy"] == pytest.approx(50.0)


def test_music_avqa_blind_and_majority_by_hand(tmp_path: Path) -> None:
    data = write_music_avqa(tmp_path / "avqa")
    rows, summary = predict("music_avqa", data, "blind")
    answers = [r["prediction"]["answer"] for r in rows]
    # w1: same question in train (two, two, three) -> two (right); w2: same question "Is there a piano sound?" ->
    # yes (wrong); w3: unseen question, same type AV-Existential (yes, no, no) -> no (right); w4: unseen question
    # and type -> overall majority, a tie two:2 / no:2 broken by first appearance -> two (wrong).
    assert answers == ["two", "yes", "no", "two"]
    assert summary["fit"]["answered_from"] == {"same question": 2, "same question type": 1, "overall majority": 1}
    out = tmp_path / "blind.jsonl"
    write_baseline("music_avqa", data, "blind", out)
    assert score("music_avqa", data, "test", out).metrics["overall"] == pytest.approx(50.0)
    write_baseline("music_avqa", data, "majority", out)
    assert score("music_avqa", data, "test", out).metrics["overall"] == pytest.approx(25.0)  # only w1


def test_avvp_fits_on_val_and_predicts_valid_events(tmp_path: Path) -> None:
    speech = {"audio": [("Speech", 0, 10)]}
    dog = {"audio": [("Dog", 2, 6)], "visual": [("Dog", 2, 6)]}
    data = avvp_layout.write_dataset(
        tmp_path / "avvp",
        {
            "val": {"a_0_10": speech, "b_0_10": speech, "c_0_10": dog},
            "test": {"x_0_10": speech, "y_0_10": dog},
        },
    )
    with pytest.raises(Exception, match="use --train-split"):
        predict("avvp", data, "majority")
    rows, _ = predict("avvp", data, "majority", train_split="val")
    task = get_task("avvp")
    speech_answer = task.oracle_prediction(load_split(task, data, "test")[0])
    assert [r["prediction"] for r in rows] == [speech_answer, speech_answer]
    out = tmp_path / "p.jsonl"
    for kind in ("majority", "prior", "random"):
        write_baseline("avvp", data, kind, out, train_split="val", seed=1)
        result = score("avvp", data, "test", out)
        assert result.n_missing == 0 and all(0.0 <= v <= 100.0 for v in result.metrics.values())


def _reference_j(gts: list[list[np.ndarray]], preds: list[list[np.ndarray]]) -> float:
    """Official mask_iou per video (mean over frames of inter / (union + 1e-7)), then the mean over videos."""
    per_video = []
    for gt_frames, pred_frames in zip(gts, preds, strict=True):
        ious = []
        for gt, pred in zip(gt_frames, pred_frames, strict=True):
            inter = np.logical_and(gt, pred).sum()
            union = np.logical_or(gt, pred).sum()
            ious.append(inter / (union + 1e-7))
        per_video.append(np.mean(ious))
    return 100.0 * float(np.mean(per_video))


@pytest.mark.parametrize("task_id", ["s4", "ms3"])
def test_mask_baselines_have_the_ground_truth_size(tmp_path: Path, task_id: str) -> None:
    rng = np.random.default_rng(0)
    videos = []
    for i in range(3):
        for split in ("train", "test"):
            n = len(avsbench.frames_annotated(task_id, split))
            videos.append(avsbench.Video(f"{split}{i}", split, avsbench.random_blob_masks(rng, n)))
    data = tmp_path / task_id
    (avsbench.write_s4 if task_id == "s4" else avsbench.write_ms3)(data, videos)
    out = tmp_path / "p.jsonl"
    gts = [[m.astype(bool) for m in v.masks] for v in videos if v.split == "test"]
    write_baseline(task_id, data, "majority", out)
    # All-empty masks against non-empty ground truth: every IoU is 0.
    assert score(task_id, data, "test", out).metrics["J"] == pytest.approx(0.0)
    write_baseline(task_id, data, "prior", out)
    box = np.zeros((224, 224), dtype=bool)
    box[56:168, 56:168] = True  # the centre box: half the height and width
    expected = _reference_j(gts, [[box] * len(g) for g in gts])
    assert score(task_id, data, "test", out).metrics["J"] == pytest.approx(expected, abs=1e-4)
    write_baseline(task_id, data, "random", out, seed=2)
    assert score(task_id, data, "test", out).n_missing == 0
    with pytest.raises(Exception, match="predicts masks"):
        predict(task_id, data, "blind")
