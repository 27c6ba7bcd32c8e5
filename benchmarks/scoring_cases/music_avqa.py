"""Scoring benchmark input for ``music_avqa``: an official-size test split (9,129 questions, json_update) with
random but plausible predictions (a mix of structured and text lines, some wrong, some missing)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.music_avqa import make_entry, write_split

# Question counts per type in the official json_update/avqa-test.json.
TYPE_COUNTS: dict[tuple[str, str], int] = {
    ("Audio", "Counting"): 1017,
    ("Audio", "Comparative"): 594,
    ("Visual", "Counting"): 1197,
    ("Visual", "Location"): 1225,
    ("Audio-Visual", "Existential"): 988,
    ("Audio-Visual", "Counting"): 1265,
    ("Audio-Visual", "Location"): 920,
    ("Audio-Visual", "Comparative"): 1101,
    ("Audio-Visual", "Temporal"): 822,
}
N_VIDEOS = 6399
INSTRUMENTS = ["piano", "violin", "cello", "guzheng", "acoustic_guitar", "flute", "drum", "trumpet", "erhu", "tuba"]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "more than ten"]
# (question_content, placeholder value pool, answer pool) per type; one template each is enough for timing.
TEMPLATES: dict[tuple[str, str], tuple[str, list[str], list[str]]] = {
    ("Audio", "Counting"): ("How many sounding <Object> in the video?", INSTRUMENTS, NUMBERS),
    ("Audio", "Comparative"): ("Is the <Object> louder than the <Object>?", INSTRUMENTS, ["yes", "no"]),
    ("Visual", "Counting"): ("How many <Object> are in the entire video?", INSTRUMENTS, NUMBERS),
    ("Visual", "Location"): ("What kind of instrument is the <LRer> instrument?", ["leftest", "rightest"], INSTRUMENTS),
    ("Audio-Visual", "Existential"): ("Is the <Object> in the video always playing?", INSTRUMENTS, ["yes", "no"]),
    ("Audio-Visual", "Counting"): ("How many instruments are sounding in the video?", [], NUMBERS),
    ("Audio-Visual", "Location"): ("Where is the <FL> sounding instrument?", ["first", "last"], ["left", "right"]),
    ("Audio-Visual", "Comparative"): (
        "Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?",
        ["left", "right"],
        ["yes", "no"],
    ),
    ("Audio-Visual", "Temporal"): ("Which <Object> makes the sound <BA>?", INSTRUMENTS, INSTRUMENTS),
}


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    qtypes = [qtype for qtype, count in TYPE_COUNTS.items() for _ in range(count)]
    order = rng.permutation(len(qtypes))
    entries, answers = [], []
    for question_id, index in enumerate(order, start=12):
        qtype = qtypes[index]
        content, pool, answer_pool = TEMPLATES[qtype]
        n_slots = content.count("<")
        values = [str(v) for v in rng.choice(pool, size=n_slots)] if n_slots else []
        if "<BA>" in content:
            values[-1] = str(rng.choice(["before", "after"]))
        answer = str(rng.choice(answer_pool))
        video_id = f"{int(rng.integers(1, N_VIDEOS + 1)):08d}"
        entries.append(make_entry(video_id, question_id, qtype, content, answer, values))
        answers.append((str(question_id), answer, answer_pool))
    data_dir = root / "music_avqa"
    write_split(data_dir, "test", entries)

    predictions = root / "music_avqa_test.jsonl"
    with predictions.open("w", encoding="utf-8") as handle:
        for sample_id, answer, pool in answers:
            draw = rng.random()
            if draw < 0.03:
                continue  # missing
            guess = answer if draw < 0.75 else str(rng.choice(pool))
            if draw < 0.5:
                row = {"id": sample_id, "prediction": {"answer": guess}}
            elif draw < 0.97:
                text = f"The instruments play together. So the answer is <answer> {guess} </answer>."
                row = {"id": sample_id, "text": text}
            else:
                row = {"id": sample_id, "text": "I cannot tell."}  # unparsed
            handle.write(json.dumps(row) + "\n")
    return [("music_avqa", data_dir, "test", predictions)]
