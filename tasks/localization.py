"""Sound-source localisation: VGG-SS and Flickr-SoundNet (hche11/Localizing-Visual-Sounds-the-Hard-Way) and Crab's
ARIG (audio-referred image grounding on AVSBench v1s frames).

All three are scored with the official cIoU / AUC of that repository (``crab_eval.metrics.localization``); Crab
publishes no ARIG scorer, so ARIG's boxes go through the same machinery. A prediction is a box, a list of boxes
(their union) or a heatmap file. See docs/tasks/vggss.md for every quirk and where it comes from.
"""

from __future__ import annotations

import csv
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.io import read_json
from crab_eval.layouts.localization import (
    ARIG_CRAB_FILE,
    ARIG_NO_OBJECT,
    FLICKR_ANNOTATIONS,
    FLICKR_FRAME,
    FLICKR_TEST_CSV,
    VGGSS_JSON,
    VGGSS_TEST_CSV,
    arig_split_file,
)
from crab_eval.metrics.localization import (
    SIZE,
    Bounds,
    binarise_heatmap,
    bounds_to_unit_box,
    ciou_scores,
    localization_metrics,
    pack_mask,
    pixel_to_unit,
    slice_bounds,
    unit_box_bounds,
)
from crab_eval.readers.free_text import find_boxes, strip_special_tokens
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task, require_file, unique_ids

# Crab feeds ARIG one frame, not a video (GeWu-Lab/Crab dataset/unified_dataset.py, add_arig_samples, test split).
IMAGE_PREFIX = (
    "This is an image:\n<image_start><image><image_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"
)
INSTRUCTION = "Please recognize the category of object that makes the sound and then output the location coordinates."

MAX_BOXES = 100  # per prediction; more is a broken file, not a localisation
MAX_HEATMAP_PIXELS = 1 << 24  # 4096 x 4096; bounds the memory one line can claim
MAX_SIDE = 32767  # cv2.resize's limit
_NUMBER = r"\d+(?:\.\d+)?"
_OBJ_RE = re.compile(r"<\s*obj\s*>(.*?)<\s*/\s*obj\s*>", re.IGNORECASE | re.DOTALL)
# "(x1,y1)(x2,y2)"; the comma between the points of Crab's older template and spaces are tolerated.
_POINTS_RE = re.compile(rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)\s*,?\s*\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)")


def parse_obj_boxes(text: str) -> dict[str, Any] | None:
    """``<obj>(x1,y1)(x2,y2)</obj>`` tags (pixels of the 224x224 frame) -> ``{"bbox"}`` or, for several tags (Crab's
    multi-object template), ``{"bboxes"}``; None if there is no tag, a tag body is not two points, a coordinate
    lies outside [0, 224] or a corner pair is reversed."""
    bodies = _OBJ_RE.findall(text)
    if not bodies:
        return None
    boxes = []
    for body in bodies:
        match = _POINTS_RE.fullmatch(body.strip())
        if match is None:
            return None
        x1, y1, x2, y2 = (float(g) for g in match.groups())
        if max(x1, y1, x2, y2) > SIZE or x1 > x2 or y1 > y2:
            return None
        boxes.append([pixel_to_unit(v) for v in (x1, y1, x2, y2)])
    return {"bbox": boxes[0]} if len(boxes) == 1 else {"bboxes": boxes}


def _obj_tag(b: Bounds) -> str:
    r0, r1, c0, c1 = b
    return f"<obj>({c0},{r0})({c1},{r1})</obj>"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_unit_box(box: Any, what: str) -> Bounds | None:
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        raise PredictionError(f"{what} must be a list of 4 numbers [x1, y1, x2, y2]")
    # the range test first: math.isfinite of a JSON integer beyond the float range raises OverflowError
    if not all(0 <= v <= 1 and math.isfinite(v) for v in box):
        raise PredictionError(f"{what} coordinates must be finite and normalised to [0, 1], got {box}")
    if box[0] > box[2] or box[1] > box[3]:
        raise PredictionError(f"{what} has x1 > x2 or y1 > y2: {box}")
    return unit_box_bounds(box)


