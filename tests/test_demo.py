"""The demo end to end on a tiny suite (a smoke test: outputs exist, agree, and a rerun skips finished stages), and
calibration tests of the comparator on the committed reference run in results/demo/ (the planted relations of
SynthAV come out as planted) plus issue 4's check that the unified model beats the trivial baselines."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from crab_eval.results import read_result
from crab_eval.transfer import TransferReport, compute_transfer

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "demo"
ADAPTERS = ("lora", "ilora")


# ---- (a) the pipeline on tiny --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crab_eval.demo import DemoPlan, run_demo

    out = tmp_path_factory.mktemp("demo") / "out"
    # Untrained models babble to max_new_tokens: keep generation short so the test stays fast.
    run_demo(DemoPlan(out=out, size="tiny", steps=2, jobs=2, n_boot=50, max_new_tokens=8))
    return out


@pytest.mark.model
@pytest.mark.slow
def test_tiny_demo_outputs_exist_and_agree(tiny_demo: Path) -> None:
    from crab_eval.demo import DEMO_TASKS

    out = tiny_demo
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["plan"]["tasks"] == list(DEMO_TASKS)
    # Budget: a unified run takes the single runs' steps with a batch of 4 examples per task (same epochs).
    assert summary["budget"]["unified_lora"] == {"steps": 2, "batch_size": 4 * len(DEMO_TASKS)}
    assert summary["budget"]["single_ave"] == {"steps": 2, "batch_size": 4}
    for model in ["unified_lora", "unified_ilora", *(f"single_{t}" for t in DEMO_TASKS)]:
        for task in DEMO_TASKS if model.startswith("unified") else [model.removeprefix("single_")]:
            result = read_result(out / "results" / model / f"{task}.json")
            assert result.task == task and result.split == "test"
            assert len(result.samples) == result.n_samples > 0
            assert result.run["seed"] == 0
            assert result.run["variant"] == ("unified" if model.startswith("unified") else "single")
            assert result.run["adapter"] in ADAPTERS
    for kind in ADAPTERS:
        folder = out / f"transfer_{kind}"
        table = json.loads((folder / "transfer.json").read_text())
        assert sorted(t["task"] for t in table["tasks"]) == sorted(DEMO_TASKS)
        assert table["bootstrap"]["replicates"] == 50
        for name in ("transfer.md", "transfer.csv", "transfer.png", "affinity_summary.json"):
            assert (folder / name).is_file(), name
        # The stored single-task means are the single-task result files' main metrics.
        for row in table["tasks"]:
            single = read_result(out / "results" / f"single_{row['task']}" / f"{row['task']}.json", False)
            assert row["single"]["mean"] == pytest.approx(single.metrics[single.main_metric])
    for kind in ("majority", "prior"):
        assert read_result(out / "results" / f"baseline_{kind}" / "ave.json").run["variant"] == "baseline"


@pytest.mark.model
@pytest.mark.slow
def test_tiny_demo_rerun_skips_finished_stages(tiny_demo: Path, capsys: pytest.CaptureFixture) -> None:
    from crab_eval.cli import main

    out = tiny_demo
    result = out / "results" / "single_ave" / "ave.json"
    before = result.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--size", "tiny", "--steps", "2", "--bootstrap", "50"]) == 0
    text = capsys.readouterr().out
    assert "[1/5 synth]" in text and "skipped" in text.split("[2/5")[0]
    assert "every model is trained and has its predictions: skipped" in text
    assert "0 result file(s) written" in text
    assert result.stat().st_mtime_ns == before


def test_plan_with_several_seeds_names_every_run_and_keeps_the_suite_seed(tmp_path: Path) -> None:
    from crab_eval.demo import DemoPlan, run_config

    plan = DemoPlan(out=tmp_path, size="tiny", seed=5, seeds=2, steps=3, tasks=("ave", "avvp"), adapters=("ilora",))
    names = [(m.name, m.seed) for m in plan.models()]
    assert names == [("unified_ilora_seed5", 5), ("unified_ilora_seed6", 6), ("single_ave_seed5", 5),
                     ("single_ave_seed6", 6), ("single_avvp_seed5", 5), ("single_avvp_seed6", 6)]  # fmt: skip
    config = run_config(plan, plan.models()[1])
    assert config["seed"] == 6 and config["run_dir"].endswith("unified_ilora_seed6")
    assert config["train"]["batch_size"] == 8 and config["train"]["steps"] == 3
    one = DemoPlan(out=tmp_path, size="tiny", seed=5)
    assert [m.name for m in one.models()][:2] == ["unified_lora", "unified_ilora"]  # one seed: plain names


@pytest.mark.model
@pytest.mark.slow
def test_tiny_demo_with_two_seeds_bootstraps_over_seeds(tmp_path: Path) -> None:
    from crab_eval.demo import DemoPlan, run_demo

    out = tmp_path / "out"
    summary = run_demo(DemoPlan(out=out, size="tiny", steps=1, jobs=2, n_boot=20, max_new_tokens=4, seeds=2,
                                tasks=("ave", "avvp"), adapters=("lora",)))  # fmt: skip
    assert summary["plan"]["seeds"] == 2
    table = json.loads((out / "transfer_lora" / "transfer.json").read_text())
    for row in table["tasks"]:
        # Each arm holds both seeds' results; their mean is the arm's value.
        single = [read_result(out / "results" / f"single_{row['task']}_seed{s}" / f"{row['task']}.json", False)
                  for s in (0, 1)]  # fmt: skip
        values = [r.metrics[r.main_metric] for r in single]
        assert row["single"]["mean"] == pytest.approx(sum(values) / 2)
        assert [r.run["seed"] for r in single] == [0, 1]


# ---- (b) calibration on the committed reference runs ----------------------------------------------------------------
@functools.cache
def _reference_report(kind: str, folder: str = "demo") -> TransferReport:
    """The transfer table of a committed demo run, recomputed from its result files with the comparator (not read
    from the stored table); with several training seeds, every seed's result enters (hierarchical bootstrap)."""
    root = REFERENCE.parent / folder
    assert (root / "results").is_dir(), f"the committed reference run results/{folder}/ is missing"
    plan = json.loads((root / "demo_summary.json").read_text())["plan"]
    seeds = [plan["seed"] + k for k in range(plan.get("seeds", 1))]

    def arm(base: str, task: str) -> list:
        names = [base] if len(seeds) == 1 else [f"{base}_seed{s}" for s in seeds]
        return [read_result(root / "results" / name / f"{task}.json") for name in names]

    single = [r for t in plan["tasks"] for r in arm(f"single_{t}", t)]
    unified = [r for t in plan["tasks"] for r in arm(f"unified_{kind}", t)]
    return compute_transfer(single, unified, n_boot=1000, seed=plan["seed"])


