"""Robustness sweep over every registered task: bad input gets one clear line and exit 2, never a traceback.

For each task id of the registry (so a new task is covered without touching this file) a small valid split is
built with the task's layout writer (tests/fixture_builders.py). Then ``crab-eval score`` runs, through
``crab_eval.cli.main``, on:

- malformed structured predictions derived generically from ``task.oracle_prediction`` of a sample: wrong top-level
  types, missing and extra keys, every node replaced by wrong-typed or extreme values, lists emptied, shortened,
  lengthened, deep nesting, long strings, NaN;
- junk text lines derived from ``task.target_text``: truncations, unbalanced and duplicated tags, huge and
  negative numbers in the answer, binary-ish unicode, 1 MB of text; and a few lines that are not JSON at all;
- every annotation file the split reads (``task.annotation_files``), truncated, emptied, garbled or removed.

Each run must either score (exit 0, result written) or exit 2 with exactly one stderr line naming the file (and,
for predictions, the line); an exception escaping ``main`` is a failure, and a failed run leaves no output.
All problems of a task are collected and reported together, so one run shows every crash.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixture_builders import alternate_predictions, build_split

from crab_eval import cli, provenance
from crab_eval.registry import get_task, task_ids
from crab_eval.results import samples_path_for
from crab_eval.tasks.base import Sample, Split, Task

pytestmark = pytest.mark.slow  # about a thousand CLI runs

# Structured variants per task, and how many of them may repeat a node pattern already covered (list elements after
# the first); any sampling uses a task-seeded RNG, so runs are repeatable.
MAX_STRUCTURED = 150
MAX_STRUCTURED_MASKS = 60  # mask tasks decode a PNG per frame on every run: fewer variants keep the file fast
MAX_EXTRA_VARIANTS = 40
MAX_ALTERNATE = 50  # variants of each alternate prediction form (heatmap, per-segment labels, answer by text)
# Annotation files per task that are garbled (mask tasks read one PNG per frame; a few stand for all).
MAX_PNG_FILES = 2

Path_ = tuple[Any, ...]  # a JSON path: dict keys and list indices


@pytest.fixture(autouse=True)
def fast_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser and the run's provenance (git commit, library versions) do not change between runs; building them
    once keeps a thousand CLI runs within the time budget without bypassing anything ``main`` does with the input."""
    monkeypatch.setattr(cli, "build_parser", functools.cache(cli.build_parser))
    monkeypatch.setattr(provenance, "git_commit", functools.cache(provenance.git_commit))
    monkeypatch.setattr(provenance, "library_versions", functools.cache(provenance.library_versions))


# ---- generic variants of a structured prediction --------------------------------------------------------------
def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


JUNK: tuple[tuple[str, Any], ...] = (
    ("null", None),
    ("str", "junk"),
    ("empty-str", ""),
    ("list", [1, "a"]),
    ("empty-list", []),
    ("dict", {"a": 1}),
    ("empty-dict", {}),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("negative", -1),
    ("fraction", 0.5),
    ("huge-int", 10**30),
    ("huge-negative", -(10**30)),
    ("huge-float", 1e308),
    ("int-beyond-float", 10**400),  # valid JSON, but float() of it overflows
    ("nan", math.nan),  # written as the NaN literal, which JSON does not have
    ("nan-str", "NaN"),
    ("inf-str", "inf"),
    ("minus-one-str", "-1"),
    ("digit-str", "3"),
    ("nested-60", _nested(60)),
    ("long-str", "x" * 100_000),
    ("path-traversal", "../../../../etc/passwd"),
    ("device", "/dev/zero"),
    ("folder-npy", "."),
    ("control-unicode", "\x00\x07\u202e\ud800\U0010ffff"),
)
TOP_LEVEL: tuple[tuple[str, Any], ...] = (
    ("top-list", []),
    ("top-list-of-oracle", None),  # filled in with [oracle]
    ("top-str", "junk"),
    ("top-int", 7),
    ("top-float", 0.5),
    ("top-null", None),
    ("top-true", True),
    ("top-empty-dict", {}),
)


