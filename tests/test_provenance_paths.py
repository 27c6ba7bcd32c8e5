"""Result files name their inputs without the folders of the machine that made them: paths inside the working
directory are recorded relative to it, the program by its name; and no committed result file holds an absolute
path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from crab_eval.provenance import command_line, portable_path
from crab_eval.scoring import score

pytestmark = pytest.mark.usefixtures("toy")
RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_inputs_inside_the_working_directory_are_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "toy_test.tsv").write_text("a\tv1\tdog\n")
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prediction": {"label": "dog"}}\n')
    result = score("toy", tmp_path / "data", "test", "p.jsonl")
    assert result.provenance["data_dir"] == "data" and result.provenance["predictions_file"] == "p.jsonl"
    assert portable_path("/elsewhere/x") == "/elsewhere/x"  # outside the working directory: as it is


def test_command_names_the_program_without_its_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["/opt/venv/bin/crab-eval", "score", "--data", "/abs/data"])
    assert command_line() == "crab-eval score --data /abs/data"
    monkeypatch.setattr(sys, "argv", [str(tmp_path / ".venv" / "bin" / "crab-eval"), "tasks"])
    # Inside the working directory too: the program by its name, as the scoring contract says.
    assert command_line() == "crab-eval tasks"


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_committed_results_hold_no_absolute_path() -> None:
    files = sorted(RESULTS.rglob("*.json"))
    assert len(files) > 50
    found = [
        f"{path.relative_to(RESULTS)}: {text}"
        for path in files
        for text in _strings(json.loads(path.read_text(encoding="utf-8")))
        if any(part.startswith("/") or part[1:3] == ":\\" for part in text.split())  # POSIX or Windows
    ]
    assert not found, "\n".join(found[:10])
