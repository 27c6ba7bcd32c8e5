"""Ref-AVS: segment the object a referring expression names, in 10 frames (GeWu-Lab/Ref-AVS, ECCV 2024).

One sample is one metadata row (an expression on a video); its prediction is 10 binary masks at 256x256. The
metrics are the official test loop's (scripts/train.py ``test``, run_refavs.py, utils/metric/utility.py): rows in
metadata order, 4 a batch; per batch J (``mask_iou``, threshold sigmoid > 0.4) and F (AVSBench ``Eval_Fmeasure``)
over the batch's 40 frames, averaged over batches; on the null split ``test_n`` only S = sqrt(predicted
foreground share) per batch, averaged (lower is better). See docs/tasks/ref_avs.md for the quirks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.gt_cache import cached_parse
from crab_eval.layouts.ref_avs import META, N_FRAMES, SIDE, mask_folder
from crab_eval.metrics.masks import (
    Counts,
    check_rles,
    counts_to_string,
    cuda_scalar_div,
    empty_counts,
    float32_sum,
    fmeasure_levels,
    foreground_area,
    mask_to_counts,
    official_iou,
    overlap_counts,
    parse_rle_strings,
)
from crab_eval.readers.split_csv import read_split_rows
from crab_eval.tasks.avsbench import MASK_TOKENS, counts_fit
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task, unique_ids

NULL_SPLIT = "test_n"
EVAL_BATCH = 4  # run_refavs.py: DataLoader(..., batch_size=4, shuffle=False) for val / test_s / test_u / test_n
_F32 = np.float32
# Crab's Ref-AVS test sample, one per frame (dataset/unified_dataset.py, test-time add_ref_avs_samples): the video
# and audio prefix, then the frame as an image.
INSTRUCTION = (
    "This is an image:\n<image_start><image><image_end>\n"
    "Please segment out the corresponding object in the image based on the referential expression: {exp}"
)
ANSWER = "{exp} is <mask_start>" + MASK_TOKENS + "<mask_end>"


@dataclass(frozen=True)
class ExpressionTruth:
    """Ground truth of one row: the 10 frames' run lengths at 256x256 (None on the null split: S reads no GT)."""

    counts: tuple[Counts, ...] | None


def read_gt_mask(path: str) -> np.ndarray:
    """A mask as dataset_refavs.py reads it: cv2.imread (BGR), cv2.resize to 256x256 (bilinear), BGR2GRAY, > 0."""
    import cv2  # the localization extra (opencv-python-headless); here, so that other tasks never need it

    if not os.path.isfile(path):
        raise AnnotationError("ground-truth mask not found", path)
    image = cv2.imread(path)
    if image is None:
        raise AnnotationError("ground-truth mask is not a readable image", path)
    image = cv2.resize(image, (SIDE, SIDE))
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) > 0


def _decode_mask(path: str) -> str:
    """One ground-truth PNG as the cache stores it: the COCO counts string of ``read_gt_mask``."""
    return counts_to_string(mask_to_counts(read_gt_mask(path)))


