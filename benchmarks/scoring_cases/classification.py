"""Scoring benchmark inputs for the classification family at (or above) official test sizes.

Sizes and their sources (Crab+'s own ``AVUIE_2/{task}/test.json`` files are not in the repository, so the sizes
are those of the benchmarks' official test sets, rounded up where only approximate):
- meld 2,610: declare-lab/MELD ``data/MELD/test_sent_emo.csv`` (counted; class counts below from the same file).
- ucf 3,783: UCF-101 split 1 ``testlist01.txt`` (Crab+ can only use the clips that have audio, fewer).
- ks 3,000: Kinetics-Sounds test sets differ by version (about 1.9K to 3.1K clips); unverified upper bound.
- cremad 744: the 10% test split of the 7,442 clips used by GeWu-Lab's imbalance papers; unverified.
- dfew 2,341: one fold's test part, 11,697 single-labelled clips / 5 folds; approximate.
- mafw 1,835: one fold's test part, 9,172 single-labelled clips / 5 folds; approximate.
- a2v, v2a 3,000: Crab+ builds these pairs itself and publishes no count; a generous guess.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.classification import LAYOUTS, make_entry, write_split

SIZES = {"ks": 3000, "ucf": 3783, "meld": 2610, "cremad": 744, "mafw": 1835, "dfew": 2341, "a2v": 3000, "v2a": 3000}
MELD_TEST_COUNTS = {"neutral": 1256, "joy": 402, "anger": 345, "surprise": 281, "sadness": 208, "disgust": 68,
                    "fear": 50}  # fmt: skip


def _labels(task: str, rng: np.random.Generator) -> list[str]:
    if task == "meld":
        labels = [label for label, n in MELD_TEST_COUNTS.items() for _ in range(n)]
        return [labels[i] for i in rng.permutation(len(labels))]
    layout = LAYOUTS[task]
    classes = list(layout.classes) or [f"Action{k:03d}" for k in range(layout.n_classes)]
    return [str(c) for c in rng.choice(classes, size=SIZES[task])]


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    cases = []
    for task, layout in LAYOUTS.items():
        labels = _labels(task, rng)
        classes = sorted(set(labels))
        n_clips = max(layout.clip_of_key) + 1
        entries = [make_entry(task, label, [f"{task}_{i:05d}_{k}" for k in range(n_clips)])
                   for i, label in enumerate(labels)]  # fmt: skip
        data_dir = root / task
        write_split(data_dir, "test", entries)
        predictions = root / f"{task}_test.jsonl"
        with predictions.open("w", encoding="utf-8") as handle:
            for entry, label in zip(entries, labels, strict=True):
                sample_id = "|".join(entry[key] for key in layout.media_keys)
                draw = rng.random()
                if draw < 0.03:
                    continue  # missing
                guess = label if draw < 0.7 else str(rng.choice(classes))
                if draw < 0.5:
                    row = {"id": sample_id, "prediction": {"answer": guess}}
                elif draw < 0.97:
                    row = {"id": sample_id, "text": f"Looking at the clip... <answer>{guess}</answer>."}
                else:
                    row = {"id": sample_id, "text": "Hard to say."}  # unparsed
                handle.write(json.dumps(row) + "\n")
        cases.append((task, data_dir, "test", predictions))
    return cases
