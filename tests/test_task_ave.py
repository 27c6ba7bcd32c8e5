"""AVE adapter: loading, ids, labels, parsing, validation and the official compute_acc metric.

Expected values come from hand calculations (in comments), ``sklearn.metrics.accuracy_score`` and a loop-based
reference that follows ``compute_acc`` of YapengTian/AVE-ECCV18 supervised_main.py as read there: one-hot
(N, 10, 29) labels, argmax per segment, accuracy_score over the flattened N*10 labels.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from crab_eval.errors import AnnotationError, PredictionError, PredictionFileError
from crab_eval.layouts.ave import (
    BACKGROUND,
    HEADER,
    OFFICIAL_CATEGORIES,
    write_annotations,
    write_dataset,
    write_split,
)
from crab_eval.registry import get_task
from crab_eval.scoring import score
from crab_eval.tasks.ave import OFFICIAL_VOCABULARY
from crab_eval.tasks.base import Split

CAT = OFFICIAL_CATEGORIES
# A split of no samples with the official vocabulary, for parsing without a data folder.
OFFICIAL = Split("ave", "test", Path("."), (), OFFICIAL_VOCABULARY)


def _write_preds(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _reference_labels(rows, categories) -> np.ndarray:
    """compute_acc's real_labels: argmax of one-hot (N, 10, 29) labels built loop by loop, background = 28."""
    onehot = np.zeros((len(rows), 10, len(categories) + 1))
    for i, (category, _vid, start, end) in enumerate(rows):
        for j in range(10):
            onehot[i, j, categories.index(category) if start <= j < end else len(categories)] = 1
    return np.argmax(onehot, axis=2).reshape(-1)


@pytest.fixture
def task():
    return get_task("ave")


@pytest.fixture
def small(tmp_path):
    rows = [
        (CAT[2], "vidA", 2, 5),  # Bark on segments 2, 3, 4
        (CAT[22], "vidB", 0, 10),  # Cat everywhere
        (CAT[0], "vidC", 0, 0),  # the official zero-length row pattern: all background
        (CAT[17], "vidD", 0, 10),  # Banjo ...
        (CAT[27], "vidD", 0, 10),  # ... and Mandolin on the same video (the official duplicated VideoIDs)
        (CAT[14], "vidD", 3, 7),
    ]
    # No Annotations.txt: the built-in official vocabulary (and class indices) apply.
    write_dataset(tmp_path, {"test": rows, "val": rows[:2]}, annotations=False)
    return tmp_path, rows


# ---- loading -----------------------------------------------------------------------------------------------
def test_ids_labels_and_duplicates(task, small):
    data_dir, rows = small
    samples = task.load(data_dir, "test")
    assert [s.id for s in samples] == ["vidA", "vidB", "vidC", "vidD", "vidD#2", "vidD#3"]
    assert [s.group for s in samples] == ["vidA", "vidB", "vidC", "vidD", "vidD", "vidD"]
    bg = 28
    # Bark is class 2: segments 2..4 (end 5 exclusive)
    assert samples[0].target == (bg, bg, 2, 2, 2, bg, bg, bg, bg, bg)
    assert samples[1].target == (22,) * 10
    assert samples[2].target == (bg,) * 10  # start == end: no event segment at all
    assert samples[3].target == (17,) * 10 and samples[4].target == (27,) * 10
    assert samples[5].target == (bg, bg, bg, 14, 14, 14, 14, bg, bg, bg)
    flat = np.concatenate([s.target for s in samples])
    assert (flat == _reference_labels(rows, list(CAT))).all()
    assert samples[0].media == {"video": "AVE/vidA.mp4"}
    assert samples[0].instruction == "Please describe the events and time range that occurred in the video."
    assert task.prompt(samples[0]).endswith(samples[0].instruction)


