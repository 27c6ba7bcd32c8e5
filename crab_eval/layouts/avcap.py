"""VALOR-32K caption annotations (TXH-mercury/VALOR): ``desc_train.json``, ``desc_val.json``, ``desc_test.json``.

Each file of the VALOR-32K annotation zip (folder ``valor-32k-annotations/``) is one JSON list of objects
``{"video_id": "<YouTube id>_<start>_<end>", "desc": "<one English audio-visual caption>"}``, e.g.
``{"video_id": "CEfOX4fYlsY_20.000_30.000", "desc": "In one room, a yellow bird leaped over the fence. ..."}``.
The release files are ``json.dumps(entries)`` byte for byte (one line, ASCII-escaped, no trailing newline);
the writer reproduces that. Sizes: train 25,327, val 3,500, test 3,491 videos, one caption each.
Crab reads the same two keys from its own copies (``train_samples.json`` / ``val_samples.json``) and the media
from ``video_data/{video_id}.mp4`` and ``audio_data/{video_id}.mp3``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SPLIT_FILES: Mapping[str, str] = {"train": "desc_train.json", "val": "desc_val.json", "test": "desc_test.json"}


def make_entry(video_id: str, desc: str) -> dict[str, Any]:
    """One annotation object, keys in the release's order."""
    return {"video_id": video_id, "desc": desc}


def split_path(root: str | Path, split: str) -> Path:
    return Path(root) / SPLIT_FILES[split]


def write_split(root: str | Path, split: str, entries: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``desc_{split}.json`` under ``root`` in the release's exact formatting; returns its path."""
    path = split_path(root, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([dict(e) for e in entries]), encoding="utf-8")
    return path
