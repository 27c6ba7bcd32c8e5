"""AVQA's annotation layout (Yang et al., ACM MM 2022; AlyssaYoung/AVQA ``data/annotation/{train,val}_qa.json``).

Each file is a JSON list of question objects. The keys the official preprocessing reads
(``preprocess/preprocess_text/datautils/avqa.py``) are ``video_id``, ``video_name``, ``question_text``,
``multi_choice`` (the candidate answers, 4 of them) , ``answer`` (the index of the right candidate) and
``question_type`` (one of eight). Crab+ (GeWu-Lab/Crab_Plus ``dataset/qwen2_5_omni/omni_dataset.py``,
``add_avqa_thu_samples``) reads the same keys plus ``id`` and ``question_relation`` from its own
``AVUIE_2/avqa_thu/{train,test}.json``, which add ``video_path`` / ``audio_path`` (and ``label``, a reasoning text,
in train). The writer emits all of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The eight question types in the official index order (QUESTION_CATEGORY_DICT of the preprocessing code and
# QUESTION_CATEGORY of HAVF/hcrn_havf/validate.py).
QUESTION_TYPES: tuple[str, ...] = (
    "Which", "Come From", "Happening", "Where", "Why", "Before Next", "When", "Used For",
)  # fmt: skip
# Number of candidates the official model scores (configs/avqa.yml ``dataset.ans_count``).
N_CHOICES = 4

# Split -> file name. ``val`` and ``train`` are the official release's names; ``test`` is Crab+'s
# ``AVUIE_2/avqa_thu/test.json`` (same keys). The official code evaluates on the val file: there is no other test.
SPLIT_FILES: dict[str, str] = {"val": "val_qa.json", "train": "train_qa.json", "test": "test.json"}


def make_entry(
    qid: int,
    video_name: str,
    question_text: str,
    multi_choice: Sequence[str | None],
    answer: int,
    question_type: str,
    video_id: int | None = None,
    question_relation: str = "Both",
    crab_paths: bool = True,
) -> dict[str, Any]:
    """One question object with the official keys (and Crab+'s media paths unless ``crab_paths`` is False)."""
    entry: dict[str, Any] = {
        "id": qid,
        "video_name": video_name,
        "video_id": qid if video_id is None else video_id,
        "question_text": question_text,
        "multi_choice": list(multi_choice),
        "answer": answer,
        "question_relation": question_relation,
        "question_type": question_type,
    }
    if crab_paths:
        entry["video_path"] = f"{video_name}.mp4"
        entry["audio_path"] = f"{video_name}.mp3"
    return entry


def split_path(root: str | Path, split: str) -> Path:
    return Path(root) / SPLIT_FILES[split]


def write_split(root: str | Path, split: str, entries: Sequence[dict[str, Any]], indent: int | None = None) -> Path:
    """Write the split's JSON list under ``root`` (one line unless ``indent``); returns its path."""
    path = split_path(root, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(entries), indent=indent), encoding="utf-8")
    return path
