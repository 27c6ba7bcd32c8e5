"""AVSBench-object S4 (single source) and MS3 (multiple sources): audio-visual segmentation (OpenNLPLab/AVSBench).

One sample is one video; its prediction is one binary mask per annotated frame, as COCO RLEs. The metrics are the
official test loop's (avs_scripts/avs_s4/test.py, avs_ms3/test.py, run by their test.sh): videos in CSV order are
batched four at a time; per batch ``mask_iou`` (J) and ``Eval_Fmeasure`` (F) over all frames of the batch; the
reported number is the mean over batches. See docs/tasks/avsbench.md for every quirk and where it comes from.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.gt_cache import cached_parse
from crab_eval.layouts.avsbench import MS3_DATA, MS3_META, S4_DATA, S4_META, frames_annotated
from crab_eval.metrics.masks import (
    Counts,
    check_rles,
    counts_to_string,
    empty_counts,
    float32_sum,
    fmeasure_levels,
    mask_to_counts,
    official_iou,
    overlap_counts,
    parse_rle_strings,
    run_sums,
)
from crab_eval.readers.split_csv import read_split_table
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task

# Crab's segmentation answer: 2 image scales x 3 tokens per scale (configs/unified_config.py image_scale_nums,
# token_nums_per_scale; dataset/unified_dataset.py builds "<mask_0>...<mask_5>").
MASK_TOKENS = "".join(f"<mask_{i}>" for i in range(6))
ORDINALS = ("first", "second", "third", "fourth", "fifth")
# Crab's S4 / MS3 instruction, one per frame (dataset/unified_dataset.py, add_s4_task_samples / add_ms3_task_samples).
INSTRUCTION = (
    "Please recognize the category of object making sound in the video, and then segment out the object that "
    "makes the sound at the {ordinal} second of the video."
)
ANSWER_OBJECT = "The object making the sound in the video is {obj}. "
ANSWER_MASK = "The mask of the object that makes the sound at the {ordinal} second is <mask_start>{tokens}<mask_end>"


@dataclass(frozen=True)
class VideoTruth:
    """Ground truth of one video: annotated frame numbers, each frame's (height, width) and run lengths."""

    frames: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]
    counts: tuple[Counts, ...]


def _read_gt_mask(path: str, official_mode: str) -> np.ndarray:
    """A ground-truth PNG as the official loader sees it, before the 0/255 check of ``_check_gt_values``.

    S4 converts with PIL mode '1' (threshold at 128, Floyd-Steinberg dithering), MS3 with mode 'P' and then
    ToTensor's /255. For a 0/255 grey file both give exactly ``value == 255`` (dithering has no error to spread),
    so we read grey levels (S4) or palette indices (MS3) and refuse anything but 0 and 255, rather than silently
    score it the way the official code would (a 0/1 PNG is empty under mode '1'; an RGB PNG becomes palette index
    225, i.e. 0.88, under mode 'P').
    """
    from PIL import Image  # here: listing the tasks need not load Pillow

    try:
        with Image.open(path) as image:
            image.load()
            if official_mode == "1":
                seen = image if image.mode == "L" else image.convert("L")
            else:
                seen = image if image.mode == "P" else image.convert("P")
            return np.asarray(seen)
    except FileNotFoundError:
        raise AnnotationError("ground-truth mask not found", path) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise AnnotationError(f"ground-truth mask is not a readable image ({exc})", path) from None


def _check_gt_values(masks: Sequence[np.ndarray], paths: Sequence[str], official_mode: str) -> None:
    """Refuse a video whose ground-truth frames hold anything but 0 and 255 (one vectorised test per video)."""
    stacked = np.stack(masks) if len({m.shape for m in masks}) == 1 else np.concatenate([m.ravel() for m in masks])
    if stacked.ndim not in (1, 3):
        bad = next(p for m, p in zip(masks, paths, strict=True) if m.ndim != 2)
        raise AnnotationError("ground-truth mask must be a single-channel image", bad)
    if np.count_nonzero(stacked) == np.count_nonzero(stacked == 255):
        return
    for mask, path in zip(masks, paths, strict=True):
        if mask.ndim != 2:
            raise AnnotationError("ground-truth mask must be a single-channel image", path)
        if np.count_nonzero(mask) != np.count_nonzero(mask == 255):
            found = ", ".join(str(v) for v in np.unique(mask)[:8])
            how = (
                "PIL mode '1' (threshold 128)"
                if official_mode == "1"
                else "PIL mode 'P' and scores palette index / 255"
            )
            raise AnnotationError(
                f"ground-truth mask must hold only 0 and 255, found values {found}; the official loader reads "
                f"it with {how}, so this file would not score as intended",
                path,
            )


