"""Transfer table: hand-worked changes, Holm verdicts, seeds, pairing errors, outputs, CLI, calibration."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import toy_task
from scipy.stats import binomtest

from crab_eval.bootstrap import percentile_interval, two_sided_p_value
from crab_eval.cli import main
from crab_eval.errors import CrabEvalError
from crab_eval.results import RunResult
from crab_eval.transfer import ArmSummary, TaskTransfer, compute_transfer, summarise
from crab_eval.transfer_report import to_csv, to_markdown, to_text, write_outputs


class ToyErrorMain(toy_task.ToyTask):
    """The toy task with its lower-is-better metric as the main one."""

    id = "toy_err"
    main_metric = "error"


@pytest.fixture(autouse=True)
def _toy_tasks(register_tasks) -> None:
    """ "toy", "toy_err" and the calibration tasks "toy_a", "toy_b", "toy_c" (the toy task under other ids)."""
    calibration = [type(f"Toy_{name}", (toy_task.ToyTask,), {"id": name}) for name in ("toy_a", "toy_b", "toy_c")]
    register_tasks(toy_task.ToyTask, ToyErrorMain, *calibration)


def make_run(
    task: str,
    correct,
    *,
    seed: int | None = None,
    variant: str = "single",
    groups=None,
    split: str = "test",
    fingerprint: str | None = "sha256:toy",
    ids=None,
) -> RunResult:
    correct = [int(c) for c in correct]
    ids = ids or [f"q{i}" for i in range(len(correct))]
    groups = groups or [f"v{i}" for i in range(len(correct))]
    rows = [
        {"id": i, "group": g, "status": "ok", "pred_hash": f"{i}:{c}", "correct": c}
        for i, g, c in zip(ids, groups, correct, strict=True)
    ]
    acc = 100.0 * sum(correct) / len(correct)  # by hand, not through the code under test
    provenance = {"data_fingerprint": fingerprint} if fingerprint else {}
    run = {"variant": variant} if seed is None else {"variant": variant, "seed": seed}
    return RunResult(
        task, split, {"accuracy": acc, "error": 100.0 - acc}, "accuracy", {"accuracy": True, "error": False},
        len(rows), 0, 0, provenance=provenance, run=run, samples=rows,
    )  # fmt: skip


def ones(k: int, n: int) -> list[int]:
    return [1] * k + [0] * (n - k)


def test_hand_worked_change_higher_is_better() -> None:
    report = compute_transfer([make_run("toy", ones(12, 20))], [make_run("toy", ones(15, 20), variant="u")], 200)
    (row,) = report.tasks
    # S = 12/20 = 60, U = 15/20 = 75: abs +15 points, relative +15/60 = +25 %.
    assert (row.single.mean, row.unified.mean) == (60.0, 75.0)
    assert row.abs_change == pytest.approx(15.0)
    assert row.rel_change == pytest.approx(25.0)
    assert row.single.std is None and row.metric == "accuracy" and row.higher_is_better
    assert (row.n_items, row.n_groups) == (20, 20)
    assert report.delta_m == pytest.approx(25.0)
    assert row.rel_ci[0] <= 25.0 <= row.rel_ci[1]


def test_hand_worked_change_lower_is_better() -> None:
    better = compute_transfer([make_run("toy_err", ones(12, 20))], [make_run("toy_err", ones(15, 20))], 100)
    # error S = 40, U = 25: (-1)^1 (25 - 40) = +15 points; +15 / 40 = +37.5 %.
    assert better.tasks[0].metric == "error" and not better.tasks[0].higher_is_better
    assert better.tasks[0].abs_change == pytest.approx(15.0)
    assert better.tasks[0].rel_change == pytest.approx(37.5)
    worse = compute_transfer([make_run("toy_err", ones(15, 20))], [make_run("toy_err", ones(12, 20))], 100)
    # error S = 25, U = 40: -(40 - 25) / 25 = -60 %.
    assert worse.tasks[0].rel_change == pytest.approx(-60.0)
    assert worse.tasks[0].rel_ci[0] <= -60.0 <= worse.tasks[0].rel_ci[1]


def test_several_seeds_mean_and_std() -> None:
    single = [make_run("toy", ones(k, 10), seed=s) for s, k in enumerate((5, 6, 7))]
    unified = [make_run("toy", ones(8, 10), seed=s, variant="unified") for s in range(2)]
    row = compute_transfer(single, unified, 200).tasks[0]
    # S: 50, 60, 70 -> mean 60, sample std 10; U: 80, 80 -> mean 80, std 0; relative 20 / 60.
    assert row.single.values == [50.0, 60.0, 70.0]
    assert row.single.mean == pytest.approx(60.0) and row.single.std == pytest.approx(10.0)
    assert row.unified.mean == pytest.approx(80.0) and row.unified.std == pytest.approx(0.0)
    assert row.rel_change == pytest.approx(100.0 / 3.0)
    assert row.single.seeds == [0, 1, 2]


def test_zero_baseline_has_no_relative_change(tmp_path: Path) -> None:
    report = compute_transfer(
        [make_run("toy", ones(0, 20)), make_run("toy_a", ones(10, 20))],
        [make_run("toy", ones(5, 20)), make_run("toy_a", ones(15, 20))],
        200,
    )
    zero, half = report.tasks
    assert half.rel_change == pytest.approx(50.0)
    assert zero.rel_change is None and zero.abs_change == pytest.approx(25.0)
    # Delta_m over the task where it is defined: toy_a 50 -> 75 = +50 %; the note names the other.
    assert report.delta_m == pytest.approx(50.0) and report.delta_m_tasks == ["toy_a"]
    assert any("toy" in note and "undefined" in note for note in report.notes)
    write_outputs(report, tmp_path)
    assert json.loads((tmp_path / "transfer.json").read_text())["tasks"][0]["rel_change"] is None
    assert "n/a" in to_text(report)


def test_seed_spread_widens_the_hierarchical_interval() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.3, 0.9, 300)
    base = rng.random(300) < p
    single = [make_run("toy", base, seed=0)]
    one_seed = [make_run("toy", rng.random(300) < p, seed=0)]
    # Three unified seeds whose accuracies differ a lot (training noise): the interval must account for it.
    spread = [
        make_run("toy", rng.random(300) < np.clip(p + shift, 0, 1), seed=s) for s, shift in enumerate((-0.2, 0, 0.2))
    ]
    narrow = compute_transfer(single, one_seed, 500).tasks[0].rel_ci
    wide = compute_transfer(single, spread, 500).tasks[0].rel_ci
    assert wide[1] - wide[0] > 1.5 * (narrow[1] - narrow[0])


def holm_reference(p: list[float]) -> list[float]:
    """Holm step-down written out as in the textbook (independent of crab_eval.bootstrap.holm)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def planted_runs(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    single, unified = [], []
    for task, shift in (("toy_a", -0.2), ("toy_b", 0.0), ("toy_c", 0.2)):
        p = rng.uniform(0.35, 0.65, n)
        s = rng.random(n) < p
        u = s.copy() if shift == 0 else rng.random(n) < p + shift  # toy_b: the very same predictions
        single.append(make_run(task, s, seed=0))
        unified.append(make_run(task, u, seed=0, variant="unified"))
    return single, unified


def test_planted_verdicts_holm_and_summary() -> None:
    single, unified = planted_runs()
    report = compute_transfer(single, unified, 1000)
    verdicts = {t.task: t.verdict for t in report.tasks}
    assert verdicts == {"toy_a": "negative", "toy_b": "neutral", "toy_c": "positive"}
    b = report.tasks[1]
    assert b.p_value == 1.0 and b.abs_ci == (0.0, 0.0)  # identical predictions never differ
    assert [t.p_holm for t in report.tasks] == pytest.approx(holm_reference([t.p_value for t in report.tasks]))
    assert report.nt_percent == pytest.approx(100 / 3) and report.pt_percent == pytest.approx(100 / 3)
    assert report.worst_task == "toy_a"
    rel = []
    for s, u in zip(single, unified, strict=True):
        s_acc = 100.0 * sum(r["correct"] for r in s.samples) / 400
        u_acc = 100.0 * sum(r["correct"] for r in u.samples) / 400
        rel.append((u_acc - s_acc) / s_acc * 100.0)
    assert [t.rel_change for t in report.tasks] == pytest.approx(rel)
    assert report.delta_m == pytest.approx(sum(rel) / 3)
    assert report.worst_rel_change == pytest.approx(min(rel))
    # The Holm interval of the first-ranked task is at level 1 - 0.05 / 3, so it contains the 95% one.
    a = report.tasks[0]
    assert a.rel_ci_holm[0] <= a.rel_ci[0] and a.rel_ci_holm[1] >= a.rel_ci[1] and a.rel_ci_holm[1] < 0


def constructed(task: str, n_nonpositive: int, b: int = 999) -> TaskTransfer:
    reps = np.concatenate([-np.linspace(0.1, 1.0, n_nonpositive), np.linspace(1.0, 3.0, b - n_nonpositive)])
    arm = ArmSummary([0], [50.0], 50.0, None)
    return TaskTransfer(
        task, "test", "accuracy", True, 100, 100, arm, arm, 2.0, 4.0, percentile_interval(reps),
        percentile_interval(reps * 2), two_sided_p_value(reps), abs_replicates=reps, rel_replicates=reps * 2,
    )  # fmt: skip


def test_holm_keeps_uncorrected_hits_neutral() -> None:
    # p = 2 (k + 1) / 1000: A k=0 -> 0.002, B k=14 -> 0.03, C k=20 -> 0.042.
    # Holm (m = 3): A 0.006; B 2 * 0.03 = 0.06; C max(0.06, 0.042) = 0.06. Only A survives.
    rows = [constructed("A", 0), constructed("B", 14), constructed("C", 20)]
    assert [r.p_value for r in rows] == pytest.approx([0.002, 0.03, 0.042])
    report = summarise(rows, 999, 0, 0.95)
    assert [r.p_holm for r in report.tasks] == pytest.approx([0.006, 0.06, 0.06])
    assert [r.verdict for r in report.tasks] == ["positive", "neutral", "neutral"]
    # B's uncorrected 95% interval lies above 0 (14 of 999 replicates below it is < 2.5 %), yet it stays neutral.
    assert report.tasks[1].abs_ci[0] > 0
    assert [round(r.holm_confidence, 6) for r in report.tasks] == [round(1 - 0.05 / d, 6) for d in (3, 2, 1)]
    assert report.pt_percent == pytest.approx(100 / 3) and report.nt_percent == 0
    assert "Holm" in report.to_dict()["correction"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split": "val"}, "split"),
        ({"fingerprint": "sha256:other"}, "different annotation files"),
        ({"fingerprint": None}, "no data fingerprint"),
        ({"ids": [f"x{i}" for i in range(20)]}, "not on the same items"),
        ({"groups": ["same"] * 20}, "group"),
    ],
)
def test_unpairable_results_are_errors(change: dict, message: str) -> None:
    with pytest.raises(CrabEvalError, match=message):
        compute_transfer([make_run("toy", ones(10, 20))], [make_run("toy", ones(12, 20), **change)], 50)


