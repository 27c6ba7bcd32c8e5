"""AVE scoring input of the official test-set size: 402 rows, random but plausible predictions."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.ave import BACKGROUND, N_SEGMENTS, OFFICIAL_CATEGORIES, write_annotations, write_split

N_TEST = 402  # testSet.txt rows (test_order.h5 of YapengTian/AVE-ECCV18 lists 402 indices)


def _random_range(rng: np.random.Generator) -> tuple[int, int]:
    # Most official rows span the whole clip (0&10); the rest are shorter events.
    if rng.random() < 0.6:
        return 0, N_SEGMENTS
    start = int(rng.integers(0, N_SEGMENTS - 1))
    return start, int(rng.integers(start + 1, N_SEGMENTS + 1))


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    data_dir = pathlib.Path(root) / "ave"
    rows = []
    for i in range(N_TEST):
        category = OFFICIAL_CATEGORIES[int(rng.integers(len(OFFICIAL_CATEGORIES)))]
        start, end = _random_range(rng)
        rows.append((category, f"vid{i:05d}", start, end))
    write_split(data_dir, "test", rows)
    write_annotations(data_dir, [(c, f"other{i}", 0, N_SEGMENTS) for i, c in enumerate(OFFICIAL_CATEGORIES)] + rows)

    lines = []
    for category, video_id, start, end in rows:
        kind = rng.random()
        if kind < 0.03:
            continue  # missing
        guess = category if rng.random() < 0.7 else OFFICIAL_CATEGORIES[int(rng.integers(len(OFFICIAL_CATEGORIES)))]
        s = int(np.clip(start + rng.integers(-1, 2), 0, N_SEGMENTS))
        e = int(np.clip(end + rng.integers(-1, 2), s, N_SEGMENTS))
        if kind < 0.05:
            lines.append({"id": video_id, "text": "I am not sure what happens in this video."})  # unparsed
        elif kind < 0.5:
            text = f"The event is <event> {guess} </event>, and the time range is <range> {s},{e} </range>."
            lines.append({"id": video_id, "text": text})
        elif kind < 0.8:
            lines.append({"id": video_id, "prediction": {"event": guess, "start": s, "end": e}})
        else:
            segments = [guess if s <= j < e else BACKGROUND for j in range(N_SEGMENTS)]
            lines.append({"id": video_id, "prediction": {"segments": segments}})
    predictions = pathlib.Path(root) / "ave_test_predictions.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return [("ave", data_dir, "test", predictions)]
