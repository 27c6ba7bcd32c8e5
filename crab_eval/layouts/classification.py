"""The annotation layout of Crab+'s classification and matching tasks: ``AVUIE_2/{task}/{train,test}.json``.

Crab+ (GeWu-Lab/Crab_Plus) does not read the datasets' original releases for these tasks; it reads its own JSON
lists (README "Data Preparation"; ``dataset/qwen2_5_omni/omni_dataset.py``, ``OmniTestDataset.add_*_samples``).
Each element is an object with media paths (relative to ``AVUIE_2/{task}/video`` and ``.../audio``) and the
ground truth under a dataset-specific key; train files add ``label`` (the reasoning text trained on). The keys
below are the ones that code reads. The JSON files themselves are distributed as ``AVUIE_2.zip`` on Hugging Face,
not in the repository, so the values' spellings are taken from the data, not from a list here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CrabJsonLayout:
    """Where one task's ground truth and media live in its Crab+ JSON objects."""

    task: str
    label_key: str  # the key holding the class (the answer Crab+'s test loader puts in <answer>...</answer>)
    media_keys: tuple[str, ...]  # media path keys, in the order Crab+ puts the media in the prompt
    media_roles: tuple[str, ...]  # video/audio role of each media key
    clip_of_key: tuple[int, ...] = (0, 0)  # which clip each media key shows (one clip's video and audio by default)
    classes: tuple[str, ...] = ()  # the official class names where known (used for synthetic data and docs)
    n_official_classes: int = 0  # the class count where the names are not listed here

    @property
    def n_classes(self) -> int:
        return self.n_official_classes or len(self.classes)


SINGLE = ("video_path", "audio_path")
SINGLE_ROLES = ("video", "audio")

# fmt: off
LAYOUTS: dict[str, CrabJsonLayout] = {
    # Kinetics-Sounds: Crab+ test loader reads sample['action'].
    "ks": CrabJsonLayout("ks", "action", SINGLE, SINGLE_ROLES, n_official_classes=31),
    # UCF-101: test loader reads sample['label'] and lower-cases it ('new_label' is the train reasoning text).
    "ucf": CrabJsonLayout("ucf", "label", SINGLE, SINGLE_ROLES, n_official_classes=101),
    # MELD: sample['Emotion'] (the column name of the official test_sent_emo.csv, declare-lab/MELD).
    "meld": CrabJsonLayout(
        "meld", "Emotion", SINGLE, SINGLE_ROLES,
        classes=("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"),
    ),
    "cremad": CrabJsonLayout(
        "cremad", "emotion", SINGLE, SINGLE_ROLES,
        classes=("anger", "disgust", "fear", "happy", "neutral", "sad"),
    ),
    "mafw": CrabJsonLayout(
        "mafw", "emotion", SINGLE, SINGLE_ROLES,
        classes=("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
                 "helplessness", "disappointment"),
    ),
    "dfew": CrabJsonLayout(
        "dfew", "emotion", SINGLE, SINGLE_ROLES,
        classes=("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"),
    ),
    # Audio -> visual matching: one audio clip, two videos; sample['correct_video'] is 1 or 2.
    "a2v": CrabJsonLayout(
        "a2v", "correct_video", ("audio_path", "video1_path", "video2_path"), ("audio", "video", "video"),
        clip_of_key=(0, 1, 2), classes=("1", "2"),
    ),
    # Visual -> audio matching: one video, two audio clips; sample['correct_audio'] is 1 or 2.
    "v2a": CrabJsonLayout(
        "v2a", "correct_audio", ("video_path", "audio1_path", "audio2_path"), ("video", "audio", "audio"),
        clip_of_key=(0, 1, 2), classes=("1", "2"),
    ),
}
# fmt: on
SPLIT_FILES: dict[str, str] = {"test": "test.json", "train": "train.json"}
EXTENSIONS = {"video": ".mp4", "audio": ".wav"}


def make_entry(
    task: str, label: str | int, clips: Sequence[str], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One object of ``AVUIE_2/{task}/*.json``: the media paths of ``clips`` (a name each; ``.mp4`` / ``.wav`` added)
    and the label. Classification samples show one clip, the matching tasks three (the query, then candidates)."""
    layout = LAYOUTS[task]
    if len(clips) != max(layout.clip_of_key) + 1:
        raise ValueError(f"{task} needs {max(layout.clip_of_key) + 1} clip names, got {len(clips)}")
    keys = zip(layout.media_keys, layout.media_roles, layout.clip_of_key, strict=True)
    entry: dict[str, Any] = {key: f"{clips[clip]}{EXTENSIONS[role]}" for key, role, clip in keys}
    entry[layout.label_key] = label
    entry.update(extra or {})
    return entry


def split_path(root: str | Path, split: str) -> Path:
    return Path(root) / SPLIT_FILES[split]


def write_split(root: str | Path, split: str, entries: Sequence[dict[str, Any]]) -> Path:
    """Write ``{split}.json`` under ``root`` (the ``AVUIE_2/{task}`` folder); returns its path."""
    path = split_path(root, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(entries), indent=2), encoding="utf-8")
    return path