def _load_heatmap(ref: Any, base_dir: Path) -> np.ndarray:
    if not isinstance(ref, str) or not ref:
        raise PredictionError("'heatmap' must be the path of a .npy file")
    path = Path(ref) if Path(ref).is_absolute() else Path(base_dir) / ref
    if path.suffix.lower() != ".npy":
        raise PredictionError(f"heatmap {ref!r} is not a .npy file")
    if not path.is_file():
        raise PredictionError(f"heatmap file {ref!r} not found (relative paths resolve beside the prediction file)")
    if path.stat().st_size > 8 * MAX_HEATMAP_PIXELS + 4096:  # before reading: one line may not claim gigabytes
        raise PredictionError(f"heatmap {ref!r} is larger than {MAX_HEATMAP_PIXELS} float64 pixels")
    try:
        array = np.load(path, allow_pickle=False)  # object arrays need pickle: refused here
    except (ValueError, OSError, EOFError) as exc:
        raise PredictionError(f"heatmap {ref!r} is not a readable .npy array ({exc})") from None
    bad_shape = not isinstance(array, np.ndarray) or array.ndim != 2 or array.size == 0 or max(array.shape) > MAX_SIDE
    if bad_shape or array.dtype.kind not in "biuf":
        what = f"{array.dtype} of shape {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise PredictionError(f"heatmap {ref!r} must be a 2-D numeric array, 1 to {MAX_SIDE} a side, got {what}")
    # float32 is what the official model's heatmap is; a float64 value beyond its range is an error, not an inf.
    with np.errstate(over="ignore"):
        heatmap = array.astype(np.float32)
    if not np.isfinite(heatmap).all():
        raise PredictionError(f"heatmap {ref!r} holds NaN or infinite values (or values beyond float32)")
    return heatmap


class LocalizationTask(Task):
    """Shared adapter: subclasses load their official files into samples whose target is a tuple of box bounds."""

    version = "1"
    splits: ClassVar[tuple[str, ...]] = ("test",)
    metrics = (
        MetricSpec("cIoU", description="share of samples with cIoU >= 0.5 after the official median binarisation"),
        MetricSpec("AUC", description="area under the share-with-cIoU>=t curve, t = 0, 0.05, ..., 1 (x100)"),
    )
    main_metric = "cIoU"
    consensus: ClassVar[bool] = False  # Flickr: ground truth is the halved, clipped sum of the annotators' boxes

    # ---- text ---------------------------------------------------------------------------------------------------
    def prompt(self, sample: Sample) -> str:
        return IMAGE_PREFIX + sample.instruction

    def target_text(self, sample: Sample) -> str:
        tags = "".join(_obj_tag(b) for b in sample.target)
        obj = sample.meta.get("object")
        head = f"The sounding object is {obj}. " if obj else ""
        return f"{head}Its coordinates are {tags}."

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        return parse_obj_boxes(text)

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """The ``<obj>`` template, else one box anywhere in the text, in pixels of the 224 x 224 frame:
        ``[x1,y1,x2,y2]``, ``(x1,y1)(x2,y2)``, ``(x1,y1),(x2,y2)``. Two different boxes are ambiguous, and a box
        outside the frame or with reversed corners is no box (None)."""
        strict = self.parse(text, split)
        if strict is not None:
            return strict
        boxes = set(find_boxes(strip_special_tokens(text)))
        if len(boxes) != 1:
            return None
        x1, y1, x2, y2 = boxes.pop()
        if max(x1, y1, x2, y2) > SIZE or x1 > x2 or y1 > y2:
            return None
        return {"bbox": [pixel_to_unit(v) for v in (x1, y1, x2, y2)]}

    # ---- structured predictions -------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> Any:
        if not isinstance(obj, dict) or len(obj) != 1 or next(iter(obj)) not in ("bbox", "bboxes", "heatmap"):
            raise PredictionError('expected {"bbox": [x1, y1, x2, y2]}, {"bboxes": [[...], ...]} or {"heatmap": PATH}')
        key, value = next(iter(obj.items()))
        if key == "heatmap":
            heatmap = _load_heatmap(value, base_dir)
            try:
                return pack_mask(binarise_heatmap(heatmap))
            except ValueError as exc:
                raise PredictionError(f"heatmap {value!r}: {exc}") from None
        boxes = [value] if key == "bbox" else value
        if key == "bboxes" and (not isinstance(value, list) or not 1 <= len(value) <= MAX_BOXES):
            raise PredictionError(f"'bboxes' must be a list of 1 to {MAX_BOXES} boxes")
        bounds = [_check_unit_box(b, key if key == "bbox" else f"bboxes[{i}]") for i, b in enumerate(boxes)]
        # A box with an empty raster predicts nothing (see the doc: not the whole image the official code would
        # make of an all-zero map).
        return tuple(b for b in bounds if b is not None)

    def empty_prediction(self, sample: Sample) -> Any:
        return ()  # nothing predicted: cIoU 0 (never the whole-image map an all-zero heatmap becomes officially)

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        boxes = [bounds_to_unit_box(b) for b in sample.target]
        if not boxes:
            return {"bbox": [0.0, 0.0, 0.0, 0.0]}  # empty ground truth: nothing can score
        return {"bbox": boxes[0]} if len(boxes) == 1 else {"bboxes": boxes}

    # ---- scoring ------------------------------------------------------------------------------------------------
    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        cious = ciou_scores([s.target for s in samples], predictions, consensus=self.consensus)
        return [{"ciou": c} for c in cious]

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return localization_metrics([s["ciou"] for s in stats])


