"""AVVP / LLP scoring input of the official sizes: 1,200 test + 649 val videos in the dense files (the official
files hold both splits: 4,131 audio / 2,495 visual rows), random but plausible predictions for the test split."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.avvp import CATEGORIES, N_SEGMENTS, write_dataset

N_TEST, N_VAL = 1200, 649  # rows of AVVP_test_pd.csv / AVVP_val_pd.csv


def _events(rng: np.random.Generator, labels: list[str], p_present: float) -> list[tuple[str, int, int]]:
    rows = []
    for label in labels:
        if rng.random() >= p_present:
            continue
        for _ in range(int(rng.integers(1, 3))):
            if rng.random() < 0.4:
                rows.append((label, 0, N_SEGMENTS))  # many official rows span the whole clip
            else:
                onset = int(rng.integers(0, N_SEGMENTS))
                rows.append((label, onset, int(rng.integers(onset + 1, N_SEGMENTS + 1))))
    return rows


def _video(rng: np.random.Generator) -> dict[str, list[tuple[str, int, int]]]:
    labels = [CATEGORIES[i] for i in rng.choice(len(CATEGORIES), size=int(rng.integers(1, 4)), replace=False)]
    # ~1% of official test videos have no audio row and ~10% no visual row.
    return {"audio": _events(rng, labels, 0.97), "visual": _events(rng, labels, 0.6)}


def _jitter(rng: np.random.Generator, onset: int, offset: int) -> tuple[int, int]:
    onset = int(np.clip(onset + rng.integers(-2, 3), 0, N_SEGMENTS - 1))
    return onset, int(np.clip(offset + rng.integers(-2, 3), onset + 1, N_SEGMENTS))


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    data_dir = pathlib.Path(root) / "avvp"
    test = {f"t{i:010d}_{10 * i}_{10 * i + 10}": _video(rng) for i in range(N_TEST)}
    val = {f"v{i:010d}_{10 * i}_{10 * i + 10}": _video(rng) for i in range(N_VAL)}
    # The official oddities: zero-length and reversed rows, rows of no split.
    extra = [
        (next(iter(test)), 9, 9, "Speech"),
        (next(iter(test)), 9, 0, "Cheering"),
        ("P7x4FV4lg_570_580", 0, 10, "Car"),
    ]
    write_dataset(data_dir, {"test": test, "val": val}, extra_audio=extra)

    lines: list[dict[str, object]] = []
    for name, video in test.items():
        kind = rng.random()
        if kind < 0.03:
            continue  # missing
        events: list[dict[str, object]] = []
        for modality in ("audio", "visual"):
            for label, onset, offset in video[modality]:
                if rng.random() < 0.8:
                    onset, offset = _jitter(rng, onset, offset)
                    events.append({"modality": modality, "label": label, "onset": onset, "offset": offset})
            if rng.random() < 0.3:
                onset, offset = _jitter(rng, 3, 7)
                label = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
                events.append({"modality": modality, "label": label, "onset": onset, "offset": offset})
        if kind < 0.05:
            lines.append({"id": name, "text": "Someone is talking, I think."})  # unparsed
        elif kind < 0.5:
            tags = [
                f"<{e['modality']}_event>{e['label']},({e['onset']} {e['offset']})</{e['modality']}_event>"
                for e in events
            ]
            lines.append({"id": name, "text": "The events are: " + " ".join(tags)})
        else:
            lines.append({"id": name, "prediction": {"events": events}})
    predictions = pathlib.Path(root) / "avvp_test_predictions.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return [("avvp", data_dir, "test", predictions)]
