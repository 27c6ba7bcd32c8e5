"""The classification family (ks, ucf, meld, cremad, mafw, dfew, a2v, v2a): Crab+ JSON loader, instructions,
answer parsing, and accuracy / weighted F1 / UAR / WAR.

Expected values are worked by hand (comments) or computed by the plain-loop references below (written from the
metric definitions, independent of the sklearn calls under test) and cross-checked with scikit-learn.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from crab_eval.cli import main as cli_main
from crab_eval.errors import AnnotationError, CrabEvalError, PredictionError, PredictionFileError
from crab_eval.layouts.classification import LAYOUTS, make_entry, write_split
from crab_eval.registry import get_task, task_ids
from crab_eval.scoring import score
from crab_eval.tasks.base import CRAB_PREFIX

CONTRACT = {
    "ks": (["accuracy"], "accuracy"),
    "ucf": (["accuracy"], "accuracy"),
    "meld": (["weighted_f1", "accuracy"], "weighted_f1"),
    "cremad": (["accuracy"], "accuracy"),
    "mafw": (["uar", "war"], "uar"),
    "dfew": (["uar", "war"], "uar"),
    "a2v": (["accuracy"], "accuracy"),
    "v2a": (["accuracy"], "accuracy"),
}
EMOTION = "Please judge the person's emotion at the moment."


def write_preds(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def single_split(root: Path, task: str, labels: list, split: str = "test") -> Path:
    return write_split(root, split, [make_entry(task, label, [f"clip{i}"]) for i, label in enumerate(labels)])


def loop_weighted_f1(y_true: list[str], y_pred: list[str]) -> float:
    """Per class: F1 = 2TP / (2TP + FP + FN) (0 when undefined), weighted by the class's support."""
    support = Counter(y_true)
    total = 0.0
    for c, n in support.items():
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fn = n - tp
        total += n * (2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return 100 * total / len(y_true)


def loop_uar(y_true: list[str], y_pred: list[str]) -> float:
    """Mean over the classes of the ground truth of their recall."""
    support = Counter(y_true)
    recalls = [sum(t == c == p for t, p in zip(y_true, y_pred, strict=True)) / n for c, n in support.items()]
    return 100 * sum(recalls) / len(recalls)


def test_every_task_is_registered_with_its_metrics():
    assert set(CONTRACT) <= set(task_ids())
    for task_id, (metrics, main) in CONTRACT.items():
        task = get_task(task_id)
        assert [m.name for m in task.metrics] == metrics
        assert task.main_metric == main
        assert task.splits == ("test", "train")
        assert all(m.higher_is_better for m in task.metrics)


def test_meld_weighted_f1_by_hand(tmp_path):
    data = tmp_path / "meld"
    single_split(data, "meld", ["joy", "joy", "joy", "anger", "anger", "fear"])
    rows = [
        {"id": "clip0.mp4|clip0.wav", "prediction": {"answer": "joy"}},
        {"id": "clip1.mp4|clip1.wav", "text": "She smiles. <answer> Joy </answer>."},
        {"id": "clip2.mp4|clip2.wav", "prediction": {"answer": "anger"}},
        {"id": "clip3.mp4|clip3.wav", "prediction": {"answer": "anger"}},
        # clip4 missing
        {"id": "clip5.mp4|clip5.wav", "text": "<answer>fear</answer>."},
    ]
    result = score("meld", data, "test", write_preds(tmp_path / "p.jsonl", rows))
    # joy: TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 0.8; anger: TP 1, FP 1 (clip2), FN 1 (clip4) -> F1 0.5; fear: F1 1.
    # Weighted by support 3/2/1: (3*0.8 + 2*0.5 + 1*1) / 6 = 4.4 / 6. Accuracy 4/6.
    assert result.metrics == pytest.approx({"weighted_f1": 100 * 4.4 / 6, "accuracy": 100 * 4 / 6}, rel=1e-12)
    assert (result.n_samples, result.n_missing, result.n_unparsed) == (6, 1, 0)
    assert result.samples[4]["pred"] == "" and result.samples[4]["true"] == "anger"
    assert get_task("meld").aggregate(result.samples) == result.metrics


def test_dfew_uar_war_by_hand(tmp_path):
    data = tmp_path / "dfew"
    single_split(data, "dfew", ["happy", "happy", "happy", "happy", "sad", "sad", "neutral"])
    guesses = ["happy", "happy", "happy", "sad", "sad", "angry", "happy"]  # "angry" is no class of this split
    rows = [{"id": f"clip{i}.mp4|clip{i}.wav", "prediction": {"answer": g}} for i, g in enumerate(guesses)]
    result = score("dfew", data, "test", write_preds(tmp_path / "p.jsonl", rows))
    # Recall: happy 3/4, sad 1/2, neutral 0/1 -> UAR (0.75 + 0.5 + 0) / 3; WAR = 4 right of 7.
    assert result.metrics == pytest.approx({"uar": 100 * 1.25 / 3, "war": 100 * 4 / 7}, rel=1e-12)


@pytest.mark.parametrize("task_id", ["meld", "dfew", "mafw", "cremad", "ks"])
def test_random_split_against_loops_and_sklearn(tmp_path, task_id):
    rng = random.Random(11)
    classes = list(LAYOUTS[task_id].classes) or [f"class {k}" for k in range(12)]
    truth = [rng.choice(classes) for _ in range(600)]
    guesses = [t if rng.random() < 0.5 else rng.choice([*classes, "unsure"]) for t in truth]
    data = tmp_path / task_id
    single_split(data, task_id, truth)
    rows = [{"id": f"clip{i}.mp4|clip{i}.wav", "prediction": {"answer": g}} for i, g in enumerate(guesses)]
    rows = [r for i, r in enumerate(rows) if i % 17]  # some missing
    result = score(task_id, data, "test", write_preds(tmp_path / "p.jsonl", rows))
    preds = [g if i % 17 else "" for i, g in enumerate(guesses)]
    reference = {
        "accuracy": 100 * sum(t == p for t, p in zip(truth, preds, strict=True)) / len(truth),
        "weighted_f1": loop_weighted_f1(truth, preds),
        "uar": loop_uar(truth, preds),
    }
    reference["war"] = reference["accuracy"]
    names = CONTRACT[task_id][0]
    assert result.metrics == pytest.approx({k: reference[k] for k in names}, rel=1e-12)
    sk = {"accuracy": accuracy_score(truth, preds), "war": accuracy_score(truth, preds),
          "weighted_f1": f1_score(truth, preds, average="weighted", zero_division=0)}  # fmt: skip
    for name in names:
        if name in sk:
            assert result.metrics[name] == pytest.approx(100 * sk[name], rel=1e-12)
    # Bootstrap path: a resample of the stats alone gives the metric of the resampled labels.
    pick = [rng.randrange(600) for _ in range(600)]
    resampled = get_task(task_id).aggregate([result.samples[i] for i in pick])
    t2, p2 = [truth[i] for i in pick], [preds[i] for i in pick]
    expected = {"accuracy": 100 * accuracy_score(t2, p2), "war": 100 * accuracy_score(t2, p2),
                "weighted_f1": loop_weighted_f1(t2, p2), "uar": loop_uar(t2, p2)}  # fmt: skip
    assert resampled == pytest.approx({k: expected[k] for k in names}, rel=1e-12)
    if "uar" in names:
        assert result.metrics["uar"] == pytest.approx(100 * _balanced(truth, preds), rel=1e-12)


def _balanced(truth: list[str], preds: list[str]) -> float:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(truth, preds))


