"""AVQA (Yang et al., ACM MM 2022; AlyssaYoung/AVQA): four-way multiple-choice audio-visual QA.

Scoring follows ``validate()`` in the official ``HAVF/hcrn_havf/validate.py``: a question is right when the chosen
candidate index equals ``answer``; accuracy is pooled over all questions and within each of the eight question
types. The official evaluation runs on the val file (``validate.py`` loads ``{name}_val_questions.pt``); the
release has no other test set. See docs/tasks/avqa.md for every quirk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from crab_eval.errors import PredictionError
from crab_eval.layouts.avqa import N_CHOICES, QUESTION_TYPES, SPLIT_FILES, split_path
from crab_eval.metrics.accuracy import ALL
from crab_eval.readers.answer_tags import extract_answer, format_answer, vocabulary_key
from crab_eval.readers.free_text import (
    build_search_index,
    closed_answer,
    option_letter,
    strip_special_tokens,
    without_lead_in,
)
from crab_eval.tasks.base import MetricSpec, Sample, Split
from crab_eval.tasks.families import PooledAccuracyTask

# Question type (as the file spells it) -> metric name.
TYPE_METRIC: dict[str, str] = {qtype: qtype.lower().replace(" ", "_") for qtype in QUESTION_TYPES}
METRIC_ORDER: tuple[str, ...] = ("accuracy", *TYPE_METRIC.values())
# Each metric's pool of question types; ``accuracy`` counts every question.
POOLS: dict[str, tuple[str, ...] | None] = {"accuracy": ALL, **{name: (name,) for name in TYPE_METRIC.values()}}
REQUIRED_KEYS = ("id", "video_name", "video_id", "question_text", "multi_choice", "answer", "question_type")
# Crab+ omni_dataset.py, add_avqa_thu_samples: ``f"...: {question}, options:{multi_choice}"`` with the Python list
# itself formatted, so the options appear as its repr: ['a', 'b', 'c', 'd'].
INSTRUCTION = "Please answer the question based on the options: {question}, options:{choices}"
# A text answer naming no candidate: an index no answer has, so it is wrong.
NO_CHOICE = -1
_CHOICE_TYPES = {str, type(None)}


def _answer_index(raw: Any) -> int:
    """``answer``: the official preprocessing applies ``int()``; an int or a string of digits (no bools)."""
    if isinstance(raw, bool):
        raise ValueError(f"'answer' must be a candidate index, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise ValueError(f"'answer' must be a candidate index, got {raw!r}")


def _parse_entry(obj: Any) -> dict[str, Any]:
    """One question object -> its checked fields; ``ValueError`` says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"each element must be a question object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise ValueError(f"missing keys {missing}")
    qid, question, choices, qtype = obj["id"], obj["question_text"], obj["multi_choice"], obj["question_type"]
    if isinstance(qid, bool) or not isinstance(qid, int | str) or qid == "":
        raise ValueError(f"'id' must be an integer or a non-empty string, got {qid!r}")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"'question_text' must be a non-empty string, got {question!r}")
    # The official loader raises KeyError on any other type (QUESTION_CATEGORY_DICT).
    if qtype not in TYPE_METRIC:
        raise ValueError(f"'question_type' {qtype!r} is not one of {list(QUESTION_TYPES)}")
    # The official code pads a shorter list with 'NULL' and silently drops candidates past the fourth; we refuse
    # the latter (an answer past index 3 could never be chosen) and non-text candidates other than null.
    if not isinstance(choices, list) or not 1 <= len(choices) <= N_CHOICES:
        raise ValueError(f"'multi_choice' must be a list of 1 to {N_CHOICES} candidates, got {choices!r}")
    if not {type(c) for c in choices} <= _CHOICE_TYPES:
        raise ValueError(f"'multi_choice' candidates must be strings, got {choices!r}")
    answer = _answer_index(obj["answer"])
    if not 0 <= answer < len(choices) or not isinstance(choices[answer], str) or not choices[answer].strip():
        raise ValueError(f"'answer' {obj['answer']!r} does not index a candidate of {choices!r}")
    name = obj["video_name"]
    if not isinstance(name, str | int) or isinstance(name, bool) or name == "":
        raise ValueError(f"'video_name' must be a non-empty string, got {name!r}")
    return {"id": str(qid), "question": question, "choices": choices, "answer": answer, "qtype": qtype, "obj": obj}


