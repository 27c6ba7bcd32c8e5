"""UnAV-100 dense audio-visual event localisation (Geng et al., CVPR 2023; ttgeng233/UnAV).

Samples are the videos of one ``subset`` of ``unav100_annotations.json``, in file order; the target is the video's
events after the official duplicate removal. The metric is the official ``ANETdetection`` (libs/utils/metrics.py)
at the tIoU thresholds of libs/datasets/unav100.py, ``np.linspace(0.1, 0.9, 9)``: mAP per threshold and their mean.
AP pools the predictions of all videos, so a sample's stats carry its ground truth and predicted segments and
``aggregate`` recomputes the mAP from any list of them (a video drawn twice by the bootstrap counts twice). See
docs/tasks/unav.md for every quirk and decision (ranking of text predictions, ties, the 100-segment cap).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.layouts.unav import ANNOTATION_DIR, ANNOTATION_FILE, SUBSETS
from crab_eval.metrics.detection import UNAV_THRESHOLDS, detection_ap
from crab_eval.readers.answer_tags import vocabulary_index, vocabulary_key
from crab_eval.readers.free_text import build_search_index, labelled_ranges, strip_special_tokens
from crab_eval.readers.json_list import read_json_file
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task

# Crab+'s UnAV instruction (GeWu-Lab/Crab_Plus dataset/qwen2_5_omni/omni_dataset.py, add_unav_samples).
INSTRUCTION = "Please describe the events and time range that occurred in the video."
# The official test config's max_seg_num (configs/avel_unav100.yaml): the model never emits more per video, and
# without a cap extra low-ranked guesses can only raise AP. More is an error (structured) or unparsed (text).
MAX_SEGMENTS = 100
DUPLICATE_TOL = 1e-3  # remove_duplicate_annotations: same label_id, start and end within 1e-3 s
THRESHOLD_NAMES = tuple(f"map_{round(100 * t)}" for t in UNAV_THRESHOLDS)
STAT_KEYS = ("gt_label", "gt_start", "gt_end", "pred_label", "pred_start", "pred_end", "pred_score")

# ---- answer template: <event>people eating, (0 3)(7 10)</event>, one tag per event class -------------------
_TAG_RE = re.compile(r"<\s*event\s*>(.*?)<\s*/\s*event\s*>", re.IGNORECASE | re.DOTALL)
_NUM = r"\d+(?:\.\d*)?|\.\d+"
_SEP = r"(?:\s*[,\-]\s*|\s+)"  # "(0 3)", "(0,3)", "(0 - 3)"
_RANGE = rf"[(\[]\s*(?:{_NUM}){_SEP}(?:{_NUM})\s*[)\]]"
_RANGE_RE = re.compile(rf"[(\[]\s*({_NUM}){_SEP}({_NUM})\s*[)\]]")
# The label is the shortest text before the ranges (labels may hold commas); the comma after it is optional.
_ITEM_RE = re.compile(rf"\s*(.+?)\s*,?\s*((?:{_RANGE}\s*,?\s*)+)[;,]?\s*", re.DOTALL)

Segments = tuple[tuple[int, float, float, float], ...]  # internal prediction: (label_id, start, end, score)


def _seconds(value: float) -> str:
    """Seconds as written in the answer: whole seconds without a decimal point, others exactly (repr)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _line_of(text: str, video_id: str) -> int | None:
    """Line of the video's key in the file, for error messages (None if not found); only called on errors, since
    a search per video would make loading quadratic."""
    at = text.find(json.dumps(video_id) + ":")
    return None if at < 0 else text.count("\n", 0, at) + 1


_NUMBER_TYPES = (int, float)
_MAX_FLOAT = sys.float_info.max
_KEYS = ("label", "start", "end")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # a JSON integer beyond the float range
        return None
    return value if math.isfinite(value) else None


