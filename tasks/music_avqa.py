"""MUSIC-AVQA (GeWu-Lab/MUSIC-AVQA): spatio-temporal audio-visual question answering, top-1 accuracy per group.

Scoring follows ``test()`` in the official ``net_grd_avst/main_avst.py`` with the answer labels of
``net_grd_avst/dataloader_avst.py``: every question is right or wrong (the predicted answer is the ground-truth
answer), accuracies are pooled within the nine (modality, type) groups, within each modality, and over all questions.
See docs/tasks/music_avqa.md for every quirk.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from crab_eval.errors import PredictionError
from crab_eval.layouts.music_avqa import ANSWER_VOCABULARY, split_path
from crab_eval.metrics.accuracy import ALL
from crab_eval.readers.answer_tags import canonical_answer, extract_answer, format_answer, vocabulary_index
from crab_eval.readers.free_text import (
    NUMBER_WORDS,
    build_search_index,
    closed_answer,
    digits_as_words,
    strip_special_tokens,
)
from crab_eval.tasks.base import MetricSpec, Sample, Split
from crab_eval.tasks.families import PooledAccuracyTask

# (type[0], type[1]) as the official test loop compares them (exact, case-sensitive) -> per-group metric name.
QTYPE_METRIC: dict[tuple[str, str], str] = {
    ("Audio", "Counting"): "audio_counting",
    ("Audio", "Comparative"): "audio_comparative",
    ("Visual", "Counting"): "visual_counting",
    ("Visual", "Location"): "visual_location",
    ("Audio-Visual", "Existential"): "av_existential",
    ("Audio-Visual", "Counting"): "av_counting",
    ("Audio-Visual", "Location"): "av_location",
    ("Audio-Visual", "Comparative"): "av_comparative",
    ("Audio-Visual", "Temporal"): "av_temporal",
}
# A type pair outside the nine counts only towards ``overall``, as in the official loop (no branch appends it).
OTHER_QTYPE = "other"
# Modality averages pool exactly the listed groups (the official sums the lists it printed).
AVERAGES: dict[str, tuple[str, ...]] = {
    "audio_avg": ("audio_counting", "audio_comparative"),
    "visual_avg": ("visual_counting", "visual_location"),
    "av_avg": ("av_existential", "av_counting", "av_location", "av_comparative", "av_temporal"),
}
METRIC_ORDER: tuple[str, ...] = (
    "audio_counting", "audio_comparative", "audio_avg",
    "visual_counting", "visual_location", "visual_avg",
    "av_existential", "av_counting", "av_location", "av_comparative", "av_temporal", "av_avg",
    "overall",
)  # fmt: skip
# Each metric's pool of question groups, in the reported order; ``overall`` counts every question.
POOLS: dict[str, tuple[str, ...] | None] = {
    name: ALL if name == "overall" else AVERAGES.get(name, (name,)) for name in METRIC_ORDER
}

REQUIRED_KEYS = ("video_id", "question_id", "type", "question_content", "templ_values", "anser")
QUESTION_MARKS = ("?", "\uff1f")  # 430 of the original test questions end in a full-width question mark
INSTRUCTION = "Please answer this question: {question}"  # Crab dataset/unified_dataset.py, MUSIC-AVQA samples
_VOCAB_INDEX = vocabulary_index(ANSWER_VOCABULARY)
_VOCAB_SET = frozenset(ANSWER_VOCABULARY)
# The flexible tier: answers mentioned in prose, and the answers a question group can have where that is certain.
_SEARCH_INDEX = build_search_index(ANSWER_VOCABULARY)
_YES_NO = frozenset(("yes", "no"))
# The official Counting templates include yes/no questions ("Is there a <Object> sound?" is Audio-Counting), so a
# counting question takes a number or yes/no; an existential one only yes/no.
_COUNT = frozenset((*NUMBER_WORDS, "more than ten", *_YES_NO))
_ALLOWED: dict[str, frozenset[str]] = {
    "audio_counting": _COUNT,
    "visual_counting": _COUNT,
    "av_counting": _COUNT,
    "av_existential": _YES_NO,
}


def fill_question(content: str, values: Sequence[str]) -> str:
    """The question as the official loader builds it, with Crab's trailing question mark.

    Official: ``rstrip``, split on single spaces, drop the last character of the last word (the question mark),
    then every word containing ``<`` is *replaced whole* by the next template value, in order.
    """
    words = content.rstrip().split(" ")
    words[-1] = words[-1][:-1]
    filled = iter(values)
    words = [next(filled) if "<" in word else word for word in words]
    return " ".join(words) + "?"


@lru_cache(maxsize=4096)
def _literal_list_cached(raw: str) -> tuple[str, ...] | None:
    # The strings repeat (9 types, a few hundred value lists), and literal_eval is the loader's slowest step.
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def _literal_list(raw: Any, key: str) -> list[str]:
    """``type`` / ``templ_values``: a string holding a list of strings (the official reads it with literal_eval)."""
    if not isinstance(raw, str):
        raise ValueError(f"{key!r} must be a string holding a list, got {type(raw).__name__}")
    value = _literal_list_cached(raw)
    if value is None:
        raise ValueError(f"{key!r} must be a string holding a list of strings, got {raw!r}")
    return list(value)


def _parse_entry(obj: Any) -> dict[str, Any]:
    """One question object -> its checked fields; ``ValueError`` says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"each element must be a question object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise ValueError(f"missing keys {missing}")
    video_id, question_id, content, answer = obj["video_id"], obj["question_id"], obj["question_content"], obj["anser"]
    if not isinstance(video_id, str) or not video_id:
        raise ValueError(f"'video_id' must be a non-empty string, got {video_id!r}")
    if isinstance(question_id, bool) or not isinstance(question_id, int | str) or question_id == "":
        raise ValueError(f"'question_id' must be an integer or a non-empty string, got {question_id!r}")
    qtype = _literal_list(obj["type"], "type")
    if len(qtype) != 2:
        raise ValueError(f"'type' must hold [modality, question type], got {obj['type']!r}")
    values = _literal_list(obj["templ_values"], "templ_values")
    if not isinstance(content, str) or not content.rstrip().endswith(QUESTION_MARKS):
        raise ValueError(f"'question_content' must be a question ending in '?', got {content!r}")
    n_slots = sum("<" in word for word in content.rstrip().split(" "))
    if n_slots != len(values):
        raise ValueError(f"'question_content' has {n_slots} placeholders but 'templ_values' {len(values)} values")
    question = fill_question(content, values)
    if not question[:-1].strip():
        raise ValueError("'question_content' is empty")
    # The official loader indexes the answer in the training vocabulary; any other answer is a KeyError there.
    if not isinstance(answer, str) or answer not in _VOCAB_SET:
        raise ValueError(f"'anser' {answer!r} is not one of the {len(ANSWER_VOCABULARY)} official answers")
    return {
        "id": str(question_id),
        "video_id": video_id,
        "question_id": question_id,
        "type": qtype,
        "question": question,
        "answer": answer,
    }


