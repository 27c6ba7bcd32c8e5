"""MUSIC-AVQA's annotation layout: ``avqa-{train,val,test}.json`` as GeWu-Lab/MUSIC-AVQA releases them.

Each file is a JSON list of objects with the keys ``video_id``, ``question_id``, ``type``, ``question_content``,
``templ_values``, ``question_deleted`` and ``anser`` (sic). ``type`` and ``templ_values`` are *strings* holding a
list (``"[\\"Audio\\", \\"Counting\\"]"``). The release files are ``json.dumps(entries, indent=2)`` byte for byte
(ASCII-escaped, so a full-width question mark appears as ``\\uff1f``; no trailing newline); the writer reproduces
that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The 42 answers of the official vocabulary (net_grd_avst/dataloader_avst.py builds it from avqa-train.json; the
# Crab repository's dataset/AVQA.py lists the same 42). The test and val files use 41 of them (never "ten").
ANSWER_VOCABULARY: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet", "congas", "drum",
    "electric_bass", "erhu", "flute", "guzheng", "piano", "pipa", "saxophone", "suona", "trumpet", "tuba",
    "ukulele", "violin", "xylophone",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "more than ten",
    "yes", "no", "left", "middle", "right", "indoor", "outdoor", "simultaneously",
)  # fmt: skip

# The nine (modality, question type) pairs of the release, as the official test loop spells them.
QUESTION_TYPES: tuple[tuple[str, str], ...] = (
    ("Audio", "Counting"),
    ("Audio", "Comparative"),
    ("Visual", "Counting"),
    ("Visual", "Location"),
    ("Audio-Visual", "Existential"),
    ("Audio-Visual", "Counting"),
    ("Audio-Visual", "Location"),
    ("Audio-Visual", "Comparative"),
    ("Audio-Visual", "Temporal"),
)


def make_entry(
    video_id: str,
    question_id: int,
    qtype: Sequence[str],
    question_content: str,
    answer: str,
    templ_values: Sequence[str] = (),
    question_deleted: int = 0,
) -> dict[str, Any]:
    """One annotation object, with ``type`` and ``templ_values`` stringified as the release stores them."""
    return {
        "video_id": video_id,
        "question_id": question_id,
        "type": json.dumps(list(qtype)),
        "question_content": question_content,
        "templ_values": json.dumps(list(templ_values)),
        "question_deleted": question_deleted,
        "anser": answer,
    }


def split_path(root: str | Path, split: str) -> Path:
    return Path(root) / f"avqa-{split}.json"


def write_split(root: str | Path, split: str, entries: Sequence[dict[str, Any]]) -> Path:
    """Write ``avqa-{split}.json`` under ``root`` in the release's exact formatting; returns its path."""
    path = split_path(root, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(entries), indent=2), encoding="utf-8")
    return path
