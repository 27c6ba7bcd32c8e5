"""The ground truth a client writes into each line (``output``), read into the same form as a sample's, per task.

Crab and Crab+ copy the test sample's answer into ``output`` (Crab appends ``</s>``). Comparing it with the
sample's own ground truth tells apart samples that share an id (AVE's repeated VideoIDs, ARIG's frames annotated
twice) and matches lines that carry no id at all (most Crab+ tasks). Each reader returns None when the text is not
in the expected form, so such a line is matched by its id alone, or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from pathlib import Path

from crab_eval.errors import PredictionError
from crab_eval.layouts.music_avqa import ANSWER_VOCABULARY
from crab_eval.readers.answer_tags import canonical_answer, extract_answer, vocabulary_index, vocabulary_key
from crab_eval.readers.free_text import strip_special_tokens
from crab_eval.registry import get_task
from crab_eval.tasks.base import Sample, Split

_AVE_GOLD_RE = re.compile(r"^\s*event\s*:\s*(.+?)\s+start_time\s*:\s*(\d+)\s+end_time\s*:\s*(\d+)\s*$", re.DOTALL)
_OBJ_RE = re.compile(r"<obj>\(\s*([\d.]+)\s*,\s*([\d.]+)\s*\)\s*,?\s*\(\s*([\d.]+)\s*,\s*([\d.]+)\s*\)</obj>")

_MUSIC_AVQA_INDEX = vocabulary_index(ANSWER_VOCABULARY)

# The classification family: a sample's gold is its label (``label_line`` / ``plain_label_line``).
LABEL_TASKS = ("ks", "ucf", "meld", "cremad", "mafw", "dfew", "a2v", "v2a")

GoldReader = Callable[[str, Split], Hashable | None]
SampleGold = Callable[[Sample], Hashable | None]


def ave_line(text: str, split: Split) -> Hashable | None:
    """``event:{category} start_time:{s} end_time:{e}`` -> (category, s, e); a category the split does not know
    is kept as written (it then matches no sample: the line's gold is not in the split)."""
    match = _AVE_GOLD_RE.match(strip_special_tokens(text))
    if match is None:
        return None
    name = split.context.name_index.get(vocabulary_key(match.group(1)), match.group(1))
    return (name, int(match.group(2)), int(match.group(3)))


def ave_sample(sample: Sample) -> Hashable:
    return (sample.meta["category"], sample.meta["start"], sample.meta["end"])


def music_avqa_line(text: str, split: Split) -> Hashable | None:
    answer = strip_special_tokens(text)
    return canonical_answer(answer, _MUSIC_AVQA_INDEX) if answer else None


def avqa_line(text: str, split: Split) -> Hashable | None:
    answer = strip_special_tokens(str(text))
    return int(answer) if answer.isdigit() else None


def arig_line(text: str, split: Split) -> Hashable | None:
    """The corners of Crab's ``<obj>(x1,y1)(x2,y2)</obj>`` answer."""
    match = _OBJ_RE.search(text)
    return None if match is None else tuple(float(g) for g in match.groups())


def arig_sample(sample: Sample) -> Hashable:
    (x1, y1), (x2, y2) = sample.meta["top_left"], sample.meta["bottom_right"]
    return (float(x1), float(y1), float(x2), float(y2))


def label_line(text: str, split: Split) -> Hashable | None:
    """Crab+'s ``<answer>{label}</answer>`` -> the split's label (any spelling the task accepts); a label the split
    does not have is kept (normalised), so the line is outside the split rather than unreadable."""
    body = extract_answer(text)
    return None if body is None else plain_label_line(body, split)


def plain_label_line(text: str, split: Split) -> Hashable | None:
    """A label written plainly (an lmms-eval ``target``) -> the split's label, as ``label_line`` reads a tag's."""
    body = strip_special_tokens(text)
    if not body or not split.samples:
        return None
    task = get_task(split.task)
    try:
        label = task.check_prediction({"answer": body}, split.samples[0], split, Path("."))
    except PredictionError:
        return None
    return label  # type: ignore[no-any-return]


def target(sample: Sample) -> Hashable:
    return sample.target  # type: ignore[no-any-return]
