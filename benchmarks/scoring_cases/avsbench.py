"""AVSBench S4 and MS3 scoring inputs of the official test-set sizes: S4 740 videos and MS3 64 videos, each with
5 annotated 224x224 frames, and random but plausible mask predictions (shifted / resized blobs, some empty)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.avsbench import FRAME_SIZE, Video, random_blob_masks, write_ms3, write_s4
from crab_eval.metrics.masks import encode_mask

N_S4_TEST = 740  # s4_meta_data.csv test rows (3,452 / 740 / 740)
N_MS3_TEST = 64  # ms3_meta_data.csv test rows (296 / 64 / 64)
CATEGORIES = ("male_speech", "dog_barking", "playing_piano", "helicopter", "baby_laughter")


def _predicted(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A plausible model mask: the truth shifted, dilated or eroded a little; sometimes empty or off target."""
    kind = rng.random()
    if kind < 0.05:
        return np.zeros_like(mask)
    if kind < 0.1:
        return random_blob_masks(rng, 1, mask.shape)[0]
    dy, dx = (int(v) for v in rng.integers(-12, 13, 2))
    shifted = np.roll(mask, (dy, dx), axis=(0, 1))
    if rng.random() < 0.5:
        shifted = shifted | np.roll(shifted, 3, axis=1)
    return shifted


def _predictions(rng: np.random.Generator, videos: list[Video], path: pathlib.Path) -> pathlib.Path:
    lines = []
    for video in videos:
        kind = rng.random()
        if kind < 0.02:
            continue  # missing
        if kind < 0.04:
            lines.append({"id": video.name, "text": "<mask_start><mask_0><mask_1><mask_end>"})  # unparsed
            continue
        masks = [encode_mask(_predicted(rng, m)) for m in video.masks]
        lines.append({"id": video.name, "prediction": {"masks": masks}})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    s4 = [
        Video(
            name=f"s4vid{i:04d}_{i % 7}",
            split="test",
            category=CATEGORIES[i % len(CATEGORIES)],
            masks=random_blob_masks(rng, 5, FRAME_SIZE),
        )
        for i in range(N_S4_TEST)
    ]
    ms3 = [
        Video(name=f"ms3vid{i:03d}", split="test", masks=random_blob_masks(rng, 5, FRAME_SIZE, p_empty=0.15))
        for i in range(N_MS3_TEST)
    ]
    s4_dir, ms3_dir = root / "Single-source", root / "Multi-sources"
    write_s4(s4_dir, s4)
    write_ms3(ms3_dir, ms3)
    return [
        ("s4", s4_dir, "test", _predictions(rng, s4, root / "s4_test_predictions.jsonl")),
        ("ms3", ms3_dir, "test", _predictions(rng, ms3, root / "ms3_test_predictions.jsonl")),
    ]
