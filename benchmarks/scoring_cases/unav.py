"""UnAV-100 scoring input of the official size: 10,790 videos in one annotation file, 100 classes, ~2.8 events a
video (30,059 in all), videos up to 60 s; the test subset is a fifth of the videos (the paper's 3:1:1 split:
2,158). Predictions: about half are Crab-style text (one tag per class), 45% detector-style structured lines with
1-40 scored segments, and a few missing and unparsed lines. (Detectors emitting the full 100 segments a video, the
official max_seg_num, make the prediction file ~3x larger; reading it then dominates the time.)"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.unav import Video, write_annotations

N_VIDEOS, N_TEST, N_VAL = 10_790, 2_158, 2_158
N_CLASSES = 100
LABELS = [f"event class {i:02d}" for i in range(N_CLASSES)]


def _videos(rng: np.random.Generator) -> dict[str, Video]:
    """All videos at once: durations 10-60 s, 1-5 events each (mean 3), bounds rounded to 0.01 s."""
    subsets = ["test"] * N_TEST + ["validation"] * N_VAL + ["train"] * (N_VIDEOS - N_TEST - N_VAL)
    durations = np.round(rng.uniform(10.0, 60.0, N_VIDEOS), 2)
    counts = rng.integers(1, 6, N_VIDEOS)
    owner = np.repeat(np.arange(N_VIDEOS), counts)
    starts = np.round(rng.uniform(0, 1, len(owner)) * (durations[owner] - 1), 2)
    ends = np.minimum(np.round(starts + 0.5 + rng.uniform(0, 1, len(owner)) * (durations[owner] - starts), 2),
                      durations[owner])  # fmt: skip
    labels = rng.integers(0, N_CLASSES, len(owner))
    events: list[list[tuple[str, float, float]]] = [[] for _ in range(N_VIDEOS)]
    for i, label, start, end in zip(owner.tolist(), labels.tolist(), starts.tolist(), ends.tolist(), strict=True):
        events[i].append((LABELS[label], start, end))
    tags = rng.integers(0, 1 << 30, N_VIDEOS)
    return {f"v{i:06d}_{tags[i]:09d}": Video(subsets[i], float(durations[i]), events[i]) for i in range(N_VIDEOS)}


def _jitter(rng: np.random.Generator, start: float, end: float, duration: float) -> tuple[float, float]:
    start = float(np.clip(start + rng.normal(0, 1.5), 0, duration))
    return start, float(np.clip(end + rng.normal(0, 1.5), start, duration))


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed)
    data_dir = pathlib.Path(root) / "unav"
    videos = _videos(rng)
    write_annotations(data_dir, videos, label_ids={name: i for i, name in enumerate(LABELS)})

    lines: list[dict[str, object]] = []
    for video_id, video in videos.items():
        if video.subset != "test":
            continue
        kind = rng.random()
        if kind < 0.03:
            continue  # missing
        if kind < 0.05:
            lines.append({"id": video_id, "text": "I hear some sounds."})  # unparsed
        elif kind < 0.55:
            ranges: dict[str, str] = {}
            for label, start, end in video.events:
                if rng.random() < 0.85:
                    s, e = _jitter(rng, start, end, video.duration)
                    ranges[label] = ranges.get(label, "") + f"({round(s)} {max(round(s), round(e))})"
            tags = " ".join(f"<event>{label}, {spans}</event>" for label, spans in ranges.items())
            lines.append({"id": video_id, "text": tags or "<event></event>"})
        else:
            segments = []
            for _ in range(int(rng.integers(1, 41))):
                if rng.random() < 0.3:
                    label, start, end = video.events[int(rng.integers(len(video.events)))]
                    start, end = _jitter(rng, start, end, video.duration)
                else:
                    label = LABELS[int(rng.integers(N_CLASSES))]
                    start = float(rng.uniform(0, video.duration))
                    end = float(rng.uniform(start, video.duration))
                segments.append({"label": label, "start": start, "end": end, "score": float(rng.random())})
            lines.append({"id": video_id, "prediction": {"segments": segments}})
    predictions = pathlib.Path(root) / "unav_test_predictions.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return [("unav", data_dir, "test", predictions)]