def test_other_unusable_inputs_are_errors() -> None:
    s, u = make_run("toy", ones(10, 20)), make_run("toy", ones(12, 20))
    no_samples = make_run("toy", ones(12, 20))
    no_samples.samples = []
    with pytest.raises(CrabEvalError, match="no per-sample stats"):
        compute_transfer([s], [no_samples], 50)
    with pytest.raises(CrabEvalError, match="single only: toy_a"):
        compute_transfer([s, make_run("toy_a", ones(1, 2))], [u], 50)
    with pytest.raises(CrabEvalError, match="repeat a seed"):
        compute_transfer([make_run("toy", ones(10, 20), seed=1), make_run("toy", ones(11, 20), seed=1)], [u], 50)
    tampered = make_run("toy", ones(12, 20))
    tampered.metrics["accuracy"] = 99.0
    with pytest.raises(CrabEvalError, match="aggregate to"):
        compute_transfer([s], [tampered], 50)
    with pytest.raises(CrabEvalError, match="at least one"):
        compute_transfer([], [u], 50)


def test_outputs(tmp_path: Path) -> None:
    single, unified = planted_runs(n=100)
    report = compute_transfer(single, unified, 200)
    paths = write_outputs(report, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["transfer.csv", "transfer.json", "transfer.md", "transfer.png"]
    data = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert "Maninis" in data["delta_m"]["variant"] and "Holm" in data["correction"]
    assert [t["task"] for t in data["tasks"]] == ["toy_a", "toy_b", "toy_c"]
    assert data["tasks"][0]["single"]["std"] is None and data["bootstrap"]["replicates"] == 200
    rows = list(csv.DictReader((tmp_path / "out" / "transfer.csv").open()))
    assert [r["verdict"] for r in rows] == [t.verdict for t in report.tasks]
    assert float(rows[0]["rel_change"]) == pytest.approx(report.tasks[0].rel_change)
    assert (tmp_path / "out" / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = to_markdown(report)
    assert md.count("\n| toy_") == 3 and "Delta_m" in md
    assert "toy_b" in to_text(report) and to_csv(report).startswith("task,split,metric")


def write_toy(tmp_path: Path, n: int = 60) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy_test.tsv").write_text("".join(f"q{i}\tv{i // 3}\t{'dog' if i % 2 else 'cat'}\n" for i in range(n)))
    (data / "toy_val.tsv").write_text("".join(f"q{i}\tv{i // 3}\tdog\n" for i in range(n)))
    return data


def score_cli(tmp_path: Path, data: Path, name: str, right: set[int], split: str = "test", seed: int = 0) -> Path:
    preds = tmp_path / f"{name}.jsonl"
    labels = [("dog" if i % 2 else "cat") if i in right else "cow" for i in range(60)]
    preds.write_text(
        "".join(json.dumps({"id": f"q{i}", "prediction": {"label": y}}) + "\n" for i, y in enumerate(labels))
    )
    out = tmp_path / f"{name}.json"
    args = ["score", "--task", "toy", "--data", str(data), "--split", split, "--predictions", str(preds)]
    assert main([*args, "--output", str(out), "--seed", str(seed)]) == 0
    return out


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_toy(tmp_path)
    single = score_cli(tmp_path, data, "single", set(range(30)))
    unified = score_cli(tmp_path, data, "unified", set(range(45)))
    out = tmp_path / "report"
    code = main(
        ["transfer", "--single", str(single), "--unified", str(unified), "--out", str(out), "--bootstrap", "300"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "toy" in printed and "+50.00" in printed  # 50 -> 75: +50 %
    assert "60 (20 groups)" in printed  # three questions a clip: clustered
    assert (out / "transfer.png").is_file() and json.loads((out / "transfer.json").read_text())["tasks"][0][
        "n_groups"
    ] == 20
    other_split = score_cli(tmp_path, data, "val", set(range(30)), split="val")
    assert main(["transfer", "--single", str(single), "--unified", str(other_split), "--bootstrap", "50"]) == 2
    assert "split" in capsys.readouterr().err


def test_calibration_identical_runs_are_rarely_flagged() -> None:
    # Each experiment: three tasks, single and unified drawn independently from the SAME per-item Bernoulli
    # probabilities (no transfer at all). Offline, 2,000 single-task experiments like these (n=100, B=300) flagged
    # 4.35%. Here, with fixed seeds: the flag rate must not be significantly above 5% (one-sided binomial test),
    # per task without correction and per experiment (any task) with Holm, and it must not be degenerate.
    n_exp, n_items, n_boot = 100, 100, 300
    uncorrected = any_flag = 0
    for e in range(n_exp):
        rng = np.random.default_rng([2024, e])
        single, unified = [], []
        for task in ("toy_a", "toy_b", "toy_c"):
            p = rng.uniform(0.3, 0.95, n_items)
            single.append(make_run(task, rng.random(n_items) < p))
            unified.append(make_run(task, rng.random(n_items) < p))
        report = compute_transfer(single, unified, n_boot, seed=e)
        uncorrected += sum(t.p_value < 0.05 and (t.abs_ci[0] > 0 or t.abs_ci[1] < 0) for t in report.tasks)
        any_flag += any(t.verdict != "neutral" for t in report.tasks)
    assert binomtest(uncorrected, 3 * n_exp, 0.05, alternative="greater").pvalue > 0.01
    assert binomtest(any_flag, n_exp, 0.05, alternative="greater").pvalue > 0.01
    assert uncorrected >= 3  # a comparator that never flags anything would pass the above trivially
    assert not math.isnan(report.delta_m or math.nan)


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["transfer", "--help"])
    assert info.value.code == 0 and "example:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
