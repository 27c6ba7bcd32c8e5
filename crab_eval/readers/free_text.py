"""Pieces of free-form answer reading: the ``flexible`` extraction tier of the text tasks.

A model that was not trained on Crab's templates answers in prose: "The answer is two", ``2``, ``[30,40,150,200]``,
"Audio: Chainsaw, [0,10]". The helpers here find what such text names (a closed-vocabulary label, a number, a
time range, a box) and refuse when it names more than one thing: ambiguous text stays unparsed, it is never guessed.
Every task's ``parse_flexible`` composes them; the strict templates stay in the tasks' own ``parse``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

# ---- special tokens --------------------------------------------------------------------------------------------
# Tokens a decoder leaves in text when it keeps special tokens: LLaMA's <s> </s> <unk> <pad>, the <|...|> family
# (GPT's <|endoftext|>, Qwen's <|im_end|>, LLaMA-3's <|eot_id|>), Gemma's <eos>/<end_of_turn>, BERT's [PAD].
_SPECIAL = r"(?:</?s>|<unk>|<pad>|</?eos>|</?bos>|<end_of_turn>|<\|[^<>|\s]{1,40}\|>|\[(?:PAD|SEP|CLS|UNK)\])"
_TRAILING_SPECIAL_RE = re.compile(rf"(?:\s*{_SPECIAL})+\s*$")
_LEADING_SPECIAL_RE = re.compile(rf"^\s*(?:{_SPECIAL}\s*)+")


def strip_special_tokens(text: str) -> str:
    """``text`` without the special tokens (and padding) that open or close it, stripped of outer whitespace.

    Crab decodes with ``skip_special_tokens=False``: a batch's shorter rows end in ``</s></s>...`` or ``<unk>``
    padding after the answer; a generation opens with ``<s>``. Tokens inside the text are kept (they may be part of
    a template).
    """
    text = _TRAILING_SPECIAL_RE.sub("", text)
    return _LEADING_SPECIAL_RE.sub("", text).strip()


# ---- mentions of a closed vocabulary ---------------------------------------------------------------------------
_NON_WORD_RE = re.compile(r"[^0-9a-z]+")


def search_key(text: str) -> str:
    """Lower case, every run of non-alphanumerics one space: "Frying (food)" and "frying food" share a key."""
    return _NON_WORD_RE.sub(" ", text.lower()).strip()


def build_search_index(names: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    """Search key -> canonical name, from names (each its own canonical) or a spelling -> canonical mapping.
    Empty keys are dropped; a key claimed by two canonical names is dropped too (it could mean either)."""
    pairs = names.items() if isinstance(names, Mapping) else ((n, n) for n in names)
    index: dict[str, str] = {}
    clashes: set[str] = set()
    for spelling, canonical in pairs:
        key = search_key(spelling)
        if not key:
            continue
        if key in index and index[key] != canonical:
            clashes.add(key)
        index[key] = canonical
    for key in clashes:
        del index[key]
    return index


def with_comma_parts(names: Iterable[str]) -> dict[str, str]:
    """Spelling -> name: each name, and each comma-separated part of a name that lists synonyms ("Violin, fiddle"
    is also "violin" and "fiddle"), so prose that uses one of them is read; a part two names share is left out."""
    names = list(names)
    owners: dict[str, set[str]] = {}
    spelled: dict[str, str] = {}
    for name in names:
        parts = [p.strip() for p in name.split(",") if p.strip()]
        for part in parts if len(parts) > 1 else []:
            owners.setdefault(search_key(part), set()).add(name)
            spelled.setdefault(search_key(part), part)
    spellings = {spelled[key]: next(iter(found)) for key, found in owners.items() if len(found) == 1}
    spellings.update((name, name) for name in names)
    return spellings


@lru_cache(maxsize=64)
def _mention_regex(keys: tuple[str, ...]) -> re.Pattern[str]:
    # Longest keys first: at each position the alternation takes the longest name, and the scan resumes after it,
    # so "acoustic guitar" is one mention, not also "guitar". Words may be joined by any non-alphanumerics.
    alternatives = sorted(keys, key=len, reverse=True)
    body = "|".join(r"[^0-9a-z]+".join(map(re.escape, key.split(" "))) for key in alternatives)
    return re.compile(rf"(?<![0-9a-z])(?:{body})(?![0-9a-z])", re.IGNORECASE)


def mention_positions(text: str, index: Mapping[str, str]) -> list[tuple[int, str]]:
    """(position in ``text``, canonical name) of each whole-word mention of the index's names, in order."""
    if not index:
        return []
    regex = _mention_regex(tuple(sorted(index)))
    return [(m.start(), index[search_key(m.group(0))]) for m in regex.finditer(text)]


