"""AVSBench-semantic scoring inputs of the official test-set size: 1,554 videos = 740 v1s + 64 v1m (5 frames, the
S4 / MS3 test splits) + 750 v2 (10 frames). The 1,554 test videos are the AVSBench-semantic paper's split table
(arXiv 2301.13190: 8,498 / 1,304 / 1,554); the v2 share is what remains after the v1 test splits. Ground truth is
written at 224x224 (the release's PNGs are larger; reading them dominates ``crab-eval score`` as in the official
loader). Predictions: the truth shifted, sometimes with a wrong class or empty; a few missing or text-only."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.avss import FRAMES, Video, random_label_maps, write_avss
from crab_eval.metrics.masks import encode_mask

COMPOSITION = (("v1s", 740), ("v1m", 64), ("v2", 750))


def _predicted(rng: np.random.Generator, lab: np.ndarray) -> np.ndarray:
    if rng.random() < 0.05:
        return np.zeros_like(lab)
    out = np.roll(lab, tuple(int(v) for v in rng.integers(-10, 11, 2)), axis=(0, 1))
    if rng.random() < 0.2:
        out[out == out.max()] = rng.integers(1, 71)
    return out


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    labels = [lab for lab, n in COMPOSITION for _ in range(n)]
    order = rng.permutation(len(labels))
    videos = [
        Video(f"avss{i:05d}_{labels[k]}", "test", labels[k], random_label_maps(rng, FRAMES[labels[k]]))
        for i, k in enumerate(order)
    ]
    data = root / "avs_released"
    write_avss(data, videos)
    lines = []
    for v in videos:
        kind = rng.random()
        if kind < 0.02:
            continue
        if kind < 0.04:
            lines.append({"id": v.uid, "text": "<mask_start><mask_0><mask_end>"})
            continue
        frames = []
        for lab in v.labels:
            pred = _predicted(rng, lab)
            frames.append({str(c): encode_mask(pred == c) for c in np.unique(pred) if c != 0})
        lines.append({"id": v.uid, "prediction": {"frames": frames}})
    preds = root / "avss_test_predictions.jsonl"
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return [("avss", data, "test", preds)]
