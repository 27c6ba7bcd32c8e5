"""Affinity log: averaging over steps, malformed lines, heatmaps, rank correlation with transfer, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from crab_eval.affinity import (
    affinity_transfer_correlation,
    incoming_affinity,
    read_affinity,
    write_outputs,
)
from crab_eval.cli import main
from crab_eval.errors import CrabEvalError

PNG = b"\x89PNG\r\n\x1a\n"


def write_log(run_dir: Path, records: list) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (run_dir / "affinity.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def record(step: int, tasks: list[str], matrix: list[list[float]], kind: str = "lookahead") -> dict:
    return {"step": step, "kind": kind, "tasks": tasks, "matrix": matrix}


LOG = [
    record(10, ["a", "b", "c"], [[0.3, 0.1, -0.2], [0.2, 0.4, 0.0], [-0.1, 0.05, 0.5]]),
    record(20, ["a", "b", "c"], [[0.1, 0.3, -0.4], [0.0, 0.2, 0.2], [-0.3, 0.15, 0.3]]),
    record(30, ["b", "a"], [[0.6, 0.4], [0.5, 0.9]]),  # a subset, in another order: b->b 0.6, b->a 0.4, a->b 0.5
    record(10, ["a", "b"], [[1.0, 0.5], [0.5, 1.0]], kind="grad_cosine"),
]


def test_average_over_steps_by_hand(tmp_path: Path) -> None:
    summaries = read_affinity(write_log(tmp_path / "run", LOG))
    look = summaries["lookahead"]
    assert look.tasks == ["a", "b", "c"] and look.steps == [10, 20, 30]
    m = look.mean
    assert m[0, 0] == pytest.approx((0.3 + 0.1 + 0.9) / 3)  # a->a over three steps
    assert m[0, 1] == pytest.approx((0.1 + 0.3 + 0.5) / 3)  # a->b
    assert m[1, 0] == pytest.approx((0.2 + 0.0 + 0.4) / 3)  # b->a
    assert m[0, 2] == pytest.approx((-0.2 - 0.4) / 2)  # a->c only logged twice
    assert look.counts[0, 2] == 2 and look.counts[0, 1] == 3
    cos = summaries["grad_cosine"]
    assert cos.tasks == ["a", "b"] and cos.mean[0, 1] == pytest.approx(0.5)
    incoming = incoming_affinity(look)
    # Into c: mean of a->c (-0.3) and b->c ((0.0 + 0.2) / 2 = 0.1) = -0.1.
    assert incoming["c"] == pytest.approx(-0.1)
    assert incoming["a"] == pytest.approx(0.0, abs=1e-12)
    # Into a: b->a (0.2 + 0.0 + 0.4) / 3 = 0.2 and c->a (-0.1 - 0.3) / 2 = -0.2: mean 0.


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "malformed JSON"),
        (json.dumps(record(1, ["a"], [[0.1]], kind="other")), "'kind'"),
        (json.dumps(record(1, ["a", "b"], [[0.1, 0.2]])), "2 x 2"),
        (json.dumps({"step": "1", "kind": "lookahead", "tasks": ["a"], "matrix": [[0.1]]}), "'step'"),
        (json.dumps(record(1, ["a", "a"], [[0.1, 0.2], [0.1, 0.2]])), "repeats"),
        ('{"step": 1, "kind": "lookahead", "tasks": ["a"], "matrix": [["0.1"]]}', "numbers"),
        (json.dumps(record(1, [], [])), "non-empty"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    run_dir = write_log(tmp_path / "run", [LOG[0], line])
    with pytest.raises(CrabEvalError, match=message) as info:
        read_affinity(run_dir)
    assert info.value.line == 2 and info.value.path.endswith("affinity.jsonl")


def test_null_and_non_finite_cells_are_skipped(tmp_path: Path) -> None:
    log = [
        '{"step": 1, "kind": "grad_cosine", "tasks": ["a", "b"], "matrix": [[1.0, NaN], [null, 1.0]]}',
        record(2, ["a", "b"], [[1.0, 0.4], [0.2, 1.0]], kind="grad_cosine"),
    ]
    summary = read_affinity(write_log(tmp_path / "run", log))["grad_cosine"]
    assert summary.mean[0, 1] == pytest.approx(0.4) and summary.mean[1, 0] == pytest.approx(0.2)
    assert summary.counts[0, 1] == 1 and summary.counts[0, 0] == 2 and summary.n_skipped == 2


def test_missing_or_empty_log(tmp_path: Path) -> None:
    with pytest.raises(CrabEvalError, match="no affinity log"):
        read_affinity(tmp_path)
    (tmp_path / "affinity.jsonl").write_text("\n")
    with pytest.raises(CrabEvalError, match="empty"):
        read_affinity(tmp_path)


def test_heatmaps_and_summary_written(tmp_path: Path) -> None:
    summaries = read_affinity(write_log(tmp_path / "run", LOG))
    paths = write_outputs(summaries, tmp_path / "out")
    assert sorted(p.name for p in paths) == [
        "affinity_grad_cosine.png",
        "affinity_lookahead.png",
        "affinity_summary.json",
    ]
    assert (tmp_path / "out" / "affinity_lookahead.png").read_bytes()[:8] == PNG
    data = json.loads((tmp_path / "out" / "affinity_summary.json").read_text())
    assert data["lookahead"]["n_steps"] == 3 and data["lookahead"]["counts"][0][2] == 2


def test_spearman_by_hand(tmp_path: Path) -> None:
    tasks = ["a", "b", "c", "d"]
    # Off-diagonal column means (incoming affinity): a 1, b 2, c 3, d 4 (each column constant off the diagonal).
    matrix = [[9.0 if i == j else float(j + 1) for j in range(4)] for i in range(4)]
    summary = read_affinity(write_log(tmp_path / "run", [record(1, tasks, matrix)]))["lookahead"]
    assert incoming_affinity(summary) == {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    # Transfer ranks 1, 3, 2, 4: sum d^2 = 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    corr = affinity_transfer_correlation(summary, {"a": -5.0, "b": 2.0, "c": 1.0, "d": 7.0, "zzz": 0.0})
    assert corr.rho == pytest.approx(0.8) and corr.tasks == tasks
    # A task with undefined transfer is left out; fewer than 3 left is an error.
    corr = affinity_transfer_correlation(summary, {"a": -5.0, "b": None, "c": 1.0, "d": 7.0})
    assert corr.tasks == ["a", "c", "d"] and corr.rho == pytest.approx(1.0)
    with pytest.raises(CrabEvalError, match="at least 3"):
        affinity_transfer_correlation(summary, {"a": 1.0, "b": 2.0})
    assert not math.isnan(corr.p_value)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_log(tmp_path / "run", LOG)
    transfer = tmp_path / "transfer.json"
    transfer.write_text(
        json.dumps({"tasks": [{"task": t, "rel_change": v} for t, v in (("a", 1), ("b", 2), ("c", -3))]})
    )
    assert main(["affinity", str(run_dir), "--transfer", str(transfer), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    # lookahead covers a, b, c: a rank correlation; grad_cosine covers only a, b: reported as n/a, not an error.
    assert "Spearman rho(incoming lookahead affinity" in out and "Spearman rho: n/a" in out
    assert (tmp_path / "out" / "affinity_lookahead.png").is_file()
    assert main(["affinity", str(run_dir)]) == 0  # heatmaps beside the log by default
    assert (run_dir / "affinity_grad_cosine.png").is_file()
    assert main(["affinity", str(tmp_path / "nowhere")]) == 2
    assert "no affinity log" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["affinity", "--help"])
    assert info.value.code == 0 and "example:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0 and "affinity" in capsys.readouterr().out