def _nodes(obj: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every node below the root, parents first."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*path, key), value
            yield from _nodes(value, (*path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield (*path, i), value
            yield from _nodes(value, (*path, i))


def _replace(obj: Any, path: Path_, value: Any) -> Any:
    out = copy.deepcopy(obj)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = copy.deepcopy(value)
    return out


def _delete(obj: Any, path: Path_) -> Any:
    out = copy.deepcopy(obj)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return out


def _pattern(path: Path_) -> str:
    """The path with list indices and numeric keys (AVSS's class indices) wildcarded: ``masks[*].size[*]``."""
    return "".join("[*]" if isinstance(step, int) else ".*" if step.isdigit() else f".{step}" for step in path)


def _name(path: Path_) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path) or "<root>"


def _node_variants(oracle: Any, path: Path_, node: Any) -> Iterator[tuple[str, Any]]:
    """The full matrix for one node: wrong values, and what fits its container (delete, empty, resize, extra)."""
    name = _name(path)
    for label, junk in JUNK:
        yield f"{name}={label}", _replace(oracle, path, junk)
    yield f"{name} deleted", _delete(oracle, path)
    if isinstance(node, dict):
        yield f"{name} extra key", _replace(oracle, path, {**node, "zz_extra": 1})
    if isinstance(node, list) and node:
        yield f"{name} shortened", _replace(oracle, path, node[:-1])
        yield f"{name} lengthened", _replace(oracle, path, [*node, node[-1]])
        yield f"{name} doubled", _replace(oracle, path, node + node)


def structured_variants(oracle: Any, task_id: str, cap: int = MAX_STRUCTURED) -> list[tuple[str, Any]]:
    """Top-level types and root-level changes always; for each node *pattern* (``masks[*].counts``) the full matrix
    on its first node; then a deterministic sample of the matrices of the other nodes (list elements 1, 2, ...);
    at most ``cap`` in all (the always-run ones are never dropped)."""
    always: list[tuple[str, Any]] = []
    for label, value in TOP_LEVEL:
        always.append((label, [oracle] if label == "top-list-of-oracle" else value))
    if isinstance(oracle, dict):
        always.append(("root extra key", {**oracle, "zz_extra": 1}))
    always.append(("oracle with NaN leaf", _nan_leaf(oracle)))
    first: list[tuple[str, Any]] = []
    rest: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for path, node in _nodes(oracle):
        pattern = _pattern(path)
        (rest if pattern in seen else first).extend(_node_variants(oracle, path, node))
        seen.add(pattern)
    rng = random.Random(zlib.crc32(task_id.encode()))
    room = cap - len(always)
    if len(first) > room:
        first = rng.sample(first, room)
    extra = rng.sample(rest, min(MAX_EXTRA_VARIANTS, len(rest), room - len(first)))
    return always + first + extra


def _nan_leaf(oracle: Any) -> Any:
    numbers = [path for path, node in _nodes(oracle) if isinstance(node, int | float) and not isinstance(node, bool)]
    return _replace(oracle, numbers[0], math.nan) if numbers else math.nan


# ---- text and raw lines ---------------------------------------------------------------------------------------
_TAG = re.compile(r"</?[A-Za-z_][^<>]*>")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def text_variants(target: str) -> list[tuple[str, str]]:
    """Junk answers shaped after the task's own answer template."""
    out = [("target", target), ("empty", ""), ("spaces", " \t\n ")]
    out += [(f"truncated-{k}/6", target[: len(target) * k // 6]) for k in range(1, 6)]
    tags = _TAG.findall(target)
    if tags:
        opening = [t for t in tags if not t.startswith("</")]
        closing = [t for t in tags if t.startswith("</")]
        out.append(("opening tags only", " ".join(opening)))
        out.append(("closing tags only", " ".join(closing)))
        out.append(("tags without content", "".join(tags)))
        out.append(("tags reversed", "".join(reversed(tags))))
        out.append(
            ("closing tags dropped", _TAG.sub(lambda m: "" if m.group().startswith("</") else m.group(), target))
        )
        out.append(("tag nested in itself", target.replace(opening[0], opening[0] * 2, 1) if opening else target))
        out.append(("tag content junk", _TAG.sub(lambda m: m.group() + "\x00\ufffd<<>>", target)))
    if _NUMBER.search(target):
        for label, number in (
            ("huge", "9" * 40),
            ("negative", "-5"),
            ("nan", "nan"),
            ("inf", "inf"),
            ("fraction", "0.5"),
            ("exponent", "1e999"),
        ):
            out.append((f"numbers {label}", _NUMBER.sub(number, target)))
    out.append(("twice", target + " " + target))
    out.append(("binary-ish unicode", "\x00\x01\x7f\x80\ufffd\ufeff\u202e\ud800\udfff\U0010ffff" * 10))
    out.append(("1 MB of text", "a" * 1_000_000))
    out.append(("template repeated to 1 MB", (target + "\n") * (1_000_000 // (len(target) + 1) + 1)))
    out.append(("unbalanced generic tags", "<answer> <answer> </answer> <event> <obj>(1,2)(3 <mask_start><mask_0>"))
    return out


RAW_LINES: tuple[tuple[str, bytes], ...] = (
    ("invalid utf-8", b"\xff\xfe\x00\x81"),
    ("truncated object", b'{"id": "x", "prediction": {'),
    ("json list line", b"[1, 2]"),
    ("integer id", b'{"id": 1, "prediction": {}}'),
    ("nesting 100000 deep", b"[" * 100_000 + b"]" * 100_000),
)


# ---- running the CLI ------------------------------------------------------------------------------------------
@dataclass
class Setup:
    task: Task
    data: Path
    split: str
    samples: Split
    work: Path
    runs: int = 0

    def valid_line(self, sample: Sample) -> bytes:
        return json.dumps({"id": sample.id, "prediction": self.task.oracle_prediction(sample)}).encode()


def make_setup(task_id: str, tmp_path: Path) -> Setup:
    task = get_task(task_id)
    data, split = build_split(task, tmp_path / "data")
    samples = task.load(data, split)
    assert samples, f"fixture of {task_id} has no samples"
    work = tmp_path / "work"
    work.mkdir()
    return Setup(task, data, split, samples, work)


def run_score(
    setup: Setup, capsys: pytest.CaptureFixture[str], lines: list[bytes], label: str, allow_extra: bool = False
) -> tuple[int | None, str, str]:
    """Write ``lines`` as the prediction file, run ``crab-eval score``; (exit code or None, stderr, problem)."""
    preds = setup.work / "preds.jsonl"
    preds.write_bytes(b"".join(line + b"\n" for line in lines))
    # A fresh output path per run: nothing to clean up, and a failed run's check cannot see an earlier result.
    setup.runs += 1
    output = setup.work / f"out{setup.runs}" / "result.json"
    argv = ["score", "--task", setup.task.id, "--data", str(setup.data), "--split", setup.split,
            "--predictions", str(preds), "--output", str(output)]  # fmt: skip
    if allow_extra:
        argv.append("--allow-extra")
    try:
        code = cli.main(argv)
    except BaseException as exc:  # anything escaping main is the failure this test looks for
        capsys.readouterr()
        where = _innermost_frame(exc)
        return None, "", f"{label}: uncaught {type(exc).__name__}: {str(exc)[:200]} (at {where})"
    err = capsys.readouterr().err
    written = [p for p in (output, samples_path_for(output)) if p.exists()]
    if code == 0:
        if not output.exists():
            return code, err, f"{label}: exit 0 but no result written"
        return code, err, ""
    if code != 2:
        return code, err, f"{label}: exit code {code}, expected 0 or 2; stderr {err[:200]!r}"
    if written:
        return code, err, f"{label}: exit 2 but left {[p.name for p in written]}"
    if err.count("\n") != 1 or not err.endswith("\n") or "Traceback" in err:
        return code, err, f"{label}: stderr is not exactly one line: {err[:300]!r}"
    return code, err, ""


def _innermost_frame(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno} {tb.tb_frame.f_code.co_name}"


def _prediction_lines(setup: Setup, bad: bytes) -> tuple[list[bytes], int]:
    """A valid line for another sample first (when there is one), then the bad line: it must be named as line 2."""
    if len(setup.samples) > 1:
        return [setup.valid_line(setup.samples[1]), bad], 2
    return [bad], 1


def check_prediction_line(
    setup: Setup, capsys: pytest.CaptureFixture[str], bad: bytes, label: str, must_fail: bool = False
) -> str:
    """Run with ``bad`` as line 2; a problem description, or "" when the outcome is acceptable."""
    lines, line_no = _prediction_lines(setup, bad)
    code, err, problem = run_score(setup, capsys, lines, label)
    if problem:
        return problem
    if code == 0:
        return f"{label}: accepted (exit 0), expected an error" if must_fail else ""
    if f"{setup.work / 'preds.jsonl'}:{line_no}:" not in err:
        return f"{label}: error does not name the prediction file and line {line_no}: {err.strip()[:300]!r}"
    return ""


# A prediction is an object in every task's contract: a scalar or a list there is never accepted.
MUST_FAIL = {"top-list", "top-list-of-oracle", "top-str", "top-int", "top-float", "top-true"}


TASKS = task_ids()


@pytest.mark.parametrize("task_id", TASKS)
def test_malformed_predictions(task_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = make_setup(task_id, tmp_path)
    sample = setup.samples[0]
    oracle = setup.task.oracle_prediction(sample)
    problems: list[str] = []
    # The unmodified file scores: otherwise every variant below would fail for the wrong reason.
    _, _, problem = run_score(setup, capsys, [setup.valid_line(s) for s in setup.samples], "oracle")
    assert not problem, problem

    cap = MAX_STRUCTURED if setup.task.text_predictions else MAX_STRUCTURED_MASKS
    for label, variant in structured_variants(oracle, task_id, cap):
        line = json.dumps({"id": sample.id, "prediction": variant}).encode()
        problems.append(check_prediction_line(setup, capsys, line, f"prediction {label}", label in MUST_FAIL))

    for n, form in enumerate(alternate_predictions(setup.task, setup.samples, sample, setup.work)):
        # The form itself must score, then its variants go through the same checks.
        lines, _ = _prediction_lines(setup, json.dumps({"id": sample.id, "prediction": form}).encode())
        code, _, problem = run_score(setup, capsys, lines, f"alternate form {n}")
        assert code == 0 and not problem, f"alternate form {form!r} of {task_id} does not score: {problem}"
        for label, variant in structured_variants(form, f"{task_id}#{n}", MAX_ALTERNATE):
            line = json.dumps({"id": sample.id, "prediction": variant}).encode()
            problems.append(check_prediction_line(setup, capsys, line, f"form {n} {label}", label in MUST_FAIL))

    target = setup.task.target_text(sample)
    for label, text in text_variants(target):
        line = json.dumps({"id": sample.id, "text": text}).encode()
        problems.append(check_prediction_line(setup, capsys, line, f"text {label}"))

    for label, raw in RAW_LINES:
        problems.append(check_prediction_line(setup, capsys, raw, f"raw line {label}", must_fail=True))

    problems = [p for p in problems if p]
    assert not problems, f"{task_id}: {len(problems)} problems:\n" + "\n".join(problems)


# ---- malformed annotation files -------------------------------------------------------------------------------
def _garblings(content: bytes) -> list[tuple[str, bytes | None]]:
    """Ways to break one file; None means the file is removed."""
    middle = len(content) // 2
    lines = content.splitlines(keepends=True)
    out: list[tuple[str, bytes | None]] = [
        ("removed", None),
        ("empty", b""),
        ("truncated to half", content[:middle]),
        ("truncated to 7 bytes", content[:7]),
        ("binary junk", b"\x89\xff\x00\x81garbage\xfe\r\n\x00"),
        ("middle garbled", content[:middle] + bytes(range(256))[::7] + content[middle + 37 :]),
        ("junk line appended", content + b"\n\xff&&,\t{]<x>\n"),
    ]
    if len(lines) > 2:
        out.append(("last line cut", b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2]))
        out.append(("a line swapped for junk", b"".join([*lines[:1], b"%%%\t&\t{\n", *lines[2:]])))
    return out


def _garbled_files(files: list[Path]) -> list[Path]:
    png = [f for f in files if f.suffix.lower() == ".png"]
    keep = set(png[:1] + png[-1:])
    return [f for f in files if f.suffix.lower() != ".png" or f in keep]


@pytest.mark.parametrize("task_id", TASKS)
def test_malformed_annotations(task_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = make_setup(task_id, tmp_path)
    files = setup.task.annotation_files(setup.data, setup.split)
    assert files, f"{task_id}: annotation_files lists nothing"
    valid = [setup.valid_line(s) for s in setup.samples]
    preds = str(setup.work / "preds.jsonl")
    problems: list[str] = []
    for path in _garbled_files([f for f in files if f.is_file()]):
        original = path.read_bytes()
        for label, content in _garblings(original):
            if content is None:
                path.unlink()
            else:
                path.write_bytes(content)
            name = f"{path.relative_to(setup.data)} {label}"
            # --allow-extra: a garbled split that lost samples must not turn into an unknown-id prediction error.
            code, err, problem = run_score(setup, capsys, valid, name, allow_extra=True)
            path.write_bytes(original)
            if problem:
                problems.append(problem)
            elif code == 2 and not any(
                [
                    str(path) in err,
                    f"{setup.data}: " in err,
                    content is None and str(setup.data) in err,
                    re.search(rf"{re.escape(preds)}:\d+:", err),
                ]
            ):
                # The garbled file is named; or the data folder, for a split left without samples; or, for a removed
                # file, the file or folder found missing in its place (ARIG falls back to Crab's file, AVSS counts
                # a video's PNGs); or the (valid) prediction no longer fits the garbled ground truth (a vocabulary or
                # mask size changed), which names the prediction line.
                problems.append(f"{name}: error names neither the file nor a prediction line: {err.strip()[:300]!r}")
    assert not problems, f"{task_id}: {len(problems)} problems:\n" + "\n".join(problems)