def test_header_optional_bom_crlf_blank_lines(task, tmp_path):
    body = f"\ufeff{HEADER}\r\n{CAT[1]}&x1&good&0&8\r\n\r\n{CAT[3]}&x2&good&1&2\r\n\r\n"
    (tmp_path / "testSet.txt").write_bytes(body.encode("utf-8"))
    samples = task.load(tmp_path, "test")
    assert [s.id for s in samples] == ["x1", "x2"]
    write_split(tmp_path, "val", [(CAT[1], "y", 0, 10)], header=False)
    assert [s.id for s in task.load(tmp_path, "val")] == ["y"]
    assert task.annotation_files(tmp_path, "test") == [tmp_path / "testSet.txt"]  # no Annotations.txt here


def test_vocabulary_from_annotations_file(task, tmp_path):
    # Annotations.txt beside the split defines the categories and their order (class index).
    write_annotations(tmp_path, [("Zebra", "a", 0, 10), ("Yak", "b", 0, 10)], header=False)
    write_split(tmp_path, "test", [("Yak", "c", 0, 5)])
    samples = task.load(tmp_path, "test")
    assert samples.context.categories == ("Zebra", "Yak")
    assert samples[0].target == (1,) * 5 + (2,) * 5
    assert tmp_path / "Annotations.txt" in task.annotation_files(tmp_path, "test")
    with pytest.raises(PredictionError):
        task.check_prediction({"event": CAT[0], "start": 0, "end": 1}, samples[0], samples, tmp_path)
    yak = task.parse("<event> yak </event> <range> 0,5 </range>", samples)
    assert yak == {"event": "Yak", "start": 0, "end": 5}
    assert task.parse(f"<event> {CAT[0]} </event> <range> 0,5 </range>", samples) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{CAT[0]}&v&good&0", "expected 5"),
        (f"{CAT[0]}&v&good&0&10&x", "expected 5"),
        (f"{CAT[0]}&v&good&a&10", "whole seconds"),
        (f"{CAT[0]}&v&good&0.5&10", "whole seconds"),
        (f"{CAT[0]}&v&good&-1&10", "whole seconds"),
        (f"{CAT[0]}&v&good&6&5", "after EndTime"),
        (f"{CAT[0]}&v&good&0&11", "past the 10 s"),
        ("&v&good&0&10", "empty"),
        ("Background&v&good&0&10", "reserved"),
        ("Dragon&v&good&0&10", "not in the 28 official"),
    ],
)
def test_malformed_split_rows(task, tmp_path, line, message):
    (tmp_path / "testSet.txt").write_text(f"{HEADER}\n{CAT[0]}&ok&good&0&10\n{line}\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=message) as info:
        task.load(tmp_path, "test")
    assert info.value.line == 3 and info.value.path == str(tmp_path / "testSet.txt")


def test_annotation_file_errors(task, tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        task.load(tmp_path, "test")
    (tmp_path / "testSet.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(AnnotationError, match="UTF-8"):
        task.load(tmp_path, "test")
    write_split(tmp_path, "test", [("Yak", "c", 0, 5)])
    write_annotations(tmp_path, [("Zebra", "a", 0, 10)])
    with pytest.raises(AnnotationError, match=r"not in Annotations\.txt"):
        task.load(tmp_path, "test")
    write_annotations(tmp_path, [("Zebra", "a", 0, 10), ("zebra", "b", 0, 10)])
    with pytest.raises(AnnotationError, match="ambiguous"):
        task.load(tmp_path, "test")
    write_annotations(tmp_path, [("Zebra", "a", 9, 3)])
    with pytest.raises(AnnotationError, match="after EndTime") as info:
        task.load(tmp_path, "test")
    assert info.value.path.endswith("Annotations.txt") and info.value.line == 2
    write_split(tmp_path, "test", [(CAT[0], "v", 0, 1), (CAT[1], "v#2", 0, 1), (CAT[2], "v", 0, 1)])
    (tmp_path / "Annotations.txt").unlink()
    with pytest.raises(AnnotationError, match="collide"):
        task.load(tmp_path, "test")


def test_official_vocabulary():
    assert len(CAT) == 28 and len(set(CAT)) == 28
    assert CAT[0] == "Church bell" and CAT[1] == "Male speech, man speaking" and CAT[27] == "Mandolin"


# ---- text --------------------------------------------------------------------------------------------------
def test_target_text_round_trip_scores_100(task, small):
    data_dir, _ = small
    samples = task.load(data_dir, "test")
    assert task.target_text(samples[0]) == (
        "The audible and visible event in the video is <event> Bark </event>, "
        "and the time range is <range> 2,5 </range>."
    )
    preds = [task.check_prediction(task.parse(task.target_text(s), samples), s, samples, data_dir) for s in samples]
    assert task.aggregate(task.score_samples(samples, preds)) == {"accuracy": 100.0}
    oracle = [task.check_prediction(task.oracle_prediction(s), s, samples, data_dir) for s in samples]
    assert task.aggregate(task.score_samples(samples, oracle)) == {"accuracy": 100.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<event>male SPEECH,  man speaking</event> and <range>0,8</range>", (CAT[1], 0, 8)),
        ("< EVENT > Bark </event>, range <RANGE> [2, 5] </Range>", (CAT[2], 2, 5)),
        ("<event> Bark. </event> <range> (2 5) </range>", (CAT[2], 2, 5)),
        ("<event> fixed wing aircraft, airplane </event> <range> 1-10 </range>", (CAT[3], 1, 10)),
        ("<event> Bark </event> <range> 0.0,8.0 </range>", (CAT[2], 0, 8)),
        ("<event> Bark </event> <range> 3,3 </range>", (CAT[2], 3, 3)),
        # reasoning quotes a guess first: the last complete pair is the answer
        (
            "maybe <event> Cat </event> <range> 0,1 </range>; no: <event> Goat </event> <range> 4,9 </range>",
            (CAT[18], 4, 9),
        ),
        ("<event> Bark </event> <range> 2,5 </range> <event> Cat", (CAT[2], 2, 5)),
    ],
)
def test_parse_tolerant(task, text, expected):
    event, start, end = expected
    assert task.parse(text, OFFICIAL) == {"event": event, "start": start, "end": end}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A dog barks from second 2 to 5.",
        "<event> Bark </event>",  # no range
        "<range> 0,8 </range>",  # no event
        "<event> Dragon roar </event> <range> 0,8 </range>",  # unknown category
        "<event> background </event> <range> 0,8 </range>",
        "<event> Bark </event> <range> 5,2 </range>",  # start after end
        "<event> Bark </event> <range> 0,11 </range>",  # past the clip
        "<event> Bark </event> <range> 0.5,8 </range>",  # not a whole second
        "<event> Bark </event> <range> 0,8,9 </range>",
        "<event> Bark </event> <range> -1,8 </range>",
        "<event></event> <range> 0,8 </range>",
    ],
)
def test_parse_rejects(task, text):
    assert task.parse(text, OFFICIAL) is None


