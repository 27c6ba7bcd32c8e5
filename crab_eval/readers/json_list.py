"""Annotation files that are one top-level JSON list (MUSIC-AVQA, AVQA, Crab+ json, VALOR captions), and the
JSON reading they share with other JSON annotation files (UnAV-100).

Errors name the line where the offending element starts, found only when an error is reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from crab_eval.errors import AnnotationError

T = TypeVar("T")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def read_json_file(path: Path) -> tuple[str, Any]:
    """The text of ``path`` (UTF-8, BOM allowed) and its JSON value; a bad file is one AnnotationError."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"not UTF-8 text ({exc.reason})", path) from None
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"malformed JSON: {exc.msg}", path, exc.lineno) from None


def read_json_list(path: Path, noun: str) -> tuple[str, list[Any]]:
    """The text of ``path`` and its top-level JSON list of ``noun`` (named in the error)."""
    text, entries = read_json_file(path)
    if not isinstance(entries, list):
        raise AnnotationError(f"expected a JSON list of {noun}", path, 1)
    return text, entries


def element_line(text: str, index: int) -> int | None:
    """The line where element ``index`` of the (valid) top-level JSON list starts; only called to report an error."""
    decoder = json.JSONDecoder()
    pos = _JSON_SPACE.match(text, 0).end() + 1  # type: ignore[union-attr]  # past '['
    for _ in range(index):
        pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
        pos = decoder.raw_decode(text, pos)[1]
        pos = _JSON_SPACE.match(text, pos).end() + 1  # type: ignore[union-attr]  # past ','
    pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
    return text.count("\n", 0, pos) + 1


def parse_json_list(path: Path, parse: Callable[[Any], T], label: str, noun: str) -> list[T]:
    """``parse`` applied to every element; its ``ValueError`` becomes an ``AnnotationError`` at the element's line,
    as "``label`` INDEX: what is wrong"."""
    text, objects = read_json_list(path, noun)
    parsed = []
    for index, obj in enumerate(objects):
        try:
            parsed.append(parse(obj))
        except ValueError as exc:
            raise AnnotationError(f"{label} {index}: {exc}", path, element_line(text, index)) from None
    return parsed
