"""The ``<answer> X </answer>`` template shared by Crab's QA, classification and matching tasks.

Crab's models end a free-text reasoning with ``... So the answer is <answer> X </answer>.`` (Crab README). The
reasoning may quote earlier guesses, so the *last* complete tag pair is the answer. Each task decides how strictly
to compare the body; the helpers here give the common pieces: extraction, whitespace/case normalisation, and
matching against a closed vocabulary with a key that ignores the spellings a model plausibly varies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Tags are matched case-insensitively and may carry spaces inside the brackets ("< answer >"); the body is the
# shortest run between an opening and the next closing tag, so nested or repeated tags cannot swallow each other.
_ANSWER_RE = re.compile(r"<\s*answer\s*>(.*?)<\s*/\s*answer\s*>", re.IGNORECASE | re.DOTALL)
_SPACE_RE = re.compile(r"\s+")
# Underscores and hyphens count as spaces in vocabulary keys: "acoustic guitar" and "acoustic_guitar" are the
# same answer to a reader, and no closed vocabulary we score distinguishes them.
_SEPARATOR_RE = re.compile(r"[\s_\-]+")
# Punctuation a model wraps an answer in ("yes.", "'left'"); stripped only at the ends of the body.
_EDGE_PUNCTUATION = " \t\r\n.,;:!?\"'`()[]{}"


def extract_answer(text: str) -> str | None:
    """The body of the last complete ``<answer>...</answer>`` pair, stripped; None if there is none or it is empty.

    An unclosed trailing tag (a truncated generation) is ignored in favour of the last complete pair before it.
    """
    last: str | None = None
    for match in _ANSWER_RE.finditer(text):
        last = match.group(1)
    if last is None:
        return None
    body = last.strip()
    return body or None


def normalize_space_case(text: str) -> str:
    """Lower case, runs of whitespace collapsed to one space, ends stripped."""
    return _SPACE_RE.sub(" ", text).strip().lower()


def vocabulary_key(text: str) -> str:
    """The key two spellings of one vocabulary answer share: case, whitespace, ``_``/``-`` and edge punctuation
    do not matter."""
    stripped = text.strip(_EDGE_PUNCTUATION)
    return _SEPARATOR_RE.sub(" ", stripped).strip().lower()


def vocabulary_index(vocabulary: Iterable[str]) -> dict[str, str]:
    """Key -> canonical answer; raises ``ValueError`` if two answers share a key (the key would be ambiguous)."""
    index: dict[str, str] = {}
    for answer in vocabulary:
        key = vocabulary_key(answer)
        if key in index and index[key] != answer:
            raise ValueError(f"vocabulary answers {index[key]!r} and {answer!r} share the key {key!r}")
        index[key] = answer
    return index


def canonical_answer(text: str, index: Mapping[str, str]) -> str:
    """The vocabulary's own spelling of ``text`` if it names a vocabulary answer, else ``text`` with whitespace and
    case normalised (an out-of-vocabulary answer: kept, so it is scored, and wrong)."""
    return index.get(vocabulary_key(text), normalize_space_case(text))


def format_answer(answer: str) -> str:
    """``<answer> X </answer>``, spaced as in Crab's outputs."""
    return f"<answer> {answer} </answer>"