# ---- structured predictions --------------------------------------------------------------------------------
def test_check_prediction_forms(task, small):
    data_dir, _ = small
    split = task.load(data_dir, "test")
    sample = split[0]
    seg = [BACKGROUND] * 2 + [CAT[2]] * 3 + [BACKGROUND] * 5
    assert task.check_prediction({"segments": seg}, sample, split, data_dir) == sample.target
    assert task.check_prediction({"event": CAT[2], "start": 2, "end": 5}, sample, split, data_dir) == sample.target
    two_five = task.check_prediction({"event": CAT[2], "start": 2.0, "end": 5.0}, sample, split, data_dir)
    assert two_five == sample.target
    assert task.check_prediction({"event": CAT[2], "start": 4, "end": 4}, sample, split, data_dir) == (28,) * 10


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [CAT[0]] * 10,
        {},
        {"segments": [CAT[0]] * 9},
        {"segments": [CAT[0]] * 11},
        {"segments": "Bark"},
        {"segments": [CAT[0]] * 9 + ["Dragon"]},
        {"segments": [CAT[0]] * 9 + ["Background"]},  # exact spelling required in structured predictions
        {"segments": [CAT[0]] * 9 + [None]},
        {"segments": [CAT[0]] * 9 + [3]},
        {"segments": [CAT[0]] * 10, "event": CAT[0]},
        {"event": "Dragon", "start": 0, "end": 1},
        {"event": BACKGROUND, "start": 0, "end": 1},
        {"event": "bark", "start": 0, "end": 1},
        {"event": CAT[2], "start": 5, "end": 2},  # onset after offset
        {"event": CAT[2], "start": -1, "end": 2},
        {"event": CAT[2], "start": 0, "end": 11},
        {"event": CAT[2], "start": 0.5, "end": 2},
        {"event": CAT[2], "start": float("nan"), "end": 2},
        {"event": CAT[2], "start": True, "end": 2},
        {"event": CAT[2], "start": "0", "end": 2},
        {"event": CAT[2], "start": 0},
        {"event": CAT[2], "start": 0, "end": 2, "score": 1},
    ],
)
def test_check_prediction_rejects(task, small, obj):
    data_dir, _ = small
    split = task.load(data_dir, "test")
    with pytest.raises(PredictionError):
        task.check_prediction(obj, split[0], split, data_dir)


