"""music_avqa: loader, instruction, answer parsing and the official test-loop metrics.

Expected values are worked by hand (comments), computed with scikit-learn's accuracy_score per group, or by
``official_test_loop`` below: a plain loop written from net_grd_avst/main_avst.py test() as read, independent of
the vectorised aggregate under test.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score

from crab_eval.cli import main as cli_main
from crab_eval.errors import AnnotationError, CrabEvalError, PredictionError, PredictionFileError
from crab_eval.layouts.music_avqa import ANSWER_VOCABULARY, QUESTION_TYPES, make_entry, write_split
from crab_eval.readers import answer_tags
from crab_eval.registry import get_task
from crab_eval.scoring import score
from crab_eval.tasks.base import CRAB_PREFIX, Split

CONTRACT_METRICS = [
    "audio_counting", "audio_comparative", "audio_avg",
    "visual_counting", "visual_location", "visual_avg",
    "av_existential", "av_counting", "av_location", "av_comparative", "av_temporal", "av_avg",
    "overall",
]  # fmt: skip
A, V, AV = "Audio", "Visual", "Audio-Visual"


@pytest.fixture(scope="module")
def task():
    return get_task("music_avqa")


def write_preds(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def official_test_loop(types: list[list[str]], correct: list[int]) -> dict[str, float]:
    """main_avst.py test() as read: one list per (modality, type) branch, averages over the listed groups only,
    overall over every question. Empty groups are skipped here (the official divides by zero)."""
    lists: dict[str, list[int]] = {k: [] for k in CONTRACT_METRICS if not k.endswith("avg") and k != "overall"}
    branches = {
        (A, "Counting"): "audio_counting", (A, "Comparative"): "audio_comparative",
        (V, "Counting"): "visual_counting", (V, "Location"): "visual_location",
        (AV, "Existential"): "av_existential", (AV, "Counting"): "av_counting", (AV, "Location"): "av_location",
        (AV, "Comparative"): "av_comparative", (AV, "Temporal"): "av_temporal",
    }  # fmt: skip
    total, right = 0, 0
    for t, c in zip(types, correct, strict=True):
        total += 1
        right += c
        name = branches.get((t[0], t[1]))
        if name is not None:
            lists[name].append(c)
    out = {}
    for name, members in [
        ("audio_counting", ["audio_counting"]), ("audio_comparative", ["audio_comparative"]),
        ("audio_avg", ["audio_counting", "audio_comparative"]),
        ("visual_counting", ["visual_counting"]), ("visual_location", ["visual_location"]),
        ("visual_avg", ["visual_counting", "visual_location"]),
        ("av_existential", ["av_existential"]), ("av_counting", ["av_counting"]),
        ("av_location", ["av_location"]), ("av_comparative", ["av_comparative"]),
        ("av_temporal", ["av_temporal"]),
        ("av_avg", ["av_existential", "av_counting", "av_location", "av_comparative", "av_temporal"]),
    ]:  # fmt: skip
        n = sum(len(lists[m]) for m in members)
        if n:
            out[name] = 100 * sum(sum(lists[m]) for m in members) / n
    out["overall"] = 100 * right / total
    return out


# ---- hand-worked fixture ---------------------------------------------------------------------------------------
# (type, answer, prediction line or None for missing); "right" marks the ones that score.
HAND = [
    ((A, "Counting"), "one", {"prediction": {"answer": "one"}}),  # right
    (
        (A, "Counting"),
        "two",
        {"text": "First I hear <answer> one </answer>, no... So the answer is <answer>two</answer>."},
    ),  # right (last tag)
    ((A, "Counting"), "three", {"prediction": {"answer": "four"}}),  # wrong
    ((A, "Comparative"), "yes", {"prediction": {"answer": " YES "}}),  # right (case/space tolerant)
    ((V, "Counting"), "two", {"text": "So the answer is <answer> 2 </answer>."}),  # wrong: digits are not mapped
    ((V, "Counting"), "more than ten", {"text": "no answer tag at all"}),  # unparsed -> wrong
    ((V, "Location"), "acoustic_guitar", {"text": "So the answer is <answer> Acoustic Guitar </answer>."}),  # right
    ((V, "Location"), "piano", {"prediction": {"answer": "guitar"}}),  # wrong (outside the vocabulary)
    ((AV, "Existential"), "no", {"prediction": {"answer": "no"}}),  # right
    ((AV, "Counting"), "zero", {"prediction": {"answer": ""}}),  # wrong (empty answer is not an error)
    ((AV, "Location"), "left", {"text": "<answer> left. </answer>"}),  # right
    ((AV, "Comparative"), "yes", {"prediction": {"answer": "yes"}}),  # right
    ((AV, "Comparative"), "no", {"prediction": {"answer": "yes"}}),  # wrong
    ((AV, "Temporal"), "violin", None),  # missing -> wrong
    ((A, "Location"), "left", {"prediction": {"answer": "left"}}),  # right, but a type outside the nine: overall only
]
# By hand: audio_counting 2/3, audio_comparative 1/1, audio_avg 3/4; visual_counting 0/2, visual_location 1/2,
# visual_avg 1/4; av_existential 1/1, av_counting 0/1, av_location 1/1, av_comparative 1/2, av_temporal 0/1,
# av_avg 3/6; overall 8/15 (the Audio/Location question counts only here).
HAND_EXPECTED = {
    "audio_counting": 200 / 3, "audio_comparative": 100.0, "audio_avg": 75.0,
    "visual_counting": 0.0, "visual_location": 50.0, "visual_avg": 25.0,
    "av_existential": 100.0, "av_counting": 0.0, "av_location": 100.0, "av_comparative": 50.0,
    "av_temporal": 0.0, "av_avg": 50.0, "overall": 800 / 15,
}  # fmt: skip


def build_hand(tmp_path: Path) -> tuple[Path, Path]:
    entries, rows = [], []
    for i, (qtype, answer, pred) in enumerate(HAND):
        entries.append(make_entry(f"{i // 2:08d}", 100 + i, qtype, "Is the <Object> playing?", answer, ["piano"]))
        if pred is not None:
            rows.append({"id": str(100 + i), **pred})
    data = tmp_path / "data"
    write_split(data, "test", entries)
    return data, write_preds(tmp_path / "preds.jsonl", rows)


def test_declaration(task):
    assert task.id == "music_avqa"
    assert [m.name for m in task.metrics] == CONTRACT_METRICS
    assert task.main_metric == "overall"
    assert all(m.higher_is_better for m in task.metrics)
    assert len(ANSWER_VOCABULARY) == len(set(ANSWER_VOCABULARY)) == 42


def test_hand_worked_metrics(tmp_path, task):
    data, preds = build_hand(tmp_path)
    result = score("music_avqa", data, "test", preds)
    assert result.metrics == pytest.approx(HAND_EXPECTED, rel=1e-12)
    assert list(result.metrics) == CONTRACT_METRICS
    assert (result.n_samples, result.n_missing, result.n_unparsed) == (15, 1, 1)
    # Per-sample stats: correct/group/qtype; group is the video, the bootstrap cluster.
    first = result.samples[0]
    assert (first["correct"], first["group"], first["qtype"]) == (1, "00000000", "audio_counting")
    assert result.samples[-1]["qtype"] == "other"
    json.dumps(result.samples, allow_nan=False)
    # aggregate works from the stats alone.
    assert task.aggregate(result.samples) == result.metrics


def test_sklearn_and_official_loop_on_random_split(tmp_path, task):
    rng = random.Random(7)
    types = [*QUESTION_TYPES, (A, "Location"), ("audio-visual", "Counting")]  # last two: overall only
    entries, rows, truth, guesses, qtypes = [], [], [], [], []
    for i in range(400):
        qtype = rng.choice(types)
        answer = rng.choice(ANSWER_VOCABULARY)
        guess = answer if rng.random() < 0.6 else rng.choice(ANSWER_VOCABULARY)
        entries.append(make_entry(f"{rng.randrange(120):08d}", i, qtype, "How many <Object> play?", answer, ["tuba"]))
        rows.append({"id": str(i), "prediction": {"answer": guess}})
        truth.append(answer)
        guesses.append(guess)
        qtypes.append(list(qtype))
    data = tmp_path / "data"
    write_split(data, "test", entries)
    result = score("music_avqa", data, "test", write_preds(tmp_path / "p.jsonl", rows))

    correct = [int(g == t) for g, t in zip(guesses, truth, strict=True)]
    assert result.metrics == pytest.approx(official_test_loop(qtypes, correct), rel=1e-12)

    def sk(members: set[tuple[str, str]] | None) -> float:
        idx = [i for i, q in enumerate(qtypes) if members is None or tuple(q) in members]
        return 100 * accuracy_score([truth[i] for i in idx], [guesses[i] for i in idx])

    for (modality, kind), name in zip(QUESTION_TYPES, [m for m in CONTRACT_METRICS if "avg" not in m], strict=False):
        assert result.metrics[name] == pytest.approx(sk({(modality, kind)}), rel=1e-12)
    assert result.metrics["audio_avg"] == pytest.approx(sk(set(QUESTION_TYPES[:2])), rel=1e-12)
    assert result.metrics["visual_avg"] == pytest.approx(sk(set(QUESTION_TYPES[2:4])), rel=1e-12)
    assert result.metrics["av_avg"] == pytest.approx(sk(set(QUESTION_TYPES[4:])), rel=1e-12)
    assert result.metrics["overall"] == pytest.approx(sk(None), rel=1e-12)

    # Bootstrap path: a resample of the stats goes through the same aggregate.
    pick = [rng.randrange(400) for _ in range(400)]
    resampled = [result.samples[i] for i in pick]
    expected = official_test_loop([qtypes[i] for i in pick], [correct[i] for i in pick])
    assert task.aggregate(resampled) == pytest.approx(expected, rel=1e-12)


def test_empty_groups_are_left_out(task):
    stats = [{"correct": 1, "group": "v", "qtype": "audio_counting"}, {"correct": 0, "group": "v", "qtype": "other"}]
    # By hand: audio_counting 1/1, audio_avg 1/1, overall 1/2; every other group has no question.
    assert task.aggregate(stats) == {"audio_counting": 100.0, "audio_avg": 100.0, "overall": 50.0}
    assert task.aggregate([]) == {}


def test_instruction_and_question_filling(tmp_path, task):
    entries = [
        make_entry("00000108", 10, (A, "Comparative"), "Is the <Object> louder than the <Object>?", "yes",
                   ["guzheng", "piano"]),
        # Full-width question mark (430 original test questions).
        make_entry("00005778", 11, (AV, "Counting"), "How many sounding <Object> in the video\uff1f", "two",
                   ["bagpipe"]),
        # A placeholder glued to the question mark.
        make_entry("00000003", 15, (V, "Counting"), "How many <Object>?", "one", ["erhu"]),
        # Trailing space after the question mark (591 original test questions): rstrip first.
        make_entry("00004536", 12, (V, "Location"), "What kind of instrument is the <LRer> instrument? ", "piano",
                   ["leftest"]),
        # A word holding a placeholder is replaced whole, suffix included (official loader).
        make_entry("00000001", 13, (AV, "Temporal"), "Is the <Object>'s sound <BA> the drum?", "no",
                   ["piano", "after"]),
        make_entry("00000002", 14, (A, "Counting"), "How many instruments were heard?", "one"),
    ]  # fmt: skip
    write_split(tmp_path, "val", entries)
    samples = task.load(tmp_path, "val")
    assert [s.instruction for s in samples] == [
        "Please answer this question: Is the guzheng louder than the piano?",
        "Please answer this question: How many sounding bagpipe in the video?",
        "Please answer this question: How many erhu?",
        "Please answer this question: What kind of instrument is the leftest instrument?",
        "Please answer this question: Is the piano sound after the drum?",
        "Please answer this question: How many instruments were heard?",
    ]
    assert task.prompt(samples[0]) == (
        "This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"
        "Please answer this question: Is the guzheng louder than the piano?"
    )
    assert task.prompt(samples[0]).startswith(CRAB_PREFIX)
    assert [s.id for s in samples] == ["10", "11", "15", "12", "13", "14"]
    assert [s.group for s in samples] == ["00000108", "00005778", "00000003", "00004536", "00000001", "00000002"]
    assert samples[1].meta["type"] == ["Audio-Visual", "Counting"]
    for s in samples:
        assert task.target_text(s) == f"So the answer is <answer> {s.target} </answer>."
        assert task.parse(task.target_text(s), samples) == task.oracle_prediction(s)
        pred = task.check_prediction(task.parse(task.target_text(s), samples), s, samples, tmp_path)
        assert task.score_sample(s, pred)["correct"] == 1
        assert task.score_sample(s, task.empty_prediction(s))["correct"] == 0


def test_duplicate_question_ids_get_suffixes_and_both_count(tmp_path):
    # As in the original json/avqa-test.json (question_id 1138 twice, answers "two" and "four"): the official test
    # loop never reads question_id, so both rows are scored.
    entries = [
        make_entry("00005778", 1138, (AV, "Counting"), "How many sounding <Object> in the video?", "two", ["bagpipe"]),
        make_entry("00000093", 12, (A, "Counting"), "How many instruments were heard?", "one"),
        make_entry("00005778", 1138, (AV, "Counting"), "How many sounding <Object> in the video?", "four", ["bagpipe"]),
        make_entry("00005778", 1138, (AV, "Counting"), "How many sounding <Object> in the video?", "one", ["bagpipe"]),
    ]  # fmt: skip
    write_split(tmp_path / "d", "test", entries)
    rows = [{"id": i, "prediction": {"answer": "two"}} for i in ("1138", "1138#2", "1138#3")]
    result = score("music_avqa", tmp_path / "d", "test", write_preds(tmp_path / "p.jsonl", rows))
    assert [s["id"] for s in result.samples] == ["1138", "12", "1138#2", "1138#3"]
    # By hand: 1138 right, 12 missing, 1138#2 wrong, 1138#3 wrong -> av_counting 1/3, audio_counting 0/1, overall 1/4.
    assert result.metrics["av_counting"] == pytest.approx(100 / 3)
    assert result.metrics["audio_counting"] == 0.0
    assert result.metrics["overall"] == 25.0


def test_duplicate_suffix_collision_is_an_error(tmp_path, task):
    entries = [make_entry("v1", q, (A, "Counting"), "How many?", "one") for q in ("5", "5", "5#2")]
    write_split(tmp_path, "test", entries)
    with pytest.raises(AnnotationError, match="5#2"):
        task.load(tmp_path, "test")


def test_parse(task):
    def parse(text):
        return task.parse(text, Split("music_avqa", "test", Path("."), ()))  # the parser reads no annotation file

    assert parse("We hear a piano. So the answer is <answer> piano </answer>.") == {"answer": "piano"}
    assert parse("<answer>left</answer> ... wait, <ANSWER>  Right </Answer>") == {"answer": "right"}
    assert parse("<answer> more_than_ten </answer>") == {"answer": "more than ten"}
    assert parse("<answer> Acoustic-Guitar </answer>") == {"answer": "acoustic_guitar"}
    assert parse("<answer>\n yes. \n</answer>") == {"answer": "yes"}
    assert parse("<answer> Electric  Guitar </answer>") == {"answer": "electric guitar"}  # parsed, not in vocab
    assert parse("the answer is piano") is None
    assert parse("<answer>   </answer>") is None
    assert parse("") is None
    # A truncated final tag falls back to the last complete pair.
    assert parse("<answer> two </answer> then <answer> thr") == {"answer": "two"}


def test_answer_tags_helpers():
    assert answer_tags.extract_answer("x <answer> a </answer> y <answer>b</answer>") == "b"
    assert answer_tags.extract_answer("< answer > a b </ answer >") == "a b"
    assert answer_tags.normalize_space_case("  Two\t Words ") == "two words"
    assert answer_tags.vocabulary_key("'Acoustic_Guitar.'") == "acoustic guitar"
    assert answer_tags.format_answer("yes") == "<answer> yes </answer>"
    with pytest.raises(ValueError, match="share the key"):
        answer_tags.vocabulary_index(["a_b", "a b"])


@pytest.mark.parametrize(
    "obj, message",
    [
        ("piano", "must be an object"),
        (["piano"], "must be an object"),
        ({}, "exactly the key"),
        ({"answer": "piano", "extra": 1}, "exactly the key"),
        ({"answers": "piano"}, "exactly the key"),
        ({"answer": 3}, "must be a string"),
        ({"answer": None}, "must be a string"),
        ({"answer": ["piano"]}, "must be a string"),
    ],
)
def test_bad_structured_predictions(tmp_path, task, obj, message):
    write_split(tmp_path, "test", [make_entry("v", 1, (A, "Counting"), "How many?", "one")])
    split = task.load(tmp_path, "test")
    with pytest.raises(PredictionError, match=message):
        task.check_prediction(obj, split[0], split, tmp_path)


def test_bad_prediction_line_names_file_and_line(tmp_path):
    write_split(tmp_path / "d", "test", [make_entry("v", 1, (A, "Counting"), "How many?", "one")])
    preds = write_preds(tmp_path / "p.jsonl", [{"id": "1", "prediction": {"answer": 1}}])
    with pytest.raises(PredictionFileError, match=r"p\.jsonl:1: id '1': 'answer' must be a string"):
        score("music_avqa", tmp_path / "d", "test", preds)


GOOD = make_entry("00000001", 7, (AV, "Existential"), "Is the <Object> in the video always playing?", "yes", ["cello"])


def _with(**changes):
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    "entry, message",
    [
        ("not an object", "question object"),
        ({k: v for k, v in GOOD.items() if k != "anser"}, "missing keys"),
        (_with(video_id=1), "'video_id'"),
        (_with(question_id=True), "'question_id'"),
        (_with(question_id=1.5), "'question_id'"),
        (_with(type=["Audio", "Counting"]), "string holding a list"),
        (_with(type="Audio, Counting"), "'type'"),
        (_with(type='["Audio"]'), r"\[modality, question type\]"),
        (_with(type='["Audio", "Counting", "x"]'), r"\[modality, question type\]"),
        (_with(templ_values='["cello", "piano"]'), "1 placeholders but 'templ_values' 2"),
        (_with(templ_values="[]"), "1 placeholders but 'templ_values' 0"),
        (_with(templ_values="[1]"), "list of strings"),
        (_with(question_content="Is the <Object> playing"), "ending in '\\?'"),
        (_with(question_content=None), "ending in '\\?'"),
        (_with(question_content="?", templ_values="[]"), "empty"),
        (_with(anser="guitar"), "not one of the 42 official answers"),
        (_with(anser="Yes"), "not one of the 42"),
    ],
)
def test_annotation_errors_name_file_and_line(tmp_path, task, entry, message):
    ok = make_entry("00000002", 8, (A, "Counting"), "How many instruments were heard?", "one")
    path = write_split(tmp_path, "test", [ok, entry])
    with pytest.raises(AnnotationError, match=message) as info:
        task.load(tmp_path, "test")
    assert info.value.path == str(path)
    # The official formatting puts each object on 9 lines after '[': the second one opens on line 11.
    assert info.value.line == 11


def test_malformed_json_files(tmp_path, task):
    path = tmp_path / "avqa-test.json"
    path.write_text('[\n  {"video_id": "a",\n  oops\n]', encoding="utf-8")
    with pytest.raises(AnnotationError, match="malformed JSON") as info:
        task.load(tmp_path, "test")
    assert info.value.line == 3
    path.write_text('{"video_id": "a"}', encoding="utf-8")
    with pytest.raises(AnnotationError, match="JSON list"):
        task.load(tmp_path, "test")
    path.write_bytes(b'["\xff"]')
    with pytest.raises(AnnotationError, match="UTF-8"):
        task.load(tmp_path, "test")


def test_missing_file_and_unknown_split(tmp_path, task):
    with pytest.raises(AnnotationError, match="not found"):
        task.load(tmp_path, "test")
    with pytest.raises(CrabEvalError, match="no split"):
        task.load(tmp_path, "dev")
    assert task.annotation_files(tmp_path, "val") == [tmp_path / "avqa-val.json"]


def test_layout_writer_matches_release_formatting(tmp_path):
    # The first object of the official json_update/avqa-test.json, formatted as the release file is.
    path = write_split(tmp_path, "test", [
        make_entry("00000093", 12, ("Audio", "Counting"),
                   "How many musical instruments were heard throughout the video?", "one"),
        make_entry("x", 13, ("Audio", "Counting"), "How many?\uff1f", "one"),
    ])  # fmt: skip
    text = path.read_text(encoding="utf-8")
    assert text.startswith(
        '[\n  {\n    "video_id": "00000093",\n    "question_id": 12,\n    "type": "[\\"Audio\\", \\"Counting\\"]",\n'
        '    "question_content": "How many musical instruments were heard throughout the video?",\n'
        '    "templ_values": "[]",\n    "question_deleted": 0,\n    "anser": "one"\n  },'
    )
    assert "\\uff1f" in text and text.endswith("}\n]")


def test_cli_score_and_bad_file(tmp_path, capsys):
    data, preds = build_hand(tmp_path)
    out = tmp_path / "result.json"
    argv = ["score", "--task", "music_avqa", "--data", str(data), "--predictions", str(preds), "--output", str(out)]
    assert cli_main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["metrics"] == pytest.approx(HAND_EXPECTED, rel=1e-12)
    assert (saved["n_samples"], saved["n_missing"], saved["n_unparsed"]) == (15, 1, 1)
    (data / "avqa-test.json").write_text("[", encoding="utf-8")
    out2 = tmp_path / "bad.json"
    assert cli_main([*argv[:-1], str(out2)]) == 2
    assert "avqa-test.json:1: malformed JSON" in capsys.readouterr().err
    assert not out2.exists()
