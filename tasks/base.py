"""The task-adapter interface: official files in, samples out; text in, predictions out; stats in, metrics out.

A task's score is ``aggregate(per-sample stats)``. Bootstrap, paired tests and regression checks resample the
per-sample stats and call the same ``aggregate``, so every metric gets its confidence interval from one path.
Per-sample stats are therefore JSON-serialisable dicts that carry everything ``aggregate`` needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from crab_eval.additive import Additive
from crab_eval.errors import AnnotationError, CrabEvalError

# Crab's prompt prefix: the placeholders are replaced by the model with the encoders' query tokens.
CRAB_PREFIX = "This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"


@dataclass(frozen=True)
class MetricSpec:
    """One reported metric. Values are on the 0-100 scale unless ``scale`` says otherwise."""

    name: str
    higher_is_better: bool = True
    description: str = ""
    scale: str = "0-100"


@dataclass(frozen=True)
class Sample:
    """One scored item of a split.

    ``target`` is the ground truth in the task's internal form; ``group`` is the clustering unit for the bootstrap
    (the video, where several items share one clip); ``media`` maps roles ("video", "audio", "frames", ...) to paths
    relative to the data directory.
    """

    id: str
    instruction: str
    target: Any
    group: str
    media: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)


class Task(ABC):
    """Base class of every task adapter. Subclasses declare the class attributes and implement the hooks."""

    id: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    default_split: ClassVar[str] = "test"
    metrics: ClassVar[tuple[MetricSpec, ...]]
    main_metric: ClassVar[str]
    # True where the answer text alone carries the prediction; mask tasks get masks from a mask head instead.
    text_predictions: ClassVar[bool] = True
    # Set where every metric is a function of column sums of the per-sample stats (crab_eval/additive.py): the
    # bootstrap then computes replicates as matrix products instead of calling ``aggregate`` per replicate.
    additive: ClassVar[Additive | None] = None

    # ---- official files -> samples -------------------------------------------------------------------------
    @abstractmethod
    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        """Every file the split's scoring reads (for the data fingerprint)."""

    @abstractmethod
    def load(self, data_dir: Path, split: str) -> list[Sample]:
        """Read the official files of ``split``; raise ``AnnotationError`` (file, line) on malformed input."""

    # ---- text for training and inference (Crab's templates) ------------------------------------------------
    def prompt(self, sample: Sample) -> str:
        return CRAB_PREFIX + sample.instruction

    @abstractmethod
    def target_text(self, sample: Sample) -> str:
        """The answer the model is trained to emit, in Crab's answer template."""

    @abstractmethod
    def parse(self, text: str) -> dict[str, Any] | None:
        """Model text -> structured prediction in the scoring contract's form, or None if it cannot be parsed."""

    # ---- structured predictions ------------------------------------------------------------------------------
    @abstractmethod
    def check_prediction(self, obj: Any, sample: Sample, base_dir: Path) -> Any:
        """Validate a contract-form prediction and return the internal form; raise ``PredictionError`` if bad.

        ``base_dir`` is the prediction file's folder, for predictions that reference files (heatmaps).
        """

    @abstractmethod
    def empty_prediction(self, sample: Sample) -> Any:
        """The internal form scored for a missing or unparsed prediction (counts as wrong / empty)."""

    @abstractmethod
    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        """The ground truth written as a contract-form prediction (scores perfectly, modulo official quirks)."""

    # ---- scoring -----------------------------------------------------------------------------------------------
    @abstractmethod
    def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
        """Per-sample stats (JSON-serialisable) from which ``aggregate`` computes every metric."""

    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        """All per-sample stats; override to vectorise across samples."""
        return [self.score_sample(s, p) for s, p in zip(samples, predictions, strict=True)]

    @abstractmethod
    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Metrics from per-sample stats, exactly as the official code aggregates them."""

    # ---- helpers -------------------------------------------------------------------------------------------
    @classmethod
    def metric(cls, name: str) -> MetricSpec:
        for spec in cls.metrics:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def main_metric_for_split(self, split: str) -> str:
        """The split's headline metric; a task whose splits report different metrics overrides this."""
        return self.main_metric

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise CrabEvalError(f"task {self.id!r} has no split {split!r}; splits: {', '.join(self.splits)}")


def unique_ids(raw: Sequence[str]) -> list[str]:
    """Ids in file order; a repeated id gets ``#2``, ``#3``... (the contract's rule for AVE, Ref-AVS, ...).

    A suffixed id that is already an id of the file is an error rather than a silent merge of two samples.
    """
    taken = set(raw)
    seen: dict[str, int] = {}
    ids = []
    for sid in raw:
        seen[sid] = seen.get(sid, 0) + 1
        if seen[sid] == 1:
            ids.append(sid)
            continue
        new = f"{sid}#{seen[sid]}"
        if new in taken:
            raise ValueError(f"id {sid!r} repeats and its suffixed id {new!r} is already taken")
        taken.add(new)
        ids.append(new)
    return ids


def require_file(path: Path) -> Path:
    """The path itself, or an ``AnnotationError`` naming the missing official file."""
    if not path.is_file():
        raise AnnotationError("official annotation file not found", path)
    return path
