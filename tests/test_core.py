"""The harness core on a toy task: prediction reading, result files, provenance, CLI and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crab_eval.cli import main
from crab_eval.errors import PredictionFileError
from crab_eval.predictions import read_predictions
from crab_eval.registry import get_task
from crab_eval.results import read_result, samples_path_for
from crab_eval.scoring import load_split, score

pytestmark = pytest.mark.usefixtures("toy")  # the toy task of tests/toy_task.py

ROWS = [("a", "v1", "dog"), ("b", "v1", "cat"), ("c", "v2", "dog"), ("d", "v3", "cow")]


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "toy_test.tsv").write_text("".join(f"{i}\t{v}\t{y}\n" for i, v, y in ROWS))
    return folder


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_missing_and_unparsed_count_as_wrong_never_dropped(data_dir: Path, tmp_path: Path) -> None:
    preds = write_lines(
        tmp_path / "p.jsonl",
        [
            json.dumps({"id": "a", "prediction": {"label": "dog"}}),  # right
            json.dumps({"id": "b", "text": "it is a <answer> cat </answer>"}),  # right, parsed from text
            json.dumps({"id": "c", "text": "no idea"}),  # unparsed -> wrong
            # d missing -> wrong
        ],
    )
    result = score("toy", data_dir, "test", preds)
    # 2 right of 4: dropping the unparsed and missing items would give 100.
    assert result.metrics == {"accuracy": 50.0, "error": 50.0}
    assert (result.n_samples, result.n_missing, result.n_unparsed) == (4, 1, 1)
    statuses = {row["id"]: row["status"] for row in result.samples}
    assert statuses == {"a": "ok", "b": "ok", "c": "unparsed", "d": "missing"}
    assert result.provenance["data_fingerprint"].startswith("sha256:")
    assert result.provenance["task_version"] == "1"


def test_result_file_round_trip_and_reaggregation(data_dir: Path, tmp_path: Path) -> None:
    preds = write_lines(tmp_path / "p.jsonl", [json.dumps({"id": i, "prediction": {"label": "dog"}}) for i in "abcd"])
    out = tmp_path / "out" / "toy.json"
    assert (
        main(
            [
                "score",
                "--task",
                "toy",
                "--data",
                str(data_dir),
                "--predictions",
                str(preds),
                "--output",
                str(out),
                "--model",
                "m1",
                "--seed",
                "3",
                "--tag",
                "variant=unified",
            ]
        )
        == 0
    )
    saved = json.loads(out.read_text())
    assert saved["metrics"]["accuracy"] == 50.0
    assert saved["run"] == {"model": "m1", "seed": 3, "variant": "unified"}
    assert samples_path_for(out).is_file()
    result = read_result(out)
    assert len(result.samples) == 4
    # The per-sample stats alone give the metrics back.
    assert get_task("toy").aggregate(result.samples) == saved["metrics"]
    assert not list(out.parent.glob(".*.tmp"))
    # written as a plain open() would write it, not owner-only like the temporary file
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_fingerprint_changes_with_annotation_content(data_dir: Path, tmp_path: Path) -> None:
    preds = write_lines(tmp_path / "p.jsonl", [])
    first = score("toy", data_dir, "test", preds).provenance["data_fingerprint"]
    (data_dir / "toy_test.tsv").write_text("".join(f"{i}\t{v}\tdog\n" for i, v, _ in ROWS))
    assert score("toy", data_dir, "test", preds).provenance["data_fingerprint"] != first


BAD_LINES = [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"prediction": {"label": "x"}}), "missing 'id'"),
    (json.dumps({"id": 7, "prediction": {"label": "x"}}), "'id' must be a string"),
    (json.dumps({"id": "zz", "prediction": {"label": "x"}}), "not in the split"),
    (json.dumps({"id": "a", "prediction": {"label": 3}}), 'expected {"label": STRING}'),
    (json.dumps({"id": "a"}), "exactly one of"),
    (json.dumps({"id": "a", "text": "x", "prediction": {"label": "x"}}), "exactly one of"),
    (json.dumps({"id": "a", "text": 5}), "'text' must be a string"),
    ('{"id": "a", "prediction": {"label": "x", "p": NaN}}', "malformed JSON"),
    ('{"id": "a", "prediction": {"label": "x", "p": 1e999}}', "NaN or infinity"),
    (json.dumps({"id": "a", "answer": "x"}), "unknown keys"),
    ('{"id": "a", "prediction": ' + "[" * 100000 + "]" * 100000 + "}", "JSON nests too deeply"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_prediction_line_is_one_clear_error(data_dir: Path, tmp_path: Path, capsys, line: str, message: str):
    preds = write_lines(tmp_path / "p.jsonl", [json.dumps({"id": "b", "prediction": {"label": "cat"}}), line])
    out = tmp_path / "r.json"
    code = main(["score", "--task", "toy", "--data", str(data_dir), "--predictions", str(preds), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert f"{preds}:2: " in err and message in err
    assert "Traceback" not in err
    assert not out.exists() and not samples_path_for(out).exists()


def test_duplicate_ids_are_an_error(data_dir: Path, tmp_path: Path) -> None:
    line = json.dumps({"id": "a", "prediction": {"label": "dog"}})
    preds = write_lines(tmp_path / "p.jsonl", [line, line])
    task = get_task("toy")
    with pytest.raises(PredictionFileError, match=r"p.jsonl:2: duplicate id 'a'"):
        read_predictions(preds, task, load_split(task, data_dir, "test"))


def test_allow_extra_ignores_and_counts(data_dir: Path, tmp_path: Path) -> None:
    preds = write_lines(tmp_path / "p.jsonl", [json.dumps({"id": "zz", "prediction": {"label": "x"}})])
    result = score("toy", data_dir, "test", preds, allow_extra=True)
    assert (result.n_extra, result.n_missing, result.metrics["accuracy"]) == (1, 4, 0.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--task", "toy", "--split", "train"], "has no split 'train'"),
        (["--task", "toy", "--split", "val"], "toy_val.tsv: official annotation file not found"),
    ],
)
def test_unknown_task_split_or_missing_annotations(data_dir, tmp_path, capsys, args, message) -> None:
    preds = write_lines(tmp_path / "p.jsonl", [])
    base = ["score", "--data", str(data_dir), "--predictions", str(preds), "--output", str(tmp_path / "r.json")]
    assert main(base + args) == 2
    assert message in capsys.readouterr().err


def test_malformed_annotation_names_file_and_line(data_dir: Path, tmp_path: Path, capsys) -> None:
    (data_dir / "toy_test.tsv").write_text("a\tv1\tdog\nbroken line\n")
    preds = write_lines(tmp_path / "p.jsonl", [])
    assert (
        main(
            [
                "score",
                "--task",
                "toy",
                "--data",
                str(data_dir),
                "--predictions",
                str(preds),
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
        == 2
    )
    assert "toy_test.tsv:2: expected 3 tab-separated fields" in capsys.readouterr().err


def test_validate_reports_every_problem(data_dir: Path, tmp_path: Path, capsys) -> None:
    preds = write_lines(
        tmp_path / "p.jsonl",
        [
            json.dumps({"id": "a", "text": "<answer> dog </answer>"}),
            json.dumps({"id": "b", "text": "dunno"}),
            "{oops",
            json.dumps({"id": "a", "text": "again"}),
        ],
    )
    code = main(["validate", "--task", "toy", "--data", str(data_dir), "--predictions", str(preds)])
    out = capsys.readouterr().out
    assert code == 1
    assert "parse rate: strict 50.0%, flexible 50.0%" in out  # toy has no flexible reader: flexible = strict
    assert "missing (scored wrong):  2 of 4" in out
    assert "p.jsonl:3: malformed JSON" in out and "p.jsonl:4: duplicate id 'a'" in out
    good = write_lines(tmp_path / "g.jsonl", [json.dumps({"id": "a", "prediction": {"label": "dog"}})])
    assert main(["validate", "--task", "toy", "--data", str(data_dir), "--predictions", str(good)]) == 0


def test_tasks_command_lists_metrics(capsys) -> None:
    assert main(["tasks", "--json"]) == 0
    listed = {t["id"]: t for t in json.loads(capsys.readouterr().out)}
    assert listed["toy"]["main_metric"] == "accuracy"
    assert {"name": "error", "higher_is_better": False, "scale": "0-100"} in listed["toy"]["metrics"]