def choice_of(text: str, choices: Sequence[str | None], truth: int) -> int:
    """The candidate index a text answer names (case, whitespace, ``_``/``-`` and edge punctuation aside).

    Two candidates with the same text are the same answer to a reader: if the truth is among them the text is
    right, otherwise it takes the first. A text naming no candidate gets ``NO_CHOICE``.
    """
    if text == choices[truth]:  # the common case needs no normalisation
        return truth
    key = vocabulary_key(text)
    matches = [i for i, c in enumerate(choices) if c is not None and vocabulary_key(c) == key]
    if not matches:
        return NO_CHOICE
    return truth if truth in matches else matches[0]


class AvqaTask(PooledAccuracyTask):
    id: ClassVar[str] = "avqa"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "AVQA (Yang et al.) 4-way multiple choice: accuracy overall and per question type"
    splits: ClassVar[tuple[str, ...]] = tuple(SPLIT_FILES)
    default_split: ClassVar[str] = "val"  # the official evaluation split (validate.py scores the val file)
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("accuracy", description="accuracy (%) over all questions"),
        *(MetricSpec(name, description=f"accuracy (%) over '{q}' questions") for q, name in TYPE_METRIC.items()),
    )
    main_metric: ClassVar[str] = "accuracy"

    pools: ClassVar[Mapping[str, Sequence[str] | None]] = POOLS
    split_path = staticmethod(split_path)
    read_item = staticmethod(_parse_entry)

    def item_sample(self, sample_id: str, item: Mapping[str, Any]) -> Sample:
        obj = item["obj"]
        name = str(obj["video_name"])
        return Sample(
            id=sample_id,
            instruction=INSTRUCTION.format(question=item["question"], choices=item["choices"]),
            target=item["answer"],
            group=name,
            media={
                "video": str(obj.get("video_path") or f"{name}.mp4"),
                "audio": str(obj.get("audio_path") or f"{name}.wav"),
            },
            meta={
                "choices": list(item["choices"]),
                "qtype": TYPE_METRIC[item["qtype"]],
                "question_relation": obj.get("question_relation"),
                "video_id": obj["video_id"],
            },
        )

    # ---- text ------------------------------------------------------------------------------------------------
    def target_text(self, sample: Sample) -> str:
        return f"So the answer is {format_answer(sample.meta['choices'][sample.target])}."

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """A tag naming a candidate as ``parse`` reads it; else free form: an option letter ("B", "(B) cat",
        "the answer is B"), the whole text, what follows "the answer is" or what the text opens with being a
        candidate, or the one candidate the text mentions. Two letters or two candidates are ambiguous (None)."""
        strict = self.parse(text, split)
        choices = sample.meta["choices"]
        if strict is not None and choice_of(strict["answer"], choices, sample.target) != NO_CHOICE:
            return strict
        body = without_lead_in(extract_answer(text) or strip_special_tokens(text))
        letter = option_letter(body, len(choices))
        if letter is not None:
            return {"choice": letter}
        answer = closed_answer(body, build_search_index(c for c in choices if c))
        return strict if answer is None else {"answer": answer}

    # ---- predictions -----------------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> int:
        if not isinstance(obj, dict) or len(obj) != 1 or not set(obj) <= {"answer", "choice"}:
            raise PredictionError('prediction must be {"answer": CANDIDATE_TEXT} or {"choice": INDEX}')
        if "choice" in obj:
            choice = obj["choice"]
            if isinstance(choice, bool) or not isinstance(choice, int):
                raise PredictionError(f"'choice' must be an integer index, got {choice!r}")
            if not 0 <= choice < N_CHOICES:
                raise PredictionError(f"'choice' must lie in [0, {N_CHOICES - 1}], got {choice}")
            return choice
        answer = obj["answer"]
        if not isinstance(answer, str):
            raise PredictionError(f"'answer' must be a string, got {type(answer).__name__}")
        return choice_of(answer, sample.meta["choices"], sample.target)

    def empty_prediction(self, sample: Sample) -> int:
        return NO_CHOICE

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {"choice": sample.target}

    # ---- scoring ---------------------------------------------------------------------------------------------
    def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
        # Official: argmax over the candidates == answer index.
        return {"correct": int(prediction == sample.target), "qtype": sample.meta["qtype"]}
