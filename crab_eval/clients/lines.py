"""Reading a client's output files: one JSON object a line, each kept with its file and line for error messages.

Clients append to their files (Crab's and Crab+'s ``jsonlines.open(fp, mode='a')``, lmms-eval's sample logs), so a
file is read as it is, reruns and all; what the lines mean is the business of the source's rules and the matcher.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.io import line_json_error


class ClientError(CrabEvalError):
    """A client output file is unreadable, or its lines cannot be matched to the split without guessing."""


@dataclass(frozen=True)
class ClientLine:
    """One JSON object of a client's output file."""

    path: Path
    line_no: int
    obj: dict[str, Any]

    def fail(self, message: str) -> ClientError:
        return ClientError(message, self.path, self.line_no)


def read_lines(paths: Sequence[Path]) -> list[ClientLine]:
    """Every JSON object of ``paths``, in order. A JSON Lines file gives one object a line; a file holding one JSON
    object with a ``logs`` list (lmms-eval up to v0.2.2) gives the list's objects. Blank lines are skipped."""
    lines: list[ClientLine] = []
    for path in paths:
        lines.extend(_read_file(Path(path)))
    return lines


def read_text(path: Path, what: str = "client output file") -> str:
    """A file's UTF-8 text (a BOM tolerated); a missing or undecodable file is a ``ClientError``."""
    if not path.is_file():
        raise ClientError(f"{what} not found", path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClientError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None


def parse_json(text: str, path: Path, what: str) -> Any:
    """The JSON value of a file's ``text`` (from ``read_text``); malformed JSON is a ``ClientError`` naming ``what``."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ClientError(f"{what} is not valid JSON ({exc})", path) from None


def _read_file(path: Path) -> Iterator[ClientLine]:
    text = read_text(path)
    whole = _whole_json_logs(text)
    if whole is not None:
        for i, obj in enumerate(whole):
            if not isinstance(obj, dict):
                raise ClientError(f"'logs'[{i}] is not a JSON object", path)
            yield ClientLine(path, i + 1, obj)
        return
    for line_no, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise ClientError(line_json_error(exc), path, line_no) from None
        if not isinstance(obj, dict):
            raise ClientError("a line must be a JSON object", path, line_no)
        yield ClientLine(path, line_no, obj)


def _whole_json_logs(text: str) -> list[Any] | None:
    """The ``logs`` list of a one-object JSON file (lmms-eval <= v0.2.2: ``{"args", "logs": [...], ...}``)."""
    stripped = text.lstrip()
    if not stripped.startswith("{") or "\n" not in stripped.rstrip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("logs"), list):
        return value["logs"]
    return None


_MISSING = object()


def dotted(obj: Any, path: str) -> Any:
    """``obj["a"]["b"]`` for ``path`` "a.b" (a list is indexed by a number: "resps.0"); ``_MISSING`` if absent."""
    value = obj
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def field(line: ClientLine, path: str) -> Any:
    """The value at the dotted ``path`` of a line; a missing field is an error naming the line."""
    value = dotted(line.obj, path)
    if value is _MISSING:
        raise line.fail(f"no field {path!r} (keys: {', '.join(map(str, line.obj))})")
    return value


def has(line: ClientLine, path: str) -> bool:
    return dotted(line.obj, path) is not _MISSING


def text_of(line: ClientLine, path: str) -> str:
    """The model's text at ``path``: a string, or a list holding one (lmms-eval's ``[text]`` / ``[[text]]``)."""
    value = field(line, path)
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        what = f"a list of {len(value)} items" if isinstance(value, list) else type(value).__name__
        raise line.fail(f"{path!r} must be the model's text (a string, or a list of one), got {what}")
    return value