class _AVSBenchTask(Task):
    """Shared by S4 and MS3: they differ only in files, path layout, PNG conversion and the answer sentence."""

    version: ClassVar[str] = "1"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("J", description="mIoU of the official mask_iou, per test batch of 4 videos, mean over batches"),
        MetricSpec("F", description="official Eval_Fmeasure (beta^2 0.3, 255 thresholds) per batch, mean"),
    )
    main_metric: ClassVar[str] = "J"
    text_predictions: ClassVar[bool] = False  # masks come from the mask head, not from the answer text
    # test.sh of both settings runs test.py with --test_batch_size 4 (the argparse default is 1); J and F are
    # computed per batch and averaged over batches (pyutils.AverageMeter). F depends on the batching.
    eval_batch_videos: ClassVar[int] = 4

    meta_file: ClassVar[str]
    data_subdir: ClassVar[str]
    release_dir: ClassVar[str]  # the release folder holding the CSV, tolerated one level down
    png_mode: ClassVar[str]
    has_category: ClassVar[bool]

    # ---- files -------------------------------------------------------------------------------------------------
    def _csv_path(self, data_dir: Path) -> Path:
        for candidate in (data_dir / self.meta_file, data_dir / self.release_dir / self.meta_file):
            if candidate.is_file():
                return candidate
        raise AnnotationError("official annotation file not found", data_dir / self.meta_file)

    def _mask_root(self, csv_path: Path) -> Path:
        for candidate in (csv_path.parent / self.data_subdir / "gt_masks", csv_path.parent / "gt_masks"):
            if candidate.is_dir():
                return candidate
        raise AnnotationError("ground-truth mask folder not found", csv_path.parent / self.data_subdir / "gt_masks")

    def _rows(self, csv_path: Path, split: str) -> list[tuple[str, str]]:
        """(name, category) of the split's rows in file order, read as the official loaders read the CSV."""
        header, header_line, found = read_split_table(csv_path, split)
        need = 3 if self.has_category else 1
        if len(header) < need:
            raise AnnotationError(f"expected at least {need} columns, header has {len(header)}", csv_path, header_line)
        rows: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for line, fields in found:
            name = fields[0]
            category = fields[2] if self.has_category else ""
            if not name or (self.has_category and not category):
                raise AnnotationError("empty video name or category", csv_path, line)
            if name in seen:
                raise AnnotationError(
                    f"video {name!r} listed twice in split {split!r} (first on line {seen[name]})", csv_path, line
                )
            seen[name] = line
            rows.append((name, category))
        return rows

    def _mask_path(self, mask_root: str, split: str, name: str, category: str, k: int) -> str:
        # os.path.join, not pathlib: this runs for every frame of the split
        folder = (
            os.path.join(mask_root, split, category, name)
            if self.has_category
            else os.path.join(mask_root, split, name)
        )
        return os.path.join(folder, f"{name}_{k}.png")

    @abstractmethod
    def _media(self, media_root: Path, split: str, name: str, category: str) -> dict[str, Any]:
        """Official media paths of one video (the two AVSBench layouts differ)."""

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        csv_path = self._csv_path(Path(data_dir))
        mask_root = self._mask_root(csv_path)
        frames = frames_annotated(self.id, split)
        files = [csv_path]
        for name, category in self._rows(csv_path, split):
            files.extend(Path(self._mask_path(str(mask_root), split, name, category, k)) for k in frames)
        return files

    def read_split(self, data_dir: Path, split: str) -> Split:
        csv_path = self._csv_path(data_dir)
        mask_root = self._mask_root(csv_path)
        frames = frames_annotated(self.id, split)
        instructions = [INSTRUCTION.format(ordinal=ORDINALS[k - 1]) for k in frames]
        try:
            media_root = mask_root.parent.relative_to(data_dir)
        except ValueError:
            media_root = mask_root.parent
        rows = self._rows(csv_path, split)
        root = str(mask_root)
        paths = [self._mask_path(root, split, name, category, k) for name, category in rows for k in frames]
        truths = self._cached_truths(data_dir, split, paths, frames)
        samples = []
        for (name, category), truth in zip(rows, truths, strict=True):
            targets = [self._answer(category, k) for k in frames]
            samples.append(
                Sample(
                    id=name,
                    instruction=instructions[0],
                    target=truth,
                    group=name,
                    media=self._media(media_root, split, name, category),
                    meta={
                        "category": category,
                        "frames": list(frames),
                        "frame_instructions": list(instructions),
                        "frame_targets": targets,
                    },
                )
            )
        return Split(self.id, split, data_dir, samples)

    def _decode_frame(self, path: str) -> list[Any]:
        """One ground-truth PNG as the cache stores it: [height, width, COCO counts string] (checked 0/255)."""
        mask = _read_gt_mask(path, self.png_mode)
        _check_gt_values([mask], [path], self.png_mode)
        return [int(mask.shape[0]), int(mask.shape[1]), counts_to_string(mask_to_counts(mask))]

    def _cached_truths(self, data_dir: Path, split: str, paths: list[str], frames: tuple[int, ...]) -> list[VideoTruth]:
        """Each video's truth from the decoded-GT cache (crab_eval/gt_cache.py); a cached value that does not
        parse into masks of its size (a damaged cache) is decoded again, never an error."""

        def parse(values: list[Any]) -> tuple[list[tuple[int, int]], list[Counts]]:
            sizes = [(int(v[0]), int(v[1])) for v in values]
            counts = parse_rle_strings([v[2] for v in values])
            if not counts_fit(counts, [h * w for h, w in sizes]):
                raise ValueError("cached counts do not fit their sizes")
            return sizes, counts

        sizes, counts = cached_parse(self.id, self.version, split, data_dir, paths, self._decode_frame, parse)
        n = len(frames)
        return [
            VideoTruth(frames=frames, sizes=tuple(sizes[i : i + n]), counts=tuple(counts[i : i + n]))
            for i in range(0, len(sizes), n)
        ]

    # ---- text --------------------------------------------------------------------------------------------------
    def _answer(self, category: str, k: int) -> str:
        mask = ANSWER_MASK.format(ordinal=ORDINALS[k - 1], tokens=MASK_TOKENS)
        if not self.has_category:
            return mask
        return ANSWER_OBJECT.format(obj=category.replace("_", " ")) + mask

    def target_text(self, sample: Sample) -> str:
        """The answer of the first annotated frame; every frame's is in ``sample.meta["frame_targets"]``."""
        return str(sample.meta["frame_targets"][0])

    # ---- predictions -------------------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> tuple[Counts, ...]:
        truth: VideoTruth = sample.target
        if not isinstance(obj, dict) or set(obj) != {"masks"}:
            raise PredictionError("prediction must be an object with exactly one key, 'masks'")
        masks = obj["masks"]
        n = len(truth.frames)
        if not isinstance(masks, list):
            raise PredictionError(f"'masks' must be a list of {n} COCO RLEs, got {type(masks).__name__}")
        if len(masks) != n:
            frames = ", ".join(str(k) for k in truth.frames)
            raise PredictionError(f"'masks' must hold {n} RLE(s), one per annotated frame ({frames}), got {len(masks)}")
        whats = [f"mask {i + 1} (frame {k})" for i, k in enumerate(truth.frames)]
        return tuple(check_rles(masks, truth.sizes, whats))

    def empty_prediction(self, sample: Sample) -> tuple[Counts, ...]:
        return tuple(empty_counts(size) for size in sample.target.sizes)

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        truth: VideoTruth = sample.target
        return {
            "masks": [
                {"size": [h, w], "counts": counts_to_string(c)}
                for (h, w), c in zip(truth.sizes, truth.counts, strict=True)
            ]
        }

    # ---- scoring -----------------------------------------------------------------------------------------------
    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        """Per video: per-frame IoU and F values that a batch's J and F are made of (all frames scored at once)."""
        gt = [c for s in samples for c in s.target.counts]
        pred = [c for p in predictions for c in p]
        if len(gt) != len(pred):
            raise ValueError("a prediction does not list one mask per annotated frame")
        n_pixels = np.array([h * w for s in samples for (h, w) in s.target.sizes], dtype=np.int64)
        tp, pred_area, gt_area = overlap_counts(pred, gt)
        iou = official_iou(tp, pred_area, gt_area, n_pixels)
        f_all, f_mask = fmeasure_levels(tp, pred_area, gt_area, n_pixels)
        fg = gt_area > 0
        stats = []
        start = 0
        for sample in samples:
            stop = start + len(sample.target.frames)
            part = slice(start, stop)
            fg_part = fg[part]
            row = {
                "iou": [float(v) for v in iou[part]],
                "f_all": [float(v) for v in f_all[part][fg_part]],
                "f_mask": [float(v) for v in f_mask[part][fg_part]],
                "n_frames": stop - start,
            }
            video_alone = aggregate_batches([row], 1)  # this video as a batch of one (test.py's default)
            stats.append({"j": video_alone["J"] / 100, "f": video_alone["F"] / 100, **row})
            start = stop
        return stats

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return aggregate_batches(stats, self.eval_batch_videos)