# ---- metric ------------------------------------------------------------------------------------------------
def test_metric_by_hand(task, small):
    data_dir, _ = small
    samples = task.load(data_dir, "val")  # vidA: Bark 2..5, vidB: Cat 0..10
    preds = [
        task.check_prediction({"segments": [CAT[2]] * 10}, samples[0], samples, data_dir),  # right on 2,3,4: 3/10
        task.check_prediction({"event": CAT[22], "start": 0, "end": 8}, samples[1], samples, data_dir),  # 8/10
    ]
    stats = task.score_samples(samples, preds)
    assert stats == [{"correct": 3, "total": 10}, {"correct": 8, "total": 10}]
    assert task.aggregate(stats) == {"accuracy": pytest.approx(100 * 11 / 20)}  # 55.0
    assert task.score_sample(samples[0], preds[0]) == stats[0]
    # a missing prediction is wrong on every segment, background ones included
    assert task.score_sample(samples[0], task.empty_prediction(samples[0])) == {"correct": 0, "total": 10}
    assert task.aggregate([]) == {"accuracy": 0.0}
    json.dumps(stats)


def test_metric_matches_sklearn_and_compute_acc_reference(task, tmp_path):
    rng = np.random.default_rng(7)
    rows = []
    for i in range(60):
        start = int(rng.integers(0, 11))
        rows.append((CAT[int(rng.integers(28))], f"v{i % 45}", start, int(rng.integers(start, 11))))
    write_dataset(tmp_path, {"test": rows}, annotations=False)
    samples = task.load(tmp_path, "test")
    real = _reference_labels(rows, list(CAT))
    pred_labels = np.where(rng.random(real.shape) < 0.6, real, rng.integers(0, 29, real.shape)).reshape(-1, 10)
    names = [*CAT, BACKGROUND]
    preds = [
        task.check_prediction({"segments": [names[k] for k in row]}, s, samples, tmp_path)
        for s, row in zip(samples, pred_labels, strict=True)
    ]
    # compute_acc: argmax of a (N, 10, 29) score array per segment, accuracy_score over N*10
    scores = np.zeros((len(rows), 10, 29))
    np.put_along_axis(scores, pred_labels[..., None], 1.0, axis=2)
    expected = 100 * accuracy_score(real, np.argmax(scores, axis=2).reshape(-1))
    got = task.aggregate(task.score_samples(samples, preds))["accuracy"]
    assert got == pytest.approx(expected, abs=1e-12)
    assert 20 < got < 95


