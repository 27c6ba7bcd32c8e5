"""AVSBench-semantic (AVSS) layout, as the official avs_scripts/avss code reads it (config.py, color_dataloader.py)::

    {data_dir}/metadata.csv                      a header row; the loader uses the columns uid, label, split
    {data_dir}/label2idx.json                    {"background": 1, "<class>": 2, ...}, 71 entries
    {data_dir}/{label}/{uid}/labels_rgb/{i}.png  colour ground truth of frame i (i = 0, 1, ...), VOC-style palette
    {data_dir}/{label}/{uid}/frames/{i}.jpg      the frames; {data_dir}/{label}/{uid}/audio.wav

``label`` is the subset: ``v1s`` (AVSBench-object single source, 5 frames), ``v1m`` (multi-source, 5 frames) or
``v2`` (new 10-second videos, 10 frames). Class index ``k`` (0 = background ... 70) has palette colour
``palette()[k]``; ``label2idx.json`` gives index + 1. ``data_dir`` is the release folder (``avs_released`` in
config.py).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

META = "metadata.csv"
LABEL2IDX = "label2idx.json"
N_CLASSES = 71  # config.py: cfg.NUM_CLASSES = 71 (70 + background)
# The columns of the release's metadata.csv as Crab's own copy lists them (vid, uid, s_min, s_sec, a_obj, split,
# label); the official loader reads only uid, label and split, by name.
HEADER = ("vid", "uid", "s_min", "s_sec", "a_obj", "split", "label")
FRAMES = {"v1s": 5, "v1m": 5, "v2": 10}
FRAME_SIZE = (224, 224)


def palette(n: int = N_CLASSES) -> np.ndarray:
    """The unified AVSBench colour palette, [n, 3] uint8 RGB: class k's colour spreads the bits of k over R, G, B
    from the most significant bit down (bits 0, 1, 2 of each 3-bit group), as ``get_v2_pallete`` builds it."""
    k = np.arange(n)
    colours = np.zeros((n, 3), dtype=np.int64)
    lab = k.copy()
    for bit in range(8):  # 8 groups of 3 bits cover any k < 2^24
        for channel in range(3):
            colours[:, channel] |= ((lab >> channel) & 1) << (7 - bit)
        lab = lab >> 3
    return colours.astype(np.uint8)


def default_class_names(n: int = N_CLASSES) -> list[str]:
    return ["background"] + [f"class_{k:02d}" for k in range(1, n)]


@dataclass
class Video:
    """One video. ``labels`` are 2-D class-index maps (0 = background), one per annotated frame."""

    uid: str
    split: str
    label: str = "v2"
    labels: Sequence[np.ndarray] = field(default_factory=list)
    a_obj: str = "object"


def write_label2idx(data_dir: Path, names: Sequence[str] | None = None) -> Path:
    names = list(names) if names is not None else default_class_names()
    path = Path(data_dir) / LABEL2IDX
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: i + 1 for i, name in enumerate(names)}, indent=1), encoding="utf-8")
    return path


def write_color_png(path: Path, label_map: np.ndarray, size: tuple[int, int] | None = None, mode: str = "RGB") -> Path:
    """A class-index map as a palette-coloured PNG ("RGB", or "P" with the palette); ``size`` (width, height)
    resizes it NEAREST before saving, so that the official NEAREST resize back to 224 is exercised."""
    from PIL import Image  # here: the tasks import this module's constants without Pillow

    path.parent.mkdir(parents=True, exist_ok=True)
    lab = np.asarray(label_map).astype(np.uint8)
    if mode == "P":
        image = Image.frombytes("P", (lab.shape[1], lab.shape[0]), np.ascontiguousarray(lab).tobytes())
        image.putpalette(palette(256).reshape(-1).tolist())
    else:
        image = Image.fromarray(palette(256)[lab], mode="RGB")
    if size is not None:
        image = image.resize(size, Image.Resampling.NEAREST)
    image.save(path, format="PNG")
    return path


def label_png_path(data_dir: Path, video: Video, i: int) -> Path:
    return Path(data_dir) / video.label / video.uid / "labels_rgb" / f"{i}.png"


def write_avss(
    data_dir: Path,
    videos: Sequence[Video],
    names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
) -> Path:
    """``metadata.csv`` (all ``videos`` in order), ``label2idx.json`` and the colour PNGs; returns the CSV path."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    write_label2idx(data_dir, names)
    csv_path = data_dir / META
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for v in videos:
            writer.writerow((v.uid.rsplit("_", 1)[0], v.uid, 0, 0, v.a_obj, v.split, v.label))
    for v in videos:
        for i, lab in enumerate(v.labels):
            write_color_png(label_png_path(data_dir, v, i), lab, size=size)
    return csv_path


def random_label_maps(
    rng: np.random.Generator, n: int, size: tuple[int, int] = FRAME_SIZE, max_objects: int = 3
) -> list[np.ndarray]:
    """``n`` plausible semantic maps: up to ``max_objects`` classed ellipses drifting over background."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    k = int(rng.integers(1, max_objects + 1))
    classes = rng.choice(np.arange(1, N_CLASSES), size=k, replace=False)
    centres = rng.uniform(0.2, 0.8, size=(k, 2)) * (h, w)
    radii = rng.uniform(0.06, 0.25, size=(k, 2)) * (h, w)
    maps = []
    for _ in range(n):
        centres = centres + rng.normal(0, 0.02, size=(k, 2)) * (h, w)
        lab = np.zeros(size, dtype=np.uint8)
        for c, (cy, cx), (ry, rx) in zip(classes, centres, radii, strict=True):
            lab[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = c
        maps.append(lab)
    return maps
