"""Test doubles for the model package: a fake features callable and a toy mask task (registered on request).

The fake features are random but deterministic per sample, with a learnable cue: a pattern keyed on the sample's
target is added to the frames and audio, and a mask sample's box is painted bright into its frames.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

FRAMES, MELS, TIME, SIDE = 10, 16, 24, 32


def fake_features(task: Any, data_dir: Path, sample: Any) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(zlib.crc32(f"{task.id}/{sample.id}".encode()))
    audio = torch.randn(FRAMES, MELS, TIME, generator=gen) * 0.1
    frames = torch.rand(FRAMES, 3, SIDE, SIDE, generator=gen) * 0.2
    cue = torch.Generator().manual_seed(zlib.crc32(repr(sample.target).encode()))
    audio = audio + torch.randn(1, MELS, 1, generator=cue)
    frames = frames + torch.rand(1, 3, 1, 1, generator=cue)
    box = sample.meta.get("box") if isinstance(sample.meta, Mapping) else None
    if box is not None:
        x0, y0, x1, y1 = (int(v * SIDE / ToyMaskTask.size) for v in box)
        frames[:, :, y0:y1, x0:x1] += 1.0
    return {"audio": audio, "frames": frames}


class ToyMaskTask:  # the task class is made in toy_mask_task (the model package imports no task module)
    size = 24


def register_toy_tasks() -> None:
    """Register ``toy_mask`` (``toy_mask_task``) unless it is registered; tests undo it with the registry's
    ``isolated()`` (tests/conftest.py), worker processes of a test call it at start."""
    from crab_eval.registry import TASKS

    if "toy_mask" not in TASKS.registered():
        TASKS.register(toy_mask_task())


def toy_mask_task() -> type:
    """``toy_mask``: ``toy_mask_{split}.tsv`` lines ``id<TAB>x0,y0,x1,y1``; 2 annotated frames of 24x24."""
    from pycocotools import mask as mask_utils

    from crab_eval.errors import PredictionError
    from crab_eval.tasks.base import MetricSpec, Sample, Split, Task, require_file

    def rle(mask: np.ndarray) -> dict[str, Any]:
        out = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": [int(v) for v in out["size"]], "counts": out["counts"].decode("ascii")}

    class _ToyMask(Task):
        id = "toy_mask"
        version = "1"
        description = "test-only mask task"
        splits = ("train", "test")
        metrics = (MetricSpec("J"),)
        main_metric = "J"
        text_predictions = False
        size = ToyMaskTask.size

        def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
            return [data_dir / f"toy_mask_{split}.tsv"]

        def read_split(self, data_dir: Path, split: str) -> Split:
            path = require_file(data_dir / f"toy_mask_{split}.tsv")
            out = []
            for line in path.read_text().splitlines():
                sid, box = line.split("\t")
                coords = tuple(int(v) for v in box.split(","))
                mask = np.zeros((self.size, self.size), dtype=np.uint8)
                mask[coords[1] : coords[3], coords[0] : coords[2]] = 1
                target = np.stack([mask, mask])
                # Per-frame instructions and answers, as the AVSBench adapter gives them (Crab asks frame by frame).
                meta = {
                    "box": coords,
                    "frame_instructions": [f"Segment the sounding object at second {k}." for k in (1, 2)],
                    "frame_targets": [self.target_text(None)] * 2,
                }
                out.append(Sample(sid, "Segment the sounding object at second 1.", target, sid, meta=meta))
            return Split(self.id, split, data_dir, out)

        def target_text(self, sample: Sample | None) -> str:
            return "<mask_start>" + "".join(f"<mask_{i}>" for i in range(6)) + "<mask_end>"

        def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> Any:
            try:
                masks = [mask_utils.decode({"size": m["size"], "counts": m["counts"].encode()}) for m in obj["masks"]]
            except Exception as exc:
                raise PredictionError(f"bad masks: {exc}") from None
            if len(masks) != 2 or any(m.shape != (self.size, self.size) for m in masks):
                raise PredictionError("expected 2 masks of 24x24")
            return np.stack(masks)

        def empty_prediction(self, sample: Sample) -> Any:
            return np.zeros_like(sample.target)

        def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
            return {"masks": [rle(m) for m in sample.target]}

        def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
            inter = np.logical_and(prediction, sample.target).sum()
            union = np.logical_or(prediction, sample.target).sum()
            return {"iou": float(inter / union) if union else 1.0}

        def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
            return {"J": 100.0 * float(np.mean([s["iou"] for s in stats]))}

    return _ToyMask


def write_toy_mask(folder: Path, split: str, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        x0, y0 = rng.integers(0, 12, size=2)
        w, h = rng.integers(6, 12, size=2)
        lines.append(f"m{i}\t{x0},{y0},{x0 + w},{y0 + h}\n")
    (folder / f"toy_mask_{split}.tsv").write_text("".join(lines))
    return folder


def write_toy(folder: Path, split: str, n: int, labels: Sequence[str] = ("dog", "cat", "cow"), seed: int = 0) -> Path:
    """Annotation file of tests/toy_task.py (``id<TAB>video<TAB>label``)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"t{i}\tv{i}\t{labels[int(rng.integers(len(labels)))]}\n" for i in range(n)]
    (folder / f"toy_{split}.tsv").write_text("".join(rows))
    return folder