class RefAVSTask(Task):
    id: ClassVar[str] = "ref_avs"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Ref-AVS: segment the object a referring expression names (J, F; null split S)"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test_s", "test_u", "test_n")
    default_split: ClassVar[str] = "test_s"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("J", description="mask_iou at sigmoid > 0.4, per batch of 4 expressions x 10 frames, mean"),
        MetricSpec("F", description="AVSBench Eval_Fmeasure (beta^2 0.3, 255 thresholds) per batch, mean"),
        MetricSpec(
            "S",
            higher_is_better=False,
            description="null split: sqrt(predicted foreground share) per batch, mean (x100)",
        ),
    )
    main_metric: ClassVar[str] = "J"
    text_predictions: ClassVar[bool] = False  # masks come from the mask head, not from the answer text
    eval_batch: ClassVar[int] = EVAL_BATCH

    def main_metric_for_split(self, split: str) -> str:
        """The split's headline metric: S on the null split (which reports only S), else J."""
        return "S" if split == NULL_SPLIT else "J"

    # ---- files -------------------------------------------------------------------------------------------------
    def _rows(self, data_dir: Path, split: str) -> list[tuple[str, dict[str, str]]]:
        """(id, row) of the split in file order; a uid repeated in the split gets ``#2``, ``#3``..."""
        path = data_dir / META
        rows: list[dict[str, str]] = []
        for line, row in read_split_rows(path, split, ("uid", "fid", "exp")):
            if row["uid"].count("_") < 2:
                raise AnnotationError(
                    f"uid {row['uid']!r} is not '<video>_<object>_<n>' (the loader takes "
                    f"the video folder as uid.rsplit('_', 2)[0])",
                    path,
                    line,
                )
            try:
                row["fid"] = str(int(row["fid"]))  # pandas reads the column as integers
            except ValueError:
                raise AnnotationError(f"fid must be an integer, got {row['fid']!r}", path, line) from None
            rows.append(row)
        return list(zip(unique_ids([row["uid"] for row in rows], path), rows, strict=True))

    @staticmethod
    def _gt_paths(data_dir: Path, row: Mapping[str, str]) -> list[str]:
        folder = os.path.join(data_dir, "gt_mask", mask_folder(row["uid"]), f"fid_{row['fid']}")
        return [os.path.join(folder, f"0000{i}.png") for i in range(N_FRAMES)]

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        data_dir = Path(data_dir)
        files = [data_dir / META]
        if split != NULL_SPLIT:
            unique = dict.fromkeys(p for _, row in self._rows(data_dir, split) for p in self._gt_paths(data_dir, row))
            files.extend(Path(p) for p in unique)
        return files

    def read_split(self, data_dir: Path, split: str) -> Split:
        rows = self._rows(data_dir, split)
        truth: dict[str, Counts] = {}
        row_paths = [] if split == NULL_SPLIT else [self._gt_paths(data_dir, row) for _, row in rows]
        if split != NULL_SPLIT:
            # Expressions on the same object share their 10 PNGs: read each file once (threads: cv2 frees the GIL).
            unique = list(dict.fromkeys(p for paths in row_paths for p in paths))
            truth = dict(zip(unique, self._cached_counts(data_dir, split, unique), strict=True))
        samples = []
        for k, (sample_id, row) in enumerate(rows):
            folder = str(Path("media") / mask_folder(row["uid"]))  # joined once: a Path per frame is slow here
            row_truth = None if split == NULL_SPLIT else tuple(truth[p] for p in row_paths[k])
            instruction = INSTRUCTION.format(exp=row["exp"])
            answer = ANSWER.format(exp=row["exp"])
            samples.append(
                Sample(
                    id=sample_id,
                    instruction=instruction,
                    target=ExpressionTruth(row_truth),
                    group=mask_folder(row["uid"]),
                    media={
                        "frames": [f"{folder}/frames/{i}.jpg" for i in range(N_FRAMES)],
                        "audio": f"{folder}/audio.wav",
                    },
                    meta={
                        "uid": row["uid"],
                        "fid": int(row["fid"]),
                        "exp": row["exp"],
                        "null": split == NULL_SPLIT,
                        "frame_instructions": [instruction] * N_FRAMES,
                        "frame_targets": [answer] * N_FRAMES,
                    },
                )
            )
        return Split(self.id, split, data_dir, samples)

    def _cached_counts(self, data_dir: Path, split: str, paths: list[str]) -> list[Counts]:
        """Run lengths of each mask from the decoded-GT cache (crab_eval/gt_cache.py), stored as COCO counts
        strings; a cached value that does not parse into a 256 x 256 mask (a damaged cache) is decoded again."""

        def parse(values: list[Any]) -> list[Counts]:
            counts = parse_rle_strings(values)
            if not counts_fit(counts, [SIDE * SIDE] * len(counts)):
                raise ValueError(f"cached counts are not {SIDE} x {SIDE} masks")
            return counts

        # Misses are decoded in threads (cv2 frees the GIL), to run lengths right away: thousands of dense 256x256
        # masks would hold gigabytes.
        workers = min(8, os.cpu_count() or 1)
        return cached_parse(self.id, self.version, split, data_dir, paths, _decode_mask, parse, workers=workers)

    # ---- text --------------------------------------------------------------------------------------------------
    def target_text(self, sample: Sample) -> str:
        return str(sample.meta["frame_targets"][0])

    # ---- predictions -------------------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> tuple[Counts, ...]:
        if not isinstance(obj, dict) or set(obj) != {"masks"}:
            raise PredictionError("prediction must be an object with exactly one key, 'masks'")
        masks = obj["masks"]
        if not isinstance(masks, list):
            raise PredictionError(f"'masks' must be a list of {N_FRAMES} COCO RLEs, got {type(masks).__name__}")
        if len(masks) != N_FRAMES:
            raise PredictionError(f"'masks' must hold {N_FRAMES} RLEs (frames 0..9), got {len(masks)}")
        return tuple(check_rles(masks, [(SIDE, SIDE)] * N_FRAMES, [f"mask {i} (frame {i})" for i in range(N_FRAMES)]))

    def empty_prediction(self, sample: Sample) -> tuple[Counts, ...]:
        return tuple(empty_counts((SIDE, SIDE)) for _ in range(N_FRAMES))

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        counts = sample.target.counts
        if counts is None:  # null split: the referred object is absent, the right answer is no mask
            counts = self.empty_prediction(sample)
        return {"masks": [{"size": [SIDE, SIDE], "counts": counts_to_string(c)} for c in counts]}

    # ---- scoring -----------------------------------------------------------------------------------------------
    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        """Per row: the null split's predicted foreground pixels; elsewhere per-frame IoU and F values."""
        pred = [c for p in predictions for c in p]
        if all(s.target.counts is None for s in samples):
            fg = foreground_area(pred).reshape(len(samples), N_FRAMES).sum(axis=1)
            return [{"fg": int(v), "n_pixels": N_FRAMES * SIDE * SIDE} for v in fg]
        if any(s.target.counts is None for s in samples):
            raise ValueError("null-split and other samples cannot be scored together")
        gt = [c for s in samples for c in s.target.counts]
        n_pixels = np.full(len(gt), SIDE * SIDE, dtype=np.int64)
        tp, pred_area, gt_area = overlap_counts(pred, gt)
        iou = official_iou(tp, pred_area, gt_area, n_pixels)
        f_all, f_mask = fmeasure_levels(tp, pred_area, gt_area, n_pixels)
        fg = gt_area > 0
        stats = []
        for k in range(len(samples)):
            part = slice(k * N_FRAMES, (k + 1) * N_FRAMES)
            stats.append(
                {
                    "iou": [float(v) for v in iou[part]],
                    "f_all": [float(v) for v in f_all[part][fg[part]]],
                    "f_mask": [float(v) for v in f_mask[part][fg[part]]],
                }
            )
        return stats

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        if stats and all("fg" in s for s in stats):
            return {"S": null_s(stats, self.eval_batch)}
        if any("fg" in s for s in stats):
            raise ValueError("null-split and other per-sample stats cannot be aggregated together")
        return j_and_f(stats, self.eval_batch)


