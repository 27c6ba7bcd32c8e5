"""Transfer table: hand-worked changes, both noise sources, Holm verdicts, pairing refusals, outputs, CLI.

The calibration of the verdicts on simulated studies (false claims, power) is in tests/test_transfer_calibration.py.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import toy_task
from scipy import stats

from crab_eval.cli import main
from crab_eval.errors import CrabEvalError
from crab_eval.results import RunResult
from crab_eval.transfer import ArmSummary, TaskTransfer, compute_transfer, summarise
from crab_eval.transfer_report import to_csv, to_markdown, to_text, write_outputs
from crab_eval.variance_components import ArmNoise, Change, combine, estimate_change


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
    model: str | None = None,
    adapter: str | None = None,
    version: str = "1",
    digest: str | None = None,
    unparsed: int = 0,
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
    provenance.update({"task_version": version} | ({"predictions_sha256": digest} if digest else {}))
    run = {"variant": variant} | ({} if seed is None else {"seed": seed})
    run |= {k: v for k, v in (("model", model), ("adapter", adapter)) if v is not None}
    return RunResult(
        task, split, {"accuracy": acc, "error": 100.0 - acc}, "accuracy", {"accuracy": True, "error": False},
        len(rows), 0, unparsed, provenance=provenance, run=run, samples=rows,
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
    # One seed per arm and no seed spread given: training noise unmeasured, no verdict.
    assert row.training_noise == "unmeasured" and row.verdict == "inconclusive" and math.isnan(row.p_holm)
    assert any("training noise unmeasured" in note for note in report.notes)


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
    assert row.single.seeds == [0, 1, 2] and row.training_noise == "measured"


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


# ---- the variance components, against independent computations ----------------------------------------------------
def constant_arm(values: list[float], n_boot: int = 50) -> ArmNoise:
    """An arm whose item bootstrap never moves: every replicate equals the point (no test-set noise)."""
    return ArmNoise(np.array(values), np.tile(values, (n_boot, 1)))


def test_without_item_noise_the_test_is_welch() -> None:
    s, u = [61.0, 64.5, 59.0, 62.0], [66.0, 70.5, 64.0]
    change = estimate_change(constant_arm(s), constant_arm(u), 1.0, n_clusters=500)
    welch = stats.ttest_ind(u, s, equal_var=False)
    assert change.estimate == pytest.approx(np.mean(u) - np.mean(s))
    assert change.p_value() == pytest.approx(welch.pvalue, rel=1e-9)
    assert change.df == pytest.approx(welch.df, rel=1e-9)
    low, high = change.interval(0.95)
    ci = welch.confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert change.noise == "measured" and change.v_items == 0.0


def test_one_arm_with_seeds_lends_its_spread_to_the_other() -> None:
    s, u = [50.0, 54.0, 55.0], [60.0]
    change = estimate_change(constant_arm(s), constant_arm(u), 1.0, n_clusters=500)
    # By hand: s^2 = var(50, 54, 55) = 7; se^2 = 7 (1/3 + 1/1); t = (60 - 53) / se on 2 df.
    se = math.sqrt(7.0 * (1.0 / 3.0 + 1.0))
    assert change.se == pytest.approx(se) and change.df == pytest.approx(2.0)
    assert change.p_value() == pytest.approx(2 * stats.t.sf(7.0 / se, 2))
    assert change.noise == "borrowed" and "single arm (3 seeds)" in change.noise_detail


def test_supplied_spread_with_one_seed_per_arm() -> None:
    change = estimate_change(constant_arm([40.0]), constant_arm([46.0]), 1.0, 500, assumed_sd=2.0)
    # se = 2 sqrt(1 + 1); a known spread: normal quantiles (infinite df).
    assert change.se == pytest.approx(2.0 * math.sqrt(2.0)) and math.isinf(change.df)
    assert change.p_value() == pytest.approx(2 * stats.norm.sf(6.0 / (2.0 * math.sqrt(2.0))))
    assert change.noise == "assumed"
    unmeasured = estimate_change(constant_arm([40.0]), constant_arm([46.0]), 1.0, 500)
    assert unmeasured.noise == "unmeasured" and not unmeasured.verdict_possible


def test_item_term_is_the_expected_change_not_the_seed_noise_again() -> None:
    # Replicate b of run k = common item draw x_b + arm's item effect + the run's own item noise e_kb.
    # Expected: bootstrap var of the change = var(delta) + var(e) (1/K_S + 1/K_U); the seed-by-item part is
    # subtracted (it is in the per-seed spread already), leaving var(delta) = 4 here (var(e) = 9).
    rng = np.random.default_rng(0)
    n_boot, k = 40000, 3
    x = rng.normal(0, 5, (n_boot, 1))
    delta = rng.normal(0, 2, (n_boot, 1))
    s_reps = x + rng.normal(0, 3, (n_boot, k))
    u_reps = x + delta + rng.normal(0, 3, (n_boot, k))
    change = estimate_change(
        ArmNoise(np.array([60.0, 61.0, 62.0]), s_reps), ArmNoise(np.array([63.0, 64.0, 66.0]), u_reps), 1.0, 1000
    )
    assert change.v_items == pytest.approx(4.0, rel=0.05)
    # The seed part is the per-seed spreads: var(60, 61, 62) / 3 + var(63, 64, 66) / 3.
    assert change.v_seeds == pytest.approx(1.0 / 3.0 + (7.0 / 3.0) / 3.0)


def test_equivalence_and_detectable_change_by_hand() -> None:
    change = Change(estimate=0.3, v_items=0.0, seed_terms=((0.25, math.inf),), df_items=math.inf,
                    noise="measured", noise_detail="")  # fmt: skip
    # se 0.5, normal: TOST at margin 1.5 -> max(P(Z > (0.3 + 1.5) / 0.5), P(Z < (0.3 - 1.5) / 0.5)).
    assert change.p_equivalent(1.5) == pytest.approx(max(stats.norm.sf(3.6), stats.norm.cdf(-2.4)))
    # 80 % power at alpha 0.05: (z_0.975 + z_0.8) * se.
    assert change.detectable(0.05) == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * 0.5)


# ---- verdicts and Holm ---------------------------------------------------------------------------------------------
def known_row(task: str, p: float, estimate: float = 1.0) -> TaskTransfer:
    """A task whose change has the two-sided normal p-value ``p``."""
    se = abs(estimate) / stats.norm.isf(p / 2)
    change = Change(estimate, 0.0, ((se * se, math.inf),), math.inf, "measured", "")
    arm = ArmSummary([0, 1], [50.0, 50.0], 50.0, 0.0)
    return TaskTransfer(
        task, "test", "accuracy", True, 100, 100, arm, arm, estimate, estimate * 2, change.se, change.df, 0.0,
        change.se, "measured", "", change.interval(0.95), (math.nan, math.nan), change.p_value(), 0.001,
        change.p_equivalent(0.001), change.detectable(0.05), change=change,
    )  # fmt: skip


def test_holm_keeps_uncorrected_hits_inconclusive() -> None:
    # Holm (m = 3) on p = 0.002, 0.03, 0.042: A 0.006; B 2 * 0.03 = 0.06; C max(0.06, 0.042) = 0.06. Only A survives.
    rows = [known_row("A", 0.002), known_row("B", 0.03, -1.0), known_row("C", 0.042)]
    assert [r.p_value for r in rows] == pytest.approx([0.002, 0.03, 0.042])
    report = summarise(rows, 999, 0, 0.95)
    assert [r.p_holm for r in report.tasks] == pytest.approx([0.006, 0.06, 0.06])
    assert [r.verdict for r in report.tasks] == ["positive", "inconclusive", "inconclusive"]
    # B's uncorrected 95% interval lies below 0, yet it stays inconclusive.
    assert report.tasks[1].abs_ci[1] < 0
    assert [round(r.holm_confidence, 6) for r in report.tasks] == [round(1 - 0.05 / d, 6) for d in (3, 2, 1)]
    assert report.pt_percent == pytest.approx(100 / 3) and report.nt_percent == 0
    # Point-estimate shares (Crab+'s reading) count B's negative estimate.
    assert report.nt_point_percent == pytest.approx(100 / 3) and report.pt_point_percent == pytest.approx(200 / 3)
    assert "Holm" in report.to_dict()["correction"]
    holm = holm_reference([0.002, 0.03, 0.042])
    assert [r.p_holm for r in report.tasks] == pytest.approx(holm)


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


def planted_runs(n: int = 600, k: int = 3):
    """Three seeds per arm. toy_a: unified much worse; toy_b: the same model quality, tiny noise (equivalent);
    toy_c: unified much better."""
    rng = np.random.default_rng(0)
    single, unified = [], []
    for task, shift in (("toy_a", -0.25), ("toy_b", 0.0), ("toy_c", 0.25)):
        base = rng.random(n) < rng.uniform(0.4, 0.6, n)
        for seed in range(k):
            # toy_b: every run flips the same few items differently (small seed noise around one quality).
            flip = rng.random(n) < (0.01 if shift == 0 else 0.1)
            s = base ^ flip
            u = (base ^ (rng.random(n) < (0.01 if shift == 0 else 0.1))) if shift == 0 else rng.random(n) < 0.5 + shift
            single.append(make_run(task, s, seed=seed, model="m-single"))
            unified.append(make_run(task, u, seed=seed, variant="unified", model="m-unified"))
    return single, unified


def test_planted_verdicts_all_four() -> None:
    single, unified = planted_runs()
    # A fourth task with no measured seed spread: inconclusive whatever its change.
    single.append(make_run("toy", ones(30, 60)))
    unified.append(make_run("toy", ones(50, 60), variant="unified"))
    report = compute_transfer(single, unified, 500, margin_percent=5.0)
    verdicts = {t.task: t.verdict for t in report.tasks}
    assert verdicts == {"toy_a": "negative", "toy_b": "equivalent", "toy_c": "positive", "toy": "inconclusive"}
    assert report.nt_percent == report.pt_percent == report.equivalent_percent == 25.0
    b = next(t for t in report.tasks if t.task == "toy_b")
    assert abs(b.abs_change) < b.margin and b.p_equivalent_holm < 0.05
    assert b.margin == pytest.approx(0.05 * b.single.mean)
    # Relative intervals are the absolute ones over the single-task score.
    a = next(t for t in report.tasks if t.task == "toy_a")
    assert a.rel_ci == pytest.approx((a.abs_ci[0] / a.single.mean * 100, a.abs_ci[1] / a.single.mean * 100))
    assert a.rel_ci_holm[1] < 0 and a.detectable_change > 0


def test_delta_m_is_the_mean_relative_change_and_per_seed_when_seeds_align() -> None:
    single, unified = planted_runs(n=300)
    report = compute_transfer(single, unified, 300)
    rel = [t.rel_change for t in report.tasks]
    assert report.delta_m == pytest.approx(sum(rel) / 3)
    assert report.delta_m_ci[0] < report.delta_m < report.delta_m_ci[1]
    assert "per seed" in report.delta_m_noise
    # Seeds that do not line up across tasks: tasks combined, the unified seed effect taken as shared.
    unified[0].run["seed"] = 7
    assert "bounded as fully shared" in compute_transfer(single, unified, 300).delta_m_noise


def test_combine_by_hand() -> None:
    """Two tasks, weights +1 and -2. Three terms: items (summed), single-task seeds (summed, the smallest df), the
    unified parts as one fully shared term (sum of |w| s)^2 with the smallest df; Satterthwaite over the three."""
    a = Change(1.0, 0.5, ((0.04, 2.0), (0.09, 3.0)), 100.0, "measured", "", (0.04, 2.0), (0.09, 3.0))
    b = Change(-0.5, 0.2, ((0.01, 4.0), (0.16, 5.0)), 50.0, "measured", "", (0.01, 4.0), (0.16, 5.0))
    both = combine([(1.0, a), (-2.0, b)], "d")
    assert both.estimate == pytest.approx(1.0 + 1.0)
    assert both.v_items == pytest.approx(0.5 + 4 * 0.2) and both.df_items == 50.0
    # singles 0.04 + 4 * 0.01 (df min(2, 4) = 2); unified (1 * 0.3 + 2 * 0.4)^2 = 1.21 (df min(3, 5) = 3)
    assert [x for term in both.seed_terms for x in term] == pytest.approx([0.08, 2.0, 1.21, 3.0])
    assert both.se == pytest.approx((1.3 + 0.08 + 1.21) ** 0.5)
    assert both.df == pytest.approx(2.59**2 / (1.3**2 / 50 + 0.08**2 / 2 + 1.21**2 / 3))
    measured = combine([(1.0, a), (-2.0, b)], "d", unified_measured=(0.5, 1.0))
    assert measured.se == pytest.approx((1.3 + 0.08 + 0.5) ** 0.5)
    assert measured.df == pytest.approx(1.88**2 / (1.3**2 / 50 + 0.08**2 / 2 + 0.5**2 / 1))


# ---- pairing refusals ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split": "val"}, "split"),
        ({"fingerprint": "sha256:other"}, "different annotation files"),
        ({"fingerprint": None}, "no data fingerprint"),
        ({"ids": [f"x{i}" for i in range(20)]}, "not on the same items"),
        ({"groups": ["same"] * 20}, "group"),
        ({"version": "2"}, "different task versions"),
    ],
)
def test_unpairable_results_are_errors(change: dict, message: str) -> None:
    with pytest.raises(CrabEvalError, match=message):
        compute_transfer([make_run("toy", ones(10, 20))], [make_run("toy", ones(12, 20), **change)], 50)


def test_version_mismatch_can_be_allowed() -> None:
    report = compute_transfer(
        [make_run("toy", ones(10, 20))], [make_run("toy", ones(12, 20), version="2")], 50, allow_version_mismatch=True
    )
    assert report.tasks[0].abs_change == pytest.approx(10.0)


def test_changed_prompt_or_target_is_refused() -> None:
    s, u = make_run("toy", ones(10, 20)), make_run("toy", ones(12, 20))
    for row in (*s.samples, *u.samples):
        row["prompt_hash"], row["target_hash"] = "p", "t"
    u.samples[3]["target_hash"] = "other"
    with pytest.raises(CrabEvalError, match=r"target .* of item 'q3' differs"):
        compute_transfer([s], [u], 50)
    u.samples[3]["target_hash"], u.samples[5]["prompt_hash"] = "t", "new template"
    with pytest.raises(CrabEvalError, match="prompt of item 'q5' differs"):
        compute_transfer([s], [u], 50)


def test_arm_refusals_and_the_aa_note() -> None:
    def run(seed, variant="single", model="m", adapter="lora", digest=None, k=10):
        return make_run("toy", ones(k, 20), seed=seed, variant=variant, model=model, adapter=adapter, digest=digest)

    unified = [run(0, "unified", "u"), run(1, "unified", "u")]
    with pytest.raises(CrabEvalError, match="mixes runs of different configurations"):
        compute_transfer([run(0), run(1)], [run(0, "unified", "u", "lora"), run(1, "unified", "u", "ilora")], 50)
    with pytest.raises(CrabEvalError, match="mixes runs"):
        compute_transfer([run(0, model="a"), run(1, model="b")], unified, 50)
    # A model name ending with the run's own seed is read without it.
    assert compute_transfer([run(0, model="m_seed0"), run(1, model="m_seed1")], unified, 50).tasks
    with pytest.raises(CrabEvalError, match="same predictions in both arms"):
        compute_transfer([run(0, digest="abc")], [run(1, "unified", "u", digest="abc")], 50)
    with pytest.raises(CrabEvalError, match="same run"):
        compute_transfer([run(0)], [run(0, k=12)], 50)
    with pytest.raises(CrabEvalError, match="arms swapped"):
        compute_transfer(unified, [run(0), run(1)], 50)
    with pytest.raises(CrabEvalError, match="repeat a seed"):
        compute_transfer([run(1), run(1, k=11)], unified, 50)
    with pytest.raises(CrabEvalError, match="in the single arm hold identical predictions"):
        compute_transfer([run(0, digest="same"), run(1, digest="same")], unified, 50)
    aa = compute_transfer([run(0), run(1)], [run(2, k=11), run(3, k=12)], 50)
    assert any("A/A" in note for note in aa.notes)


def test_other_unusable_inputs_are_errors() -> None:
    s, u = make_run("toy", ones(10, 20)), make_run("toy", ones(12, 20))
    no_samples = make_run("toy", ones(12, 20))
    no_samples.samples = []
    with pytest.raises(CrabEvalError, match="no per-sample stats"):
        compute_transfer([s], [no_samples], 50)
    with pytest.raises(CrabEvalError, match="single only: toy_a"):
        compute_transfer([s, make_run("toy_a", ones(1, 2))], [u], 50)
    tampered = make_run("toy", ones(12, 20))
    tampered.metrics["accuracy"] = 99.0
    with pytest.raises(CrabEvalError, match="aggregate to"):
        compute_transfer([s], [tampered], 50)
    with pytest.raises(CrabEvalError, match="at least one"):
        compute_transfer([], [u], 50)
    with pytest.raises(CrabEvalError, match="margin"):
        compute_transfer([s], [u], 50, margin_percent=-1)
    with pytest.raises(CrabEvalError, match="standard deviation"):
        compute_transfer([s], [u], 50, seed_sd=-1.0)
    with pytest.raises(CrabEvalError, match="names tasks that are not in the table: avee"):
        compute_transfer([s], [u], 50, seed_sd={"avee": 3.0})


# ---- outputs -------------------------------------------------------------------------------------------------------
def test_outputs(tmp_path: Path) -> None:
    single, unified = planted_runs(n=100)
    unified[0] = make_run("toy_a", ones(20, 100), seed=0, variant="unified", model="m-unified", unparsed=37)
    report = compute_transfer(single, unified, 200)
    paths = write_outputs(report, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["transfer.csv", "transfer.json", "transfer.md", "transfer.png"]
    data = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert "Maninis" in data["delta_m"]["variant"] and "Holm" in data["correction"] and data["version"] == 2
    assert [t["task"] for t in data["tasks"]] == ["toy_a", "toy_b", "toy_c"]
    first = data["tasks"][0]
    assert first["single"]["std"] is not None and data["bootstrap"]["replicates"] == 200
    assert first["unified"]["n_unparsed"] == [37, 0, 0] and first["training_noise"] == "measured"
    assert {"nt_point_percent", "pt_point_percent", "equivalent_percent", "inconclusive_percent"} <= data.keys()
    rows = list(csv.DictReader((tmp_path / "out" / "transfer.csv").open()))
    assert [r["verdict"] for r in rows] == [t.verdict for t in report.tasks]
    assert rows[0]["unified_n_unparsed"] == "37 0 0" and float(rows[0]["se"]) > 0
    assert float(rows[0]["rel_change"]) == pytest.approx(report.tasks[0].rel_change)
    assert (tmp_path / "out" / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = to_markdown(report)
    assert md.count("\n| toy_") == 3 and "Delta_m" in md and "unparsed S / U" in md
    assert "| 0 / 12.3 |" in md  # toy_a's unparsed: 0 single, (37 + 0 + 0) / 3 unified
    text = to_text(report)
    assert "Point estimates (Crab+'s reading)" in text and "Significant verdicts" in text
    assert to_csv(report).startswith("task,split,metric")


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
    args = ["transfer", "--single", str(single), "--unified", str(unified), "--bootstrap", "300"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "toy" in printed and "+50.00" in printed  # 50 -> 75: +50 %
    assert "60 (20 groups)" in printed  # three questions a clip: clustered
    assert "1+1 (unmeasured)" in printed and "inconclusive" in printed
    assert (out / "transfer.png").is_file() and json.loads((out / "transfer.json").read_text())["tasks"][0][
        "n_groups"
    ] == 20
    # With a supplied seed spread a verdict can be drawn: 25 points against an sd of 1 point.
    assert main([*args, "--seed-sd", "toy=1.0"]) == 0
    printed = capsys.readouterr().out
    assert "positive" in printed and "sd 1 supplied by the user" not in printed  # the detail is in the JSON
    assert main([*args, "--seed-sd", "toy=x"]) == 2
    assert "--seed-sd" in capsys.readouterr().err
    # A supplied spread is not used where a task has several seeds (the spread is measured): the note says so.
    single2 = score_cli(tmp_path, data, "single2", set(range(32)), seed=1)
    assert main(["transfer", "--single", str(single), str(single2), "--unified", str(unified), "--seed-sd", "2"]) == 0
    assert "supplied seed sd was not used" in capsys.readouterr().out
    other_split = score_cli(tmp_path, data, "val", set(range(31)), split="val")
    assert main(["transfer", "--single", str(single), "--unified", str(other_split), "--bootstrap", "50"]) == 2
    assert "split" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["transfer", "--help"])
    assert info.value.code == 0 and "example:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0


def test_scoring_records_prompt_and_target_hashes_and_pairing_uses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crab_eval.results import read_result

    data = write_toy(tmp_path)
    single = score_cli(tmp_path, data, "single", set(range(30)))
    rows = read_result(single).samples
    assert all(len(r["prompt_hash"]) == 16 and len(r["target_hash"]) == 16 for r in rows)
    # Items 0 and 1 have other labels (cat, dog): other target hashes; the same question: the same prompt hash.
    assert rows[0]["target_hash"] != rows[1]["target_hash"] and rows[0]["prompt_hash"] == rows[1]["prompt_hash"]
    # The task's prompt template changes without a version bump, and the unified arm is scored afterwards.
    monkeypatch.setattr(toy_task.ToyTask, "prompt", lambda self, sample: "A new template: " + sample.instruction)
    unified = score_cli(tmp_path, data, "unified", set(range(45)))
    code = main(["transfer", "--single", str(single), "--unified", str(unified), "--bootstrap", "50"])
    assert code == 2 and "the prompt of item 'q0' differs" in capsys.readouterr().err


def test_content_hash_by_hand() -> None:
    from dataclasses import dataclass

    from crab_eval.provenance import content_hash

    @dataclass(frozen=True)
    class Truth:
        frames: tuple[int, ...]
        counts: np.ndarray

    a = Truth((1, 2), np.array([3, 4], dtype=np.int64))
    assert content_hash(a) == content_hash(Truth((1, 2), np.array([3, 4], dtype=np.int64)))
    assert content_hash(a) != content_hash(Truth((1, 2), np.array([3, 5], dtype=np.int64)))
    assert content_hash(a) != content_hash(Truth((1, 2), np.array([3, 4], dtype=np.int32)))  # dtype counts
    assert content_hash({"b": 1, "a": [1, 2]}) == content_hash({"a": [1, 2], "b": 1})  # key order does not
    assert content_hash([1, 2]) != content_hash([2, 1]) and content_hash("1") != content_hash(1)
    assert len(content_hash("x")) == 16
    with pytest.raises(TypeError):
        content_hash(object())
