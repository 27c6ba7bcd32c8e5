"""AVSBench-semantic (avss): palette, loader, prediction checks, the official per-class accumulation, end to end.

Expected values: hand-worked masks (comments), PIL's own resizes, and a plain-loop reference in torch that follows
avs_scripts/avss/utils/compute_color_metrics.py (_batch_miou_fscore with torch.histc) and test.py (batches of 4,
per-class sums and counts, NaN -> 0, torch.mean over 71 classes) as read, on one-hot logits built from the masks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crab_eval.errors import AnnotationError, CrabEvalError, PredictionError
from crab_eval.layouts.avss import (
    HEADER,
    Video,
    palette,
    random_label_maps,
    write_avss,
    write_color_png,
    write_label2idx,
)
from crab_eval.metrics.masks import encode_mask
from crab_eval.scoring import score
from crab_eval.tasks.avss import AVSSTask, aggregate_classes, colour_to_class, read_label_png
from crab_eval.tasks.base import Split

F32 = np.float32
N = 224 * 224


# ---- plain-loop reference of the official code ------------------------------------------------------------------
def official_reference(label_maps: list[list[np.ndarray]], truths: list[list[np.ndarray]], batch: int = 4):
    """test.py over videos (each a list of predicted / GT class maps), padded to 10 background frames."""
    import torch

    nclass = 71
    miou_pc = torch.zeros(nclass)
    fs_pc = torch.zeros(nclass)
    cls_pc = torch.zeros(nclass)
    for start in range(0, len(truths), batch):
        preds, gts = [], []
        for p_video, g_video in zip(label_maps[start : start + batch], truths[start : start + batch], strict=True):
            pad = [np.zeros((224, 224), np.int64)] * (10 - len(g_video))
            preds += [m.astype(np.int64) for m in p_video] + pad
            gts += [m.astype(np.int64) for m in g_video] + pad
        # The model's logits would be one-hot-like; softmax + argmax of them is the class map itself.
        predict = torch.from_numpy(np.stack(preds)) + 1
        tgt = torch.from_numpy(np.stack(gts)).float() + 1
        predict = predict.float() * (tgt > 0).float()
        intersection = predict * (predict == tgt).float()
        ious = torch.zeros(nclass)
        fscores = torch.zeros(nclass)
        count = torch.zeros(nclass)
        for i in range(tgt.shape[0]):
            a_i = torch.histc(intersection[i], bins=nclass, min=1, max=nclass)
            a_p = torch.histc(predict[i], bins=nclass, min=1, max=nclass)
            a_l = torch.histc(tgt[i], bins=nclass, min=1, max=nclass)
            a_u = a_p + a_l - a_i
            ious += 1.0 * a_i / (2.220446049250313e-16 + a_u)
            count[torch.nonzero(a_u).squeeze(-1)] += 1
            prec = a_i / a_p
            rec = a_i / a_l
            f = (1 + 0.3) * prec * rec / (0.3 * prec + rec)
            f[torch.isnan(f)] = 0.0
            fscores += f
        miou_pc += ious
        fs_pc += fscores
        cls_pc += count
    m = miou_pc / cls_pc
    m[torch.isnan(m)] = 0
    f = fs_pc / cls_pc
    f[torch.isnan(f)] = 0
    return 100 * torch.mean(m).item(), 100 * torch.mean(f).item(), 100 * torch.mean(m[:-1]).item()


def frames_prediction(maps: list[np.ndarray], with_background: bool = False) -> dict:
    return {"frames": [{str(c): encode_mask(m == c) for c in np.unique(m) if c != 0 or with_background} for m in maps]}


def _write_preds(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def _perturb(rng: np.random.Generator, lab: np.ndarray) -> np.ndarray:
    out = np.roll(lab, tuple(int(v) for v in rng.integers(-9, 10, 2)), axis=(0, 1))
    if rng.random() < 0.3:
        out[out == out.max()] = rng.integers(1, 71)  # a wrong class
    if rng.random() < 0.1:
        out[:] = 0
    return out


# ---- palette and ground truth ------------------------------------------------------------------------------
def test_palette_is_voc():
    p = palette()
    # VOC colours: 1 (128,0,0), 2 (0,128,0), 8 (64,0,0), 14 (64,128,128) (the colour of Crab's assets/example/avss)
    assert p[0].tolist() == [0, 0, 0] and p[1].tolist() == [128, 0, 0] and p[2].tolist() == [0, 128, 0]
    assert p[8].tolist() == [64, 0, 0] and p[14].tolist() == [64, 128, 128]
    assert len({tuple(c) for c in p.tolist()}) == 71


def test_colour_to_class_and_off_palette_is_background():
    p = palette()
    rgb = np.array([[p[5], p[70], [1, 2, 3], p[0]]], dtype=np.uint8)
    # color_mask_to_label: one-hot over palette colours, argmax; (1,2,3) matches none -> argmax of zeros = 0
    assert colour_to_class(rgb).tolist() == [[5, 70, 0, 0]]


@pytest.mark.parametrize("mode", ["RGB", "P"])
def test_label_png_resized_nearest_as_official(tmp_path, mode):
    rng = np.random.default_rng(1)
    lab = random_label_maps(rng, 1, (180, 320))[0]
    path = write_color_png(tmp_path / "0.png", lab, mode=mode)
    expected_img = Image.open(path).convert("RGB").resize((224, 224), Image.NEAREST)
    arr = np.asarray(expected_img).astype(np.int32)
    onehot = np.stack([np.all(arr == c, axis=-1) for c in palette().astype(np.int32)], axis=-1)
    assert np.array_equal(read_label_png(str(path), "test"), np.argmax(onehot, axis=-1))
    # train: short side to 224 (320x180 -> 398x224), centre crop x from round(87.0) = 87
    big = Image.open(path).convert("RGB").resize((398, 224), Image.NEAREST).crop((87, 0, 311, 224))
    arr = np.asarray(big).astype(np.int32)
    onehot = np.stack([np.all(arr == c, axis=-1) for c in palette().astype(np.int32)], axis=-1)
    assert np.array_equal(read_label_png(str(path), "train"), np.argmax(onehot, axis=-1))


# ---- hand-worked scoring ---------------------------------------------------------------------------------------
def test_hand_worked_frame_and_padding(tmp_path):
    # GT: columns 0..111 class 3, rest background. Prediction: class 3 on columns 0..55, class 7 on 56..111.
    gt = np.zeros((224, 224), np.uint8)
    gt[:, :112] = 3
    pred = np.zeros_like(gt)
    pred[:, :56] = 3
    pred[:, 56:112] = 7
    write_avss(tmp_path, [Video("v_1", "test", "v1m", [gt] * 5)])
    task = AVSSTask()
    split = task.load(tmp_path, "test")
    (sample,) = split
    checked = task.check_prediction(frames_prediction([pred] * 5), sample, split, tmp_path)
    stats = task.score_samples([sample], [checked])
    # Per annotated frame: class 3 inter 12544 / union 25088 = 0.5, precision 1, recall 0.5, F = 1.3*0.5/0.8 =
    # 0.8125; class 7 union 12544, IoU 0, F 0; background 25088 / 25088 = 1, F 1.3/1.3. Five padded frames add
    # background IoU 1 and F 1 each (count 10 in all).
    f_bg = F32(1.3) / (F32(0.3) + F32(1))
    assert sorted(zip(stats[0]["cls"], stats[0]["iou"], stats[0]["f"], strict=True))[:1] == [(0, 1.0, float(f_bg))]
    assert stats[0]["cls"].count(0) == 10 and stats[0]["cls"].count(3) == 5 and stats[0]["cls"].count(7) == 5
    metrics = task.aggregate(stats)
    assert metrics["mIoU"] == pytest.approx(100 * (1 + 0.5 + 0) / 71, abs=1e-6)
    assert metrics["F"] == pytest.approx(100 * (float(f_bg) + 0.8125) / 71, abs=1e-6)


def test_aggregate_hand_worked():
    stats = [
        {"cls": [0, 5], "pos": [0, 0], "iou": [0.5, 0.25], "f": [0.5, 0.2]},
        {"cls": [0], "pos": [0], "iou": [1.0], "f": [1.0]},
    ]
    # class 0: (0.5 + 1) / 2 = 0.75; class 5: 0.25 / 1; F: 0.75 and 0.2; 69 classes never seen count 0
    got = aggregate_classes(stats, 4)
    assert got["mIoU"] == pytest.approx(100 * 1.0 / 71, abs=1e-6)
    assert got["F"] == pytest.approx(100 * 0.95 / 71, abs=1e-6)
    assert aggregate_classes([], 4) == {"mIoU": 0.0, "F": 0.0}


# ---- against the plain-loop reference --------------------------------------------------------------------------
def test_matches_official_reference(tmp_path):
    rng = np.random.default_rng(7)
    labels = ["v1s", "v2", "v1m", "v1s", "v1m"]  # two batches, the second of one video
    videos = [
        Video(f"vid_{i}", "test", lab, random_label_maps(rng, 10 if lab == "v2" else 5)) for i, lab in enumerate(labels)
    ]
    write_avss(tmp_path, videos, size=(320, 180))
    task = AVSSTask()
    samples = task.load(tmp_path, "test")
    truths = [
        [
            read_label_png(str(tmp_path / v.label / v.uid / "labels_rgb" / f"{k}.png"), "test")
            for k in range(len(v.labels))
        ]
        for v in videos
    ]
    preds = [[_perturb(rng, t) for t in video] for video in truths]
    checked = [
        task.check_prediction(frames_prediction(p, with_background=i % 2 == 0), s, samples, tmp_path)
        for i, (p, s) in enumerate(zip(preds, samples, strict=True))
    ]
    got = task.aggregate(task.score_samples(samples, checked))
    miou, fscore, _ = official_reference(preds, truths)
    assert got["mIoU"] == pytest.approx(miou, abs=2e-5)
    assert got["F"] == pytest.approx(fscore, abs=2e-5)
    # per-sample stats alone carry the accumulation: scoring one at a time gives the same
    one_by_one = [task.score_sample(s, c) for s, c in zip(samples, checked, strict=True)]
    assert task.aggregate(one_by_one) == got


def test_miou_nobg_quirk_drops_class_70_not_background():
    # miou_noBg = mean(miou_pc[:-1]) drops the last class (70), while background is class 0.
    gt = np.full((224, 224), 70, np.uint8)
    gt[:10] = 0
    miou, _, no_bg = official_reference([[gt] * 10], [[gt] * 10])
    assert miou == pytest.approx(100 * 2 / 71, abs=1e-5)
    assert no_bg == pytest.approx(100 * 1 / 70, abs=1e-5)  # class 0 kept, class 70 dropped


# ---- predictions -----------------------------------------------------------------------------------------------
@pytest.fixture()
def v1_sample(tmp_path):
    write_avss(tmp_path, [Video("v_1", "test", "v1s", random_label_maps(np.random.default_rng(0), 5))])
    return AVSSTask().load(tmp_path, "test")[0]


def v1_split(sample):
    return Split("avss", "test", Path("."), [sample])


def _rle(mask=None, size=(224, 224)):
    return encode_mask(np.zeros(size, bool) if mask is None else mask)


@pytest.mark.parametrize(
    "prediction, message",
    [
        ({"masks": []}, "exactly one key, 'frames'"),
        ({"frames": {}}, "must be a list"),
        ({"frames": [{}] * 10}, "5 objects"),
        ({"frames": [[]] * 5}, "frame 0 must be an object"),
        ({"frames": [{"71": _rle()}] + [{}] * 4}, "class key"),
        ({"frames": [{"03": _rle()}] + [{}] * 4}, "class key"),
        ({"frames": [{"-1": _rle()}] + [{}] * 4}, "class key"),
        ({"frames": [{"3": _rle(size=(256, 256))}] + [{}] * 4}, "256x256 but its ground truth is 224x224"),
        ({"frames": [{"3": {"size": [224, 224], "counts": "0"}}] + [{}] * 4}, "frame 0 class 3: invalid RLE"),
    ],
)
def test_bad_predictions(v1_sample, prediction, message):
    with pytest.raises(PredictionError, match=message):
        AVSSTask().check_prediction(prediction, v1_sample, v1_split(v1_sample), Path("."))


def test_overlapping_class_masks_are_an_error(v1_sample):
    a = np.zeros((224, 224), bool)
    a[10:20, 10:20] = True
    b = np.zeros((224, 224), bool)
    b[19:30, 19:30] = True  # shares pixel (19, 19)
    with pytest.raises(PredictionError, match="frame 2: the masks of classes 4 and 9 claim the same pixel"):
        frames = [{}, {}, {"4": _rle(a), "9": _rle(b)}, {}, {}]
        AVSSTask().check_prediction({"frames": frames}, v1_sample, v1_split(v1_sample), Path("."))
    b[19, 19] = False
    b[19:20, :20] = False
    b[:20, 19:20] = False
    ok = AVSSTask().check_prediction(
        {"frames": [{}, {}, {"4": _rle(a), "9": _rle(b), "0": _rle(~(a | b))}, {}, {}]},
        v1_sample,
        v1_split(v1_sample),
        Path("."),
    )
    assert sorted(ok[2]) == [4, 9]  # the explicit background mask is redundant and dropped


# ---- loader ----------------------------------------------------------------------------------------------------
def test_loader_frames_ids_and_media(tmp_path):
    rng = np.random.default_rng(3)
    write_avss(
        tmp_path,
        [
            Video("a_1", "test", "v2", random_label_maps(rng, 10)),
            Video("b_1", "val", "v1m", random_label_maps(rng, 5)),
            Video("c_1", "train", "v1s", random_label_maps(rng, 1)),
        ],
    )
    task = AVSSTask()
    (a,) = task.load(tmp_path, "test")
    assert a.id == "a_1" and len(a.target) == 10 and a.media["audio"] == "v2/a_1/audio.wav"
    assert task.prompt(a).startswith("This is an image:\n<image_start>") and "<mask_5><mask_end>" in task.target_text(a)
    assert task.parse(task.target_text(a), Split("avss", "test", Path("."), [a])) is None
    assert AVSSTask.text_predictions is False
    (c,) = task.load(tmp_path, "train")
    assert len(c.target) == 1  # train v1s: one annotated frame, 9 padded
    assert len(task.annotation_files(tmp_path, "test")) == 2 + 10


def test_official_listing_quirk(tmp_path):
    rng = np.random.default_rng(4)
    write_avss(tmp_path, [Video("a_1", "test", "v1m", random_label_maps(rng, 5))])
    folder = tmp_path / "v1m" / "a_1" / "labels_rgb"
    (folder / "0_notes.txt").write_text("x")
    (folder / "0_z.txt").write_text("x")  # right after a removed name: the official loop skips it, so it counts
    with pytest.raises(AnnotationError, match="needs 5 label PNGs in test, found 6"):
        AVSSTask().load(tmp_path, "test")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: (d / "label2idx.json").unlink(), "not found"),
        (lambda d: write_label2idx(d, ["a", "b"]), "71 class names"),
        (lambda d: (d / "metadata.csv").write_text("uid,split\nx,test\n"), "no column"),
        (lambda d: (d / "metadata.csv").write_text(",".join(HEADER) + "\nv,a_1,0,0,o,test,v3\n"), "label must be"),
        (
            lambda d: (d / "metadata.csv").write_text(
                ",".join(HEADER) + "\nv,a_1,0,0,o,test,v2\nv,a_1,0,0,o,test,v2\n"
            ),
            "listed twice",
        ),
        (lambda d: (d / "v2" / "a_1" / "labels_rgb" / "3.png").unlink(), "needs 10 label PNGs"),
        (lambda d: (d / "v2" / "a_1" / "labels_rgb" / "3.png").write_bytes(b"junk"), "not a readable image"),
    ],
)
def test_bad_annotations(tmp_path, change, message):
    write_avss(tmp_path, [Video("a_1", "test", "v2", random_label_maps(np.random.default_rng(0), 10))])
    change(tmp_path)
    with pytest.raises(AnnotationError, match=message):
        AVSSTask().load(tmp_path, "test")


# ---- end to end ------------------------------------------------------------------------------------------------
def test_end_to_end_oracle_missing_and_cli(tmp_path):
    rng = np.random.default_rng(5)
    videos = [
        Video(f"v_{i}", "test", ["v1s", "v2", "v1m"][i % 3], random_label_maps(rng, [5, 10, 5][i % 3]))
        for i in range(5)
    ]
    data = tmp_path / "data"
    write_avss(data, videos)
    task = AVSSTask()
    samples = task.load(data, "test")
    oracle = _write_preds(
        tmp_path / "o.jsonl", [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in samples]
    )
    result = score("avss", data, "test", oracle)
    seen = {c for v in videos for m in v.labels for c in np.unique(m)}
    # a perfect prediction scores 1 on the classes ever seen and 0 on the others: mean over all 71
    assert result.metrics["mIoU"] == pytest.approx(100 * len(seen) / 71, abs=1e-5)
    lines = [
        {"id": samples[0].id, "text": "<mask_start><mask_0><mask_end>"},
        {"id": samples[1].id, "prediction": task.oracle_prediction(samples[1])},
    ]
    partial = score("avss", data, "test", _write_preds(tmp_path / "p.jsonl", lines))
    assert partial.n_missing == 3 and partial.n_unparsed == 1
    truths = [
        [read_label_png(str(data / v.label / v.uid / "labels_rgb" / f"{k}.png"), "test") for k in range(len(v.labels))]
        for v in videos
    ]
    preds = [[np.zeros((224, 224), np.uint8)] * len(t) for t in truths]
    preds[1] = truths[1]
    miou, fscore, _ = official_reference(preds, truths)
    assert partial.metrics["mIoU"] == pytest.approx(miou, abs=2e-5)
    assert partial.metrics["F"] == pytest.approx(fscore, abs=2e-5)
    from crab_eval import cli

    out = tmp_path / "r.json"
    assert (
        cli.main(
            [
                "score",
                "--task",
                "avss",
                "--data",
                str(data),
                "--split",
                "test",
                "--predictions",
                str(oracle),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["metrics"]["mIoU"] == pytest.approx(result.metrics["mIoU"])
    bad = _write_preds(tmp_path / "b.jsonl", [{"id": "nope", "prediction": {"frames": []}}])
    with pytest.raises(CrabEvalError):
        score("avss", data, "test", bad)
