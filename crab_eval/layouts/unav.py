"""UnAV-100 (ttgeng233/UnAV) annotation layout: one ActivityNet-style JSON for all splits.

``annotations/unav100_annotations.json`` (the release's place, README of ttgeng233/UnAV) holds
``{"database": {video_id: {"subset": "train" | "validation" | "test", "duration": seconds,
"annotations": [{"segment": [start, end], "label": NAME, "label_id": INT}, ...]}, ...}}``; times are seconds
(floats), ``label_id`` is the class index the official evaluation (``libs/utils/metrics.py``) reads. Raw videos
are ``raw_videos/{video_id}.mp4`` (``scripts/video_download.py``), features ``av_features/{video_id}_rgb.npy`` etc.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANNOTATION_FILE = "unav100_annotations.json"
ANNOTATION_DIR = "annotations"
# Harness split -> the ``subset`` values the official code selects (configs: test_split 'test', val_split
# 'validation'; the comparison is on ``subset.lower()``). "val" is accepted too for hand-made files.
SUBSETS: Mapping[str, tuple[str, ...]] = {"test": ("test",), "val": ("validation", "val"), "train": ("train",)}

# One event: (label, start, end) in seconds.
Event = tuple[str, float, float]


@dataclass
class Video:
    """One ``database`` entry."""

    subset: str
    duration: float
    events: Sequence[Event] = field(default_factory=list)


def label_ids_by_name(videos: Mapping[str, Video]) -> dict[str, int]:
    """Default class indices: the labels in sorted order (the release's own ids come from its class list)."""
    names = sorted({label for video in videos.values() for label, _, _ in video.events})
    return {name: i for i, name in enumerate(names)}


def database(
    videos: Mapping[str, Video], label_ids: Mapping[str, int] | None = None, with_label_id: bool = True
) -> dict[str, Any]:
    """The JSON object of the annotation file, videos in the given order."""
    ids = label_ids if label_ids is not None else label_ids_by_name(videos)
    db: dict[str, Any] = {}
    for video_id, video in videos.items():
        annotations = []
        for label, start, end in video.events:
            event: dict[str, object] = {"segment": [start, end], "label": label}
            if with_label_id:
                event["label_id"] = ids[label]
            annotations.append(event)
        db[video_id] = {"subset": video.subset, "duration": video.duration, "annotations": annotations}
    return {"version": "UnAV-100", "database": db}


def write_annotations(
    data_dir: Path,
    videos: Mapping[str, Video],
    label_ids: Mapping[str, int] | None = None,
    with_label_id: bool = True,
    flat: bool = False,
) -> Path:
    """Write ``annotations/unav100_annotations.json`` under ``data_dir`` (or beside it with ``flat``)."""
    folder = Path(data_dir) if flat else Path(data_dir) / ANNOTATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ANNOTATION_FILE
    # One video a line: compact like a machine-written release file, yet errors can name a line.
    root = database(videos, label_ids, with_label_id)
    entries = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in root["database"].items())
    path.write_text(f'{{"version": {json.dumps(root["version"])}, "database": {{\n{entries}\n}}}}\n', encoding="utf-8")
    return path