@pytest.mark.parametrize("task_id", sorted(CONTRACT))
def test_crab_plus_instruction_target_and_perfect_oracle_text(tmp_path, task_id):
    layout = LAYOUTS[task_id]
    labels = list(layout.classes[:3]) or ["Playing piano", "Chopping wood", "Tap dancing"]
    n = max(layout.clip_of_key) + 1
    entries = [make_entry(task_id, lab, [f"c{i}_{k}" for k in range(n)]) for i, lab in enumerate(labels)]
    write_split(tmp_path, "test", entries)
    task = get_task(task_id)
    samples = task.load(tmp_path, "test")
    rows = [{"id": s.id, "text": f"Some reasoning. {task.target_text(s)}"} for s in samples]
    result = score(task_id, tmp_path, "test", write_preds(tmp_path / "p.jsonl", rows))
    assert all(v == 100.0 for v in result.metrics.values())
    oracle = [{"id": s.id, "prediction": task.oracle_prediction(s)} for s in samples]
    assert all(v == 100.0 for v in score(task_id, tmp_path, "test", write_preds(tmp_path / "o.jsonl", oracle))
               .metrics.values())  # fmt: skip
    assert samples[0].media == {k: entries[0][k] for k in layout.media_keys}
    assert samples[0].group == entries[0][layout.media_keys[0]]


