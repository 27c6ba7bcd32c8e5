"""Reference predictors: fitted on the train split through the Task interface, scored like any submission."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from crab_eval.baselines.predictors import KINDS, fit_plan, predict, write_baseline
from crab_eval.cli import main
from crab_eval.errors import CrabEvalError
from crab_eval.leaderboard.board import load_published
from crab_eval.scoring import score

pytestmark = pytest.mark.usefixtures("toy")  # the toy task of tests/toy_task.py

TEST = [("a", "v1", "dog"), ("b", "v1", "cat"), ("c", "v2", "dog"), ("d", "v3", "cow"), ("e", "v4", "dog")]
# Train (the toy task's val split): dog x3, cat x2, cow x1 -> majority "dog".
TRAIN = [
    ("t1", "v", "cat"),
    ("t2", "v", "dog"),
    ("t3", "v", "dog"),
    ("t4", "v", "cat"),
    ("t5", "v", "dog"),
    ("t6", "v", "cow"),
]


@pytest.fixture()
def toy_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "toy_test.tsv").write_text("".join(f"{i}\t{v}\t{y}\n" for i, v, y in TEST))
    (folder / "toy_val.tsv").write_text("".join(f"{i}\t{v}\t{y}\n" for i, v, y in TRAIN))
    return folder


def test_majority_answers_the_most_common_train_answer(toy_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "maj.jsonl"
    summary = write_baseline("toy", toy_dir, "majority", out, train_split="val")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c", "d", "e"]
    assert {x["prediction"]["label"] for x in lines} == {"dog"}
    assert summary["n_train"] == 6 and summary["n_distinct_answers"] == 3
    # dog is right for a, c, e: 3 of 5.
    assert score("toy", toy_dir, "test", out).metrics["accuracy"] == 60.0


def test_prior_and_random_are_seeded_and_follow_their_distributions(toy_dir: Path) -> None:
    first, _ = predict("toy", toy_dir, "prior", train_split="val", seed=3)
    again, _ = predict("toy", toy_dir, "prior", train_split="val", seed=3)
    assert first == again
    other, _ = predict("toy", toy_dir, "prior", train_split="val", seed=4)
    assert {x["prediction"]["label"] for x in first + other} <= {"dog", "cat", "cow"}
    # Many draws: the prior follows 3:2:1, random is uniform over the three distinct answers.
    big = toy_dir.parent / "big"
    big.mkdir()
    (big / "toy_test.tsv").write_text("".join(f"s{i}\tv\tdog\n" for i in range(6000)))
    (big / "toy_val.tsv").write_text((toy_dir / "toy_val.tsv").read_text())
    prior = Counter(x["prediction"]["label"] for x in predict("toy", big, "prior", train_split="val")[0])
    uniform = Counter(x["prediction"]["label"] for x in predict("toy", big, "random", train_split="val")[0])
    assert np.allclose(
        [prior["dog"] / 6000, prior["cat"] / 6000, prior["cow"] / 6000], [1 / 2, 1 / 3, 1 / 6], atol=0.03
    )
    assert np.allclose([uniform[k] / 6000 for k in ("dog", "cat", "cow")], [1 / 3] * 3, atol=0.03)


def test_missing_train_split_and_blind_without_questions(toy_dir: Path) -> None:
    with pytest.raises(CrabEvalError, match="has no split 'train' to fit on"):
        predict("toy", toy_dir, "majority")
    with pytest.raises(CrabEvalError, match="blind baseline needs questions"):
        predict("toy", toy_dir, "blind", train_split="val")
    with pytest.raises(CrabEvalError, match="unknown baseline kind"):
        predict("toy", toy_dir, "oracle", train_split="val")


def test_cross_fit_never_reads_a_samples_own_label(toy_dir: Path, tmp_path: Path) -> None:
    # Test split a dog, b cat, c dog, d cow, e dog; 2 folds by position: {a, c, e} and {b, d}.
    # {a, c, e} is predicted from b, d (cat, cow: a tie, the first in file order wins -> cat);
    # {b, d} from a, c, e (dog x3 -> dog). Every answer is wrong: accuracy 0, where fitting on all would give 60.
    rows, summary = predict("toy", toy_dir, "majority", cross_fit=2)
    assert [r["prediction"]["label"] for r in rows] == ["cat", "dog", "cat", "dog", "cat"]
    assert [f["n_train"] for f in summary["folds"]] == [2, 3] and summary["cross_fit"] == 2
    out = tmp_path / "cf.jsonl"
    write_baseline("toy", toy_dir, "majority", out, cross_fit=2)
    assert score("toy", toy_dir, "test", out).metrics["accuracy"] == 0.0
    with pytest.raises(CrabEvalError, match="would read its labels"):
        predict("toy", toy_dir, "majority", train_split="test")
    with pytest.raises(CrabEvalError, match="at least 2 folds"):
        predict("toy", toy_dir, "majority", cross_fit=1)


def test_fit_plan_prefers_train_then_another_labelled_split_then_cross_fit(toy_dir: Path) -> None:
    # The toy task has test and val only: val is fitted on while its file is there, else the test split is cross-fit.
    assert fit_plan("toy", toy_dir) == {"train_split": "val", "cross_fit": 0}
    (toy_dir / "toy_val.tsv").unlink()
    assert fit_plan("toy", toy_dir) == {"train_split": "test", "cross_fit": 2}


def test_cli_baseline(toy_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    code = main(
        [
            "baseline",
            "--task",
            "toy",
            "--data",
            str(toy_dir),
            "--kind",
            "random",
            "--train-split",
            "val",
            "--seed",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and len(out.read_text().splitlines()) == 5
    assert main(["baseline", "--task", "toy", "--data", str(toy_dir), "--kind", "majority", "--out", str(out)]) == 2
    assert "use --train-split" in capsys.readouterr().err
    assert set(KINDS) == {"majority", "prior", "random", "blind"}


# ---- published numbers ---------------------------------------------------------------------------------------------
def test_published_numbers_are_reported_with_sources() -> None:
    data = load_published()
    assert data["status"] == "reported, not rescored"
    rows = data["rows"]
    assert all(r["source"] in data["sources"] for r in rows)
    assert all(set(r) >= {"model", "task", "split", "metric", "value", "scale", "variant", "source"} for r in rows)
    # Spot checks against the spec files (crab.md, benchmarks.md), value by value.
    index = {(r["model"], r["task"], r["split"], r["metric"], r["source"]): r["value"] for r in rows}
    assert index[("Crab", "ave", "test", "accuracy", "crab_md")] == 80.15
    assert index[("Crab", "music_avqa", "test", "visual_avg", "crab_md")] == 90.73
    assert index[("Crab", "ref_avs", "test_n", "S", "crab_md")] == 0.01
    assert index[("DG-SCT", "avvp", "test", "evt_v", "benchmarks_md")] == 56.1
    assert index[("AVSegFormer", "s4", "test", "F", "benchmarks_md")] == 89.9
    assert index[("AVST", "music_avqa", "test", "overall", "benchmarks_md")] == 71.52
    # Numbers on the 0-1 scale say so.
    assert {r["value"] for r in rows if r["scale"] == "0-1"} == {0.42, 0.45, 0.58, 0.01, 0.17}
    assert len({(r["model"], r["task"], r["split"], r["metric"], r["source"]) for r in rows}) == len(rows)
