"""AVSBench-semantic (AVSS): audio-visual semantic segmentation, 70 classes + background (OpenNLPLab/AVSBench).

One sample is one video; its prediction is, per annotated frame, one COCO RLE per predicted class. The metrics are
the official test loop's (avs_scripts/avss/test.py with utils/compute_color_metrics.py): videos in metadata order,
4 a batch, each padded to 10 frames; per frame and class IoU and F from class histograms, summed per class with a
count of the frames where the class is in the prediction or the ground truth; mean over all 71 classes of
sum / count (0 for classes never seen). See docs/tasks/avss.md for every quirk and where it comes from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.gt_cache import cached_parse
from crab_eval.layouts.avss import FRAMES, LABEL2IDX, META, N_CLASSES, palette
from crab_eval.metrics.masks import (
    Counts,
    check_rles,
    class_iou,
    counts_to_string,
    f_beta,
    first_overlap,
    masks_to_counts,
    overlap_counts,
    parse_rle_strings,
    run_sums,
)
from crab_eval.readers.split_csv import read_split_rows
from crab_eval.tasks.avsbench import MASK_TOKENS
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task

SIDE = 224  # config.py cfg.DATA.CROP_SIZE; test/val masks are resized to 224 x 224 (NEAREST)
PADDED_FRAMES = 10  # color_dataloader.py pads every video's labels to 10 frames with background
EVAL_BATCH_VIDEOS = 4  # test.sh --test_batch_size 4 (also the argparse default)
_F32 = np.float32
# Crab's AVSS test sample, one per frame (dataset/unified_dataset.py, test-time add_avss_task_samples): an image and
# the audio, no video.
PREFIX = "This is an image:\n<image_start><image><image_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"
INSTRUCTION = "Please recognize the category of the object making the sound in the image and segment it out."
ANSWER = f"The category of the sound-making object and its mask image are <mask_start>{MASK_TOKENS}<mask_end>"
# Every palette colour of classes 0..70 uses only the top 3 bits of each channel (70 < 2^9): a 512-entry table on
# those bits finds the class; a colour with any lower bit set, or off the 71 colours, matches no class.
_TABLE = np.zeros(512, dtype=np.uint8)
_P = palette().astype(np.int64) >> 5
_TABLE[(_P[:, 0] << 6) | (_P[:, 1] << 3) | _P[:, 2]] = np.arange(N_CLASSES)


@dataclass(frozen=True)
class FrameTruth:
    """One annotated frame: the classes present (ascending, 0 included if present) and each one's run lengths."""

    classes: tuple[int, ...]
    counts: tuple[Counts, ...]
    areas: tuple[int, ...]  # pixels of each class

    def of(self, c: int) -> Counts | None:
        return self.counts[self.classes.index(c)] if c in self.classes else None


def colour_to_class(rgb: np.ndarray) -> np.ndarray:
    """``color_mask_to_label``: each pixel's palette index; a colour outside the palette matches nothing and the
    official argmax over an all-zero one-hot gives 0, i.e. background."""
    r, g, b = (rgb[..., k] for k in range(3))
    index = ((r >> 5).astype(np.uint16) << 6) | ((g >> 5).astype(np.uint16) << 3) | (b >> 5)
    lab = _TABLE[index]
    lab[((r | g | b) & 31) != 0] = 0
    return lab


def read_label_png(path: str, split: str) -> np.ndarray:
    """A colour PNG as the official val/test loader sees it: convert('RGB'), NEAREST resize to 224 x 224
    (train: short side to 224 NEAREST, then the centre crop), then colours -> class indices."""
    from PIL import Image  # here: listing the tasks need not load Pillow

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise AnnotationError("ground-truth label PNG not found", path) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise AnnotationError(f"ground-truth label PNG is not a readable image ({exc})", path) from None
    if split == "train":
        w, h = rgb.size
        ow, oh = (int(1.0 * w * SIDE / h), SIDE) if w > h else (SIDE, int(1.0 * h * SIDE / w))
        rgb = rgb.resize((ow, oh), Image.Resampling.NEAREST)
        x1, y1 = round((ow - SIDE) / 2.0), round((oh - SIDE) / 2.0)  # Python 3 round: half to even
        rgb = rgb.crop((x1, y1, x1 + SIDE, y1 + SIDE))
    else:
        rgb = rgb.resize((SIDE, SIDE), Image.Resampling.NEAREST)
    return colour_to_class(np.asarray(rgb))