class MusicAVQA(PooledAccuracyTask):
    id: ClassVar[str] = "music_avqa"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "MUSIC-AVQA question answering: top-1 accuracy per question group (official AVST test)"
    splits: ClassVar[tuple[str, ...]] = ("test", "val", "train")
    metrics: ClassVar[tuple[MetricSpec, ...]] = tuple(
        MetricSpec(name, description=f"accuracy (%) pooled over {name.replace('_', ' ')} questions")
        for name in METRIC_ORDER
    )
    main_metric: ClassVar[str] = "overall"

    pools: ClassVar[Mapping[str, Sequence[str] | None]] = POOLS
    split_path = staticmethod(split_path)
    read_item = staticmethod(_parse_entry)

    def item_sample(self, sample_id: str, item: Mapping[str, Any]) -> Sample:
        qtype = tuple(item["type"])
        return Sample(
            id=sample_id,
            instruction=INSTRUCTION.format(question=item["question"]),
            target=item["answer"],
            group=item["video_id"],
            media={"video": f"avqa-videos/{item['video_id']}.mp4"},
            meta={
                "question_id": item["question_id"],
                "type": list(qtype),
                "qtype": QTYPE_METRIC.get(qtype, OTHER_QTYPE),  # type: ignore[arg-type]
                "question": item["question"],
            },
        )

    # ---- text ------------------------------------------------------------------------------------------------
    def target_text(self, sample: Sample) -> str:
        return f"So the answer is {format_answer(sample.target)}."

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        parsed = super().parse(text, split)
        return None if parsed is None else {"answer": canonical_answer(parsed["answer"], _VOCAB_INDEX)}

    def parse_flexible(self, text: str, sample: Sample, split: Split) -> dict[str, Any] | None:
        """The answer tag's body, or the whole text, read as free form: digits are number words ("2" -> "two",
        "12" -> "more than ten"); then the whole body, what follows "the answer is", the answer the text opens with,
        or the one answer it mentions. Counting questions take a number or yes/no (some official counting templates
        are yes/no questions) and existential ones only yes/no, so "There are two guitars" is "two"; two different
        mentions are ambiguous (None). A tag holding an official answer is read as ``parse`` reads it."""
        strict = self.parse(text, split)
        if strict is not None and strict["answer"] in _VOCAB_SET:
            return strict
        body = extract_answer(text) or strip_special_tokens(text)
        allowed = _ALLOWED.get(sample.meta["qtype"])
        index = _SEARCH_INDEX if allowed is None else {k: a for k, a in _SEARCH_INDEX.items() if a in allowed}
        answer = closed_answer(digits_as_words(body), index)
        return strict if answer is None else {"answer": answer}

    # ---- predictions -----------------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> str:
        if not isinstance(obj, dict):
            raise PredictionError(f'prediction must be an object {{"answer": STRING}}, got {type(obj).__name__}')
        if set(obj) != {"answer"}:
            raise PredictionError(f"prediction must have exactly the key 'answer', got {sorted(obj)}")
        answer = obj["answer"]
        if not isinstance(answer, str):
            raise PredictionError(f"'answer' must be a string, got {type(answer).__name__}")
        if answer in _VOCAB_SET:  # the common case needs no normalisation
            return answer
        return canonical_answer(answer, _VOCAB_INDEX)

    def empty_prediction(self, sample: Sample) -> str:
        return ""  # no official answer is empty, so a missing answer is wrong

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {"answer": sample.target}

    # ---- scoring ---------------------------------------------------------------------------------------------
    def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
        # Official: argmax class index == label index, i.e. the same vocabulary answer.
        return {"correct": int(prediction == sample.target), "group": sample.group, "qtype": sample.meta["qtype"]}