# The reference run (results/demo: the default `make demo`, one training seed) and the same configuration with
# three training seeds (results/demo_seeds3: `crab-eval demo --seeds 3`), whose intervals include training noise.
RUNS = ("demo", "demo_seeds3")


@pytest.mark.parametrize("kind", ADAPTERS)
def test_one_seed_claims_nothing_and_says_why(kind: str) -> None:
    report = _reference_report(kind, "demo")
    # One training seed per arm: training noise is unmeasured, so no verdict may claim transfer.
    assert {t.verdict for t in report.tasks} == {"inconclusive"}
    assert {t.training_noise for t in report.tasks} == {"unmeasured"}
    assert any("training noise unmeasured" in note for note in report.notes)


@pytest.mark.parametrize("folder", RUNS)
@pytest.mark.parametrize("kind", ADAPTERS)
def test_planted_conflict_lowers_both_tasks(kind: str, folder: str) -> None:
    rows = {t.task: t for t in _reference_report(kind, folder).tasks}
    # ave trained together with synth_ave_swap (same inputs, prompt and template; other class words): the unified
    # model is worse on both tasks of the pair, and ave's interval (items, and seeds where measured) lies below 0.
    pair = [rows["ave"], rows["synth_ave_swap"]]
    assert all(t.abs_change < 0 for t in pair), [(t.task, t.abs_change) for t in pair]
    assert rows["ave"].abs_ci[1] < 0, rows["ave"].abs_ci
    # With three seeds the training noise of this configuration (ave's single-task runs spread by 11.6 points)
    # leaves the Holm-corrected verdict short of significance (p 0.065 / 0.131): no verdict contradicts the plant.
    assert {t.verdict for t in pair} <= {"negative", "inconclusive"}


@pytest.mark.parametrize("folder", RUNS)
@pytest.mark.parametrize(("kind", "task"), [("lora", "avvp"), ("ilora", "avvp"), ("ilora", "s4"), ("lora", "s4")])
def test_planted_shared_skill_is_never_called_negative(kind: str, task: str, folder: str) -> None:
    rows = {t.task: t for t in _reference_report(kind, folder).tasks}
    # The shared-skill group is ave, avvp, s4; ave is also in the conflict (which dominates it), so the group's
    # members outside the conflict are the ones the planted relation speaks for. (LoRA's S4 loss, from output-format
    # interference in seed 0, is within the measured training noise: inconclusive, docs/demo.md.)
    assert rows[task].verdict != "negative", (task, rows[task].verdict, rows[task].rel_change)


# ---- (c) issue 4: the unified model beats the trivial baselines ------------------------------------------------------
def test_unified_model_beats_trivial_baselines_on_three_tasks() -> None:
    results = REFERENCE / "results"
    assert results.is_dir(), "the committed reference run results/demo/ is missing"
    summary = json.loads((REFERENCE / "demo_summary.json").read_text())
    beaten = []
    for task in summary["plan"]["tasks"]:
        unified = read_result(results / "unified_ilora" / f"{task}.json", False)
        metric = unified.main_metric
        best = max(read_result(results / f"baseline_{k}" / f"{task}.json", False).metrics[metric]
                   for k in ("majority", "prior"))  # fmt: skip
        # "Clearly above": at least 5 points over the better of the two baselines.
        if unified.metrics[metric] >= best + 5.0:
            beaten.append(task)
    assert len(beaten) >= 3, beaten
