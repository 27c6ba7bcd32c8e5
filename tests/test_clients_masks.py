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
