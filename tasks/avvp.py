"""AVVP / LLP (YapengTian/AVVP-ECCV20): audio, visual and audio-visual event parsing of 10 s clips.

Ground truth and metric follow the official test loop (``eval`` in main_avvp.py) and ``utils/eval_metrics.py``:
per video a 25 x 10 matrix per modality (``GT[class, onset:offset] = 1`` for every dense row of the video), the
audio-visual matrix is audio AND visual (for the prediction too), and the segment- and event-level F scores are
computed per video and averaged over the videos of the split. See docs/tasks/avvp.md for every quirk.

Internally a video's labels are one 10-bit code per (modality, class): an int array of shape (2, 25), row 0 audio,
row 1 visual, bit i = segment i (crab_eval/metrics/temporal.py does the counting on those codes).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.layouts.avvp import AUDIO_FILE, CATEGORIES, N_SEGMENTS, SPLIT_FILES, VISUAL_FILE
from crab_eval.metrics.temporal import code_runs, event_counts, interval_code, mean_class_f, segment_counts
from crab_eval.readers.free_text import build_search_index, labelled_ranges, strip_special_tokens
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task, require_file

MODALITIES = ("audio", "visual")
CLASS_INDEX = {name: i for i, name in enumerate(CATEGORIES)}
# Crab's AVVP instruction (GeWu-Lab/Crab dataset/unified_dataset.py, train and test samples alike).
INSTRUCTION = (
    "Please determine the events that occur based on the visual and audio information in the video, "
    "as well as the start and end times of these events."
)
# The per-video values of the official eval (segment_level / event_level return f_a, f_v, f, f_av).
STAT_KEYS = ("seg_a", "seg_v", "seg_av", "seg_event", "evt_a", "evt_v", "evt_av", "evt_event")

# ---- answer template ------------------------------------------------------------------------------------------
# Crab emits <audio_event>LABEL,(on off)</audio_event> and <visual_event>...; its raw AV-UIE labels (and the README
# example) use <audio>/<visual>, which Crab's loader renames, so both spellings are read. Several ranges of one
# event follow each other: "(0 1)(3 6)" (Crab's UnAV template); offsets are exclusive, as in the csv files.
_TAG_RE = re.compile(
    r"<\s*(audio|visual)(?:_event)?\s*>(.*?)<\s*/\s*(audio|visual)(?:_event)?\s*>", re.IGNORECASE | re.DOTALL
)
_RANGE = r"[(\[]\s*\d+\s*[,\s]\s*\d+\s*[)\]]"
_RANGE_RE = re.compile(r"[(\[]\s*(\d+)\s*[,\s]\s*(\d+)\s*[)\]]")
# A label is the shortest text followed by ",ranges", so labels may hold commas or brackets ("Frying (food)").
_ITEM_RE = re.compile(rf"\s*(.+?)\s*,\s*((?:{_RANGE}\s*,?\s*)+)[;,]?\s*", re.DOTALL)


def _label_key(text: str) -> str:
    # Case, spaces, underscores and punctuation do not matter: "baby cry, infant cry" is Baby_cry_infant_cry.
    return re.sub(r"[^a-z0-9]", "", text.lower())


_LABEL_KEYS = {_label_key(name): name for name in CATEGORIES}
assert len(_LABEL_KEYS) == len(CATEGORIES)
# The flexible tier: class mentions in prose, and the modality words that say whose events follow.
_SEARCH_INDEX = build_search_index(CATEGORIES)
_MODALITY_RE = re.compile(r"(?<![a-z])(audio[\s_-]*(?:and[\s_-]*)?visual|audio|visual)(?:_event)?(?![a-z])", re.I)


def _empty_codes() -> np.ndarray:
    return np.zeros((len(MODALITIES), len(CATEGORIES)), dtype=np.int64)


def _read_tsv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) rows of a tab-separated file; blank lines are skipped, as pandas does."""
    try:
        text = require_file(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"not UTF-8 text ({exc.reason})", path) from None
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    for line_no, fields in enumerate(csv.reader(text.splitlines(), delimiter="\t"), start=1):
        if not fields or not any(f.strip() for f in fields):
            continue
        if header is None:
            header = [f.strip() for f in fields]
            continue
        if len(fields) != len(header):
            raise AnnotationError(f"expected {len(header)} tab-separated fields, got {len(fields)}", path, line_no)
        rows.append((line_no, fields))
    if header is None:
        raise AnnotationError("empty file; expected a header row", path)
    return header, rows