def test_exact_crab_plus_texts(tmp_path):
    # Crab+ OmniTestDataset: instruction per task and f"<answer>{x}</answer>" (+ "." for emotion and matching).
    single_split(tmp_path / "ks", "ks", ["playing piano"])
    ks = get_task("ks")
    (s,) = ks.load(tmp_path / "ks", "test")
    assert ks.prompt(s) == CRAB_PREFIX + "Please identify the action taking place in the video."
    assert ks.target_text(s) == "<answer>playing piano</answer>"
    single_split(tmp_path / "meld", "meld", ["neutral"])
    meld = get_task("meld")
    (s,) = meld.load(tmp_path / "meld", "test")
    assert (s.instruction, meld.target_text(s)) == (EMOTION, "<answer>neutral</answer>.")
    write_split(tmp_path / "a2v", "test", [make_entry("a2v", 2, ["aud", "vid1", "vid2"])])
    a2v = get_task("a2v")
    (s,) = a2v.load(tmp_path / "a2v", "test")
    assert s.id == "aud.wav|vid1.mp4|vid2.mp4"
    assert a2v.target_text(s) == "<answer>2</answer>."
    assert a2v.prompt(s) == (
        "These are two videos and an audio:\n<audio_start><audio><audio_end>\n<video_start><video><video_end>\n"
        "<video_start><video><video_end>\n"
        "Please listen to the audio and indicate which of the two videos matches what you hear."
    )
    write_split(tmp_path / "v2a", "test", [make_entry("v2a", "1", ["vid", "aud1", "aud2"])])
    v2a = get_task("v2a")
    (s,) = v2a.load(tmp_path / "v2a", "test")
    assert v2a.prompt(s).startswith("This is a video and two audio clips:\n<video_start><video><video_end>\n")
    assert v2a.prompt(s).endswith("indicate which of the two audio clips matches what you see.")


def test_ucf_label_is_lower_cased_and_spaces_do_not_matter(tmp_path):
    single_split(tmp_path, "ucf", ["ApplyEyeMakeup", "PlayingDaf"])
    ucf = get_task("ucf")
    split = ucf.load(tmp_path, "test")
    s0, s1 = split
    assert ucf.target_text(s0) == "<answer>applyeyemakeup</answer>"  # Crab+ lower-cases the UCF class name
    assert ucf.check_prediction({"answer": "Apply Eye Makeup"}, s0, split, tmp_path) == "applyeyemakeup"
    assert ucf.check_prediction({"answer": "apply_eye-makeup."}, s0, split, tmp_path) == "applyeyemakeup"
    assert ucf.check_prediction({"answer": "Playing Tabla"}, s1, split, tmp_path) == "playing tabla"  # kept, wrong


def test_matching_answers(tmp_path):
    write_split(tmp_path, "test", [make_entry("a2v", 1, ["a", "v1", "v2"]), make_entry("a2v", "2", ["b", "v1", "v2"])])
    a2v = get_task("a2v")
    split = a2v.load(tmp_path, "test")
    s1, s2 = split
    assert (s1.target, s2.target) == ("1", "2")
    for text, label in [("1", "1"), ("One", "1"), ("the first video", "1"), ("Video 1.", "1"), ("first clip", "1"),
                        ("2", "2"), ("second", "2"), ("Video two", "2"), ("the 2nd video", "2")]:  # fmt: skip
        assert a2v.check_prediction({"answer": text}, s1, split, tmp_path) == label, text
    assert a2v.check_prediction({"answer": "both"}, s1, split, tmp_path) == "both"  # wrong
    assert a2v.check_prediction({"answer": "video 3"}, s1, split, tmp_path) == "video 3"  # wrong


def test_parse(tmp_path):
    task = get_task("cremad")
    single_split(tmp_path, "cremad", ["anger"])
    split = task.load(tmp_path, "test")
    assert task.parse("maybe <answer>sad</answer> no: <answer> Anger </answer>.", split) == {"answer": "Anger"}
    assert task.parse("<answer></answer>", split) is None
    assert task.parse("anger", split) is None
    (s,) = split
    assert task.check_prediction({"answer": " ANGER! "}, s, split, tmp_path) == "anger"


@pytest.mark.parametrize(
    "obj, message",
    [
        ("anger", "must be an object"),
        ({}, "must be an object"),
        ({"label": "anger"}, "must be an object"),
        ({"answer": "anger", "x": 1}, "must be an object"),
        ({"answer": 1}, "must be a string"),
        ({"answer": None}, "must be a string"),
    ],
)
def test_bad_structured_predictions(tmp_path, obj, message):
    task = get_task("cremad")
    single_split(tmp_path, "cremad", ["anger"])
    split = task.load(tmp_path, "test")
    with pytest.raises(PredictionError, match=message):
        task.check_prediction(obj, split[0], split, tmp_path)