def single_mention(text: str, index: Mapping[str, str]) -> str | None:
    """The one name ``text`` mentions (possibly several times); None if it mentions none or more than one."""
    names = {name for _, name in mention_positions(text, index)}
    return names.pop() if len(names) == 1 else None


def closed_answer(text: str, index: Mapping[str, str]) -> str | None:
    """The answer of a closed vocabulary that free text gives: the whole text (an opening "The answer is"
    aside), or the answer it opens with, or the same for what follows "the answer is", else the one answer it
    mentions anywhere; None if it names none, or several without one of those cues."""
    body = without_lead_in(text)
    for candidate in (body, answer_phrase(body)):
        if not candidate:
            continue
        whole = index.get(search_key(candidate))
        if whole is not None:
            return whole
        opening = mention_positions(candidate, index)
        if opening and opening[0][0] == 0:
            return opening[0][1]
    return single_mention(body, index)


# ---- numbers ------------------------------------------------------------------------------------------------------
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_DIGITS_RE = re.compile(r"(?<![\w.])(\d+)(?![\w.]|\.\d)")


def digits_as_words(text: str) -> str:
    """Whole numbers written with digits become words ("2" -> "two"); more than ten is "more than ten"."""

    def word(match: re.Match[str]) -> str:
        value = int(match.group(1))
        return NUMBER_WORDS[value] if value <= 10 else "more than ten"

    return _DIGITS_RE.sub(word, text)


# ---- "the answer is X" --------------------------------------------------------------------------------------------
_ANSWER_PHRASE_RE = re.compile(
    r"\b(?:final\s+)?answer\s*(?:is|:|=|would\s+be|should\s+be)\s*:?\s*(.+?)(?:[.;\n]|$)", re.IGNORECASE
)
_LEAD_IN_RE = re.compile(r"^\s*(?:(?:so|thus|therefore)\s*,?\s*)?(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*", re.I)


def answer_phrase(text: str) -> str | None:
    """What follows the last "answer is" / "answer:" in ``text`` up to the end of its sentence, if any."""
    found = _ANSWER_PHRASE_RE.findall(text)
    return found[-1].strip() if found else None


def without_lead_in(text: str) -> str:
    """``text`` without an opening "The answer is" / "Answer:"."""
    return _LEAD_IN_RE.sub("", text, count=1).strip()


# ---- time ranges --------------------------------------------------------------------------------------------------
_N = r"(\d+(?:\.\d+)?)"
_UNIT = r"(?:\s*(?:s|secs?|seconds?)\b)?"
_RANGE_PATTERNS = (
    # [0, 8], (0 8), [0-8], (0 to 8)
    rf"[\[(]\s*{_N}{_UNIT}\s*(?:,|-|–|to|\s)\s*{_N}{_UNIT}\s*[\])]",
    # from 0 to 8 (seconds), between 0 and 8
    rf"\b(?:from|between)\s+(?:second\s+)?{_N}{_UNIT}\s*(?:to|and|until|till|-|–)\s*(?:second\s+)?{_N}{_UNIT}",
    # start_time:0 end_time:8, start 0 ... end 8
    rf"\bstart(?:_time|\s+time)?\s*[:=]?\s*{_N}{_UNIT}[^0-9\[\]()]{{0,20}}?\bend(?:_time|\s+time)?\s*[:=]?\s*{_N}",
    # 0-8 s, 0 to 8 seconds (a bare pair with a dash or "to")
    rf"(?<![\w.\[(]){_N}{_UNIT}\s*(?:-|–|to)\s*{_N}{_UNIT}(?![\w.])",
)
_RANGE_RE = re.compile("|".join(f"(?:{p})" for p in _RANGE_PATTERNS), re.IGNORECASE)