def counts_fit(counts: Sequence[Counts], areas: Sequence[int]) -> bool:
    """Whether every run-length mask is non-negative and covers exactly its frame's pixels (checked at once):
    how ``load`` tells a damaged ground-truth cache entry (crab_eval/gt_cache.py) from a good one."""
    if len(counts) != len(areas):
        return False
    totals, _, low = run_sums(counts)
    return low >= 0 and bool(np.array_equal(totals, np.asarray(areas, dtype=np.int64)))


def aggregate_batches(stats: Sequence[Mapping[str, Any]], batch_videos: int) -> dict[str, float]:
    """J and F (0-100) of the official test loop over ``stats`` in order, ``batch_videos`` videos a batch.

    Per batch (the frames of its videos, concatenated): J = ``mask_iou``'s ``sum(iou) / N`` over all frames; F =
    the max over thresholds of the F curve averaged over the frames with non-empty ground truth (0 without
    any). Then the mean over batches; the last batch may be smaller (DataLoader, drop_last=False). Arithmetic
    as in the official code: J accumulates float32 tensors (per batch and in AverageMeter), F's curve is a
    float32 running sum, F's batch values are Python floats.
    """
    if not stats:
        return {"J": 0.0, "F": 0.0}
    j_batches: list[np.float32] = []
    f_total = 0.0
    n_batches = 0
    for start in range(0, len(stats), batch_videos):
        batch = stats[start : start + batch_videos]
        iou = [v for s in batch for v in s["iou"]]
        j_batches.append(float32_sum(iou) / np.float32(len(iou)))
        f_all = [v for s in batch for v in s["f_all"]]
        if f_all:
            f_mask = [v for s in batch for v in s["f_mask"]]
            n_fg = np.float32(len(f_all))
            f_total += float(max(float32_sum(f_all) / n_fg, float32_sum(f_mask) / n_fg))
        n_batches += 1
    j = float32_sum(j_batches) / np.float32(n_batches)
    return {"J": 100.0 * float(j), "F": 100.0 * (f_total / n_batches)}


