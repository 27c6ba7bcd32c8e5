"""Regression check: a run passes against itself, a degraded copy fails, Holm across metrics, unusable input exits 2,
and the gate's error rates on simulated runs of equal and of worse quality."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from crab_eval.cli import main
from crab_eval.compare import MetricCheck, _holm_gate, compare_results, one_sided_p_value
from crab_eval.compare_report import format_report
from crab_eval.errors import CrabEvalError
from crab_eval.results import RunResult, samples_path_for, write_result
from crab_eval.simulation import simulate_qa_pair

pytestmark = pytest.mark.usefixtures("toy")  # the toy task of tests/toy_task.py

N = 600


def make_run(
    correct, hashes=None, fingerprint: str = "sha256:toy", split: str = "test", version: str = "1"
) -> RunResult:
    correct = [int(c) for c in correct]
    hashes = hashes or [f"h{i}-{c}" for i, c in enumerate(correct)]
    rows = [
        {"id": f"q{i}", "group": f"v{i // 2}", "status": "ok", "pred_hash": h, "correct": c}
        for i, (c, h) in enumerate(zip(correct, hashes, strict=True))
    ]
    acc = 100.0 * sum(correct) / len(correct)
    return RunResult(
        "toy", split, {"accuracy": acc, "error": 100.0 - acc}, "accuracy", {"accuracy": True, "error": False},
        len(rows), 0, 0, provenance={"data_fingerprint": fingerprint, "task_version": version}, run={"model": "m"},
        samples=rows,
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
        # The exact tier checks every metric; the statistical tier gates the main metric by default.
        assert [c.verdict for c in report.checks] == (["ok", "ok"] if exact else ["ok", "not gated"])
        assert all(c.change == 0 and c.ci == (0.0, 0.0) for c in report.checks)
        assert "PASS" in format_report(report)


def test_degraded_copy_fails_on_every_metric(correct: np.ndarray) -> None:
    ref, new = make_run(correct), make_run(degrade(correct, 0.15))
    main_only = compare_results(new, ref, n_boot=500)
    assert not main_only.passed and [c.verdict for c in main_only.checks] == ["regression", "not gated"]
    report = compare_results(new, ref, n_boot=500, metrics="all")
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
    with pytest.raises(CrabEvalError, match="'main' or 'all'"):
        compare_results(new, ref, metrics="some")


def test_holm_gate_by_hand() -> None:
    # Three gated metrics, 999 replicates each. A: all below -1 (p = 1/1000). B: 20 replicates at or above 0
    # (p = 21/1000): alone it would fail at 95 % (its 97.5th percentile is below 0), but Holm tests it at
    # 1 - 0.05/2 (upper end the 98.75th percentile, above 0). C: no drop. The descent stops at B.
    rng = np.random.default_rng(0)
    reps = {
        "A": -rng.uniform(1.0, 3.0, 999),
        "B": np.concatenate([rng.uniform(0.0, 1.0, 20), -rng.uniform(0.5, 2.0, 979)]),
        "C": rng.normal(0.0, 1.0, 999),
    }
    assert one_sided_p_value(reps["A"], 0.0) == pytest.approx(1 / 1000)
    assert one_sided_p_value(reps["B"], 0.0) == pytest.approx(21 / 1000)
    checks = [MetricCheck(name, True, 0.0, 0.0, 0.0, p_value=one_sided_p_value(r, 0.0)) for name, r in reps.items()]
    _holm_gate(checks, reps, 0.0, 0.95)
    assert [c.verdict for c in checks] == ["regression", "ok", "ok"]
    assert np.percentile(reps["B"], 97.5) < 0 < checks[1].ci_holm[1] == pytest.approx(np.percentile(reps["B"], 98.75))


def test_version_mismatch_is_refused_unless_allowed(correct: np.ndarray) -> None:
    with pytest.raises(CrabEvalError, match="different task versions"):
        compare_results(make_run(correct, version="2"), make_run(correct))
    assert compare_results(make_run(correct, version="2"), make_run(correct), allow_version_mismatch=True).passed


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
    assert main(["compare", str(bad_path), "--reference", str(ref_path), "--metrics", "all"]) == 1
    assert "every metric, Holm-corrected" in capsys.readouterr().out
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
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0


def test_gate_calibration_on_a_13_metric_task() -> None:
    # Runs of equal quality on a MUSIC-AVQA-format test set (13 metrics): with every metric gated, Holm keeps the
    # failure rate at or below 2.5 %; the old rule (each metric on its own) failed far more often.
    n_exp, holm_fails, uncorrected_fails = 120, 0, 0
    for e in range(n_exp):
        ref, new = simulate_qa_pair(2000, 0.0, np.random.default_rng([5, e]))
        report = compare_results(new, ref, n_boot=300, seed=e, metrics="all")
        holm_fails += not report.passed
        uncorrected_fails += any(c.ci[1] < 0 for c in report.checks)
    assert binomtest(holm_fails, n_exp, 0.025, alternative="greater").pvalue > 0.01
    assert uncorrected_fails > holm_fails + 5


def test_gate_finds_a_three_point_drop_on_a_full_test_set() -> None:
    for e in range(5):
        ref, new = simulate_qa_pair(9129, 3.0, np.random.default_rng([6, e]))
        assert not compare_results(new, ref, n_boot=300, seed=e).passed
        assert not compare_results(new, ref, n_boot=300, seed=e, metrics="all").passed
