"""Regression check: a run passes against itself, a degraded copy fails, unusable input exits 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from crab_eval.cli import main
from crab_eval.compare import compare_results, format_report
from crab_eval.errors import CrabEvalError
from crab_eval.results import RunResult, samples_path_for, write_result

pytestmark = pytest.mark.usefixtures("toy")  # the toy task of tests/toy_task.py

N = 600


def make_run(correct, hashes=None, fingerprint: str = "sha256:toy", split: str = "test") -> RunResult:
    correct = [int(c) for c in correct]
    hashes = hashes or [f"h{i}-{c}" for i, c in enumerate(correct)]
    rows = [
        {"id": f"q{i}", "group": f"v{i // 2}", "status": "ok", "pred_hash": h, "correct": c}
        for i, (c, h) in enumerate(zip(correct, hashes, strict=True))
    ]
    acc = 100.0 * sum(correct) / len(correct)
    return RunResult(
        "toy", split, {"accuracy": acc, "error": 100.0 - acc}, "accuracy", {"accuracy": True, "error": False},
        len(rows), 0, 0, provenance={"data_fingerprint": fingerprint}, run={"model": "m"}, samples=rows,
    )  # fmt: skip


@pytest.fixture(scope="module")
def correct() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random(N) < rng.uniform(0.4, 0.95, N)


def degrade(correct: np.ndarray, share: float, seed: int = 1) -> np.ndarray:
    """Turn a share of the right answers wrong."""
    rng = np.random.default_rng(seed)
    out = correct.copy()
    right = np.flatnonzero(out)
    out[rng.choice(right, int(share * len(right)), replace=False)] = False
    return out


def test_run_against_itself_passes_in_both_tiers(correct: np.ndarray) -> None:
    run = make_run(correct)
    for exact in (False, True):
        report = compare_results(run, copy.deepcopy(run), exact=exact)
        assert report.passed and report.n_changed_predictions == 0
        assert [c.verdict for c in report.checks] == ["ok", "ok"]
        assert all(c.change == 0 and c.ci == (0.0, 0.0) for c in report.checks)
        assert "PASS" in format_report(report)


def test_degraded_copy_fails_on_every_metric(correct: np.ndarray) -> None:
    ref, new = make_run(correct), make_run(degrade(correct, 0.15))
    report = compare_results(new, ref, n_boot=500)
    assert not report.passed
    by_name = {c.metric: c for c in report.checks}
    # accuracy drops and error rises by the same amount: both are a worse change, in their own direction.
    drop = 100.0 * (degrade(correct, 0.15).sum() - correct.sum()) / N
    assert by_name["accuracy"].change == pytest.approx(drop)
    assert by_name["error"].change == pytest.approx(drop)
    assert by_name["accuracy"].verdict == by_name["error"].verdict == "regression"
    assert by_name["accuracy"].ci[1] < 0
    assert "REGRESSION" in format_report(report) and "FAIL" in format_report(report)
    # The improvement in the other direction is no regression.
    assert compare_results(ref, new, n_boot=500).passed


def test_tolerance(correct: np.ndarray) -> None:
    ref, new = make_run(correct), make_run(degrade(correct, 0.05))
    strict = compare_results(new, ref, tolerance=0.0, n_boot=500)
    upper = strict.checks[0].ci[1]
    assert not strict.passed and upper < 0
    # A tolerance beyond the interval's upper end forgives the drop; one just inside does not.
    assert compare_results(new, ref, tolerance=-upper + 0.01, n_boot=500).passed
    assert not compare_results(new, ref, tolerance=-upper - 0.01, n_boot=500).passed
    with pytest.raises(CrabEvalError, match="tolerance"):
        compare_results(new, ref, tolerance=-1.0)


def test_exact_tier_catches_a_changed_prediction_the_statistical_tier_allows(correct: np.ndarray) -> None:
    ref = make_run(correct)
    hashes = [f"h{i}-{int(c)}" for i, c in enumerate(correct)]
    hashes[7] = "something else, equally right or wrong"
    new = make_run(correct, hashes=hashes)
    exact = compare_results(new, ref, exact=True)
    assert not exact.passed and exact.n_changed_predictions == 1
    assert "predictions changed: 1" in format_report(exact)
    assert compare_results(new, ref, n_boot=100).passed
    # A changed metric with the same hashes is caught too (per-sample stats changed under the same predictions).
    flipped = make_run(
        np.where(np.arange(N) == 3, ~correct, correct), hashes=[f"h{i}-{int(c)}" for i, c in enumerate(correct)]
    )
    report = compare_results(flipped, ref, exact=True)
    assert not report.passed and {c.verdict for c in report.checks} == {"changed"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fingerprint": "sha256:other"}, "different annotation files"),
        ({"split": "val"}, "split"),
    ],
)
def test_unpairable_is_an_error(correct: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(CrabEvalError, match=message):
        compare_results(make_run(correct, **kwargs), make_run(correct))


def test_exact_needs_hashes(correct: np.ndarray) -> None:
    ref, new = make_run(correct), make_run(correct)
    for row in new.samples:
        del row["pred_hash"]
    with pytest.raises(CrabEvalError, match="pred_hash"):
        compare_results(new, ref, exact=True)
    assert compare_results(new, ref, n_boot=50).n_changed_predictions is None


def test_cli_exit_codes(correct: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref_path, bad_path, other_path = tmp_path / "ref.json", tmp_path / "bad.json", tmp_path / "other.json"
    write_result(make_run(correct), ref_path)
    write_result(make_run(degrade(correct, 0.15)), bad_path)
    write_result(make_run(correct, fingerprint="sha256:elsewhere"), other_path)
    assert main(["compare", str(ref_path), "--reference", str(ref_path)]) == 0
    assert main(["compare", str(ref_path), "--reference", str(ref_path), "--exact"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["compare", str(bad_path), "--reference", str(ref_path), "--bootstrap", "300"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "FAIL" in out and str(bad_path) in out
    assert main(["compare", str(bad_path), "--reference", str(ref_path), "--exact"]) == 1
    assert main(["compare", str(other_path), "--reference", str(ref_path)]) == 2
    assert "different annotation files" in capsys.readouterr().err
    samples_path_for(bad_path).unlink()
    assert main(["compare", str(bad_path), "--reference", str(ref_path)]) == 2
    assert main(["compare", str(tmp_path / "missing.json"), "--reference", str(ref_path)]) == 2
    assert main(["compare", str(ref_path), "--reference", str(ref_path), "--tolerance", "-2"]) == 2


def test_end_to_end_through_scoring(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy_test.tsv").write_text("".join(f"q{i}\tv{i // 4}\tdog\n" for i in range(200)))
    results = {}
    for name, n_right in (("ref", 180), ("same", 180), ("worse", 100)):
        preds = tmp_path / f"{name}.jsonl"
        labels = ["dog" if i < n_right else "cat" for i in range(200)]
        preds.write_text(
            "".join(json.dumps({"id": f"q{i}", "prediction": {"label": y}}) + "\n" for i, y in enumerate(labels))
        )
        results[name] = tmp_path / f"{name}.json"
        args = [
            "score",
            "--task",
            "toy",
            "--data",
            str(data),
            "--predictions",
            str(preds),
            "--output",
            str(results[name]),
        ]
        assert main(args) == 0
    # Same predictions from another file: identical per-sample hashes, so even --exact passes.
    assert main(["compare", str(results["same"]), "--reference", str(results["ref"]), "--exact"]) == 0
    assert main(["compare", str(results["worse"]), "--reference", str(results["ref"]), "--bootstrap", "300"]) == 1


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compare", "--help"])
    assert info.value.code == 0 and "example:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