def test_bad_prediction_line_names_file_and_line(tmp_path):
    single_split(tmp_path / "d", "mafw", ["anger"])
    preds = write_preds(tmp_path / "p.jsonl", [{"id": "clip0.mp4|clip0.wav", "prediction": {"answer": ["anger"]}}])
    with pytest.raises(PredictionFileError, match=r"p\.jsonl:1: id 'clip0.mp4\|clip0.wav': 'answer' must be a string"):
        score("mafw", tmp_path / "d", "test", preds)


@pytest.mark.parametrize(
    "task_id, change, message",
    [
        ("meld", {"Emotion": ""}, "'Emotion' is empty"),
        ("meld", {"Emotion": True}, "must be a class name"),
        ("meld", {"Emotion": ["joy"]}, "must be a class name"),
        ("dfew", {"video_path": ""}, "media paths"),
        ("dfew", {"audio_path": 3}, "media paths"),
        ("a2v", {"correct_video": 3}, r"must be one of \['1', '2'\]"),
        ("v2a", {"correct_audio": "first"}, "must be one of"),
    ],
)
def test_bad_annotations(tmp_path, task_id, change, message):
    n = max(LAYOUTS[task_id].clip_of_key) + 1
    label = LAYOUTS[task_id].classes[0]
    good = make_entry(task_id, label, [f"g{k}" for k in range(n)])
    bad = {**make_entry(task_id, label, [f"b{k}" for k in range(n)]), **change}
    path = write_split(tmp_path, "test", [good, bad])
    with pytest.raises(AnnotationError, match=message) as info:
        get_task(task_id).load(tmp_path, "test")
    assert info.value.path == str(path)
    assert info.value.line == json.dumps([good], indent=2).count("\n") + 1  # where the second object opens


def test_missing_key_colliding_labels_and_files(tmp_path):
    task = get_task("meld")
    entry = make_entry("meld", "joy", ["a"])
    del entry["Emotion"]
    write_split(tmp_path, "test", [entry])
    with pytest.raises(AnnotationError, match=r"missing keys \['Emotion'\]"):
        task.load(tmp_path, "test")
    single_split(tmp_path, "meld", ["Joy", "joy"])
    with pytest.raises(AnnotationError, match="same answer to a reader"):
        task.load(tmp_path, "test")
    write_split(tmp_path, "test", [make_entry("meld", "joy", ["a"]), make_entry("meld", "fear", ["a"])])
    assert [s.id for s in task.load(tmp_path, "test")] == ["a.mp4|a.wav", "a.mp4|a.wav#2"]
    (tmp_path / "test.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(AnnotationError, match="must be an object"):
        task.load(tmp_path, "test")
    (tmp_path / "test.json").write_text("[", encoding="utf-8")
    with pytest.raises(AnnotationError, match="malformed JSON"):
        task.load(tmp_path, "test")
    with pytest.raises(AnnotationError, match="not found"):
        task.load(tmp_path, "train")
    with pytest.raises(CrabEvalError, match="no split"):
        task.load(tmp_path, "val")


def test_cli_score(tmp_path, capsys):
    data = tmp_path / "dfew"
    single_split(data, "dfew", ["happy", "happy", "happy", "happy", "sad", "sad", "neutral"])
    guesses = ["happy", "happy", "happy", "sad", "sad", "angry", "happy"]
    rows = [{"id": f"clip{i}.mp4|clip{i}.wav", "text": f"<answer>{g}</answer>."} for i, g in enumerate(guesses)]
    preds = write_preds(tmp_path / "p.jsonl", rows)
    out = tmp_path / "r.json"
    argv = ["score", "--task", "dfew", "--data", str(data), "--predictions", str(preds), "--output", str(out)]
    assert cli_main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["split"] == "test"
    assert saved["metrics"] == pytest.approx({"uar": 100 * 1.25 / 3, "war": 100 * 4 / 7}, rel=1e-12)
    (data / "test.json").write_text("[", encoding="utf-8")
    assert cli_main([*argv[:-1], str(tmp_path / "bad.json")]) == 2
    assert "test.json:1: malformed JSON" in capsys.readouterr().err
    assert not (tmp_path / "bad.json").exists()
