"""AVE: audio-visual event localisation (Tian et al., ECCV 2018; YapengTian/AVE-ECCV18).

Each annotation row is one sample: a 10 s clip cut into ten 1 s segments, each labelled with the row's category
(segments ``StartTime <= i < EndTime``) or background. The metric is the official ``compute_acc`` of
``supervised_main.py``: per-segment 29-way labels, ``sklearn.metrics.accuracy_score`` over all segments of the
split (micro). See docs/tasks/ave.md for every quirk and where it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.additive import Additive
from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.layouts.ave import (
    ANNOTATIONS_FILE,
    BACKGROUND,
    HEADER,
    N_SEGMENTS,
    OFFICIAL_CATEGORIES,
    SPLIT_FILES,
)
from crab_eval.readers.answer_tags import vocabulary_index, vocabulary_key
from crab_eval.readers.free_text import build_search_index, find_ranges, single_mention, with_comma_parts
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task, require_file, unique_ids

# Crab's AVE instruction (GeWu-Lab/Crab dataset/unified_dataset.py, add_ave_task_samples; the same wording in
# Crab_Plus dataset/qwen2_5_omni/omni_dataset.py).
INSTRUCTION = "Please describe the events and time range that occurred in the video."

# A missing or unparsed prediction gets this label on every segment: it equals no class and not background,
# so the sample scores 0 of 10 (an all-background guess would earn credit on the background segments).
NO_LABEL = -1

_INT_RE = re.compile(r"\d+")
_EVENT_RE = re.compile(r"<\s*event\s*>(.*?)<\s*/\s*event\s*>", re.IGNORECASE | re.DOTALL)
_RANGE_RE = re.compile(r"<\s*range\s*>(.*?)<\s*/\s*range\s*>", re.IGNORECASE | re.DOTALL)
# The body of a range tag: "0,8" in Crab's outputs; brackets and a space or hyphen as separator are tolerated.
# Whole seconds only (a trailing ".0" is fine): fractional bounds have no segment reading in the template.
_RANGE_BODY_RE = re.compile(r"[\[(]?\s*(\d+)(?:\.0*)?\s*(?:,|-|\s)\s*(\d+)(?:\.0*)?\s*[\])]?")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines; the header line, if first, is dropped."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    lines = [(n, line.strip()) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if lines and lines[0][1].lower() == HEADER.lower():
        lines = lines[1:]
    return lines


def _parse_rows(path: Path) -> list[tuple[int, str, str, int, int]]:
    """(line, category, video_id, start, end) per row, validated."""
    rows = []
    for line_no, line in _read_lines(path):
        fields = [f.strip() for f in line.split("&")]
        if len(fields) != 5:
            raise AnnotationError(f"expected 5 '&'-separated fields ({HEADER}), got {len(fields)}", path, line_no)
        category, video_id, _quality, start_s, end_s = fields
        if not category or not video_id:
            raise AnnotationError("empty Category or VideoID", path, line_no)
        if category.lower() == BACKGROUND:
            raise AnnotationError(f"{BACKGROUND!r} is reserved for segments outside the event", path, line_no)
        if not (_INT_RE.fullmatch(start_s) and _INT_RE.fullmatch(end_s)):
            raise AnnotationError(
                f"StartTime and EndTime must be whole seconds, got {start_s!r} and {end_s!r}", path, line_no
            )
        start, end = int(start_s), int(end_s)
        if end > N_SEGMENTS:
            raise AnnotationError(f"EndTime {end} is past the {N_SEGMENTS} s clip", path, line_no)
        if start > end:
            raise AnnotationError(f"StartTime {start} is after EndTime {end}", path, line_no)
        rows.append((line_no, category, video_id, start, end))
    return rows


def _categories_in_order(rows: Sequence[tuple[int, str, str, int, int]]) -> tuple[str, ...]:
    """Categories by order of first appearance: the official class index."""
    return tuple(dict.fromkeys(row[1] for row in rows))


def _segment_labels(category_index: int, start: int, end: int, background: int) -> tuple[int, ...]:
    """Ten class indices: the event on segments ``start <= i < end``, background elsewhere (official labels)."""
    return tuple(category_index if start <= i < end else background for i in range(N_SEGMENTS))


@dataclass(frozen=True)
class Vocabulary:
    """A split's categories in the official class order (background is the next index), and the spellings of
    them that ``parse`` accepts: the context of an AVE split."""

    categories: tuple[str, ...]
    class_index: Mapping[str, int]
    name_index: Mapping[str, str]  # model spellings -> category

    @classmethod
    def of(cls, categories: tuple[str, ...]) -> Vocabulary:
        """Raises ``ValueError`` if two categories share a spelling key."""
        index = {name: i for i, name in enumerate(categories)}
        return cls(categories, index, vocabulary_index(categories))

    @property
    def background(self) -> int:
        return len(self.categories)

    @cached_property
    def search_index(self) -> dict[str, str]:
        """Category mentions in prose (the ``flexible`` tier)."""
        return build_search_index(with_comma_parts(self.categories))


OFFICIAL_VOCABULARY = Vocabulary.of(OFFICIAL_CATEGORIES)


def _whole_second(value: Any, name: str) -> int:
    """An int (or integral float) in [0, 10]; bools, fractions, NaN and out-of-range values are errors."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PredictionError(f"{name!r} must be a number of seconds, got {type(value).__name__}")
    if isinstance(value, float) and not (np.isfinite(value) and value.is_integer()):
        raise PredictionError(f"{name!r} must be a whole second (segments are 1 s long), got {value!r}")
    seconds = int(value)
    if not 0 <= seconds <= N_SEGMENTS:
        raise PredictionError(f"{name!r} must lie in [0, {N_SEGMENTS}], got {value!r}")
    return seconds