@dataclass(frozen=True)
class TimeRange:
    start: float
    end: float
    at: int  # position in the text


def find_ranges(text: str) -> list[TimeRange]:
    """Time ranges written in prose or brackets, in order of appearance."""
    ranges = []
    for match in _RANGE_RE.finditer(text):
        numbers = [g for g in match.groups() if g is not None]
        ranges.append(TimeRange(float(numbers[0]), float(numbers[1]), match.start()))
    return ranges


@dataclass(frozen=True)
class LabelledRanges:
    label: str
    ranges: tuple[tuple[float, float], ...]
    at: int  # position of the label in the search key of the text


def labelled_ranges(text: str, index: Mapping[str, str]) -> list[LabelledRanges] | None:
    """Each label mention with the time ranges that follow it before the next mention ("Dog, [0,3] (5 8); Speech
    from 2 to 4"). None when a mention has no range, a range comes before any mention, or nothing is found: a time
    that belongs to no label, or a label without a time, cannot be read without guessing."""
    spans = mention_positions(text, index)
    ranges = find_ranges(text)
    if not spans or not ranges:
        return None
    items = []
    for k, (start, name) in enumerate(spans):
        stop = spans[k + 1][0] if k + 1 < len(spans) else len(text)
        own = tuple((r.start, r.end) for r in ranges if start <= r.at < stop)
        if not own:
            return None
        items.append(LabelledRanges(name, own, start))
    if any(r.at < spans[0][0] for r in ranges):
        return None
    return items


# ---- boxes -------------------------------------------------------------------------------------------------------
_C = r"(\d+(?:\.\d+)?)"
_BOX_PATTERNS = (
    # [x1, y1, x2, y2] or (x1, y1, x2, y2)
    rf"[\[(]\s*{_C}\s*,\s*{_C}\s*,\s*{_C}\s*,\s*{_C}\s*[\])]",
    # (x1,y1)(x2,y2), (x1, y1), (x2, y2), (x1,y1) to (x2,y2), [x1,y1][x2,y2]
    rf"[\[(]\s*{_C}\s*,\s*{_C}\s*[\])]\s*(?:,|and|to|-)?\s*[\[(]\s*{_C}\s*,\s*{_C}\s*[\])]",
)
_BOX_RE = re.compile("|".join(f"(?:{p})" for p in _BOX_PATTERNS), re.IGNORECASE)


def find_boxes(text: str) -> list[tuple[float, float, float, float]]:
    """Boxes written as ``[x1,y1,x2,y2]`` or two corner points, in order; two-number brackets alone (points) are
    not boxes."""
    boxes = []
    for match in _BOX_RE.finditer(text):
        numbers = [float(g) for g in match.groups() if g is not None]
        boxes.append((numbers[0], numbers[1], numbers[2], numbers[3]))
    return boxes


# ---- option letters ----------------------------------------------------------------------------------------------
# A letter alone or opening the answer: "B", "B.", "B) cat", "(B) cat", "Option B"; the letter itself is a capital.
_LETTER_ALONE_RE = re.compile(r"^\s*(?i:option\s+|choice\s+)?(?:\(([A-Z])\)|([A-Z])(?:[.):,]|\s*$))")
_LETTER_PHRASE_RE = re.compile(r"\b(?i:answer|option|choice)\s*(?i:is|:)?\s*(?i:option\s+)?\(?([A-Z])\)?(?![\w'])")


def option_letter(text: str, n_options: int) -> int | None:
    """The option index an answer names by its letter: "B", "(B)", "B. cat", "Option B", "the answer is (B)".
    Only capital letters count (a lone "a" is an article); a letter past the options is no answer."""
    letters = set()
    alone = _LETTER_ALONE_RE.match(text)
    if alone:
        letters.add(alone.group(1) or alone.group(2))
    letters.update(_LETTER_PHRASE_RE.findall(text))
    if len(letters) != 1:
        return None
    index = ord(letters.pop()) - ord("A")
    return index if index < n_options else None
