"""``replay``: answers read from files written earlier, so that a finished run is evaluated like any model.

``path`` is one prediction file (a single task) or a folder in the submission layout (``<task>.jsonl`` for the
task's default split, ``<task>.<split>.jsonl`` for another one; ``crab-eval evaluate`` writes its predictions so).
``format`` names the reader: ``contract`` reads the scoring contract's JSONL (``{"id", "text"}`` or ``{"id",
"prediction"}`` lines) as it is; ``crab``, ``crab-plus`` and ``lmms-eval`` read a client's output file or run folder
through its converter (crab_eval/clients, docs/clients.md), which finds the task's own file in a run folder.
Lines are passed through untouched: the scorer validates them, and a sample without a line stays missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError, PredictionFileError
from crab_eval.io import read_json_lines
from crab_eval.models.base import Model, Request, Response
from crab_eval.tasks.base import Split, Task

Reader = Callable[[Path, Task, Split], dict[str, dict[str, Any]]]


def read_contract(path: Path, task: Task, split: Split) -> dict[str, dict[str, Any]]:
    """Contract rows by id; a line that is not a JSON object with a string ``id`` is an error naming it, a
    repeated id too (the scorer would refuse the file)."""
    rows: dict[str, dict[str, Any]] = {}
    for line_no, row in read_json_lines(path, PredictionFileError):
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise PredictionFileError("a line must be a JSON object with a string 'id'", path, line_no)
        if row["id"] in rows:
            raise PredictionFileError(f"duplicate id {row['id']!r}", path, line_no)
        rows[row["id"]] = row
    return rows


def client_reader(source: str) -> Reader:
    """A reader of one client's outputs: its converter's rows by id (conversion errors name file and line)."""

    def read(path: Path, task: Task, split: Split) -> dict[str, dict[str, Any]]:
        from crab_eval.clients import convert

        rows = convert(source, task.id, split.data_dir, [path], split=split.name).rows
        return {row["id"]: row for row in rows}

    return read


READERS: dict[str, Reader] = {
    "contract": read_contract,
    **{source: client_reader(source) for source in ("crab", "crab-plus", "lmms-eval")},
}


class Replay(Model):
    id = "replay"
    description = "predictions read from a file or a folder of <task>[.<split>].jsonl files (no model is run)"

    def __init__(self, path: Path, format: str = "contract", name: str | None = None) -> None:
        if format not in READERS:
            raise CrabEvalError(f"replay: unknown format {format!r}; formats: {', '.join(READERS)}")
        if not path.exists():
            raise CrabEvalError("replay: prediction file or folder not found", path)
        self.path, self.format, self.name = path, format, name
        self._rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._files: dict[str, str] = {}

    def file_for(self, task: Task, split: Split) -> Path:
        if self.path.is_file() or self.format != "contract":
            return self.path  # a client's converter finds the task's file in a run folder itself
        names = [f"{task.id}.{split.name}.jsonl"]
        if split.name == task.default_split:
            names.insert(0, f"{task.id}.jsonl")
        for name in names:
            if (self.path / name).is_file():
                return self.path / name
        raise CrabEvalError(f"replay: no {' or '.join(names)} for {task.id}/{split.name}", self.path)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            key = (request.task.id, request.split.name)
            if key not in self._rows:
                path = self.file_for(request.task, request.split)
                self._rows[key] = READERS[self.format](path, request.task, request.split)
                self._files[f"{key[0]}/{key[1]}"] = str(path)
            row = self._rows[key].get(request.sample.id)
            out.append(Response() if row is None else Response.from_row(row))
        return out

    def run_info(self) -> dict[str, Any]:
        return {"model": self.name or f"replay-{self.path.stem}"}

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "files": dict(self._files)}
