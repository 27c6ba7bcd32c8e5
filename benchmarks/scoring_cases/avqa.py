"""Scoring benchmark input for ``avqa``: a val split of 20,000 questions with random but plausible predictions.

Size: the release has 57,335 questions in train + val (AlyssaYoung/AVQA README); the val file itself is not in any
mirror we could read (``data/annotation/val_qa.json`` is absent from the repository snapshot), so its exact size is
unverified. 20,000 is more than a 70/30 split of 57,335 would hold (about 17,200): an upper bound for timing.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.avqa import QUESTION_TYPES, make_entry, write_split

N_QUESTIONS = 20_000
N_VIDEOS = 19_500  # AVQA has about one question per video (57,335 questions on 57,015 videos)
WORDS = ["dog", "car", "train", "bell", "rain", "engine", "baby", "crowd", "guitar", "horn", "wind", "bird"]


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    entries, truth = [], []
    for qid in range(N_QUESTIONS):
        choices = [f"the {w}" for w in rng.choice(WORDS, size=4, replace=False)]
        answer = int(rng.integers(4))
        qtype = str(rng.choice(QUESTION_TYPES))
        video = f"{int(rng.integers(N_VIDEOS)):06d}_{int(rng.integers(300)):06d}"
        entries.append(make_entry(qid, video, "Where does the sound come from?", choices, answer, qtype))
        truth.append((qid, choices, answer))
    data_dir = root / "avqa"
    write_split(data_dir, "val", entries)

    predictions = root / "avqa_val.jsonl"
    with predictions.open("w", encoding="utf-8") as handle:
        for qid, choices, answer in truth:
            draw = rng.random()
            if draw < 0.03:
                continue  # missing
            guess = answer if draw < 0.8 else int(rng.integers(4))
            if draw < 0.5:
                row = {"id": str(qid), "prediction": {"choice": guess}}
            elif draw < 0.97:
                text = f"The sound matches the scene. So the answer is <answer> {choices[guess]} </answer>."
                row = {"id": str(qid), "text": text}
            else:
                row = {"id": str(qid), "text": "I cannot tell."}  # unparsed
            handle.write(json.dumps(row) + "\n")
    return [("avqa", data_dir, "val", predictions)]
