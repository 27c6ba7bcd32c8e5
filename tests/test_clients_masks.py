"""Masks Crab saves as PNGs -> RLE predictions (S4, MS3, AVSS), against a hand-made conversion.

The PNGs are written as Crab's inference writes them (scripts/finetune/inference_hyper_lora.py: ``(sigmoid > 0.5)
* 255`` -> ``Image.fromarray(...).convert('P')``; AVSS: ``save_color_mask`` paints the ``get_v2_pallete`` colour of
each pixel's class into an RGB image). The hand conversion encodes the same arrays with pycocotools (the reference
RLE encoder), and the palette is rebuilt here from ``get_v2_pallete`` as read, independent of the package.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycocotools.mask as coco_mask
import pytest
from PIL import Image

from crab_eval.cli import main
from crab_eval.clients import ClientError, convert, write_predictions
from crab_eval.layouts.avsbench import Video, random_blob_masks, write_ms3, write_s4
from crab_eval.layouts.avss import Video as AvssVideo
from crab_eval.layouts.avss import random_label_maps, write_avss
from crab_eval.scoring import score


def coco_rle(mask: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def v2_palette(num_cls: int = 71) -> np.ndarray:
    """get_v2_pallete's _getpallete, as read: bit i of each 3-bit group of j goes to bit 7-i of R, G, B."""
    pallete = [0] * (num_cls * 3)
    for j in range(num_cls):
        lab, i = j, 0
        while lab > 0:
            pallete[j * 3 + 0] |= ((lab >> 0) & 1) << (7 - i)
            pallete[j * 3 + 1] |= ((lab >> 1) & 1) << (7 - i)
            pallete[j * 3 + 2] |= ((lab >> 2) & 1) << (7 - i)
            i += 1
            lab >>= 3
    return np.array(pallete, dtype=np.uint8).reshape(-1, 3)


def save_binary_pred(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask > 0).astype(np.uint8) * 255).convert("P").save(path, format="PNG")


