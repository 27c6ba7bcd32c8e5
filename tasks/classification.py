"""Crab+'s classification family as configuration: one adapter class, one ``ClassificationSpec`` per task.

``ks``, ``ucf``, ``meld``, ``cremad``, ``mafw``, ``dfew``, ``a2v`` and ``v2a`` read Crab+'s own
``AVUIE_2/{task}/{split}.json`` (the files Crab+ users hold; see crab_eval/layouts/classification.py), pose
Crab+'s instruction, expect ``<answer>LABEL</answer>`` and score with the benchmark's metric: accuracy, weighted
F1 (MELD) or UAR/WAR (DFEW, MAFW). Per-sample stats keep the true and the predicted label, so every metric,
including the class-averaged ones, is recomputed from the stats alone (bootstrap resamples them).
See docs/tasks/classification.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.layouts.classification import SPLIT_FILES, split_path
from crab_eval.readers.answer_tags import extract_answer, normalize_space_case, vocabulary_key
from crab_eval.readers.free_text import build_search_index, closed_answer, strip_special_tokens, without_lead_in
from crab_eval.tasks.base import MetricSpec, Sample, Split
from crab_eval.tasks.classification_specs import METRIC_DESCRIPTIONS, SPECS, ClassificationSpec
from crab_eval.tasks.families import JsonListTask

# The internal prediction of a missing or unparsed answer: no label is empty, so it is wrong for every metric.
NO_LABEL = ""


def _accuracy(y_true: list[str], y_pred: list[str]) -> float:
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def _weighted_f1(y_true: list[str], y_pred: list[str]) -> float:
    # declare-lab/MELD baseline.py: precision_recall_fscore_support(average='weighted'); an undefined precision
    # (a class never predicted) is 0 there too.
    from sklearn.metrics import f1_score  # imported here: listing the tasks need not load sklearn

    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _uar(y_true: list[str], y_pred: list[str]) -> float:
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        # sklearn warns when a prediction names a class absent from y_true (e.g. every missing answer); such a
        # class has no recall and is left out of the mean, which is the definition of UAR.
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y_true, y_pred))


METRIC_FUNCTIONS: dict[str, Callable[[list[str], list[str]], float]] = {
    "accuracy": _accuracy,
    "war": _accuracy,  # weighted average recall = sum_c (n_c / N) * recall_c = accuracy
    "weighted_f1": _weighted_f1,
    "uar": _uar,
}


@dataclass(frozen=True)
class Labels:
    """The context of a classification split: its labels, and every accepted spelling (key) of a label, the
    spec's aliases included."""

    labels: frozenset[str]
    index: Mapping[str, str]  # label key -> label
    search: Mapping[str, str] = field(default_factory=dict)  # mentions in prose (the flexible tier) -> label