def _read_ids(path: Path) -> list[tuple[int, str]]:
    """(line, id) from column 0 of a test CSV, as ``csv.reader`` gives it (blank rows skipped)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [(n, row[0]) for n, row in enumerate(csv.reader(handle), start=1) if row and any(row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(f"unreadable CSV ({exc})", path) from None
    seen: dict[str, int] = {}
    for line, file_id in rows:
        if not file_id:
            raise AnnotationError("empty file id in column 0", path, line)
        if file_id in seen:
            raise AnnotationError(f"file id {file_id!r} repeats line {seen[file_id]}", path, line)
        seen[file_id] = line
    return rows


class VggssTask(LocalizationTask):
    id = "vggss"
    description = "VGG-Sound Source localisation: official cIoU and AUC (Chen et al., CVPR 2021)"

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        return [Path(data_dir) / VGGSS_TEST_CSV, Path(data_dir) / VGGSS_JSON]

    def read_split(self, data_dir: Path, split: str) -> Split:
        csv_path = require_file(Path(data_dir) / VGGSS_TEST_CSV)
        json_path = require_file(Path(data_dir) / VGGSS_JSON)
        records = read_json(json_path, AnnotationError)
        if not isinstance(records, list):
            raise AnnotationError("expected a JSON list of {file, class, bbox} objects", json_path)
        by_file: dict[str, tuple[str, list[Any]]] = {}
        for n, rec in enumerate(records):
            if not isinstance(rec, dict) or not isinstance(rec.get("file"), str) or "bbox" not in rec:
                raise AnnotationError(f"record {n} must be an object with a string 'file' and a 'bbox' list", json_path)
            boxes = rec["bbox"]
            ok = isinstance(boxes, list) and all(
                isinstance(b, list) and len(b) == 4 and all(_is_number(v) and math.isfinite(v) for v in b)
                for b in boxes
            )
            if not ok:
                raise AnnotationError(
                    f"record {n} ({rec['file']!r}): 'bbox' must be a list of 4 finite numbers each", json_path
                )
            by_file[rec["file"]] = (str(rec.get("class", "")), boxes)  # a repeated file: the last wins, as the dict
        samples = []
        for line, file_id in _read_ids(csv_path):
            if file_id not in by_file:
                raise AnnotationError(f"file id {file_id!r} has no record in {VGGSS_JSON}", csv_path, line)
            category, boxes = by_file[file_id]
            # Official GT: int(224 * max(v, 0)) per coordinate, united; boxes that rasterise to nothing drop out.
            bounds = tuple(b for b in (unit_box_bounds(box) for box in boxes) if b is not None)
            samples.append(
                Sample(
                    id=file_id,
                    instruction=INSTRUCTION,
                    target=bounds,
                    group=file_id,
                    media={"image": f"frames/{file_id}.jpg", "audio": f"audio/{file_id}.wav"},
                    meta={"object": category, "bbox": boxes, "line": line},
                )
            )
        return Split(self.id, split, data_dir, samples)


def _flickr_boxes(path: Path) -> list[list[int]]:
    """The official Flickr reader: root -> child -> ``bbox`` grandchild; skip its first element, read 4 ints."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise AnnotationError(f"malformed XML ({exc})", path, exc.position[0]) from None
    boxes = []
    for child in root:
        for grandchild in child:
            if grandchild.tag != "bbox":
                # The official reader appends an empty box here and then fails on it (IndexError).
                raise AnnotationError(
                    f"<{grandchild.tag}> under <{child.tag}>: only <bbox> elements may sit there", path
                )
            values = [ch.text for ch in list(grandchild)[1:5]]
            if len(values) != 4:
                raise AnnotationError("a <bbox> needs a leading element and then xmin, ymin, xmax, ymax", path)
            try:
                box = [int(SIZE * int(v or "") / FLICKR_FRAME) for v in values]
            except ValueError:
                raise AnnotationError(f"<bbox> coordinates must be integers, got {values}", path) from None
            boxes.append(box)
    return boxes


