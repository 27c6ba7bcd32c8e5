"""Masks Crab saves as images -> contract predictions (COCO RLE), for S4, MS3 and AVSS.

Crab's mask inference (GeWu-Lab/Crab ``scripts/finetune/inference_hyper_lora.py``, ``inference_ms3`` /
``inference_s4`` / ``inference_avss``) writes one PNG per test frame, ``mask_img_dir/{uid}/{i}_pred.png``: ``uid``
is the video folder of the frame's mask path (``AVS/{v1s|v1m|v2}/{uid}/labels_.../{i}.png``, the ``uid`` of
Crab's test json, an AVSBench-semantic folder name) and ``i`` the frame's file number there (0-4; AVSS v2 0-9).
S4 and MS3 are 0/255 binary masks (``sigmoid > 0.5``, saved as mode 'P' with grey palette), AVSS colour masks in the
AVSBench-semantic palette (``save_color_mask``); all at the mask head's 224x224. Crab's frame i is crab-eval's
annotated frame i + 1 for S4/MS3 (AVSBench-object frames 1..5) and frame i for AVSS (``labels_rgb/{i}.png``).

The folder is the sample id, unless an id map says otherwise: crab-eval's S4/MS3 ids are AVSBench-object names,
while Crab names folders by the AVSBench-semantic ``uid``; the row's ``vid`` is the object name (Crab's own test
json ``{s4,ms3}_samples.json`` and AVSBench-semantic ``metadata.csv`` carry both), so ``--id-map`` that file to
translate. A video with some of its frames missing is left missing (reported), never filled in; values outside
0/255, colours outside the palette or a size other than the ground truth's are errors.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.clients.lines import ClientError, parse_json, read_text
from crab_eval.clients.matching import ConvertReport
from crab_eval.layouts.avss import palette
from crab_eval.metrics.masks import counts_to_string, mask_to_counts
from crab_eval.tasks.base import Sample, Split

PRED_NAME = "{i}_pred.png"


def find_mask_dir(task: str, masks: str | Path | None, inputs: list[Path]) -> Path:
    """The ``mask_img_dir`` to read: ``--masks`` (that folder, or a folder holding it, or a run folder holding
    ``inference_{task}/mask_img_dir``), else beside the given inference file or inside the given run folder."""
    from crab_eval.clients.crab import FOLDERS

    sub = FOLDERS[task][0]
    if masks is not None:
        folder = Path(masks)
        for candidate in (folder / sub / "mask_img_dir", folder / "mask_img_dir", folder):
            if candidate.is_dir():
                return candidate
        raise ClientError("mask folder not found", folder)
    for given in inputs:
        base = given if given.is_dir() else given.parent
        for candidate in (base / sub / "mask_img_dir", base / "mask_img_dir"):
            if candidate.is_dir():
                return candidate
    where = ", ".join(map(str, inputs)) or "nothing given"
    raise ClientError(f"no mask folder {sub}/mask_img_dir beside the inputs ({where}); pass --masks DIR")


def read_uid_map(path: str | Path) -> dict[str, str]:
    """Crab's folder name (``uid``) -> sample id, from Crab's test json (a list of rows with ``uid`` and ``vid``),
    AVSBench-semantic's ``metadata.csv`` (columns ``vid``, ``uid``) or a JSON object ``{uid: sample id}``."""
    path = Path(path)
    text = read_text(path, "id map file")
    pairs: list[tuple[str, str, int]] = []  # (uid, id, where: 1-based line of a CSV, row index + 1 of a list)
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not {"uid", "vid"} <= set(reader.fieldnames or ()):
            raise ClientError(f"id map CSV needs columns 'uid' and 'vid', header has {reader.fieldnames}", path)
        pairs = [(row["uid"], row["vid"], reader.line_num) for row in reader]
    else:
        value = parse_json(text, path, "id map")
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            pairs = [(str(k), v, 0) for k, v in value.items()]
        elif isinstance(value, list) and all(isinstance(r, dict) and {"uid", "vid"} <= set(r) for r in value):
            pairs = [(str(r["uid"]), str(r["vid"]), i + 1) for i, r in enumerate(value)]
        else:
            raise ClientError(
                "id map must be Crab's test json (rows with 'uid' and 'vid'), AVSBench-semantic metadata.csv or "
                "a JSON object {uid: sample id}",
                path,
            )
    mapping: dict[str, str] = {}
    for uid, sample, where in pairs:
        if mapping.setdefault(uid, sample) != sample:
            raise ClientError(f"uid {uid!r} maps to both {mapping[uid]!r} and {sample!r}", path, where or None)
    return mapping