class ClassificationTask(JsonListTask):
    """The adapter shared by every spec; the task classes below only set ``spec`` (``classification_task``)."""

    spec: ClassVar[ClassificationSpec]
    item_noun: ClassVar[str] = "sample"
    split_path = staticmethod(split_path)
    version: ClassVar[str] = "1"
    splits: ClassVar[tuple[str, ...]] = tuple(SPLIT_FILES)

    def _key(self, text: str) -> str:
        key = vocabulary_key(text)
        return key.replace(" ", "") if self.spec.ignore_spaces else key

    def _label(self, raw: Any) -> str:
        """The ground truth as Crab+ writes it into the answer: a non-empty string (matching: 1 or 2)."""
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise ValueError(f"{self.spec.layout.label_key!r} must be a class name, got {raw!r}")
        label = str(raw).strip()
        if self.spec.lowercase_label:
            label = label.lower()
        if not label:
            raise ValueError(f"{self.spec.layout.label_key!r} is empty")
        if self.spec.closed_labels and label not in self.spec.closed_labels:
            allowed = list(self.spec.closed_labels)
            raise ValueError(f"{self.spec.layout.label_key!r} must be one of {allowed}, got {raw!r}")
        return label

    # ---- official files -> samples ----------------------------------------------------------------------------
    def read_item(self, obj: Any) -> dict[str, Any]:
        layout = self.spec.layout
        if not isinstance(obj, dict):
            raise ValueError(f"each element must be an object, got {type(obj).__name__}")
        missing = [k for k in (*layout.media_keys, layout.label_key) if k not in obj]
        if missing:
            raise ValueError(f"missing keys {missing}")
        paths = [obj[k] for k in layout.media_keys]
        if not all(isinstance(p, str) and p.strip() for p in paths):
            raise ValueError(f"media paths {list(layout.media_keys)} must be non-empty strings")
        # The id is the sample's media path(s) as the file gives them (Crab+'s files carry no id field).
        return {"id": "|".join(paths), "paths": paths, "label": self._label(obj[layout.label_key])}

    def item_sample(self, sample_id: str, item: Mapping[str, Any]) -> Sample:
        layout = self.spec.layout
        return Sample(
            id=sample_id,
            instruction=self.spec.instruction,
            target=item["label"],
            group=item["paths"][0],  # the query clip: the bootstrap cluster
            media=dict(zip(layout.media_keys, item["paths"], strict=True)),
            meta={"roles": list(layout.media_roles)},
        )

    def split_context(self, items: Sequence[Mapping[str, Any]], path: Path) -> Labels:
        labels = sorted({item["label"] for item in items})
        index: dict[str, str] = {}
        for label in labels:
            key = self._key(label)
            if key in index and index[key] != label:
                raise AnnotationError(f"labels {index[key]!r} and {label!r} are the same answer to a reader", path)
            index[key] = label
        for alias, label in self.spec.aliases.items():
            index.setdefault(self._key(alias), label)
        search = build_search_index({**{label: label for label in labels}, **self.spec.aliases})
        return Labels(frozenset(labels), index, search)

    # ---- text (Crab+'s template) ---------------------------------------------------------------------------------
    def prompt(self, sample: Sample) -> str:
        return self.spec.prompt_prefix + sample.instruction

    def target_text(self, sample: Sample) -> str:
        # Crab+ OmniTestDataset: f"<answer>{label}</answer>" (+ "." for the emotion and matching tasks).
        return f"<answer>{sample.target}</answer>{self.spec.answer_suffix}"

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """A tag naming a label as ``parse`` reads it; else free form: the whole text (or the tag's body) in any
        accepted spelling, what follows "the answer is" or what the text opens with, or the one label the text
        mentions ("The person looks happy."). Two labels are ambiguous (None)."""
        labels: Labels = split.context
        strict = self.parse(text, split)
        if strict is not None and self._key(strict["answer"]) in labels.index:
            return strict
        body = extract_answer(text) or strip_special_tokens(text)
        label = labels.index.get(self._key(without_lead_in(body))) or closed_answer(body, labels.search)
        return strict if label is None else {"answer": label}

    # ---- structured predictions -----------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> str:
        if not isinstance(obj, dict) or set(obj) != {"answer"}:
            raise PredictionError('prediction must be an object {"answer": LABEL}')
        answer = obj["answer"]
        if not isinstance(answer, str):
            raise PredictionError(f"'answer' must be a string, got {type(answer).__name__}")
        labels: Labels = split.context
        if answer in labels.labels:  # the common case needs no normalisation
            return answer
        # Another spelling of a label (case, spaces, _/-, edge punctuation, the matching tasks' "first"/"video 2")
        # becomes that label; anything else is kept, normalised, and is simply wrong.
        return labels.index.get(self._key(answer), normalize_space_case(answer))

    def empty_prediction(self, sample: Sample) -> str:
        return NO_LABEL

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {"answer": sample.target}

    # ---- scoring -----------------------------------------------------------------------------------------------------
    def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
        return {"true": sample.target, "pred": prediction, "correct": int(prediction == sample.target)}

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        if not stats:
            return {}
        y_true = [str(s["true"]) for s in stats]
        y_pred = [str(s["pred"]) for s in stats]
        return {name: 100.0 * METRIC_FUNCTIONS[name](y_true, y_pred) for name in self.spec.metrics}


def classification_task(spec_id: str) -> type[ClassificationTask]:
    """The task class of one spec: the shared adapter with the spec's id, metrics and description."""
    spec = next(s for s in SPECS if s.id == spec_id)
    attributes = {
        "id": spec.id,
        "spec": spec,
        "description": spec.description,
        "metrics": tuple(MetricSpec(name, description=METRIC_DESCRIPTIONS[name]) for name in spec.metrics),
        "main_metric": spec.main_metric,
        "__module__": __name__,
        "__doc__": spec.description,
    }
    name = f"{spec.id.capitalize()}ClassificationTask"
    return type(name, (ClassificationTask,), {**attributes, "__qualname__": name})


# One class per spec, by name, for the registry's table (crab_eval/tasks/__init__.py).
KsClassificationTask = classification_task("ks")
UcfClassificationTask = classification_task("ucf")
MeldClassificationTask = classification_task("meld")
CremadClassificationTask = classification_task("cremad")
MafwClassificationTask = classification_task("mafw")
DfewClassificationTask = classification_task("dfew")
A2vClassificationTask = classification_task("a2v")
V2aClassificationTask = classification_task("v2a")