def _column(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        hint = "; the file must be tab-separated" if len(header) == 1 and "," in header[0] else ""
        raise AnnotationError(f"header has no column {name!r} (columns: {', '.join(header)}){hint}", path, 1)
    return header.index(name)


def _class_index(label: str, path: Path, line: int) -> int:
    if label not in CLASS_INDEX:
        raise AnnotationError(f"unknown event label {label!r}; expected one of the 25 LLP classes", path, line)
    return CLASS_INDEX[label]


def _read_dense(path: Path, codes: dict[str, np.ndarray], row: int) -> None:
    """OR the dense rows of the videos in ``codes`` into modality row ``row`` (official: ``GT[idx, x1:x2] = 1``)."""
    header, rows = _read_tsv(path)
    cols = [_column(header, name, path) for name in ("filename", "onset", "offset", "event_labels")]
    for line_no, fields in rows:
        filename, onset_text, offset_text, label = (fields[c] for c in cols)
        # Every row is checked, also rows of the other split: the official files are clean, so a bad row is a
        # broken file, not a quirk to reproduce.
        index = _class_index(label, path, line_no)
        try:
            onset, offset = int(onset_text), int(offset_text)
        except ValueError:
            raise AnnotationError(
                f"onset and offset must be whole seconds, got {onset_text!r}, {offset_text!r}", path, line_no
            ) from None
        if not (0 <= onset <= N_SEGMENTS and 0 <= offset <= N_SEGMENTS):
            raise AnnotationError(f"onset {onset} / offset {offset} outside 0..{N_SEGMENTS}", path, line_no)
        target = codes.get(filename)
        if target is not None:
            # offset <= onset gives an empty slice officially (6 audio rows do this); interval_code gives 0.
            target[row, index] |= interval_code(onset, offset)


def _events_from_codes(codes: np.ndarray) -> list[dict[str, Any]]:
    """Contract-form events, one per maximal run, ordered by onset, then modality, then class order."""
    events: list[dict[str, Any]] = []
    for m, modality in enumerate(MODALITIES):
        for c, label in enumerate(CATEGORIES):
            for onset, offset in code_runs(int(codes[m, c]), N_SEGMENTS):
                events.append({"modality": modality, "label": label, "onset": onset, "offset": offset})
    events.sort(key=lambda e: (e["onset"], MODALITIES.index(e["modality"]), CLASS_INDEX[e["label"]]))
    return events


class AVVPTask(Task):
    id: ClassVar[str] = "avvp"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "AVVP / LLP audio-visual video parsing: segment- and event-level F1 (official eval)"
    splits: ClassVar[tuple[str, ...]] = ("test", "val")
    default_split: ClassVar[str] = "test"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("seg_a", description="segment-level F1, audio events"),
        MetricSpec("seg_v", description="segment-level F1, visual events"),
        MetricSpec("seg_av", description="segment-level F1, audio-visual events (audio AND visual)"),
        MetricSpec("seg_type", description="segment-level Type@AV: mean of seg_a, seg_v, seg_av"),
        MetricSpec("seg_event", description="segment-level Event@AV: audio and visual counts pooled per class"),
        MetricSpec("evt_a", description="event-level F1 (IoU >= 0.5), audio events"),
        MetricSpec("evt_v", description="event-level F1 (IoU >= 0.5), visual events"),
        MetricSpec("evt_av", description="event-level F1 (IoU >= 0.5), audio-visual events"),
        MetricSpec("evt_type", description="event-level Type@AV: mean of evt_a, evt_v, evt_av"),
        MetricSpec("evt_event", description="event-level Event@AV: audio and visual counts pooled per class"),
    )
    main_metric: ClassVar[str] = "seg_event"

    # ---- official files -> samples -----------------------------------------------------------------------
    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        data_dir = Path(data_dir)
        return [data_dir / SPLIT_FILES[split], data_dir / AUDIO_FILE, data_dir / VISUAL_FILE]

    def read_split(self, data_dir: Path, split: str) -> Split:
        split_path, audio_path, visual_path = self.annotation_files(data_dir, split)
        header, rows = _read_tsv(split_path)
        # The official test loop takes the filename from column 0 and the dataloader the weak labels from the last.
        weak: dict[str, list[str]] = {}
        for line_no, fields in rows:
            filename = fields[0].strip()
            if not filename:
                raise AnnotationError("empty filename", split_path, line_no)
            if filename in weak:
                raise AnnotationError(f"duplicate filename {filename!r}", split_path, line_no)
            labels = [label for label in fields[-1].split(",")] if len(header) > 1 else []
            for label in labels:
                _class_index(label, split_path, line_no)
            weak[filename] = labels
        codes = {filename: _empty_codes() for filename in weak}
        _read_dense(audio_path, codes, 0)
        _read_dense(visual_path, codes, 1)
        samples = [
            Sample(
                id=filename,
                instruction=INSTRUCTION,
                target=codes[filename],
                group=filename,
                media={
                    "video": f"LLP_dataset/video/{filename[:11]}.mp4",
                    "audio": f"LLP_dataset/audio/{filename[:11]}.wav",
                },
                meta={"weak_labels": labels},
            )
            for filename, labels in weak.items()
        ]
        return Split(self.id, split, data_dir, samples)

    # ---- text ----------------------------------------------------------------------------------------------
    def target_text(self, sample: Sample) -> str:
        """One tag per (modality, class) with its runs: audio tags first, each modality in order of first onset."""
        parts: list[str] = []
        for m, modality in enumerate(MODALITIES):
            items = []
            for c, label in enumerate(CATEGORIES):
                runs = code_runs(int(sample.target[m, c]), N_SEGMENTS)
                if runs:
                    ranges = "".join(f"({onset} {offset})" for onset, offset in runs)
                    items.append((runs[0][0], c, f"<{modality}_event>{label},{ranges}</{modality}_event>"))
            parts.extend(text for _, _, text in sorted(items))
        return " ".join(parts)

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        """Events of every tag; None without tags, or if a tag is malformed, names an unknown class or holds a
        range outside 0 <= onset < offset <= 10 (an ambiguous range would change the score)."""
        events: list[dict[str, Any]] = []
        matches = list(_TAG_RE.finditer(text))
        if not matches:
            return None
        for match in matches:
            opening, body, closing = match.group(1).lower(), match.group(2), match.group(3).lower()
            if opening != closing:
                return None
            pos = 0
            while pos < len(body):
                if not body[pos:].strip():
                    break
                item = _ITEM_RE.match(body, pos)
                if item is None:
                    return None
                pos = item.end()
                label = _LABEL_KEYS.get(_label_key(item.group(1)))
                if label is None:
                    return None
                for onset_text, offset_text in _RANGE_RE.findall(item.group(2)):
                    onset, offset = int(onset_text), int(offset_text)
                    if not 0 <= onset < offset <= N_SEGMENTS:
                        return None
                    events.append({"modality": opening, "label": label, "onset": onset, "offset": offset})
        return {"events": events}

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """The template, else prose: a modality word ("Audio:", "visual events", "audio-visual" for both) followed
        by LLP classes, each with its ranges ("Audio: Chainsaw, [0,10]; Visual: Dog from 2 to 8"). None when a
        class has no range or no modality before it, or a range is not whole seconds 0 <= onset < offset <= 10."""
        strict = self.parse(text, split)
        if strict is not None:
            return strict
        body = strip_special_tokens(text)
        items = labelled_ranges(body, _SEARCH_INDEX)
        markers = [(m.start(), m.group(1).lower()) for m in _MODALITY_RE.finditer(body)]
        if items is None:
            return None
        events: list[dict[str, Any]] = []
        for item in items:
            before = [kind for at, kind in markers if at < item.at]
            if not before:
                return None
            modalities = MODALITIES if before[-1] not in MODALITIES else (before[-1],)
            for onset, offset in item.ranges:
                if not (onset.is_integer() and offset.is_integer() and 0 <= onset < offset <= N_SEGMENTS):
                    return None
                for modality in modalities:
                    event = {"modality": modality, "label": item.label, "onset": int(onset), "offset": int(offset)}
                    events.append(event)
        return {"events": events}

    # ---- structured predictions ----------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> np.ndarray:
        if not isinstance(obj, dict) or set(obj) != {"events"}:
            raise PredictionError('prediction must be an object {"events": [...]}')
        events = obj["events"]
        if not isinstance(events, list):
            raise PredictionError(f"'events' must be a list, got {type(events).__name__}")
        codes = _empty_codes()
        for i, event in enumerate(events):
            where = f"events[{i}]"
            if not isinstance(event, dict) or set(event) != {"modality", "label", "onset", "offset"}:
                raise PredictionError(f"{where} must be an object with exactly modality, label, onset, offset")
            modality, label = event["modality"], event["label"]
            if modality not in MODALITIES:
                raise PredictionError(f"{where}: modality must be 'audio' or 'visual', got {modality!r}")
            if not isinstance(label, str) or label not in CLASS_INDEX:
                raise PredictionError(f"{where}: unknown label {label!r}; expected one of the 25 LLP class names")
            onset, offset = event["onset"], event["offset"]
            for name, value in (("onset", onset), ("offset", offset)):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise PredictionError(f"{where}: {name} must be an integer second, got {value!r}")
            if not 0 <= onset < offset <= N_SEGMENTS:
                raise PredictionError(
                    f"{where}: need 0 <= onset < offset <= {N_SEGMENTS} (offset exclusive), got {onset}, {offset}"
                )
            codes[MODALITIES.index(modality), CLASS_INDEX[label]] |= interval_code(onset, offset)
        return codes

    def empty_prediction(self, sample: Sample) -> np.ndarray:
        return _empty_codes()

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {"events": _events_from_codes(sample.target)}

    # ---- scoring -------------------------------------------------------------------------------------------
    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        if not samples:
            return []
        gt = np.stack([np.asarray(s.target, dtype=np.int64) for s in samples])  # (videos, 2, 25)
        pred = np.stack([np.asarray(p, dtype=np.int64) for p in predictions])
        # The official SO_av = SO_a * SO_v and GT_av = GT_a * GT_v: audio AND visual, segment by segment.
        gt_av, pred_av = gt[:, 0] & gt[:, 1], pred[:, 0] & pred[:, 1]
        values: dict[str, np.ndarray] = {}
        for level, counts in (("seg", segment_counts), ("evt", event_counts)):
            tp, fp, fn = counts(pred, gt, N_SEGMENTS)  # (videos, 2, 25) each
            tp_av, fp_av, fn_av = counts(pred_av, gt_av, N_SEGMENTS)
            values[f"{level}_a"] = mean_class_f(tp[:, 0], fp[:, 0], fn[:, 0])
            values[f"{level}_v"] = mean_class_f(tp[:, 1], fp[:, 1], fn[:, 1])
            values[f"{level}_av"] = mean_class_f(tp_av, fp_av, fn_av)
            # Event@AV pools the audio and visual counts of each class (not the audio-visual ones).
            values[f"{level}_event"] = mean_class_f(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
        return [{key: float(values[key][i]) for key in STAT_KEYS} for i in range(len(samples))]

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        if not stats:
            raise ValueError("cannot aggregate AVVP metrics over no samples")
        # Official: 100 * np.mean over the per-video values; Type@AV = (AV + A + V) / 3 of those percentages.
        means = {
            key: 100 * float(np.mean(np.array([row[key] for row in stats], dtype=np.float64))) for key in STAT_KEYS
        }
        metrics: dict[str, float] = {}
        for level in ("seg", "evt"):
            a, v, av = means[f"{level}_a"], means[f"{level}_v"], means[f"{level}_av"]
            metrics.update({f"{level}_a": a, f"{level}_v": v, f"{level}_av": av})
            metrics[f"{level}_type"] = (av + a + v) / 3.0
            metrics[f"{level}_event"] = means[f"{level}_event"]
        return metrics
