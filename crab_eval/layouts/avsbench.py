"""AVSBench-object (OpenNLPLab/AVSBench) layouts: S4 (Single-source) and MS3 (Multi-sources).

As the release lays them out (paths from avs_scripts/avs_s4/config.py and avs_ms3/config.py)::

    Single-source/s4_meta_data.csv                      name,start_time,category,split
    Single-source/s4_data/gt_masks/{split}/{category}/{name}/{name}_{k}.png
    Single-source/s4_data/visual_frames/{split}/{category}/{name}/{name}_{k}.png
    Multi-sources/ms3_meta_data.csv                     video name first, a ``split`` column
    Multi-sources/ms3_data/gt_masks/{split}/{name}/{name}_{k}.png
    Multi-sources/ms3_data/visual_frames/{name}/{name}.mp4_{k}.png

Frames are numbered 1..5; the S4 train split annotates frame 1 only. Masks are 0/255 PNGs, 224x224 in the
release. ``data_dir`` below is the ``Single-source`` / ``Multi-sources`` folder.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

S4_META = "s4_meta_data.csv"
MS3_META = "ms3_meta_data.csv"
S4_DATA = "s4_data"
MS3_DATA = "ms3_data"
S4_HEADER = ("name", "start_time", "category", "split")
# The MS3 loaders read only column 0 (video name) and the ``split`` column; the release's other column names are
# not used by any code we read, so the writer gives the two it needs.
MS3_HEADER = ("video_id", "split")
N_FRAMES = 5
FRAME_SIZE = (224, 224)


@dataclass
class Video:
    """One video of a split. ``masks`` are 2-D arrays (non-zero = sounding object), one per annotated frame."""

    name: str
    split: str
    masks: Sequence[np.ndarray] = field(default_factory=list)
    category: str = "male_speech"  # S4 only
    start_time: int = 0  # S4 only


def frames_annotated(task: str, split: str) -> tuple[int, ...]:
    """The frame numbers with ground truth: S4's train split has frame 1 only (mask_num in avs_s4/dataloader.py)."""
    if task == "s4" and split == "train":
        return (1,)
    return tuple(range(1, N_FRAMES + 1))


def write_mask_png(path: Path, mask: np.ndarray, mode: str = "L", fg_value: int = 255) -> Path:
    """A 0/``fg_value`` mask PNG in PIL ``mode`` ("L", "1", "P" with a grey palette, or "RGB")."""
    from PIL import Image  # here: the tasks import this module's constants without Pillow

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.where(np.asarray(mask) != 0, fg_value, 0).astype(np.uint8)
    image = Image.fromarray(arr, mode="L")
    if mode == "1":
        image = image.convert("1")
    elif mode == "P":
        image = image.convert("P")
    elif mode == "RGB":
        image = image.convert("RGB")
    elif mode != "L":
        raise ValueError(f"unsupported PNG mode {mode!r}")
    image.save(path, format="PNG")
    return path


def write_meta_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def s4_mask_path(data_dir: Path, video: Video, k: int, flat: bool = False) -> Path:
    base = Path(data_dir) if flat else Path(data_dir) / S4_DATA
    return base / "gt_masks" / video.split / video.category / video.name / f"{video.name}_{k}.png"


def ms3_mask_path(data_dir: Path, video: Video, k: int, flat: bool = False) -> Path:
    base = Path(data_dir) if flat else Path(data_dir) / MS3_DATA
    return base / "gt_masks" / video.split / video.name / f"{video.name}_{k}.png"


def _write_masks(task: str, data_dir: Path, videos: Sequence[Video], flat: bool, mode: str) -> None:
    path_of = s4_mask_path if task == "s4" else ms3_mask_path
    for video in videos:
        frames = frames_annotated(task, video.split)
        if len(video.masks) != len(frames):
            raise ValueError(
                f"{task} video {video.name} ({video.split}) needs {len(frames)} masks, got {len(video.masks)}"
            )
        for k, mask in zip(frames, video.masks, strict=True):
            write_mask_png(path_of(data_dir, video, k, flat), mask, mode=mode)


def write_s4(data_dir: Path, videos: Sequence[Video], flat: bool = False, mode: str = "L") -> Path:
    """``s4_meta_data.csv`` (all ``videos``, in order) and their ground-truth PNGs; returns the CSV path.

    ``flat`` puts ``gt_masks`` beside the CSV instead of under ``s4_data/`` (both are read).
    """
    data_dir = Path(data_dir)
    rows = [(v.name, v.start_time, v.category, v.split) for v in videos]
    csv_path = write_meta_csv(data_dir / S4_META, S4_HEADER, rows)
    _write_masks("s4", data_dir, videos, flat, mode)
    return csv_path


def write_ms3(data_dir: Path, videos: Sequence[Video], flat: bool = False, mode: str = "L") -> Path:
    """``ms3_meta_data.csv`` (all ``videos``, in order) and their ground-truth PNGs; returns the CSV path."""
    data_dir = Path(data_dir)
    csv_path = write_meta_csv(data_dir / MS3_META, MS3_HEADER, [(v.name, v.split) for v in videos])
    _write_masks("ms3", data_dir, videos, flat, mode)
    return csv_path


def random_blob_masks(
    rng: np.random.Generator, n: int, size: tuple[int, int] = FRAME_SIZE, p_empty: float = 0.0
) -> list[np.ndarray]:
    """``n`` plausible object masks: an ellipse drifting across the frames, some frames empty."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    ry, rx = rng.uniform(0.08, 0.35) * h, rng.uniform(0.08, 0.35) * w
    masks = []
    for _ in range(n):
        cy += rng.normal(0, 0.03 * h)
        cx += rng.normal(0, 0.03 * w)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        if rng.random() < p_empty:
            mask = np.zeros(size, dtype=bool)
        masks.append(mask)
    return masks
