"""Masks Crab saves as images -> contract predictions (COCO RLE), for S4, MS3 and AVSS.

Crab's mask inference writes one PNG per frame, ``mask_img_dir/{uid}/{i}_pred.png`` (i = 0, 1, ..., the frame's
file name in the test json, ``uid`` the video folder of its mask path): S4 and MS3 as 0/255 binary masks
(``sigmoid > 0.5``), AVSS as colour masks in the AVSBench-semantic palette (``save_color_mask``). Crab's frame i is
crab-eval's annotated frame i + 1 for S4/MS3 (frames 1..5) and frame i for AVSS (``labels_rgb/{i}.png``). A video
with some of its frames missing is left missing (reported), never filled in; values outside 0/255, colours outside
the palette or a size other than the ground truth's are errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.clients.lines import ClientError
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


def crab_masks(task: str, split: Split, mask_dir: Path, report: ConvertReport) -> list[dict[str, Any]]:
    """Contract rows of the videos whose every frame has a PNG; counts go into ``report``."""
    folders = {p.name for p in mask_dir.iterdir() if p.is_dir()}
    report.inputs = [str(mask_dir)]
    report.id_rule = "the video folder of mask_img_dir/{uid}/{i}_pred.png is the sample id"
    rows = []
    incomplete: list[str] = []
    for sample in split:
        if sample.id not in folders:
            continue
        folders.discard(sample.id)
        files = [mask_dir / sample.id / PRED_NAME.format(i=i) for i in range(_n_frames(task, sample))]
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
    report.outside_split = len(folders)
    report.matched = len(rows)
    done = {row["id"] for row in rows}
    report.missing_ids = [s.id for s in split if s.id not in done]
    report.missing = len(report.missing_ids)
    if incomplete:
        report.notes.append(
            f"{len(incomplete)} video(s) with some frames' PNGs missing left missing (e.g. {incomplete[0]}); "
            "Crab's released inference_s4 stops after the first batch and must be patched to save every frame"
        )
    return rows


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
