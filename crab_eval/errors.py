"""Errors that reach the user as one line: which file, which line, what is wrong."""

from __future__ import annotations

from pathlib import Path


class CrabEvalError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits non-zero."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        return where + self.message


class AnnotationError(CrabEvalError):
    """An official annotation file is missing or malformed."""


class PredictionFileError(CrabEvalError):
    """A prediction file line is malformed, duplicated, unknown or of the wrong shape."""


class PredictionError(ValueError):
    """A structured prediction is of the wrong type or shape; raised by tasks without location.

    The prediction reader adds the file and line before it reaches the user.
    """