def _official_png_list(folder: str) -> list[str]:
    """The listing as V2Dataset builds it: sorted, then non-PNG names removed *while iterating* the same list, so
    a name right after a removed one is skipped by the loop and stays (two non-PNG files in a row keep the second)."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        raise AnnotationError("ground-truth folder labels_rgb not found", folder) from None
    for name in names:
        if not name.endswith(".png"):
            names.remove(name)
    return names


class AVSSTask(Task):
    id: ClassVar[str] = "avss"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "AVSBench-semantic: semantic masks of the sounding objects, 70 classes (mIoU, F)"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("mIoU", description="official per-class IoU accumulation, mean over all 71 classes"),
        MetricSpec("F", description="official per-class F (beta^2 0.3) accumulation, mean over all 71 classes"),
    )
    main_metric: ClassVar[str] = "mIoU"
    text_predictions: ClassVar[bool] = False  # masks come from the mask head, not from the answer text
    eval_batch_videos: ClassVar[int] = EVAL_BATCH_VIDEOS

    # ---- files -------------------------------------------------------------------------------------------------
    def _class_names(self, data_dir: Path) -> list[str]:
        path = data_dir / LABEL2IDX
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AnnotationError("official annotation file not found", path) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AnnotationError(f"not valid JSON ({exc})", path) from None
        if not isinstance(table, dict) or len(table) != N_CLASSES:
            raise AnnotationError(
                f"expected an object of {N_CLASSES} class names (get_v2_pallete asserts the "
                f"palette size), got {len(table) if isinstance(table, dict) else type(table)}",
                path,
            )
        values = sorted(v for v in table.values() if isinstance(v, int) and not isinstance(v, bool))
        if values != list(range(1, N_CLASSES + 1)):
            raise AnnotationError(f"values must be the indices 1..{N_CLASSES}, each once", path)
        names = [""] * N_CLASSES
        for name, v in table.items():
            names[v - 1] = name
        return names

    def _rows(self, data_dir: Path, split: str) -> list[dict[str, str]]:
        """Rows of the split in file order, columns by name as ``df[df['split'] == split]``, ``['uid']``,
        ``['label']``."""
        path = data_dir / META
        rows: list[dict[str, str]] = []
        seen: dict[str, int] = {}
        for line, row in read_split_rows(path, split, ("uid", "label")):
            if not row["uid"]:
                raise AnnotationError("empty uid", path, line)
            if row["label"] not in FRAMES:
                raise AnnotationError(f"label must be one of {sorted(FRAMES)}, got {row['label']!r}", path, line)
            if row["uid"] in seen:
                raise AnnotationError(
                    f"uid {row['uid']!r} listed twice in split {split!r} (first on line {seen[row['uid']]})",
                    path,
                    line,
                )
            seen[row["uid"]] = line
            rows.append(row)
        return rows

    def _frame_paths(self, data_dir: Path, row: Mapping[str, str], split: str) -> list[str]:
        folder = os.path.join(data_dir, row["label"], row["uid"], "labels_rgb")
        n = len(_official_png_list(folder))
        if split != "train" and n != FRAMES[row["label"]]:  # V2Dataset asserts 10 (v2) or 5 (v1) outside train
            raise AnnotationError(
                f"{row['label']} video needs {FRAMES[row['label']]} label PNGs in {split}, found {n}", folder
            )
        if n == 0 or n > PADDED_FRAMES:
            raise AnnotationError(f"expected 1..{PADDED_FRAMES} label PNGs, found {n}", folder)
        return [os.path.join(folder, f"{i}.png") for i in range(n)]  # read as "%d.png" % i, whatever the names

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        data_dir = Path(data_dir)
        files = [data_dir / META, data_dir / LABEL2IDX]
        for row in self._rows(data_dir, split):
            files.extend(Path(p) for p in self._frame_paths(data_dir, row, split))
        return files

    def read_split(self, data_dir: Path, split: str) -> Split:
        names = self._class_names(data_dir)
        rows = self._rows(data_dir, split)
        per_video = [self._frame_paths(data_dir, row, split) for row in rows]
        truths = self._cached_truths(data_dir, split, [p for paths in per_video for p in paths])
        samples = []
        k = 0
        for row, paths in zip(rows, per_video, strict=True):
            frames = truths[k : k + len(paths)]
            k += len(paths)
            base = str(Path(row["label"]) / row["uid"])  # joined once: a Path per frame is slow at 10^4 frames
            n = len(frames)
            samples.append(
                Sample(
                    id=row["uid"],
                    instruction=INSTRUCTION,
                    target=tuple(frames),
                    group=row["uid"],
                    media={
                        "frames": [f"{base}/frames/{i}.jpg" for i in range(n)],
                        "audio": f"{base}/audio.wav",
                    },
                    meta={
                        "label": row["label"],
                        "a_obj": row.get("a_obj", ""),
                        "n_frames": n,
                        "classes": [names[c] for c in sorted({c for f in frames for c in f.classes})],
                        "frame_instructions": [INSTRUCTION] * n,
                        "frame_targets": [ANSWER] * n,
                    },
                )
            )
        return Split(self.id, split, data_dir, samples)

    def _decode_frame(self, path: str, split: str) -> list[list[Any]]:
        """One label PNG as the cache stores it: [[class, COCO counts string], ...] for the classes present."""
        lab = read_label_png(path, split)
        classes = np.flatnonzero(np.bincount(lab.ravel(), minlength=N_CLASSES))
        counts = masks_to_counts([lab == c for c in classes])
        return [[int(c), counts_to_string(m)] for c, m in zip(classes, counts, strict=True)]

    def _cached_truths(self, data_dir: Path, split: str, paths: list[str]) -> list[FrameTruth]:
        """Each frame's truth from the decoded-GT cache (crab_eval/gt_cache.py); a cached value that does not
        parse into 224 x 224 masks of ascending valid classes (a damaged cache) is decoded again, never an error."""

        def decode(path: str) -> list[list[Any]]:
            return self._decode_frame(path, split)

        def parse(values: list[Any]) -> tuple[list[tuple[int, ...]], list[Counts], list[int]]:
            classes = [tuple(int(c) for c, _ in v) for v in values]
            counts = parse_rle_strings([text for v in values for _, text in v])
            ok = all(list(c) == sorted(set(c)) and all(0 <= x < N_CLASSES for x in c) for c in classes)
            totals, areas, low = run_sums(counts)  # counts_fit and the foreground areas in one pass
            if not (ok and low >= 0 and bool(np.all(totals == SIDE * SIDE))):
                raise ValueError("cached classes or counts are not valid")
            return classes, counts, areas.tolist()

        classes, counts, areas = cached_parse(self.id, self.version, split, data_dir, paths, decode, parse)
        frames, k = [], 0
        for cls in classes:
            frames.append(FrameTruth(cls, tuple(counts[k : k + len(cls)]), tuple(areas[k : k + len(cls)])))
            k += len(cls)
        return frames

    # ---- text --------------------------------------------------------------------------------------------------
    def prompt(self, sample: Sample) -> str:
        return PREFIX + sample.instruction

    def target_text(self, sample: Sample) -> str:
        return ANSWER

    # ---- predictions -------------------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> tuple[dict[int, Counts], ...]:
        n = len(sample.target)
        if not isinstance(obj, dict) or set(obj) != {"frames"}:
            raise PredictionError("prediction must be an object with exactly one key, 'frames'")
        frames = obj["frames"]
        if not isinstance(frames, list):
            raise PredictionError(f"'frames' must be a list of {n} objects, got {type(frames).__name__}")
        if len(frames) != n:
            raise PredictionError(
                f"'frames' must hold {n} objects, one per annotated frame "
                f"({sample.meta['label']} video), got {len(frames)}"
            )
        objs, whats, keys = [], [], []
        for i, frame in enumerate(frames):
            if not isinstance(frame, dict):
                raise PredictionError(
                    f"frame {i} must be an object {{class index: COCO RLE}}, got {type(frame).__name__}"
                )
            for key, rle in frame.items():
                if not (isinstance(key, str) and key.isdigit() and key == str(int(key)) and int(key) < N_CLASSES):
                    raise PredictionError(
                        f"frame {i}: class key must be an index '0'..'{N_CLASSES - 1}' as a string, got {key!r}"
                    )
                objs.append(rle)
                whats.append(f"frame {i} class {key}")
                keys.append((i, int(key)))
        parsed = check_rles(objs, [(SIDE, SIDE)] * len(objs), whats)
        per_frame: list[dict[int, Counts]] = [{} for _ in range(n)]
        for (i, c), counts in zip(keys, parsed, strict=True):
            per_frame[i][c] = counts
        clash = first_overlap([list(f.values()) for f in per_frame])
        if clash is not None:
            i, a, b = clash
            ca, cb = list(per_frame[i])[a], list(per_frame[i])[b]
            raise PredictionError(f"frame {i}: the masks of classes {ca} and {cb} claim the same pixel")
        # Pixels in no mask are background, so an explicit background mask changes nothing.
        return tuple({c: m for c, m in f.items() if c != 0} for f in per_frame)

    def empty_prediction(self, sample: Sample) -> tuple[dict[int, Counts], ...]:
        return tuple({} for _ in sample.target)

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {
            "frames": [
                {
                    str(c): {"size": [SIDE, SIDE], "counts": counts_to_string(m)}
                    for c, m in zip(f.classes, f.counts, strict=True)
                    if c != 0
                }
                for f in sample.target
            ]
        }

    # ---- scoring -----------------------------------------------------------------------------------------------
    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        """Per video: one record per (frame, class) with a non-empty union: its IoU and F (float32 as official)."""
        n_pix = SIDE * SIDE
        empty = np.array([n_pix], dtype=np.int64)  # a mask with no foreground
        # Each predicted class mask against the same class in the GT and against the GT background (the GT classes
        # partition the frame, so its overlap with the GT foreground is its area minus the background overlap).
        pred_masks: list[Counts] = []
        gt_same: list[Counts] = []
        gt_bg: list[Counts] = []
        for sample, pred in zip(samples, predictions, strict=True):
            for truth, frame in zip(sample.target, pred, strict=True):
                if frame:
                    bg = truth.of(0)
                    for c, m in frame.items():
                        pred_masks.append(m)
                        same = truth.of(c)
                        gt_same.append(same if same is not None else empty)
                        gt_bg.append(bg if bg is not None else empty)
        m = len(pred_masks)
        overlap, area, _ = overlap_counts(pred_masks * 2, gt_same + gt_bg)
        inter_same = overlap[:m].tolist()
        pred_area = area[:m].tolist()
        inter_fg = (area[:m] - overlap[m:]).tolist()
        # One row per (frame, class) of the whole split, videos one after another; ``ends`` closes each video.
        cls: list[int] = []
        pos: list[int] = []
        inter: list[int] = []
        parea: list[int] = []
        garea: list[int] = []
        ends: list[int] = []
        k = 0
        for sample, pred in zip(samples, predictions, strict=True):
            for t, (truth, frame) in enumerate(zip(sample.target, pred, strict=True)):
                gt_area = dict(zip(truth.classes, truth.areas, strict=True))
                pred_fg = pred_fg_gt = 0
                for c in frame:
                    cls.append(c)
                    pos.append(t)
                    inter.append(inter_same[k])
                    parea.append(pred_area[k])
                    garea.append(gt_area.get(c, 0))
                    pred_fg += pred_area[k]
                    pred_fg_gt += inter_fg[k]
                    k += 1
                for c, a in gt_area.items():  # ground-truth classes the prediction does not name
                    if c != 0 and c not in frame:
                        cls.append(c)
                        pos.append(t)
                        inter.append(0)
                        parea.append(0)
                        garea.append(a)
                gt_bg_area = gt_area.get(0, 0)
                cls.append(0)
                pos.append(t)
                inter.append(n_pix - (pred_fg + (n_pix - gt_bg_area) - pred_fg_gt))
                parea.append(n_pix - pred_fg)
                garea.append(gt_bg_area)
            for t in range(len(sample.target), PADDED_FRAMES):  # official padding: background frames
                cls.append(0)
                pos.append(t)
                inter.append(n_pix)
                parea.append(n_pix)
                garea.append(n_pix)
            ends.append(len(cls))
        i, p, g = (np.array(v, dtype=np.int64) for v in (inter, parea, garea))
        union = p + g - i
        keep = union > 0  # cls_count counts a class where the union is non-empty; elsewhere IoU and F are 0
        kept_ends = np.cumsum(keep)[np.array(ends, dtype=np.int64) - 1].tolist() if ends else []
        columns = {
            "cls": np.array(cls, dtype=np.int64)[keep].tolist(),
            "pos": np.array(pos, dtype=np.int64)[keep].tolist(),
            "iou": class_iou(i[keep], union[keep]).tolist(),  # float32 -> float, as float(v) of each value
            "f": f_beta(i[keep], p[keep], g[keep]).tolist(),
        }
        stats = []
        start = 0
        for sample, stop in zip(samples, kept_ends, strict=True):
            stats.append({**{key: v[start:stop] for key, v in columns.items()}, "n_annotated": len(sample.target)})
            start = stop
        return stats

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return aggregate_classes(stats, self.eval_batch_videos)


def aggregate_classes(stats: Sequence[Mapping[str, Any]], batch_videos: int) -> dict[str, float]:
    """mIoU and F (0-100) of the official test loop over ``stats`` in order, ``batch_videos`` videos a batch.

    Per batch, ``_batch_miou_fscore`` sums each class's per-frame IoU and F over the batch's frames in order
    (float32, frame by frame); test.py adds the batch sums to its running per-class sums (float32). Then per class
    sum / count, NaN (never counted) -> 0, and the mean over all 71 classes.
    """
    if not stats:
        return {"mIoU": 0.0, "F": 0.0}
    lens = np.array([len(s["cls"]) for s in stats], dtype=np.int64)
    video = np.repeat(np.arange(len(stats)), lens)
    cls = np.concatenate([np.asarray(s["cls"], dtype=np.int64) for s in stats])
    pos = np.concatenate([np.asarray(s["pos"], dtype=np.int64) for s in stats])
    iou = np.concatenate([np.asarray(s["iou"], dtype=_F32) for s in stats])
    f = np.concatenate([np.asarray(s["f"], dtype=_F32) for s in stats])
    n_batches = -(-len(stats) // batch_videos)
    batch = video // batch_videos
    slot = (video % batch_videos) * PADDED_FRAMES + pos  # frame order inside the batch's [B*10] stack
    iou_b = np.zeros((n_batches, N_CLASSES), dtype=_F32)
    f_b = np.zeros((n_batches, N_CLASSES), dtype=_F32)
    # One class appears at most once per frame, so each slot adds to distinct (batch, class) cells: a loop over
    # the <= 40 slots reproduces the official frame-by-frame float32 sums exactly.
    for s in np.unique(slot):
        sel = slot == s
        b, c = batch[sel], cls[sel]
        iou_b[b, c] = iou_b[b, c] + iou[sel]
        f_b[b, c] = f_b[b, c] + f[sel]
    iou_sum = np.cumsum(iou_b, axis=0, dtype=_F32)[-1]  # miou_pc += _miou_pc, batch after batch
    f_sum = np.cumsum(f_b, axis=0, dtype=_F32)[-1]
    count = np.bincount(cls, minlength=N_CLASSES).astype(_F32)
    with np.errstate(invalid="ignore", divide="ignore"):
        miou_pc = np.nan_to_num(iou_sum / count, nan=0.0).astype(_F32)
        f_pc = np.nan_to_num(f_sum / count, nan=0.0).astype(_F32)
    return {"mIoU": 100.0 * float(_torch_mean(miou_pc)), "F": 100.0 * float(_torch_mean(f_pc))}


def _torch_mean(values: np.ndarray) -> np.float32:
    """``torch.mean`` of a float32 CPU tensor: the sum rounded to float32, divided by the count in float32.
    (PyTorch's vectorised sum of 71 values may differ from the correctly rounded sum by an ulp.)"""
    return _F32(np.sum(values.astype(np.float64))) / _F32(values.size)
