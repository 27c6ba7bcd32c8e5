"""The task-adapter interface: official files in, a split out; text in, predictions out; stats in, metrics out.

Tasks are stateless. ``load`` returns an immutable ``Split``: its samples plus whatever reading answers needs
(``context``: a label index, a vocabulary). Everything after loading takes that split, so any instance of a task
parses and checks predictions the same way (``crab_eval.scoring.load_split`` is the one entry point callers use).

A task's score is ``aggregate(per-sample stats)``. Bootstrap, paired tests and regression checks resample the
per-sample stats and call the same ``aggregate``, so every metric gets its confidence interval from one path.
Per-sample stats are therefore JSON-serialisable dicts that carry everything ``aggregate`` needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, overload

from crab_eval.additive import Additive
from crab_eval.errors import AnnotationError, CrabEvalError
from crab_eval.readers.answer_tags import extract_answer

# Answer-extraction tiers, as lm-eval's strict-match / flexible-extract: ``strict`` reads only the templates the
# model is trained on (the default, the published numbers), ``flexible`` also free-form answers. The tier changes
# scores, so a result records it (provenance ``extract``) and results of different tiers are not paired.
EXTRACT_TIERS = ("strict", "flexible")

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


@dataclass(frozen=True, eq=False)
class Split(Sequence[Sample]):
    """One loaded split of a task: its samples in file order, and ``context``, what reading answers needs beyond a
    sample (a label index, a vocabulary; None for most tasks). Immutable; a sequence of its samples, and a slice
    of it is a ``Split`` of those samples with the same context."""

    task: str  # the task id
    name: str  # the split name
    data_dir: Path
    samples: tuple[Sample, ...]
    context: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "samples", tuple(self.samples))

    def __len__(self) -> int:
        return len(self.samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> Split: ...
    def __getitem__(self, index: int | slice) -> Sample | Split:
        if isinstance(index, slice):
            return replace(self, samples=self.samples[index])
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __repr__(self) -> str:
        return f"Split(task={self.task!r}, name={self.name!r}, data_dir={str(self.data_dir)!r}, {len(self)} samples)"


class Task(ABC):
    """Base class of every task adapter. Subclasses declare the class attributes and implement the hooks:
    ``annotation_files``, ``read_split``, ``target_text``, ``check_prediction``, ``empty_prediction``,
    ``oracle_prediction``, ``aggregate``, and ``score_sample`` or ``score_samples``; ``parse`` reads Crab's
    ``<answer> X </answer>`` unless the task's answer template differs. A task keeps no state between calls."""

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

    # ---- official files -> split ---------------------------------------------------------------------------
    @abstractmethod
    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        """Every file the split's scoring reads (for the data fingerprint)."""

    def load(self, data_dir: str | Path, split: str) -> Split:
        """The split ``split`` of the official files in ``data_dir`` (the framework's side of ``read_split``: the
        split name is checked once, here, and the result is the task's own split)."""
        self.check_split(split)
        loaded = self.read_split(Path(data_dir), split)
        if not isinstance(loaded, Split) or (loaded.task, loaded.name) != (self.id, split):
            raise TypeError(f"{type(self).__name__}.read_split must return Split({self.id!r}, {split!r}, ...)")
        return loaded

    @abstractmethod
    def read_split(self, data_dir: Path, split: str) -> Split:
        """Read the official files of ``split`` (a name of ``splits``) into ``Split(self.id, split, data_dir,
        samples, context)``; raise ``AnnotationError`` (file, line) on malformed input."""

    # ---- text for training and inference (Crab's templates) ------------------------------------------------
    def prompt(self, sample: Sample) -> str:
        return CRAB_PREFIX + sample.instruction

    @abstractmethod
    def target_text(self, sample: Sample) -> str:
        """The answer the model is trained to emit, in Crab's answer template."""

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        """Model text -> structured prediction in the scoring contract's form, or None if it cannot be parsed.

        The default reads Crab's answer template: the last ``<answer> X </answer>`` gives ``{"answer": X}``."""
        body = extract_answer(text)
        return None if body is None else {"answer": body}

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """The ``flexible`` tier: free-form text (a model not trained on Crab's templates) -> structured prediction,
        or None if the text does not name one answer unambiguously. A task that does not override it reads text
        exactly as ``parse`` does (flexible = strict). ``sample`` is there for answers that depend on the item
        (a multiple-choice option named by its text or letter)."""
        return self.parse(text, split)

    def extract(self, text: str, sample: Sample, split: Split, tier: str = "strict") -> dict[str, Any] | None:
        """Model text -> structured prediction under an extraction tier (``EXTRACT_TIERS``): ``strict`` is the
        task's template parser (``parse``), ``flexible`` its free-form reader (``parse_flexible``)."""
        if tier == "strict":
            return self.parse(text, split)
        if tier == "flexible":
            return self.parse_flexible(text, sample, split)
        raise CrabEvalError(f"unknown extraction tier {tier!r}; expected one of {', '.join(EXTRACT_TIERS)}")

    # ---- structured predictions ------------------------------------------------------------------------------
    @abstractmethod
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> Any:
        """Validate a contract-form prediction of ``sample`` and return the internal form; raise ``PredictionError``
        if it is bad. ``split`` is the sample's split; ``base_dir`` is the prediction file's folder, for
        predictions that reference files (heatmaps)."""

    @abstractmethod
    def empty_prediction(self, sample: Sample) -> Any:
        """The internal form scored for a missing or unparsed prediction (counts as wrong / empty)."""

    @abstractmethod
    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        """The ground truth written as a contract-form prediction (scores perfectly, modulo official quirks)."""

    # ---- scoring -----------------------------------------------------------------------------------------------
    def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
        """Per-sample stats (JSON-serialisable) from which ``aggregate`` computes every metric."""
        if type(self).score_samples is Task.score_samples:
            raise NotImplementedError(f"{type(self).__name__} implements neither score_sample nor score_samples")
        return self.score_samples([sample], [prediction])[0]

    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        """All per-sample stats; a task implements this instead of ``score_sample`` to vectorise across samples."""
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


def unique_ids(raw: Sequence[str], path: Path | None = None) -> list[str]:
    """Ids in file order; a repeated id gets ``#2``, ``#3``... (the contract's rule for AVE, Ref-AVS, ...).

    A suffixed id that is already an id of the file is an error rather than a silent merge of two samples: an
    ``AnnotationError`` naming ``path`` (a ``ValueError`` without one).
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
            message = f"id {sid!r} repeats and its suffixed id {new!r} collides with an id of the file"
            raise ValueError(message) if path is None else AnnotationError(message, path)
        taken.add(new)
        ids.append(new)
    return ids


def require_file(path: Path) -> Path:
    """The path itself, or an ``AnnotationError`` naming the missing official file."""
    if not path.is_file():
        raise AnnotationError("official annotation file not found", path)
    return path