class S4Task(_AVSBenchTask):
    id: ClassVar[str] = "s4"
    description: ClassVar[str] = "AVSBench S4: segment the single sounding object in 5 frames (J = mIoU, F)"
    meta_file: ClassVar[str] = S4_META
    data_subdir: ClassVar[str] = S4_DATA
    release_dir: ClassVar[str] = "Single-source"
    png_mode: ClassVar[str] = "1"  # avs_s4/dataloader.py: load_image_in_PIL_to_Tensor(..., mode='1')
    has_category: ClassVar[bool] = True

    def _media(self, media_root: Path, split: str, name: str, category: str) -> dict[str, Any]:
        frames = media_root / "visual_frames" / split / category / name
        return {
            "frames": [str(frames / f"{name}_{k}.png") for k in range(1, 6)],
            "audio": str(media_root / "audio_wav" / split / category / f"{name}.wav"),
        }


class MS3Task(_AVSBenchTask):
    id: ClassVar[str] = "ms3"
    description: ClassVar[str] = "AVSBench MS3: segment all sounding objects in 5 frames (J = mIoU, F)"
    meta_file: ClassVar[str] = MS3_META
    data_subdir: ClassVar[str] = MS3_DATA
    release_dir: ClassVar[str] = "Multi-sources"
    png_mode: ClassVar[str] = "P"  # avs_ms3/dataloader.py: load_image_in_PIL_to_Tensor(..., mode='P')
    has_category: ClassVar[bool] = False

    def _media(self, media_root: Path, split: str, name: str, category: str) -> dict[str, Any]:
        frames = media_root / "visual_frames" / name
        return {
            "frames": [str(frames / f"{name}.mp4_{k}.png") for k in range(1, 6)],
            "audio": str(media_root / "audio_wav" / split / f"{name}.wav"),
        }
