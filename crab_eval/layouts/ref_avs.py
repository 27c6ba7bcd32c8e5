"""Ref-AVS layout (GeWu-Lab/Ref-AVS, configs/config.py ``--data_dir`` and datasets/dataset_refavs.py)::

    {data_dir}/metadata.csv                              vid,uid,split,fid,exp (a header row)
    {data_dir}/gt_mask/{folder}/fid_{fid}/0000{i}.png    ground truth of frame i = 0..9 (grey, > 0 is the object)
    {data_dir}/media/{folder}/frames/{i}.jpg, audio.wav  the media

``folder`` is ``uid.rsplit('_', 2)[0]`` (the official loader ignores the ``vid`` column). The release's masks are
1280x720 grey 0/255 PNGs; the loader resizes them to 256x256 (cv2, bilinear) and takes > 0.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

META = "metadata.csv"
HEADER = ("vid", "uid", "split", "fid", "exp")
N_FRAMES = 10
SIDE = 256


def mask_folder(uid: str) -> str:
    """The video folder the official loader reads for ``uid``: ``uid.rsplit('_', 2)[0]``."""
    return uid.rsplit("_", 2)[0]


@dataclass
class Expression:
    """One metadata row. ``masks`` (10 arrays, non-zero = object) are written unless None (e.g. null rows)."""

    uid: str
    split: str
    exp: str = "The sounding object."
    fid: int = 0
    vid: str | None = None  # the metadata's vid column; defaults to the folder name
    masks: Sequence[np.ndarray] | None = field(default=None)


def gt_path(data_dir: Path, uid: str, fid: int, i: int) -> Path:
    return Path(data_dir) / "gt_mask" / mask_folder(uid) / f"fid_{fid}" / f"0000{i}.png"


def write_mask(path: Path, mask: np.ndarray) -> Path:
    from PIL import Image  # here: the tasks import this module's constants without Pillow

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(np.asarray(mask) != 0, 255, 0).astype(np.uint8), mode="L").save(path, format="PNG")
    return path


def write_ref_avs(data_dir: Path, rows: Sequence[Expression], overwrite: bool = False) -> Path:
    """``metadata.csv`` (all ``rows`` in order) and their ground-truth PNGs; returns the CSV path.

    Rows sharing a folder and fid share their PNGs, as in the release; the first row's masks are written unless
    ``overwrite``.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    csv_path = data_dir / META
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for r in rows:
            writer.writerow((r.vid if r.vid is not None else mask_folder(r.uid), r.uid, r.split, r.fid, r.exp))
    for r in rows:
        if r.masks is None:
            continue
        if len(r.masks) != N_FRAMES:
            raise ValueError(f"{r.uid}: needs {N_FRAMES} masks, got {len(r.masks)}")
        for i, mask in enumerate(r.masks):
            path = gt_path(data_dir, r.uid, r.fid, i)
            if overwrite or not path.exists():
                write_mask(path, mask)
    return csv_path


def random_masks(
    rng: np.random.Generator, size: tuple[int, int] = (720, 1280), p_empty: float = 0.1
) -> list[np.ndarray]:
    """10 plausible frames of one object (an ellipse drifting), some frames empty; ``size`` is (height, width)."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    ry, rx = rng.uniform(0.05, 0.3) * h, rng.uniform(0.05, 0.3) * w
    masks = []
    for _ in range(N_FRAMES):
        cy += rng.normal(0, 0.02 * h)
        cx += rng.normal(0, 0.02 * w)
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        masks.append(np.zeros(size, dtype=bool) if rng.random() < p_empty else m)
    return masks