# ---- end to end --------------------------------------------------------------------------------------------
def test_score_end_to_end(task, small, tmp_path):
    data_dir, _ = small
    lines = [
        {"id": "vidA", "text": "Dogs. <event> bark </event>, and the time range is <range> 2,6 </range>."},  # 9/10
        {"id": "vidB", "prediction": {"segments": [CAT[22]] * 5 + [BACKGROUND] * 5}},  # 5/10
        {"id": "vidC", "text": "no tags at all"},  # unparsed: 0/10
        {"id": "vidD", "prediction": {"event": CAT[17], "start": 0, "end": 10}},  # 10/10
        {"id": "vidD#2", "prediction": {"event": CAT[17], "start": 0, "end": 10}},  # Banjo vs Mandolin: 0/10
        # vidD#3 missing: 0/10
    ]
    preds = _write_preds(tmp_path / "preds.jsonl", lines)
    result = score("ave", data_dir, "test", preds)
    assert result.metrics == {"accuracy": pytest.approx(100 * 24 / 60)}  # 9+5+0+10+0+0 of 60 = 40.0
    assert (result.n_samples, result.n_missing, result.n_unparsed) == (6, 1, 1)
    assert [r["correct"] for r in result.samples] == [9, 5, 0, 10, 0, 0]
    assert [r["status"] for r in result.samples] == ["ok", "ok", "unparsed", "ok", "ok", "missing"]
    assert task.aggregate(result.samples) == result.metrics  # stats alone give the metric back
    assert result.provenance["data_fingerprint"]


def test_bad_prediction_lines_name_the_line(small, tmp_path):
    data_dir, _ = small
    preds = _write_preds(
        tmp_path / "bad.jsonl",
        [
            {"id": "vidA", "prediction": {"event": CAT[2], "start": 0, "end": 2}},
            {"id": "vidB", "prediction": {"segments": [CAT[22]] * 9}},
        ],
    )
    with pytest.raises(PredictionFileError, match="10 labels") as info:
        score("ave", data_dir, "test", preds)
    assert info.value.line == 2
    preds = _write_preds(tmp_path / "extra.jsonl", [{"id": "vidE", "prediction": {"segments": [CAT[0]] * 10}}])
    with pytest.raises(PredictionFileError, match="not in the split"):
        score("ave", data_dir, "test", preds)


def test_cli_score(small, tmp_path):
    from crab_eval import cli

    data_dir, _ = small
    samples = get_task("ave").load(data_dir, "test")
    preds = _write_preds(
        tmp_path / "oracle.jsonl", [{"id": s.id, "text": get_task("ave").target_text(s)} for s in samples]
    )
    out = tmp_path / "result.json"
    code = cli.main(
        ["score", "--task", "ave", "--data", str(data_dir), "--predictions", str(preds), "--output", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["metrics"] == {"accuracy": 100.0} and result["n_samples"] == 6
    bad = _write_preds(
        tmp_path / "bad.jsonl", [{"id": "vidA", "prediction": {"event": "Dragon", "start": 0, "end": 1}}]
    )
    assert (
        cli.main(
            [
                "score",
                "--task",
                "ave",
                "--data",
                str(data_dir),
                "--predictions",
                str(bad),
                "--output",
                str(tmp_path / "bad.json"),
            ]
        )
        != 0
    )
    assert not (tmp_path / "bad.json").exists()


def test_official_size_is_fast(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "ave_scoring_case", Path(__file__).parents[1] / "benchmarks" / "scoring_cases" / "ave.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    [(task_id, data_dir, split, preds)] = module.build(tmp_path, seed=1)
    start = time.perf_counter()
    result = score(task_id, data_dir, split, preds)
    assert time.perf_counter() - start < 1.0
    assert result.n_samples == 402 and 0 < result.metrics["accuracy"] < 100


def test_layout_writer_annotations_order(task, tmp_path):
    rows = {"train": [("Zebra", "z", 0, 10), (CAT[5], "a", 0, 10, "good")], "test": [(CAT[1], "b", 2, 4)]}
    write_dataset(tmp_path, rows)
    lines = (tmp_path / "Annotations.txt").read_text(encoding="utf-8").splitlines()
    # header, then official categories in official order (Male speech = 1 before Female speech = 5), others last
    assert lines == [HEADER, f"{CAT[1]}&b&good&2&4", f"{CAT[5]}&a&good&0&10", "Zebra&z&good&0&10"]
    samples = task.load(tmp_path, "test")
    assert samples.context.categories == (CAT[1], CAT[5], "Zebra")
    assert samples[0].target == (3, 3, 0, 0, 3, 3, 3, 3, 3, 3)
