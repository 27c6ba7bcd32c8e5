"""avqa (Yang et al. MM'22): loader, Crab+ instruction, answer matching and the official validate() metrics.

Expected values are worked by hand (comments), computed with scikit-learn's accuracy_score per type, or by
``official_validate`` below: a plain loop written from HAVF/hcrn_havf/validate.py as read, independent of the
vectorised aggregate under test.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score

from crab_eval.cli import main as cli_main
from crab_eval.errors import AnnotationError, CrabEvalError, PredictionError, PredictionFileError
from crab_eval.layouts.avqa import QUESTION_TYPES, make_entry, write_split
from crab_eval.registry import get_task
from crab_eval.scoring import score
from crab_eval.tasks.base import CRAB_PREFIX

METRICS = ["accuracy", "which", "come_from", "happening", "where", "why", "before_next", "when", "used_for"]
ANIMALS = ["dog", "cat", "bird", "cow"]


@pytest.fixture(scope="module")
def task():
    return get_task("avqa")


def write_preds(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def official_validate(types: list[str], correct: list[int]) -> dict[str, float]:
    """validate.py as read: running sums per category and overall, acc = sum / count (x100 here); categories with
    no question are skipped (the official divides by zero)."""
    sums = {q: 0 for q in QUESTION_TYPES}
    counts = {q: 0 for q in QUESTION_TYPES}
    total, count = 0, 0
    for t, c in zip(types, correct, strict=True):
        total += c
        count += 1
        sums[t] += c
        counts[t] += 1
    out = {"accuracy": 100 * total / count}
    for q, name in zip(QUESTION_TYPES, METRICS[1:], strict=True):
        if counts[q]:
            out[name] = 100 * sums[q] / counts[q]
    return out


def build_hand(tmp_path: Path) -> tuple[Path, Path]:
    entries = [
        make_entry(1, "v1", "What animal barks?", ANIMALS, 0, "Which"),
        make_entry(2, "v1", "What animal meows?", ANIMALS, 1, "Which"),
        make_entry(3, "v2", "Where does the sound come from?", ["the car", "a train", "the sea", "a bell"], 1,
                   "Come From"),
        make_entry(4, "v2", "Where does the noise come from?", ["the car", "a train", "the sea", "a bell"], 2,
                   "Come From"),
        make_entry(5, "v3", "What is happening?", ["rain", "snow", "wind", "sun"], 0, "Happening"),
        make_entry(6, "v3", "Why is the man shouting?", ["a", "b", "c", "d"], 3, "Why"),
        make_entry(7, "v4", "Why does the dog bark?", ["a", "b", "c", "d"], 3, "Why"),
        make_entry(8, "v4", "When does the bell ring?", ["one", "two", "three", "four"], 2, "When"),
        make_entry(9, "v5", "What is the knife used for?", ["cutting", "eating", None, "running"], 1, "Used For"),
        make_entry(10, "v5", "What happens before the horn?", ["braking", "x", "y", "z"], 0, "Before Next"),
    ]  # fmt: skip
    data = tmp_path / "data"
    write_split(data, "val", entries)
    rows = [
        {"id": "1", "prediction": {"choice": 0}},  # right
        {"id": "2", "text": "It meows. So the answer is <answer> Cat. </answer>."},  # right: case, edge punctuation
        {"id": "3", "prediction": {"answer": "A  Train"}},  # right: case and whitespace
        {"id": "4", "prediction": {"choice": 3}},  # wrong
        # id 5 missing: wrong
        {"id": "6", "text": "I think it is d"},  # unparsed (no tags): wrong
        {"id": "7", "prediction": {"answer": "something else"}},  # names no candidate: wrong
        {"id": "8", "text": "<answer>2</answer>"},  # an index in text is not a candidate's text: wrong
        {"id": "9", "prediction": {"answer": "eating"}},  # right (a null candidate elsewhere is harmless)
        {"id": "10", "prediction": {"choice": 0}},  # right
    ]
    return data, write_preds(tmp_path / "p.jsonl", rows)


# By hand: right = ids 1, 2, 3, 9, 10 -> 5/10. Which 2/2, Come From 1/2, Happening 0/1, Why 0/2, When 0/1,
# Used For 1/1, Before Next 1/1; no Where question -> left out.
HAND_EXPECTED = {
    "accuracy": 50.0, "which": 100.0, "come_from": 50.0, "happening": 0.0, "why": 0.0,
    "before_next": 100.0, "when": 0.0, "used_for": 100.0,
}  # fmt: skip


def test_declaration(task):
    assert task.id == "avqa"
    assert [m.name for m in task.metrics] == METRICS
    assert task.main_metric == "accuracy"
    assert task.default_split == "val"
    assert set(task.splits) == {"val", "train", "test"}


def test_hand_worked_metrics(tmp_path, task):
    data, preds = build_hand(tmp_path)
    result = score("avqa", data, "val", preds)
    assert result.metrics == pytest.approx(HAND_EXPECTED, rel=1e-12)
    assert (result.n_samples, result.n_missing, result.n_unparsed) == (10, 1, 1)
    assert result.samples[0]["group"] == "v1" and result.samples[0]["qtype"] == "which"
    json.dumps(result.samples, allow_nan=False)
    assert task.aggregate(result.samples) == result.metrics


def test_sklearn_and_official_loop_on_random_split(tmp_path, task):
    rng = random.Random(3)
    entries, rows, truth, guesses, types = [], [], [], [], []
    for i in range(500):
        qtype = rng.choice(QUESTION_TYPES)
        answer = rng.randrange(4)
        guess = answer if rng.random() < 0.55 else rng.randrange(4)
        entries.append(make_entry(i, f"v{rng.randrange(150)}", "Q?", [f"opt {k}" for k in range(4)], answer, qtype))
        # Half structured indices, half option texts in the answer template.
        if i % 2:
            rows.append({"id": str(i), "prediction": {"choice": guess}})
        else:
            rows.append({"id": str(i), "text": f"... <answer> OPT {guess} </answer>."})
        truth.append(answer)
        guesses.append(guess)
        types.append(qtype)
    data = tmp_path / "data"
    write_split(data, "val", entries)
    result = score("avqa", data, "val", write_preds(tmp_path / "p.jsonl", rows))
    correct = [int(g == t) for g, t in zip(guesses, truth, strict=True)]
    assert result.metrics == pytest.approx(official_validate(types, correct), rel=1e-12)
    for qtype, name in zip(QUESTION_TYPES, METRICS[1:], strict=True):
        idx = [i for i, t in enumerate(types) if t == qtype]
        expected = 100 * accuracy_score([truth[i] for i in idx], [guesses[i] for i in idx])
        assert result.metrics[name] == pytest.approx(expected, rel=1e-12)
    pick = [rng.randrange(500) for _ in range(500)]
    expected = official_validate([types[i] for i in pick], [correct[i] for i in pick])
    assert task.aggregate([result.samples[i] for i in pick]) == pytest.approx(expected, rel=1e-12)


def test_empty_types_are_left_out(task):
    stats = [{"correct": 1, "qtype": "why"}, {"correct": 0, "qtype": "why"}, {"correct": 0, "qtype": "when"}]
    # By hand: why 1/2, when 0/1, overall 1/3.
    assert task.aggregate(stats) == pytest.approx({"accuracy": 100 / 3, "why": 50.0, "when": 0.0})
    assert task.aggregate([]) == {}


def test_instruction_target_and_oracle_text(tmp_path, task):
    entries = [
        make_entry(1, "v1", "What makes the sound?", ["a dog", "the cat's bell", "a car", "rain"], 1, "Come From"),
        make_entry(2, "v2", "Why?", ["x", "y"], 0, "Why"),  # fewer than 4 candidates: the official pads with NULL
    ]
    write_split(tmp_path, "val", entries)
    samples = task.load(tmp_path, "val")
    # Crab+ formats the Python list itself: its repr, quotes included (double quotes where a text has an apostrophe).
    assert samples[0].instruction == (
        "Please answer the question based on the options: What makes the sound?, "
        "options:['a dog', \"the cat's bell\", 'a car', 'rain']"
    )
    assert task.prompt(samples[0]) == CRAB_PREFIX + samples[0].instruction
    assert task.target_text(samples[0]) == "So the answer is <answer> the cat's bell </answer>."
    assert samples[0].media == {"video": "v1.mp4", "audio": "v1.mp3"}
    rows = [{"id": s.id, "text": task.target_text(s)} for s in samples]
    result = score("avqa", tmp_path, "val", write_preds(tmp_path / "p.jsonl", rows))
    assert result.metrics["accuracy"] == 100.0
    oracle = [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in samples]
    assert score("avqa", tmp_path, "val", write_preds(tmp_path / "o.jsonl", oracle)).metrics["accuracy"] == 100.0


def test_answer_text_matching(tmp_path, task):
    write_split(tmp_path, "val", [
        make_entry(1, "v", "Q?", ["Dog", "dog", "cat", "cow"], 1, "Which"),  # two candidates with one text
        make_entry(2, "v", "Q?", ["dog", "dog", "cat", "cow"], 2, "Which"),
        make_entry(3, "v", "Q?", ["ice-cream", "b", "c", "d"], 0, "Which"),
    ])  # fmt: skip
    split = task.load(tmp_path, "val")
    s1, s2, s3 = split
    assert task.check_prediction({"answer": "DOG"}, s1, split, tmp_path) == 1  # the same text as the truth: right
    assert task.check_prediction({"answer": "dog"}, s2, split, tmp_path) == 0  # first of the matches: wrong
    assert task.check_prediction({"answer": "Ice Cream!"}, s3, split, tmp_path) == 0  # hyphen/space, punctuation
    assert task.check_prediction({"answer": "A"}, s3, split, tmp_path) == -1  # a letter is not a candidate's text
    assert task.parse("<answer>x</answer> then <answer> cat </answer>", split) == {"answer": "cat"}
    assert task.parse("<answer>   </answer>", split) is None
    assert task.parse("cat", split) is None


def test_answer_field_as_digit_string_and_ids(tmp_path, task):
    entry = make_entry(7, "v", "Q?", ANIMALS, 2, "Where")
    entry["answer"] = "2"  # the official preprocessing applies int()
    write_split(tmp_path, "val", [entry, make_entry(7, "v", "Q?", ANIMALS, 0, "Where")])
    samples = task.load(tmp_path, "val")
    assert [s.id for s in samples] == ["7", "7#2"]
    assert samples[0].target == 2
    write_split(tmp_path, "val", [make_entry("5", "v", "Q?", ANIMALS, 0, "Which"),
                                  make_entry("5#2", "v", "Q?", ANIMALS, 0, "Which"),
                                  make_entry("5", "v", "Q?", ANIMALS, 0, "Which")])  # fmt: skip
    with pytest.raises(AnnotationError, match="5#2"):
        task.load(tmp_path, "val")


@pytest.mark.parametrize(
    "obj, message",
    [
        ("cat", "must be"),
        ({}, "must be"),
        ({"answer": "cat", "choice": 1}, "must be"),
        ({"label": "cat"}, "must be"),
        ({"choice": 4}, r"\[0, 3\]"),
        ({"choice": -1}, r"\[0, 3\]"),
        ({"choice": True}, "integer index"),
        ({"choice": 1.0}, "integer index"),
        ({"choice": "1"}, "integer index"),
        ({"answer": 1}, "must be a string"),
        ({"answer": None}, "must be a string"),
    ],
)
def test_bad_structured_predictions(tmp_path, task, obj, message):
    write_split(tmp_path, "val", [make_entry(1, "v", "Q?", ANIMALS, 0, "Which")])
    split = task.load(tmp_path, "val")
    with pytest.raises(PredictionError, match=message):
        task.check_prediction(obj, split[0], split, tmp_path)


def test_bad_prediction_line_names_file_and_line(tmp_path):
    write_split(tmp_path / "d", "val", [make_entry(1, "v", "Q?", ANIMALS, 0, "Which")])
    preds = write_preds(tmp_path / "p.jsonl", [{"id": "1", "prediction": {"choice": 9}}])
    with pytest.raises(PredictionFileError, match=r"p\.jsonl:1: id '1': 'choice' must lie in"):
        score("avqa", tmp_path / "d", "val", preds)


GOOD = make_entry(1, "v", "Q?", ANIMALS, 0, "Which")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"question_type": "which"}, "'question_type' 'which' is not one of"),
        ({"question_type": "Other"}, "is not one of"),
        ({"answer": 4}, "does not index a candidate"),
        ({"answer": -1}, "must be a candidate index|does not index"),
        ({"answer": True}, "candidate index"),
        ({"answer": 1.0}, "candidate index"),
        ({"multi_choice": ["a", "b", "c", "d", "e"]}, "1 to 4 candidates"),
        ({"multi_choice": []}, "1 to 4 candidates"),
        ({"multi_choice": "abcd"}, "1 to 4 candidates"),
        ({"multi_choice": ["a", 2, "c", "d"]}, "must be strings"),
        ({"multi_choice": [None, "b", "c", "d"]}, "does not index a candidate"),  # the truth is a null candidate
        ({"question_text": ""}, "'question_text'"),
        ({"id": True}, "'id'"),
        ({"video_name": ""}, "'video_name'"),
    ],
)
def test_bad_annotations(tmp_path, task, change, message):
    path = write_split(tmp_path, "val", [GOOD, {**GOOD, **change}], indent=2)
    with pytest.raises(AnnotationError, match=message) as info:
        task.load(tmp_path, "val")
    assert info.value.path == str(path)
    # indent=2: each object spans len(GOOD) + 2 lines plus the candidate list; the second one opens after the first.
    first_len = json.dumps([GOOD], indent=2).count("\n") - 1
    assert info.value.line == 2 + first_len


def test_missing_key_malformed_and_missing_files(tmp_path, task):
    bad = dict(GOOD)
    del bad["question_type"]
    write_split(tmp_path, "val", [bad])
    with pytest.raises(AnnotationError, match=r"missing keys \['question_type'\]"):
        task.load(tmp_path, "val")
    (tmp_path / "val_qa.json").write_text('[\n{"id": 1,\n', encoding="utf-8")
    with pytest.raises(AnnotationError, match="malformed JSON"):
        task.load(tmp_path, "val")
    (tmp_path / "val_qa.json").write_text('{"id": 1}', encoding="utf-8")
    with pytest.raises(AnnotationError, match="JSON list"):
        task.load(tmp_path, "val")
    with pytest.raises(AnnotationError, match="not found"):
        task.load(tmp_path, "train")
    with pytest.raises(CrabEvalError, match="no split"):
        task.load(tmp_path, "dev")
    assert task.annotation_files(tmp_path, "test") == [tmp_path / "test.json"]  # Crab+ AVUIE_2/avqa_thu/test.json


def test_cli_default_split_is_val_and_bad_file(tmp_path, capsys):
    data, preds = build_hand(tmp_path)
    out = tmp_path / "result.json"
    argv = ["score", "--task", "avqa", "--data", str(data), "--predictions", str(preds), "--output", str(out)]
    assert cli_main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["split"] == "val"
    assert saved["metrics"] == pytest.approx(HAND_EXPECTED, rel=1e-12)
    (data / "val_qa.json").write_text("[", encoding="utf-8")
    out2 = tmp_path / "bad.json"
    assert cli_main([*argv[:-1], str(out2)]) == 2
    assert "val_qa.json:1: malformed JSON" in capsys.readouterr().err
    assert not out2.exists()
