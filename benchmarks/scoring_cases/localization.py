"""Localisation scoring inputs of the official test-set sizes: VGG-SS 5,158 (Crab-style text and boxes, then every
sample a heatmap), Flickr-SoundNet 249, and ARIG at an estimated 3,700 frames (AVSBench v1s test: 740 clips x 5
frames; Crab does not publish its test count)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from crab_eval.layouts.localization import arig_record, write_arig, write_flickr, write_vggss

N_VGGSS = 5158  # metadata/vggss_test.csv of hche11/Localizing-Visual-Sounds-the-Hard-Way
N_FLICKR = 249  # metadata/flickr_test.csv
N_ARIG = 3700  # estimate, see the docstring


def _box(rng: np.random.Generator) -> list[float]:
    cx, cy = rng.uniform(0.2, 0.8, 2)
    w, h = rng.uniform(0.1, 0.7, 2)
    return [float(max(cx - w / 2, 0)), float(max(cy - h / 2, 0)), float(min(cx + w / 2, 1)), float(min(cy + h / 2, 1))]


def _jitter(box: list[float], rng: np.random.Generator) -> list[float]:
    x1, y1, x2, y2 = np.clip(np.array(box) + rng.normal(0, 0.08, 4), 0, 1)
    return [float(min(x1, x2)), float(min(y1, y2)), float(max(x1, x2)), float(max(y1, y2))]


def _tag(box: list[float]) -> str:
    x1, y1, x2, y2 = (round(224 * v) for v in box)
    return f"<obj>({x1},{y1})({x2},{y2})</obj>"


def _heatmap(box: list[float], rng: np.random.Generator, size: int) -> np.ndarray:
    """A blob around the box centre plus noise, at the resolution an SSL model outputs (7, 14 or 224)."""
    y, x = np.mgrid[0:size, 0:size] / size
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.05)
    return (blob + 0.3 * rng.random((size, size))).astype(np.float32)


def _write(path: pathlib.Path, lines: list[dict]) -> pathlib.Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _box_lines(ids: list[str], gts: list[list[float]], rng: np.random.Generator, maps: pathlib.Path) -> list[dict]:
    lines = []
    for i, (sample_id, gt) in enumerate(zip(ids, gts, strict=True)):
        kind = rng.random()
        guess = _jitter(gt, rng) if rng.random() < 0.7 else _box(rng)
        if kind < 0.03:
            continue  # missing
        if kind < 0.05:
            lines.append({"id": sample_id, "text": "I cannot see the source of the sound."})  # unparsed
        elif kind < 0.6:
            lines.append({"id": sample_id, "text": f"The sounding object is x. Its coordinates are {_tag(guess)}."})
        elif kind < 0.85:
            lines.append({"id": sample_id, "prediction": {"bbox": guess}})
        elif kind < 0.9:
            lines.append({"id": sample_id, "prediction": {"bboxes": [guess, _box(rng)]}})
        else:
            np.save(maps / f"{i}.npy", _heatmap(guess, rng, int(rng.choice([7, 14, 224]))))
            lines.append({"id": sample_id, "prediction": {"heatmap": f"maps/{i}.npy"}})
    return lines


def build_vggss(
    root: pathlib.Path, seed: int = 0, heatmap_case: bool = True
) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    """VGG-SS at 5,158 samples: Crab-style mixed predictions and (``heatmap_case``) one heatmap per sample."""
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    cases = []
    # VGG-SS: one box for most samples, up to 7 (the release: 4,619 x 1, 385 x 2, 94 x 3, ...).
    ids = [f"vid{i:05d}_000030" for i in range(N_VGGSS)]
    counts = rng.choice([1, 2, 3, 4, 7], size=N_VGGSS, p=[0.895, 0.075, 0.018, 0.008, 0.004])
    records = [(i, "playing cello", [_box(rng) for _ in range(k)]) for i, k in zip(ids, counts, strict=True)]
    data = write_vggss(root / "vggss", records)
    for name, heatmaps_only in (("vggss_test_predictions", False), ("vggss_heatmap_predictions", True)):
        folder = root / name
        (folder / "maps").mkdir(parents=True, exist_ok=True)
        if heatmaps_only:
            lines = []
            for i, (sample_id, rec) in enumerate(zip(ids, records, strict=True)):
                np.save(folder / "maps" / f"{i}.npy", _heatmap(_jitter(rec[2][0], rng), rng, 14))
                lines.append({"id": sample_id, "prediction": {"heatmap": f"maps/{i}.npy"}})
        else:
            lines = _box_lines(ids, [r[2][0] for r in records], rng, folder / "maps")
        cases.append(("vggss", data, "test", _write(folder / "predictions.jsonl", lines)))
        if not heatmap_case:
            break
    return cases


def build(root: pathlib.Path, seed: int = 0) -> list[tuple[str, pathlib.Path, str, pathlib.Path]]:
    rng = np.random.default_rng(seed + 1)
    root = pathlib.Path(root)
    cases = build_vggss(root, seed)

    # Flickr-SoundNet: three annotators, each boxing the source (boxes on the 256 frame), heatmap predictions.
    annotations = {}
    for i in range(N_FLICKR):
        base = np.array(_box(rng)) * 256
        annotations[str(10000000000 + i)] = [
            [int(v) for v in np.clip(base + rng.normal(0, 10, 4), 0, 256)] for _ in range(3)
        ]
    data = write_flickr(root / "flickr", annotations)
    folder = root / "flickr_predictions"
    (folder / "maps").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (sample_id, boxes) in enumerate(annotations.items()):
        box = [min(b[0], b[2]) / 256 for b in boxes[:1]] + [0.2, 0.8, 0.8]
        np.save(folder / "maps" / f"{i}.npy", _heatmap([min(max(v, 0), 1) for v in box], rng, 14))
        lines.append({"id": sample_id, "prediction": {"heatmap": f"maps/{i}.npy"}})
    cases.append(("flickr", data, "test", _write(folder / "predictions.jsonl", lines)))

    # ARIG: one box per frame in pixels of the 224 frame; Crab's text answers.
    recs, gts = [], []
    for i in range(N_ARIG):
        box = _box(rng)
        px = [int(224 * v) for v in box]
        recs.append(arig_record(f"AVS/v1s/clip{i // 5:04d}/frames/{i % 5}.jpg", "dog", px[:2], px[2:], i % 5))
        gts.append(box)
    data = root / "arig"
    write_arig(data, recs)
    folder = root / "arig_predictions"
    (folder / "maps").mkdir(parents=True, exist_ok=True)
    lines = _box_lines([r["visual_path"] for r in recs], gts, rng, folder / "maps")
    cases.append(("arig", data, "test", _write(folder / "predictions.jsonl", lines)))
    return cases
