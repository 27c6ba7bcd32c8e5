"""Atomic writes: a reader never sees half a file, a failed run leaves nothing behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from crab_eval.errors import CrabEvalError


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file owner-only; give it the permissions a plain open() would (0666 less the umask)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, allow_nan=False)
        handle.write("\n")


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, allow_nan=False, separators=(",", ":")))
            handle.write("\n")


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None and tuples as lists: what ``write_json`` (no NaN allowed) accepts."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    return obj


def read_json(path: Path, error: type[CrabEvalError] = CrabEvalError) -> Any:
    """The JSON value of the file ``path`` (UTF-8, a BOM allowed); a malformed file raises ``error`` naming it."""
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"malformed JSON ({exc})", path) from None


def read_json_lines(path: Path, error: type[CrabEvalError] = CrabEvalError) -> Iterator[tuple[int, Any]]:
    """(line number, value) of every non-blank line of a JSONL file; a malformed line raises ``error`` naming it."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except ValueError as exc:
                raise error(line_json_error(exc), path, line_no) from None


def line_json_error(exc: Exception) -> str:
    """A JSON error of ONE line of a JSONL file, without json's own "line 1" (the caller names the file's line)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON ({exc.msg} at column {exc.colno})"
    return f"malformed JSON ({exc})"