def _dedup(events: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Official remove_duplicate_annotations: drop an event whose label_id matches a kept one with start and end
    within 1e-3 s (compared with the kept events, in order)."""
    kept: list[tuple[int, float, float]] = []
    for label, start, end in events:
        if not any(
            abs(start - s) <= DUPLICATE_TOL and abs(end - e) <= DUPLICATE_TOL and label == lab for lab, s, e in kept
        ):
            kept.append((label, start, end))
    return kept


def _segment_problem(item: Any, where: str, label_ids: Mapping[str, int]) -> str:
    """What is wrong with a prediction segment that failed the fast checks."""
    if not isinstance(item, dict) or not {"label", "start", "end"} <= set(item) <= {*_KEYS, "score"}:
        return f"{where} must be an object with label, start, end and optionally score"
    label = item["label"]
    if not isinstance(label, str) or label not in label_ids:
        return f"{where}: unknown label {label!r}; expected a label of the annotation file"
    start, end = _number(item["start"]), _number(item["end"])
    if start is None or end is None:
        return f"{where}: start and end must be finite numbers of seconds"
    if not 0 <= start <= end:
        return f"{where}: need 0 <= start <= end, got {item['start']!r}, {item['end']!r}"
    return f"{where}: score must be a finite number, got {item.get('score')!r}"


@dataclass(frozen=True)
class Labels:
    """The context of a UnAV split: the file's label -> label_id table (the official label_dict), its inverse,
    and the spellings of the labels that ``parse`` accepts."""

    label_ids: Mapping[str, int]
    label_names: Mapping[int, str]
    name_index: Mapping[str, str]  # model spellings -> label

    @classmethod
    def of(cls, label_ids: Mapping[str, int]) -> Labels:
        """Raises ``ValueError`` if two labels share a spelling key."""
        names = {i: name for name, i in label_ids.items()}
        return cls(dict(label_ids), names, vocabulary_index(label_ids))

    @cached_property
    def search_index(self) -> dict[str, str]:
        """Label mentions in prose (the ``flexible`` tier)."""
        return build_search_index(list(self.label_ids))


class UnAVTask(Task):
    id = "unav"
    version = "1"
    description = "UnAV-100 dense audio-visual event localisation: detection mAP at tIoU 0.1..0.9 (official)"
    splits = ("test", "val", "train")
    metrics = (
        *(
            MetricSpec(name, description=f"mAP at tIoU {t:.1f} (official ANETdetection, interpolated AP)")
            for name, t in zip(THRESHOLD_NAMES, UNAV_THRESHOLDS, strict=True)
        ),
        MetricSpec("map_avg", description="mean of the nine mAPs at tIoU 0.1:0.1:0.9 (the official average)"),
    )
    main_metric = "map_avg"

    # ---- official files -> samples ---------------------------------------------------------------------------
    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        return [self._annotation_path(Path(data_dir))]

    @staticmethod
    def _annotation_path(data_dir: Path) -> Path:
        # The release keeps the file in annotations/; a copy beside the other files is accepted too.
        for path in (data_dir / ANNOTATION_DIR / ANNOTATION_FILE, data_dir / ANNOTATION_FILE):
            if path.is_file():
                return path
        raise AnnotationError(
            f"official annotation file not found (also looked for ./{ANNOTATION_FILE})",
            data_dir / ANNOTATION_DIR / ANNOTATION_FILE,
        )

    def _read_database(self, path: Path) -> tuple[str, dict[str, Any]]:
        text, root = read_json_file(path)
        if not isinstance(root, dict) or not isinstance(root.get("database"), dict):
            raise AnnotationError('expected an object with a "database" object (ActivityNet format)', path)
        return text, root["database"]

    def _events(self, path: Path, text: str, video_id: str, entry: Any) -> list[tuple[str, Any, float, float]]:
        """(label, label_id or None, start, end) of one database entry, validated (a tight loop: the file holds
        all 10,790 videos, and every one is checked)."""

        def fail(message: str) -> AnnotationError:
            return AnnotationError(message, path, _line_of(text, video_id))

        if type(entry) is not dict or type(entry.get("subset")) is not str:
            raise fail(f"video {video_id!r}: expected an object with a 'subset' string")
        annotations = entry.get("annotations")
        if type(annotations) is not list:
            raise fail(f"video {video_id!r}: 'annotations' must be a list")
        if "duration" in entry and (_number(entry["duration"]) is None or entry["duration"] < 0):
            raise fail(f"video {video_id!r}: bad duration {entry['duration']!r}")
        events = []
        for i, event in enumerate(annotations):
            where = f"video {video_id!r}, annotations[{i}]"
            if type(event) is not dict or type(event.get("label")) is not str or not event["label"]:
                raise fail(f"{where}: expected an object with a 'label' string")
            segment = event.get("segment")
            if type(segment) is not list or len(segment) != 2:
                raise fail(f"{where}: 'segment' must be [start, end] in seconds")
            start, end = segment
            # type() excludes bools; NaN fails the comparison below, and JSON has no infinities.
            if type(start) not in _NUMBER_TYPES or type(end) not in _NUMBER_TYPES or not 0 <= start <= end < math.inf:
                # zero-length events are kept: the official tIoU handles them (docs)
                raise fail(f"{where}: 'segment' must be [start, end] seconds with 0 <= start <= end, got {segment!r}")
            label_id = event.get("label_id")
            if label_id is not None and (type(label_id) is not int or label_id < 0):
                raise fail(f"{where}: 'label_id' must be a non-negative integer")
            events.append((event["label"], label_id, float(start), float(end)))
        return events

    def _label_ids(self, path: Path, text: str, entries: dict[str, list]) -> dict[str, int]:
        """Label -> label_id over the whole file (the official label_dict); ids by sorted name if none are given."""
        with_id = {eid is not None for events in entries.values() for _, eid, _, _ in events}
        if with_id == {True, False}:
            raise AnnotationError("some events have a 'label_id' and others not", path)
        if with_id != {True}:
            names = sorted({label for events in entries.values() for label, _, _, _ in events})
            return {name: i for i, name in enumerate(names)}
        ids: dict[str, int] = {}
        names_of: dict[int, str] = {}
        for video_id, events in entries.items():
            for label, label_id, _, _ in events:
                if ids.setdefault(label, label_id) != label_id or names_of.setdefault(label_id, label) != label:
                    raise AnnotationError(
                        f"label {label!r} / label_id {label_id} disagree with earlier events",
                        path,
                        _line_of(text, video_id),
                    )
        return ids

    def read_split(self, data_dir: Path, split: str) -> Split:
        path = self._annotation_path(data_dir)
        text, db = self._read_database(path)
        entries = {vid: self._events(path, text, vid, entry) for vid, entry in db.items()}
        label_ids = self._label_ids(path, text, entries)
        try:
            labels = Labels.of(label_ids)
        except ValueError as exc:
            raise AnnotationError(f"ambiguous label names: {exc}", path) from None
        samples = []
        for video_id, events in entries.items():
            entry = db[video_id]
            if entry["subset"].lower() not in SUBSETS[split]:
                continue
            target = _dedup([(label_ids[label], start, end) for label, _, start, end in events])
            samples.append(
                Sample(
                    id=video_id,
                    instruction=INSTRUCTION,
                    target=tuple(target),
                    group=video_id,
                    media={
                        "video": f"raw_videos/{video_id}.mp4",
                        "features": [f"av_features/{video_id}_{kind}.npy" for kind in ("rgb", "flow", "vggish")],
                    },
                    # The label name of each target event: the answer text and the oracle write names.
                    meta={
                        "duration": entry.get("duration"),
                        "subset": entry["subset"],
                        "event_labels": tuple(labels.label_names[label] for label, _, _ in target),
                    },
                )
            )
        return Split(self.id, split, data_dir, samples, labels)

    # ---- text (Crab's template) ------------------------------------------------------------------------------
    def target_text(self, sample: Sample) -> str:
        """One ``<event>label, (s e)(s e)</event>`` per class, classes by first onset, ranges in time order."""
        names = dict(zip((label for label, _, _ in sample.target), sample.meta["event_labels"], strict=True))
        by_label: dict[int, list[tuple[float, float]]] = {}
        for label, start, end in sorted(sample.target, key=lambda e: (e[1], e[2], e[0])):
            by_label.setdefault(label, []).append((start, end))
        return " ".join(
            f"<event>{names[label]}, " + "".join(f"({_seconds(s)} {_seconds(e)})" for s, e in ranges) + "</event>"
            for label, ranges in by_label.items()
        )

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        """Segments of every ``<event>`` tag, each with score 1.0, in order of appearance (the ranking among the
        tied scores); None without tags, or if a tag is malformed, names an unknown label, holds a range with
        start > end, or the answer has more than 100 segments."""
        matches = list(_TAG_RE.finditer(text))
        if not matches:
            return None
        segments: list[dict[str, Any]] = []
        for match in matches:
            body, pos = match.group(1), 0
            while body[pos:].strip():
                item = _ITEM_RE.match(body, pos)
                if item is None:
                    return None
                pos = item.end()
                label = split.context.name_index.get(vocabulary_key(item.group(1)))
                if label is None:
                    return None
                for start_text, end_text in _RANGE_RE.findall(item.group(2)):
                    start, end = float(start_text), float(end_text)
                    if start > end:
                        return None
                    segments.append({"label": label, "start": start, "end": end, "score": 1.0})
        if len(segments) > MAX_SEGMENTS:
            return None
        return {"segments": segments}

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """The template, else prose: labels of the file, each followed by its ranges ("dog barking from 0 to 3.5
        and 7-10, man speaking [2, 4]"), score 1.0 in order of appearance. None when a label has no range, a range
        comes before any label or has start > end, or more than 100 segments."""
        strict = self.parse(text, split)
        if strict is not None:
            return strict
        items = labelled_ranges(strip_special_tokens(text), split.context.search_index)
        if items is None:
            return None
        found = [(item.label, start, end) for item in items for start, end in item.ranges]
        if len(found) > MAX_SEGMENTS or any(start > end for _, start, end in found):
            return None
        return {"segments": [{"label": lab, "start": s, "end": e, "score": 1.0} for lab, s, e in found]}

    # ---- structured predictions ------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> Segments:
        if not isinstance(obj, dict) or set(obj) != {"segments"}:
            raise PredictionError('prediction must be an object {"segments": [...]}')
        items = obj["segments"]
        if not isinstance(items, list):
            raise PredictionError(f"'segments' must be a list, got {type(items).__name__}")
        if len(items) > MAX_SEGMENTS:
            raise PredictionError(f"at most {MAX_SEGMENTS} segments per video (official max_seg_num), got {len(items)}")
        out = []
        label_ids = split.context.label_ids
        for i, item in enumerate(items):
            # The common case is checked with cheap type tests; anything odd goes to the detailed checks.
            if type(item) is dict and 3 <= len(item) <= 4:
                label: Any = item.get("label")
                start: Any = item.get("start")
                end: Any = item.get("end")
                score: Any = item.get("score", 1.0)
                if (
                    (len(item) == 3 or "score" in item)
                    and type(start) in _NUMBER_TYPES
                    and type(end) in _NUMBER_TYPES
                    and type(score) in _NUMBER_TYPES
                    # bounded by the largest float, not inf: a JSON integer beyond it would overflow float()
                    and 0 <= start <= end <= _MAX_FLOAT
                    and -_MAX_FLOAT <= score <= _MAX_FLOAT
                    and type(label) is str  # before the lookup: a list or dict label is unhashable
                    and label in label_ids
                ):
                    out.append((label_ids[label], float(start), float(end), float(score)))
                    continue
            raise PredictionError(_segment_problem(item, f"segments[{i}]", label_ids))
        return tuple(out)

    def empty_prediction(self, sample: Sample) -> Segments:
        return ()

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {
            "segments": [
                {"label": name, "start": start, "end": end, "score": 1.0}
                for (_, start, end), name in zip(sample.target, sample.meta["event_labels"], strict=True)
            ]
        }

    # ---- scoring ---------------------------------------------------------------------------------------------
    def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
        gt = list(sample.target)
        pred = list(prediction)
        return {
            "gt_label": [int(g[0]) for g in gt],
            "gt_start": [float(g[1]) for g in gt],
            "gt_end": [float(g[2]) for g in gt],
            "pred_label": [int(p[0]) for p in pred],
            "pred_start": [float(p[1]) for p in pred],
            "pred_end": [float(p[2]) for p in pred],
            "pred_score": [float(p[3]) for p in pred],
        }

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        if not stats:
            raise ValueError("cannot aggregate UnAV metrics over no samples")
        # Each row is its own video (its position), so a video drawn twice by the bootstrap is two videos.
        columns = {key: list(chain.from_iterable(row[key] for row in stats)) for key in STAT_KEYS}
        n_gt = [len(row["gt_label"]) for row in stats]
        n_pred = [len(row["pred_label"]) for row in stats]
        ap, classes = detection_ap(
            np.repeat(np.arange(len(stats)), n_gt),
            np.array(columns["gt_label"], dtype=np.int64),
            np.array(columns["gt_start"], dtype=np.float64),
            np.array(columns["gt_end"], dtype=np.float64),
            np.repeat(np.arange(len(stats)), n_pred),
            np.array(columns["pred_label"], dtype=np.int64),
            np.array(columns["pred_start"], dtype=np.float64),
            np.array(columns["pred_end"], dtype=np.float64),
            np.array(columns["pred_score"], dtype=np.float64),
        )
        if len(classes) == 0:  # no ground truth at all: mAP is undefined; reported as 0 (documented)
            return {name: 0.0 for name in (*THRESHOLD_NAMES, "map_avg")}
        per_threshold = ap.mean(axis=1)
        metrics = {name: 100.0 * float(v) for name, v in zip(THRESHOLD_NAMES, per_threshold, strict=True)}
        metrics["map_avg"] = 100.0 * float(per_threshold.mean())
        return metrics