def null_s(stats: Sequence[Mapping[str, Any]], batch: int) -> float:
    """S (x100) as ``metric_s_for_null`` and ``test``: per batch sqrt(foreground / pixels) in float32 on CUDA (the
    division by a Python int is a multiplication by the float32 reciprocal), then ``np.mean`` of the float32 values."""
    values = []
    for start in range(0, len(stats), batch):
        part = stats[start : start + batch]
        fg = sum(int(s["fg"]) for s in part)
        n = sum(int(s["n_pixels"]) for s in part)
        values.append(np.sqrt(cuda_scalar_div(_F32(fg), n)))
    return 100.0 * float(np.mean(np.array(values, dtype=_F32)))


def j_and_f(stats: Sequence[Mapping[str, Any]], batch: int) -> dict[str, float]:
    """J and F (x100) of ``test`` with CUDA tensors: per batch ``torch.sum(iou) / N`` and ``Eval_Fmeasure``'s
    ``avg_f / img_num`` divide by Python ints (float32 reciprocal); J accumulates float32 in AverageMeter (divided
    by the count the same way), F as Python floats."""
    if not stats:
        return {"J": 0.0, "F": 0.0}
    j_batches = []
    f_total = 0.0
    n_batches = 0
    for start in range(0, len(stats), batch):
        part = stats[start : start + batch]
        iou = [v for s in part for v in s["iou"]]
        j_batches.append(cuda_scalar_div(float32_sum(iou), len(iou)))
        f_all = [v for s in part for v in s["f_all"]]
        if f_all:
            f_mask = [v for s in part for v in s["f_mask"]]
            f_total += float(cuda_scalar_div(max(float32_sum(f_all), float32_sum(f_mask)), len(f_all)))
        n_batches += 1
    j = cuda_scalar_div(float32_sum(j_batches), n_batches)
    return {"J": 100.0 * float(j), "F": 100.0 * (f_total / n_batches)}