class FlickrTask(LocalizationTask):
    id = "flickr"
    description = "Flickr-SoundNet localisation (249 test pairs): official cIoU and AUC on the annotator consensus"
    consensus = True

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        data_dir = Path(data_dir)
        files = [data_dir / FLICKR_TEST_CSV]
        if files[0].is_file():
            files += [data_dir / FLICKR_ANNOTATIONS / f"{i}.xml" for _, i in _read_ids(files[0])]
        return files

    def read_split(self, data_dir: Path, split: str) -> Split:
        csv_path = require_file(Path(data_dir) / FLICKR_TEST_CSV)
        samples = []
        for line, file_id in _read_ids(csv_path):
            xml_path = Path(data_dir) / FLICKR_ANNOTATIONS / f"{file_id}.xml"
            if not xml_path.is_file():
                raise AnnotationError(f"annotation of {file_id!r} not found: {xml_path}", csv_path, line)
            raw = _flickr_boxes(xml_path)
            bounds = tuple(b for b in (slice_bounds(*box) for box in raw) if b is not None)
            samples.append(
                Sample(
                    id=file_id,
                    instruction=INSTRUCTION,
                    target=bounds,
                    group=file_id,
                    media={"image": f"frames/{file_id}.jpg", "audio": f"audio/{file_id}.wav"},
                    meta={"boxes_224": raw, "line": line},
                )
            )
        return Split(self.id, split, data_dir, samples)


class ArigTask(LocalizationTask):
    id = "arig"
    description = "Crab's audio-referred image grounding (AVSBench v1s boxes), scored with the VGG-SS cIoU and AUC"
    splits = ("test", "val", "train")

    def _source(self, data_dir: Path, split: str) -> Path:
        """Crab+'s ``{split}.json`` if present, else Crab's ``v1s_grounding_samples.json`` (rows of ``split``)."""
        plus = Path(data_dir) / arig_split_file(split)
        return plus if plus.is_file() else require_file(Path(data_dir) / ARIG_CRAB_FILE)

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        return [self._source(data_dir, split)]

    def target_text(self, sample: Sample) -> str:
        # Crab's own text, with the corners exactly as annotated.
        (x1, y1), (x2, y2) = sample.meta["top_left"], sample.meta["bottom_right"]
        return f"The sounding object is {sample.meta['object']}. Its coordinates are <obj>({x1},{y1})({x2},{y2})</obj>."

    def read_split(self, data_dir: Path, split: str) -> Split:
        path = self._source(data_dir, split)
        records = read_json(path, AnnotationError)
        if not isinstance(records, list):
            raise AnnotationError("expected a JSON list of ARIG records", path)
        samples: list[Sample] = []
        for n, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise AnnotationError(f"record {n} is not an object", path)
            if "split" in rec and rec["split"] != split:
                continue
            frame = rec.get("visual_path", rec.get("frame_path"))
            corners = (rec.get("top_left"), rec.get("bottom_right"))
            if not isinstance(frame, str) or not frame:
                raise AnnotationError(f"record {n}: 'visual_path' (or 'frame_path') must be a path string", path)
            if not all(isinstance(c, list) and len(c) == 2 and all(_is_number(v) for v in c) for c in corners):
                raise AnnotationError(f"record {n} ({frame}): 'top_left' and 'bottom_right' must be [x, y]", path)
            (x1, y1), (x2, y2) = corners  # type: ignore[misc]
            if x1 == ARIG_NO_OBJECT:
                continue  # Crab's marker for "no sounding object": Crab drops these frames from its test set too
            if not all(math.isfinite(v) and 0 <= v <= SIZE for v in (x1, y1, x2, y2)):
                raise AnnotationError(
                    f"record {n} ({frame}): corners {corners} lie outside the {SIZE}x{SIZE} frame Crab's boxes use",
                    path,
                )
            if x1 > x2 or y1 > y2:
                raise AnnotationError(f"record {n} ({frame}): top_left {corners[0]} is past bottom_right", path)
            bounds = slice_bounds(int(x1), int(y1), int(x2), int(y2))
            parts = Path(frame).parts
            samples.append(
                Sample(
                    id=frame,
                    instruction=INSTRUCTION,
                    target=() if bounds is None else (bounds,),
                    group=str(Path(*parts[:-2])) if len(parts) > 2 else frame,  # the clip: its frames are correlated
                    media={"image": frame, "audio": str(rec.get("audio_path", ""))},
                    meta={"object": str(rec.get("a_obj", "")), "top_left": [x1, y1], "bottom_right": [x2, y2]},
                )
            )
        # A frame annotated twice (two objects) is two samples: "#2", "#3"... in file order.
        ids = unique_ids([s.id for s in samples], path)
        samples = [replace(s, id=i) for s, i in zip(samples, ids, strict=True)]
        return Split(self.id, split, data_dir, samples)
