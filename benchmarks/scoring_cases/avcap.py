"""Scoring benchmark input for ``avcap``: an official-size VALOR-32K test split (3,491 videos, one caption each, as in
``desc_test.json`` of the VALOR-32K annotation release) with random but plausible captions and predictions (structured
and text lines, partial copies, word swaps, some missing and unparsed)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.avcap import make_entry, write_split

N_VIDEOS = 3491
SUBJECTS = ["A man", "A woman", "Two children", "A black dog", "The band", "A man in a short-sleeved shirt"]
ACTIONS = ["plays the guitar", "is talking", "dances to the music", "knocks on the door", "drives a car", "sings"]
PLACES = ["in the room", "on the stage", "by the river", "outside the house", "in a crowded street"]
SOUNDS = ["with a loud noise.", "while music plays.", "and the audience cheers.", "as birds chirp.", "."]


def _caption(rng: np.random.Generator) -> str:
    parts = [rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(PLACES), rng.choice(SOUNDS)]
    caption = " ".join(str(p) for p in parts).replace(" .", ".")
    if rng.random() < 0.2:
        caption = caption[:-1] + f", and the man's voice says \"it's {int(rng.integers(2, 99))} degrees\"."
    return caption


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(N_VIDEOS):
        video_id = f"vid{i:07d}_{int(rng.integers(0, 300))}.000_{int(rng.integers(300, 600))}.000"
        entries.append(make_entry(video_id, _caption(rng)))
    data_dir = root / "avcap"
    write_split(data_dir, "test", entries)

    predictions = root / "avcap_test.jsonl"
    with predictions.open("w", encoding="utf-8") as handle:
        for entry in entries:
            draw = rng.random()
            if draw < 0.03:
                continue  # missing
            if draw < 0.3:
                guess = entry["desc"]
            elif draw < 0.6:
                words = entry["desc"].split()
                guess = " ".join(words[: int(rng.integers(3, len(words) + 1))])
            else:
                guess = _caption(rng)
            if draw < 0.5:
                row = {"id": entry["video_id"], "prediction": {"caption": guess}}
            elif draw < 0.97:
                row = {"id": entry["video_id"], "text": guess + "</s>"}
            else:
                row = {"id": entry["video_id"], "text": "   "}  # unparsed
            handle.write(json.dumps(row) + "\n")
    return [("avcap", data_dir, "test", predictions)]