def crab_masks(
    task: str, split: Split, mask_dir: Path, report: ConvertReport, uid_map: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Contract rows of the videos whose every frame has a PNG; counts go into ``report``."""
    folder_of = _folders(mask_dir, uid_map)
    report.inputs = [str(mask_dir)]
    report.id_rule = (
        "the video folder of mask_img_dir/{uid}/{i}_pred.png is the sample id"
        if uid_map is None
        else "the video folder of mask_img_dir/{uid}/{i}_pred.png -> the id map's vid (the sample id)"
    )
    rows = []
    incomplete: list[str] = []
    unmatched = len(folder_of)
    for sample in split:
        folder = folder_of.pop(sample.id, None)
        if folder is None:
            continue
        files = [folder / PRED_NAME.format(i=i) for i in range(_n_frames(task, sample))]
        present = [f for f in files if f.is_file()]
        report.lines_read += len(present)
        if len(present) < len(files):
            incomplete.append(sample.id)
            continue
        if task == "avss":
            rows.append({"id": sample.id, "prediction": {"frames": [_class_rles(f) for f in files]}})
        else:
            masks = [_binary_rle(f, size) for f, size in zip(files, sample.target.sizes, strict=True)]
            rows.append({"id": sample.id, "prediction": {"masks": masks}})
    report.outside_split = len(folder_of)
    report.matched = len(rows)
    done = {row["id"] for row in rows}
    report.missing_ids = [s.id for s in split if s.id not in done]
    report.missing = len(report.missing_ids)
    if incomplete:
        report.notes.append(
            f"{len(incomplete)} video(s) with some frames' PNGs missing left missing (e.g. {incomplete[0]}); "
            "Crab's released inference_s4 stops after the first batch and must be patched to save every frame"
        )
    if unmatched and unmatched == len(folder_of) and task != "avss":
        how = "--id-map maps none of them" if uid_map is not None else "pass --id-map"
        report.notes.append(
            f"none of the {unmatched} video folder(s) names a sample of the split: Crab names them by the "
            f"AVSBench-semantic uid, crab-eval's {task} ids are AVSBench-object names ({how} with Crab's "
            f"{task}_samples.json or AVSBench-semantic metadata.csv: uid -> vid)"
        )
    return rows


def _folders(mask_dir: Path, uid_map: dict[str, str] | None) -> dict[str, Path]:
    """Sample id -> its video folder; a folder the id map does not know names no sample (kept under its uid)."""
    out: dict[str, Path] = {}
    for folder in sorted(p for p in mask_dir.iterdir() if p.is_dir()):
        sample = folder.name if uid_map is None else uid_map.get(folder.name, f"(uid {folder.name} not in the map)")
        if sample in out:
            raise ClientError(
                f"folders {out[sample].name!r} and {folder.name!r} both map to sample {sample!r}", mask_dir
            )
        out[sample] = folder
    return out


def _n_frames(task: str, sample: Sample) -> int:
    return len(sample.target) if task == "avss" else len(sample.target.frames)


def _open(path: Path, mode: str) -> np.ndarray:
    from PIL import Image  # here: converting text needs no Pillow

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except (OSError, ValueError, SyntaxError) as exc:
        raise ClientError(f"not a readable image ({exc})", path) from None


def _binary_rle(path: Path, size: tuple[int, int]) -> dict[str, Any]:
    """A 0/255 mask PNG (Crab saves mode 'P' with grey values) -> the contract's RLE, checked against ``size``."""
    grey = _open(path, "L")
    if grey.shape != tuple(size):
        raise ClientError(f"mask is {grey.shape[0]}x{grey.shape[1]}, the ground truth {size[0]}x{size[1]}", path)
    values = np.unique(grey)
    if not set(values.tolist()) <= {0, 255}:
        raise ClientError(f"a binary mask must hold only 0 and 255, found {values[:6].tolist()}", path)
    return {"size": [int(size[0]), int(size[1])], "counts": counts_to_string(mask_to_counts(grey > 0))}


_PALETTE = palette().astype(np.int64)
_COLOUR_CODE = (_PALETTE[:, 0] << 16) | (_PALETTE[:, 1] << 8) | _PALETTE[:, 2]


def _class_rles(path: Path) -> dict[str, Any]:
    """An AVSS colour PNG -> {class index: RLE} for every class but background; a colour off the palette is an
    error (Crab paints exact palette colours, so anything else is not its output)."""
    from crab_eval.tasks.avss import SIDE

    rgb = _open(path, "RGB").astype(np.int64)
    if rgb.shape[:2] != (SIDE, SIDE):
        raise ClientError(f"colour mask is {rgb.shape[0]}x{rgb.shape[1]}, AVSS is scored at {SIDE}x{SIDE}", path)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    order = np.argsort(_COLOUR_CODE)
    where = np.searchsorted(_COLOUR_CODE[order], codes)
    where = np.minimum(where, len(order) - 1)
    classes = order[where]
    off = _COLOUR_CODE[classes] != codes
    if off.any():
        r, c = np.argwhere(off)[0]
        raise ClientError(f"pixel ({r}, {c}) has colour {rgb[r, c].tolist()}, not a palette colour", path)
    out = {}
    for k in np.unique(classes):
        if k != 0:
            out[str(int(k))] = {"size": [SIDE, SIDE], "counts": counts_to_string(mask_to_counts(classes == k))}
    return out