class AveTask(Task):
    id = "ave"
    version = "1"
    description = "AVE audio-visual event localisation: per-segment 29-way accuracy (Tian et al., ECCV 2018)"
    splits = ("test", "val", "train")
    metrics = (
        MetricSpec(
            "accuracy",
            description="per-segment accuracy over 28 events + background, micro over all 1 s segments",
        ),
    )
    main_metric = "accuracy"

    # ---- official files -> samples ----------------------------------------------------------------------------
    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        files = [Path(data_dir) / SPLIT_FILES[split]]
        annotations = Path(data_dir) / ANNOTATIONS_FILE
        if annotations.is_file():
            files.append(annotations)
        return files

    def _vocabulary(self, data_dir: Path) -> tuple[Vocabulary, str]:
        """The vocabulary and where it came from: ``Annotations.txt`` beside the split files, else built in.

        The official code takes the class index from ``Annotations.txt``; a split file alone may lack categories
        (and its own order of first appearance differs), so it cannot define the vocabulary.
        """
        path = data_dir / ANNOTATIONS_FILE
        if not path.is_file():
            return OFFICIAL_VOCABULARY, "the 28 official AVE categories"
        categories = _categories_in_order(_parse_rows(path))
        if not categories:
            raise AnnotationError("no annotation rows", path)
        try:
            return Vocabulary.of(categories), ANNOTATIONS_FILE
        except ValueError as exc:
            raise AnnotationError(f"ambiguous category names: {exc}", path) from None

    def read_split(self, data_dir: Path, split: str) -> Split:
        path = require_file(data_dir / SPLIT_FILES[split])
        vocabulary, source = self._vocabulary(data_dir)
        index = vocabulary.class_index
        rows = _parse_rows(path)
        for line_no, category, _, _, _ in rows:
            if category not in index:
                raise AnnotationError(f"category {category!r} is not in {source}", path, line_no)
        # A VideoID annotated twice in the split (another category) is a second sample, as in the official labels
        # (one row each); ids stay unique with "#2", "#3"... in file order.
        ids = unique_ids([row[2] for row in rows], path)
        samples = [
            Sample(
                id=sample_id,
                instruction=INSTRUCTION,
                target=_segment_labels(index[category], start, end, vocabulary.background),
                group=video_id,
                media={"video": f"AVE/{video_id}.mp4"},
                meta={"video_id": video_id, "category": category, "start": start, "end": end, "line": line_no},
            )
            for sample_id, (line_no, category, video_id, start, end) in zip(ids, rows, strict=True)
        ]
        return Split(self.id, split, data_dir, samples, vocabulary)

    # ---- text (Crab's template) ---------------------------------------------------------------------------------
    def target_text(self, sample: Sample) -> str:
        # The range is StartTime,EndTime exactly as annotated (Crab README: label "[0,8]" -> "<range> 0,8 </range>").
        meta = sample.meta
        return (
            f"The audible and visible event in the video is <event> {meta['category']} </event>, "
            f"and the time range is <range> {meta['start']},{meta['end']} </range>."
        )

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        events = _EVENT_RE.findall(text)
        ranges = _RANGE_RE.findall(text)
        if not events or not ranges:
            return None
        # The last complete pairs are the answer: reasoning before it may mention other guesses.
        name = split.context.name_index.get(vocabulary_key(events[-1]))
        match = _RANGE_BODY_RE.fullmatch(ranges[-1].strip())
        if name is None or match is None:
            return None
        start, end = int(match.group(1)), int(match.group(2))
        if not 0 <= start <= end <= N_SEGMENTS:
            return None
        return {"event": name, "start": start, "end": end}

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """The template, else prose naming one AVE category and one time range in whole seconds ("Flute, [9,10]",
        "event:Flute start_time:9 end_time:10", "a flute plays from 9 to 10 seconds"); two categories or two
        different ranges are ambiguous (None)."""
        strict = self.parse(text, split)
        if strict is not None:
            return strict
        vocabulary: Vocabulary = split.context
        name = single_mention(text, vocabulary.search_index)
        spans = {(r.start, r.end) for r in find_ranges(text)}
        if name is None or len(spans) != 1:
            return None
        start, end = spans.pop()
        if not (start.is_integer() and end.is_integer() and 0 <= start <= end <= N_SEGMENTS):
            return None
        return {"event": name, "start": int(start), "end": int(end)}

    # ---- structured predictions -----------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> Any:
        vocabulary: Vocabulary = split.context
        index, background = vocabulary.class_index, vocabulary.background
        if not isinstance(obj, dict):
            raise PredictionError('expected {"segments": [10 labels]} or {"event": NAME, "start": s, "end": e}')
        if set(obj) == {"segments"}:
            labels = obj["segments"]
            if not isinstance(labels, list) or len(labels) != N_SEGMENTS:
                raise PredictionError(f"'segments' must be a list of {N_SEGMENTS} labels")
            out = []
            for i, label in enumerate(labels):
                if label == BACKGROUND:
                    out.append(background)
                elif isinstance(label, str) and label in index:
                    out.append(index[label])
                else:
                    raise PredictionError(f"segment {i}: {label!r} is neither an AVE category nor {BACKGROUND!r}")
            return tuple(out)
        if set(obj) == {"event", "start", "end"}:
            event = obj["event"]
            if not isinstance(event, str) or event not in index:
                raise PredictionError(f"'event' {event!r} is not an AVE category")
            start, end = _whole_second(obj["start"], "start"), _whole_second(obj["end"], "end")
            if start > end:
                raise PredictionError(f"'start' {obj['start']!r} is after 'end' {obj['end']!r}")
            return _segment_labels(index[event], start, end, background)
        raise PredictionError(
            f'expected keys {{"segments"}} or {{"event", "start", "end"}}, got {sorted(map(str, obj))}'
        )

    def empty_prediction(self, sample: Sample) -> Any:
        return (NO_LABEL,) * N_SEGMENTS

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        meta = sample.meta
        return {"event": meta["category"], "start": meta["start"], "end": meta["end"]}

    # ---- scoring --------------------------------------------------------------------------------------------------
    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        if len(samples) != len(predictions):
            raise ValueError("one prediction per sample")
        if not samples:
            return []
        truth = np.asarray([s.target for s in samples], dtype=np.int64).reshape(len(samples), N_SEGMENTS)
        guess = np.asarray(predictions, dtype=np.int64).reshape(len(samples), N_SEGMENTS)
        correct = (truth == guess).sum(axis=1)
        return [{"correct": int(k), "total": N_SEGMENTS} for k in correct]

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        # sklearn accuracy_score over the flattened (n_samples x 10) labels == sum(correct) / sum(total).
        correct = sum(int(s["correct"]) for s in stats)
        total = sum(int(s["total"]) for s in stats)
        return {"accuracy": 100.0 * correct / total if total else 0.0}

    # The bootstrap's fast path: accuracy is a function of the column sums (bit for bit the same arithmetic).
    additive = Additive(
        columns=lambda stats: np.array([[s["correct"], s["total"]] for s in stats], dtype=np.float64),
        finish=lambda sums: {"accuracy": np.where(sums[:, 1] > 0, 100.0 * sums[:, 0] / np.maximum(sums[:, 1], 1), 0.0)},
    )