def save_colour_pred(path: Path, classes: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(v2_palette()[classes]).save(path, format="PNG")


def write_contract(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("task", ["ms3", "s4"])
def test_crab_binary_masks(tmp_path: Path, task: str) -> None:
    rng = np.random.default_rng(3)
    names = ["vidA_1", "vidB_2", "vidC_3"]
    videos = [Video(n, "test", random_blob_masks(rng, 5, (224, 224), p_empty=0.2)) for n in names]
    data = tmp_path / "data"
    (write_ms3 if task == "ms3" else write_s4)(data, videos)
    run = tmp_path / "ckpt" / f"inference_{task}" / "mask_img_dir"
    preds = {n: random_blob_masks(rng, 5, (224, 224)) for n in names}
    for name in names[:2]:  # vidC_3 has no folder: missing
        for i, mask in enumerate(preds[name]):
            save_binary_pred(run / name / f"{i}_pred.png", mask)  # Crab's frame i = annotated frame i + 1
            save_binary_pred(run / name / f"{i}_gt.png", mask)  # Crab writes the ground truth beside it
    (run / "other_9").mkdir()  # a video outside the split
    conversion = convert("crab", task, data, [tmp_path / "ckpt"])
    hand_rows = [{"id": n, "prediction": {"masks": [coco_rle(m) for m in preds[n]]}} for n in names[:2]]
    assert conversion.rows == hand_rows
    out = tmp_path / "converted.jsonl"
    write_predictions(conversion.rows, out)
    result = score(task, data, "test", out)
    assert result.metrics == score(task, data, "test", write_contract(tmp_path / "hand.jsonl", hand_rows)).metrics
    report = conversion.report
    assert (report.matched, report.missing, report.outside_split, report.lines_read) == (2, 1, 1, 10)
    assert result.n_missing == 1
    # One command from the run folder.
    out, ckpt = tmp_path / "r.json", str(tmp_path / "ckpt")
    argv = ["score", "--from", "crab", "--task", task, "--data", str(data), ckpt, "--output", str(out)]
    assert main(argv) == 0 and json.loads(out.read_text())["metrics"] == result.metrics


def test_crab_s4_stray_break_leaves_videos_missing(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    data = tmp_path / "data"
    write_s4(data, [Video("vidA_1", "test", random_blob_masks(rng, 5, (224, 224)))])
    masks = tmp_path / "mask_img_dir"
    save_binary_pred(masks / "vidA_1" / "0_pred.png", np.ones((224, 224)))  # released inference_s4: one frame only
    conversion = convert("crab", "s4", data, [], masks=masks)
    assert conversion.rows == [] and conversion.report.missing == 1
    assert "some frames' PNGs missing" in conversion.report.notes[0]


def test_crab_mask_files_are_checked(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = tmp_path / "data"
    write_ms3(data, [Video("vidA_1", "test", random_blob_masks(rng, 5, (224, 224)))])
    masks = tmp_path / "mask_img_dir"
    (masks / "vidA_1").mkdir(parents=True)
    for i in range(5):  # grey 128: not Crab's 0/255
        Image.fromarray(np.full((224, 224), 128, dtype=np.uint8)).save(masks / "vidA_1" / f"{i}_pred.png")
    with pytest.raises(ClientError, match="only 0 and 255"):
        convert("crab", "ms3", data, [], masks=masks)
    for i in range(5):
        save_binary_pred(masks / "vidA_1" / f"{i}_pred.png", np.ones((112, 112)))
    with pytest.raises(ClientError, match="mask is 112x112, the ground truth 224x224"):
        convert("crab", "ms3", data, [], masks=masks)


def test_crab_avss_colour_masks(tmp_path: Path) -> None:
    from crab_eval.layouts.avss import palette

    assert np.array_equal(palette(), v2_palette())  # the package's palette is get_v2_pallete's
    rng = np.random.default_rng(6)
    data = tmp_path / "data"
    videos = [AvssVideo("a_1", "test", "v1s", random_label_maps(rng, 5)),
              AvssVideo("b_1", "test", "v2", random_label_maps(rng, 10))]  # fmt: skip
    write_avss(data, videos)
    masks = tmp_path / "ckpt" / "inference_avss" / "mask_img_dir"
    preds = {"a_1": random_label_maps(rng, 5), "b_1": random_label_maps(rng, 10)}
    for uid, maps in preds.items():
        for i, classes in enumerate(maps):
            save_colour_pred(masks / uid / f"{i}_pred.png", classes)
    conversion = convert("crab", "avss", data, [tmp_path / "ckpt"])
    hand_rows = [
        {"id": uid, "prediction": {"frames": [
            {str(c): coco_rle(m == c) for c in np.unique(m) if c != 0} for m in maps
        ]}}
        for uid, maps in preds.items()
    ]  # fmt: skip
    assert conversion.rows == hand_rows
    out = tmp_path / "converted.jsonl"
    write_predictions(conversion.rows, out)
    hand = score("avss", data, "test", write_contract(tmp_path / "hand.jsonl", hand_rows))
    assert score("avss", data, "test", out).metrics == hand.metrics
    # A colour off the palette is not Crab's output.
    bad = preds["a_1"][0].astype(np.uint8)
    rgb = v2_palette()[bad]
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(masks / "a_1" / "0_pred.png")
    with pytest.raises(ClientError, match="not a palette colour"):
        convert("crab", "avss", data, [tmp_path / "ckpt"])


# ---- Crab's S4/MS3 folders as its own code names them -------------------------------------------------------------
# Read from GeWu-Lab/Crab: dataset/unified_dataset.py UnifiedTestDataset.add_{ms3,s4}_task_samples keeps the rows of
# {AVS}/{ms3,s4}_samples.json with split == 'test' and makes five samples per row, mask_path
# {AVS}/{v1m|v1s}/{uid}/labels_semantic/{i}.png for i in range(5); scripts/finetune/inference_hyper_lora.py
# inference_{ms3,s4} saves (sigmoid(logits) > 0.5) * 255 as Image.fromarray(...).convert('P') to
# {ckpt_dir}/inference_{task}/mask_img_dir/{mask_path.split('/')[-3]}/{mask_path.split('/')[-1][:-4]}_pred.png.
CRAB_AVS_ROOT = "/group/40061/cserdu/data/AVS"


def crab_test_rows(task: str, pairs: list[tuple[str, str, str]]) -> list[dict]:
    """Rows of Crab's {task}_samples.json: (AVSBench-object name = vid, AVSBench-semantic folder = uid, split)."""
    label = "v1m" if task == "ms3" else "v1s"
    return [
        {"vid": vid, "uid": uid, "s_min": 0, "s_sec": 0, "a_obj": "dog", "split": split, "label": label}
        for vid, uid, split in pairs
    ]


def crab_mask_run(ckpt: Path, task: str, rows: list[dict], logits_of) -> None:
    """The mask_img_dir Crab's inference_{task} leaves, built from its test loader's paths and its save rule."""
    img_dir = ckpt / f"inference_{task}" / "mask_img_dir"
    sub = "v1m" if task == "ms3" else "v1s"
    for row in rows:
        if row["split"] != "test":
            continue
        for i in range(5):
            mask_path = f"{CRAB_AVS_ROOT}/{sub}/{row['uid']}/labels_semantic/{i}.png"
            video_name, filename = mask_path.split("/")[-3], mask_path.split("/")[-1][:-4]
            logits = logits_of(row["uid"], i)
            pred = ((1.0 / (1.0 + np.exp(-logits))) > 0.5).astype(np.uint8) * 255
            (img_dir / video_name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pred).convert("P").save(img_dir / video_name / f"{filename}_pred.png", format="PNG")
            Image.fromarray(pred).convert("P").save(img_dir / video_name / f"{filename}_gt.png", format="PNG")


@pytest.mark.parametrize("task", ["ms3", "s4"])
def test_crab_uid_folders_mapped_to_avsbench_object_names(tmp_path: Path, task: str) -> None:
    rng = np.random.default_rng(11)
    # AVSBench-object names (crab-eval's ids) and AVSBench-semantic uids that differ from them.
    pairs = [("vidA_1", "semA_0_5000", "test"), ("vidB_2", "semB_0_5000", "test"), ("vidT_1", "semT", "train")]
    test_names = ["vidA_1", "vidB_2", "vidC_3"]  # vidC_3 is in the split but not in Crab's json: missing
    data = tmp_path / "data"
    videos = [Video(n, "test", random_blob_masks(rng, 5, (224, 224), p_empty=0.2)) for n in test_names]
    (write_ms3 if task == "ms3" else write_s4)(data, videos)
    logits = {uid: rng.normal(size=(5, 224, 224)).astype(np.float32) for _, uid, _ in pairs}
    rows = crab_test_rows(task, pairs)
    ckpt = tmp_path / "ckpt"
    crab_mask_run(ckpt, task, rows, lambda uid, i: logits[uid][i])
    crab_json = tmp_path / f"{task}_samples.json"
    crab_json.write_text(json.dumps(rows), encoding="utf-8")
    # By hand: Crab's frame i of uid is AVSBench-object frame i + 1 of the row's vid; foreground = logit > 0.
    hand_rows = [
        {"id": vid, "prediction": {"masks": [coco_rle(logits[uid][k - 1] > 0) for k in range(1, 6)]}}
        for vid, uid, split in pairs
        if split == "test"
    ]
    # Without the map no folder is a sample id: every video missing, and the report says why.
    plain = convert("crab", task, data, [ckpt])
    assert plain.rows == [] and plain.report.missing == 3 and plain.report.outside_split == 2
    assert "--id-map" in plain.report.notes[-1] and "AVSBench-semantic uid" in plain.report.notes[-1]
    # Crab's own test json, AVSBench-semantic's metadata.csv and a plain object all give the hand conversion.
    metadata = tmp_path / "metadata.csv"
    metadata.write_text(
        "vid,uid,s_min,s_sec,a_obj,split,label\n"
        + "".join(f"{r['vid']},{r['uid']},0,0,dog,{r['split']},{r['label']}\n" for r in rows),
        encoding="utf-8",
    )
    obj = tmp_path / "uids.json"
    obj.write_text(json.dumps({uid: vid for vid, uid, _ in pairs}), encoding="utf-8")
    for id_map in (crab_json, metadata, obj):
        conversion = convert("crab", task, data, [ckpt], id_map=id_map)
        assert conversion.rows == hand_rows
        assert (conversion.report.matched, conversion.report.missing, conversion.report.outside_split) == (2, 1, 0)
        assert conversion.report.missing_ids == ["vidC_3"]
    hand = score(task, data, "test", write_contract(tmp_path / "hand.jsonl", hand_rows))
    out = tmp_path / "r.json"
    argv = ["score", "--from", "crab", "--task", task, "--data", str(data), str(ckpt), "--id-map", str(crab_json)]
    assert main([*argv, "--output", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"] == hand.metrics and hand.n_missing == 1


def test_crab_uid_map_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    data = tmp_path / "data"
    write_ms3(data, [Video("vidA_1", "test", random_blob_masks(rng, 5, (224, 224)))])
    ckpt = tmp_path / "ckpt"
    rows = crab_test_rows("ms3", [("vidA_1", "u1", "test"), ("vidA_1", "u2", "test")])
    crab_mask_run(ckpt, "ms3", rows, lambda uid, i: np.ones((224, 224), dtype=np.float32))
    crab_json = tmp_path / "ms3_samples.json"
    crab_json.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(ClientError, match="'u1' and 'u2' both map to sample 'vidA_1'"):
        convert("crab", "ms3", data, [ckpt], id_map=crab_json)
    crab_json.write_text(json.dumps(crab_test_rows("ms3", [("a", "u1", "test"), ("b", "u1", "test")])), "utf-8")
    with pytest.raises(ClientError, match="uid 'u1' maps to both 'a' and 'b'"):
        convert("crab", "ms3", data, [ckpt], id_map=crab_json)
    crab_json.write_text(json.dumps(["vidA_1"]), encoding="utf-8")  # lmms-eval's positional form: not for masks
    with pytest.raises(ClientError, match="Crab's test json"):
        convert("crab", "ms3", data, [ckpt], id_map=crab_json)
    bad_csv = tmp_path / "metadata.csv"
    bad_csv.write_text("name,split\nvidA_1,test\n", encoding="utf-8")
    with pytest.raises(ClientError, match="needs columns 'uid' and 'vid'"):
        convert("crab", "ms3", data, [ckpt], id_map=bad_csv)
    with pytest.raises(ClientError, match="--id-field and --text-field are for text lines"):
        convert("crab", "ms3", data, [ckpt], id_field="uid")
