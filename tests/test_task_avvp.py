"""The ``avvp`` adapter against hand-worked values and a plain loop reference of the official evaluation.

The reference (``ref_*`` below) follows YapengTian/AVVP-ECCV20 as read: main_avvp.py ``eval`` builds per video a
25 x 10 matrix per modality with ``GT[class, onset:offset] = 1`` for every dense row of that filename, AV = audio
AND visual; utils/eval_metrics.py ``segment_level`` / ``event_level`` give per-video F values (mean over the classes
present in prediction or GT, 1.0 when none), averaged over videos; Type@AV = (AV + A + V) / 3. It is written with
plain loops and lists, independently of the vectorised code under test.
"""

from __future__ import annotations

import importlib.util
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest

from crab_eval.cli import main as cli_main
from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.layouts import avvp as layout
from crab_eval.metrics import temporal as tm
from crab_eval.registry import get_task
from crab_eval.scoring import score
from crab_eval.tasks.base import Split

CATS = layout.CATEGORIES
TASK = get_task("avvp")
NO_DATA = Split("avvp", "test", Path("."), ())  # AVVP's parser and checker read no annotation file


# ---- plain loop reference ------------------------------------------------------------------------------------
def ref_matrices(rows_a, rows_v, name):
    """(GT_a, GT_v) as lists of 25 lists of 10 ints, from dense rows (filename, onset, offset, label)."""
    mats = []
    for rows in (rows_a, rows_v):
        g = [[0] * 10 for _ in range(25)]
        for filename, onset, offset, label in rows:
            if filename == name:
                for i in range(onset, offset):  # Python slice semantics: offset <= onset sets nothing
                    g[CATS.index(label)][i] = 1
        mats.append(g)
    return mats


def ref_pred_matrices(events):
    mats = {"audio": [[0] * 10 for _ in range(25)], "visual": [[0] * 10 for _ in range(25)]}
    for e in events:
        for i in range(e["onset"], e["offset"]):
            mats[e["modality"]][CATS.index(e["label"])][i] = 1
    return mats["audio"], mats["visual"]


def ref_and(x, y):
    return [[x[c][i] * y[c][i] for i in range(10)] for c in range(25)]


def ref_runs(seq):
    runs, i = [], 0
    while i < 10:
        if seq[i]:
            j = i
            while j < 10 and seq[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    return runs


def ref_iou_ok(r1, r2):
    inter = max(0, min(r1[1], r2[1]) - max(r1[0], r2[0]))
    union = (r1[1] - r1[0]) + (r2[1] - r2[0]) - inter
    return inter >= 0.5 * union


def ref_seg_counts(p, g):
    tp = sum(1 for i in range(10) if p[i] and g[i])
    fp = sum(1 for i in range(10) if p[i] and not g[i])
    fn = sum(1 for i in range(10) if g[i] and not p[i])
    return tp, fp, fn


def ref_evt_counts(p, g):
    pr, gr = ref_runs(p), ref_runs(g)
    tp = sum(1 for r in pr if any(ref_iou_ok(r, q) for q in gr))
    fn = sum(1 for q in gr if not any(ref_iou_ok(q, r) for r in pr))
    return tp, len(pr) - tp, fn


def ref_f(counts):
    fs = []
    for tp, fp, fn in counts:
        if tp + fp != 0 or tp + fn != 0:
            fs.append(2 * tp / (2 * tp + fn + fp))
    return 1.0 if not fs else sum(fs) / len(fs)


def ref_video(pa, pv, ga, gv, counter):
    pav, gav = ref_and(pa, pv), ref_and(ga, gv)
    ca = [counter(pa[c], ga[c]) for c in range(25)]
    cv = [counter(pv[c], gv[c]) for c in range(25)]
    cav = [counter(pav[c], gav[c]) for c in range(25)]
    pooled = [tuple(x + y for x, y in zip(ca[c], cv[c], strict=True)) for c in range(25)]
    return ref_f(ca), ref_f(cv), ref_f(cav), ref_f(pooled)


def ref_metrics(videos):
    """videos: list of (pred_a, pred_v, gt_a, gt_v) -> the ten official numbers."""
    out = {}
    for level, counter in (("seg", ref_seg_counts), ("evt", ref_evt_counts)):
        per = [ref_video(*v, counter) for v in videos]
        a, v, av, ev = (100 * sum(x[k] for x in per) / len(per) for k in range(4))
        out.update({f"{level}_a": a, f"{level}_v": v, f"{level}_av": av, f"{level}_event": ev})
        out[f"{level}_type"] = (a + v + av) / 3
    return out


# ---- fixtures ---------------------------------------------------------------------------------------------------
def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ev(modality, label, onset, offset):
    return {"modality": modality, "label": label, "onset": onset, "offset": offset}


def score_one(tmp_path, gt_video, events, name="AAAAAAAAAAA_0_10"):
    layout.write_dataset(tmp_path / "d", {"test": {name: gt_video}})
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": name, "prediction": {"events": events}}])
    return score("avvp", tmp_path / "d", "test", preds).metrics


# ---- hand-worked values -------------------------------------------------------------------------------------------
def test_hand_worked_segment_and_event(tmp_path):
    # GT audio: Speech [0,8), Blender [8,10); GT visual: Blender [0,10). AV GT: Blender [8,10).
    # Pred audio: Speech [0,10); pred visual: Blender [0,10). AV pred: nothing.
    gt = {"audio": [("Speech", 0, 8), ("Blender", 8, 10)], "visual": [("Blender", 0, 10)]}
    m = score_one(tmp_path, gt, [ev("audio", "Speech", 0, 10), ev("visual", "Blender", 0, 10)])
    # seg audio: Speech TP8 FP2 FN0 -> 16/18; Blender TP0 FN2 -> 0; mean 8/18.
    assert m["seg_a"] == pytest.approx(100 * 8 / 18)
    assert m["seg_v"] == pytest.approx(100.0)
    # seg AV: only Blender active (GT 2 segments, no prediction) -> 0.
    assert m["seg_av"] == pytest.approx(0.0)
    assert m["seg_type"] == pytest.approx((100 * 8 / 18 + 100 + 0) / 3)
    # seg event, pooled a+v per class: Speech 8/2/0 -> 16/18; Blender TP 0+10, FP 0, FN 2+0 -> 20/22.
    assert m["seg_event"] == pytest.approx(100 * (16 / 18 + 20 / 22) / 2)
    # evt audio: Speech pred [0,10) vs GT [0,8): IoU 0.8 -> TP; Blender GT run missed -> FN. F: 1 and 0.
    assert m["evt_a"] == pytest.approx(50.0)
    assert m["evt_v"] == pytest.approx(100.0)
    assert m["evt_av"] == pytest.approx(0.0)
    # evt pooled: Speech TP1; Blender TP1 (visual) FN1 (audio) -> 2/3.
    assert m["evt_event"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_iou_exactly_half_is_a_match(tmp_path):
    # pred [0,2) vs GT [0,4): intersection 2 >= 0.5 * union 4 -> TP, and the GT run is matched.
    m = score_one(tmp_path, {"audio": [("Dog", 0, 4)]}, [ev("audio", "Dog", 0, 2)])
    assert m["evt_a"] == pytest.approx(100.0)
    # pred [0,1) vs GT [0,3): 1 < 1.5 -> FP and FN, F = 0; segment F = 2/(2+2) = 0.5.
    m = score_one(tmp_path, {"audio": [("Dog", 0, 3)]}, [ev("audio", "Dog", 0, 1)])
    assert m["evt_a"] == 0.0
    assert m["seg_a"] == pytest.approx(50.0)


def test_video_with_nothing_anywhere_scores_one(tmp_path):
    # No GT visual event and no visual prediction: F_v list empty -> 1.0; same for AV.
    m = score_one(tmp_path, {"audio": [("Cat", 2, 5)]}, [ev("audio", "Cat", 2, 5)])
    assert m["seg_v"] == m["evt_v"] == m["seg_av"] == m["evt_av"] == 100.0
    # A visual false positive on such a video drops V to 0 (the class becomes active).
    m = score_one(tmp_path, {"audio": [("Cat", 2, 5)]}, [ev("audio", "Cat", 2, 5), ev("visual", "Cat", 0, 1)])
    assert m["seg_v"] == 0.0 and m["evt_v"] == 0.0
    # AV stays 1.0: the AV prediction is audio [2,5) AND visual [0,1) = nothing, and the AV GT is empty too.
    assert m["seg_av"] == 100.0 and m["evt_av"] == 100.0
    # Event@AV pools audio (perfect) and visual (one FP) for Cat: 2*1 / (2*1 + 1) at event level, 2*3 / (2*3 + 1)
    # at segment level; one active class.
    assert m["evt_event"] == pytest.approx(100 * 2 / 3) and m["seg_event"] == pytest.approx(100 * 6 / 7)


def test_av_is_audio_and_visual(tmp_path):
    gt = {"audio": [("Dog", 0, 6)], "visual": [("Dog", 4, 10)]}  # GT AV: Dog [4,6)
    m = score_one(tmp_path, gt, [ev("audio", "Dog", 0, 10), ev("visual", "Dog", 4, 6)])  # pred AV: [4,6)
    assert m["seg_av"] == 100.0 and m["evt_av"] == 100.0
    # A visual-only prediction cannot make an AV event.
    m = score_one(tmp_path, gt, [ev("visual", "Dog", 4, 10)])
    assert m["seg_av"] == 0.0


def test_mean_over_videos_not_micro(tmp_path):
    # Video 1 perfect (1 segment), video 2 all wrong (9 segments): video mean 50, micro would be ~10.
    videos = {"AAAAAAAAAAA_0_10": {"audio": [("Car", 0, 1)]}, "BBBBBBBBBBB_0_10": {"audio": [("Car", 1, 10)]}}
    layout.write_dataset(tmp_path / "d", {"test": videos})
    preds = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": "AAAAAAAAAAA_0_10", "prediction": {"events": [ev("audio", "Car", 0, 1)]}},
            {"id": "BBBBBBBBBBB_0_10", "prediction": {"events": [ev("audio", "Cello", 1, 10)]}},
        ],
    )
    m = score("avvp", tmp_path / "d", "test", preds).metrics
    assert m["seg_a"] == pytest.approx(50.0)


# ---- quirks of the official files ---------------------------------------------------------------------------------
def test_annotation_quirks(tmp_path):
    name, other = "KSRjje7GH44_60_70", "P7x4FV4lg_570_580"
    videos = {name: {"audio": [("Speech", 0, 8), ("Speech", 0, 8), ("Speech", 6, 9)]}}  # duplicate + overlap
    extra_audio = [
        (name, 9, 9, "Cat"),  # zero-length row (6 in the official audio file): sets nothing
        (name, 9, 0, "Dog"),  # reversed row (8DF2PxdT5tE_390_400): empty slice, sets nothing
        (other, 0, 10, "Car"),  # a filename of no split (8 in the audio file): ignored
    ]
    layout.write_dataset(tmp_path, {"test": videos}, extra_audio=extra_audio, extra_visual=[(other, 0, 1, "Car")])
    (sample,) = TASK.load(tmp_path, "test")
    assert sample.target[0, CATS.index("Speech")] == tm.interval_code(0, 9)  # union of overlapping rows
    assert sample.target[0, CATS.index("Cat")] == 0 and sample.target[0, CATS.index("Dog")] == 0
    assert not sample.target[1].any()  # absent from the visual file: empty visual GT
    assert TASK.oracle_prediction(sample) == {"events": [ev("audio", "Speech", 0, 9)]}
    assert sample.media["video"] == "LLP_dataset/video/KSRjje7GH44.mp4"


def test_split_order_and_weak_labels_not_used(tmp_path):
    layout.write_dense(tmp_path / layout.AUDIO_FILE, [("b_0_10", 0, 1, "Dog"), ("a_0_10", 0, 1, "Cat")])
    layout.write_dense(tmp_path / layout.VISUAL_FILE, [])
    layout.write_split(tmp_path, "val", [("b_0_10", ["Speech"]), ("a_0_10", ["Cat", "Dog"])])
    samples = TASK.load(tmp_path, "val")
    assert [s.id for s in samples] == ["b_0_10", "a_0_10"]
    assert samples[0].meta["weak_labels"] == ["Speech"]
    assert samples[0].target[0, CATS.index("Dog")] == 1  # GT from the dense file, not the weak labels
    with pytest.raises(Exception, match="no split"):
        TASK.load(tmp_path, "train")


@pytest.mark.parametrize(
    ("which", "content", "match"),
    [
        ("audio", "filename\tonset\toffset\tevent_labels\nx_0_10\t0\t3\tSpeak\n", "unknown event label"),
        ("audio", "filename\tonset\toffset\tevent_labels\nx_0_10\t0.5\t3\tSpeech\n", "whole seconds"),
        ("audio", "filename\tonset\toffset\tevent_labels\nx_0_10\t0\t11\tSpeech\n", "outside 0..10"),
        ("audio", "filename\tonset\toffset\tevent_labels\nx_0_10\t-1\t3\tSpeech\n", "outside 0..10"),
        ("audio", "filename\tonset\toffset\tevent_labels\nx_0_10\t0\t3\n", "fields"),
        ("audio", "filename,onset,offset,event_labels\nx_0_10,0,3,Speech\n", "tab-separated"),
        ("audio", "", "empty file"),
        ("split", "filename\tevent_labels\nx_0_10\tSpeech\nx_0_10\tSpeech\n", "duplicate filename"),
        ("split", "filename\tevent_labels\nx_0_10\tSpeech,Dogs\n", "unknown event label"),
    ],
)
def test_bad_annotations(tmp_path, which, content, match):
    layout.write_dataset(tmp_path, {"test": {"x_0_10": {"audio": [("Speech", 0, 3)]}}})
    path = tmp_path / (layout.AUDIO_FILE if which == "audio" else layout.SPLIT_FILES["test"])
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AnnotationError, match=match) as info:
        TASK.load(tmp_path, "test")
    assert info.value.path == str(path)
    if content:
        assert info.value.line is not None


def test_missing_file(tmp_path):
    layout.write_dataset(tmp_path, {"test": {"x_0_10": {}}})
    (tmp_path / layout.VISUAL_FILE).unlink()
    with pytest.raises(AnnotationError, match="not found"):
        TASK.load(tmp_path, "test")


# ---- structured predictions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"events": {}},
        {"events": [], "extra": 1},
        {"events": ["Speech"]},
        {"events": [{"modality": "audio", "label": "Speech", "onset": 0}]},
        {"events": [{**ev("audio", "Speech", 0, 1), "score": 0.9}]},
        {"events": [ev("audio-visual", "Speech", 0, 1)]},
        {"events": [ev("audio", "speech", 0, 1)]},
        {"events": [ev("audio", 3, 0, 1)]},
        {"events": [ev("audio", "Speech", 0.0, 1)]},
        {"events": [ev("audio", "Speech", True, 2)]},
        {"events": [ev("audio", "Speech", "0", 1)]},
        {"events": [ev("audio", "Speech", 3, 3)]},
        {"events": [ev("audio", "Speech", 5, 2)]},
        {"events": [ev("audio", "Speech", 0, 11)]},
        {"events": [ev("audio", "Speech", -1, 2)]},
    ],
)
def test_bad_predictions(obj):
    with pytest.raises(PredictionError):
        TASK.check_prediction(obj, None, NO_DATA, Path("."))


def test_bad_prediction_line_names_file_and_line(tmp_path):
    layout.write_dataset(tmp_path / "d", {"test": {"x_0_10": {"audio": [("Speech", 0, 3)]}}})
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "x_0_10", "prediction": {"events": [ev("audio", "Speech", 4, 2)]}}]
    )
    assert (
        cli_main(
            [
                "score",
                "--task",
                "avvp",
                "--data",
                str(tmp_path / "d"),
                "--predictions",
                str(preds),
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "r.json").exists()


def test_empty_events_is_valid_and_overlaps_union():
    codes = TASK.check_prediction({"events": []}, None, NO_DATA, Path("."))
    assert not codes.any()
    events = {"events": [ev("visual", "Car", 0, 3), ev("visual", "Car", 2, 5)]}
    codes = TASK.check_prediction(events, None, NO_DATA, Path("."))
    assert codes[1, CATS.index("Car")] == tm.interval_code(0, 5)


# ---- answer template ------------------------------------------------------------------------------------------------
def test_target_text_and_round_trip(tmp_path):
    videos = {
        "KSRjje7GH44_60_70": {
            "audio": [("Speech", 0, 8), ("Blender", 8, 10)],
            "visual": [("Chainsaw", 0, 1), ("Chainsaw", 3, 6), ("Chainsaw", 9, 10), ("Frying_(food)", 2, 4)],
        },
        "McVcuryKUp4_160_170": {"audio": [("Baby_cry_infant_cry", 5, 7)]},
    }
    layout.write_dataset(tmp_path / "d", {"test": videos})
    samples = TASK.load(tmp_path / "d", "test")
    assert TASK.target_text(samples[0]) == (
        "<audio_event>Speech,(0 8)</audio_event> <audio_event>Blender,(8 10)</audio_event> "
        "<visual_event>Chainsaw,(0 1)(3 6)(9 10)</visual_event> <visual_event>Frying_(food),(2 4)</visual_event>"
    )
    assert samples[0].instruction.startswith("Please determine the events that occur")
    assert TASK.prompt(samples[0]).startswith("This is a video:\n<video_start>")
    rows = [{"id": s.id, "text": "Reasoning first. " + TASK.target_text(s)} for s in samples]
    result = score("avvp", tmp_path / "d", "test", write_jsonl(tmp_path / "p.jsonl", rows))
    assert result.n_unparsed == 0
    assert all(v == 100.0 for v in result.metrics.values())


def test_parse_tolerance():
    parsed = TASK.parse(
        "The chainsaw runs. <Visual> chainsaw , ( 0 , 1 ) [3,6] </Visual> and <AUDIO_EVENT>frying (food),(2 4); "
        "Baby cry, infant cry,(5 7)</audio_event>",
        NO_DATA,
    )
    assert parsed == {
        "events": [
            ev("visual", "Chainsaw", 0, 1),
            ev("visual", "Chainsaw", 3, 6),
            ev("audio", "Frying_(food)", 2, 4),
            ev("audio", "Baby_cry_infant_cry", 5, 7),
        ]
    }
    assert TASK.parse("<audio_event></audio_event>", NO_DATA) == {"events": []}


@pytest.mark.parametrize(
    "text",
    [
        "Speech from 0 to 10",  # no tags
        "<audio_event>Speech,(0 10)</visual_event>",  # mismatched tags
        "<audio_event>Speaking,(0 10)</audio_event>",  # not an LLP class
        "<audio_event>Speech,(0 11)</audio_event>",  # past the clip
        "<audio_event>Speech,(3 3)</audio_event>",  # zero length: an inclusive-end reading would differ
        "<audio_event>Speech,(5 2)</audio_event>",
        "<audio_event>Speech,(0.5 2)</audio_event>",
        "<audio_event>Speech</audio_event>",  # no range
        "<audio_event>Speech,(0 2) garbage</audio_event>",
    ],
)
def test_parse_rejects(text):
    assert TASK.parse(text, NO_DATA) is None


# ---- kernels and the loop reference on random data -----------------------------------------------------------------
def test_code_helpers():
    assert tm.interval_code(0, 10) == 1023 and tm.interval_code(3, 3) == 0 and tm.interval_code(9, 0) == 0
    assert tm.code_runs(0b1011001101) == [(0, 1), (2, 4), (6, 8), (9, 10)]
    rng = np.random.default_rng(1)
    p, g = rng.integers(0, 1024, 3000), rng.integers(0, 1024, 3000)
    bits = lambda c: [(int(c) >> i) & 1 for i in range(10)]  # noqa: E731
    got_e = np.stack(tm.event_counts(p, g), axis=1)
    got_s = np.stack(tm.segment_counts(p, g), axis=1)
    for i in range(len(p)):
        assert tuple(got_e[i]) == ref_evt_counts(bits(p[i]), bits(g[i]))
        assert tuple(got_s[i]) == ref_seg_counts(bits(p[i]), bits(g[i]))


def random_video(rnd: random.Random) -> dict:
    video = {}
    labels = rnd.sample(CATS, rnd.randint(1, 3))
    for modality in ("audio", "visual"):
        rows = []
        for label in labels:
            if rnd.random() < 0.7:
                for _ in range(rnd.randint(1, 2)):
                    onset = rnd.randint(0, 9)
                    rows.append((label, onset, rnd.randint(onset + 1, 10)))
        video[modality] = rows
    return video


def random_events(rnd: random.Random, video: dict) -> list[dict]:
    events = []
    for modality in ("audio", "visual"):
        for label, onset, _ in video[modality]:
            if rnd.random() < 0.8:
                onset = min(9, max(0, onset + rnd.randint(-2, 2)))
                events.append(ev(modality, label, onset, rnd.randint(onset + 1, 10)))
        if rnd.random() < 0.3:
            onset = rnd.randint(0, 9)
            events.append(ev(modality, rnd.choice(CATS), onset, rnd.randint(onset + 1, 10)))
    return events


def test_random_against_loop_reference_end_to_end(tmp_path):
    rnd = random.Random(7)
    videos = {f"{i:011d}_0_10": random_video(rnd) for i in range(300)}
    videos["00000000300_0_10"] = {"audio": [], "visual": []}  # nothing anywhere
    layout.write_dataset(tmp_path / "d", {"test": videos})
    rows_a = [(n, on, off, lab) for n, v in videos.items() for lab, on, off in v["audio"]]
    rows_v = [(n, on, off, lab) for n, v in videos.items() for lab, on, off in v["visual"]]
    pred_rows, ref_inputs = [], []
    for i, name in enumerate(videos):
        events = random_events(rnd, videos[name]) if i % 10 else []
        if i % 10 == 5:
            ref_inputs.append((*ref_pred_matrices([]), *ref_matrices(rows_a, rows_v, name)))
            continue  # missing line: scored as an empty prediction
        pred_rows.append({"id": name, "prediction": {"events": events}})
        ref_inputs.append((*ref_pred_matrices(events), *ref_matrices(rows_a, rows_v, name)))
    preds = write_jsonl(tmp_path / "p.jsonl", pred_rows)
    result = score("avvp", tmp_path / "d", "test", preds)
    expected = ref_metrics(ref_inputs)
    assert result.n_missing == 30
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value, abs=1e-9), key
    # aggregate() from the per-sample stats alone gives the same numbers (the bootstrap path).
    again = TASK.aggregate([{k: row[k] for k in row if k.startswith(("seg_", "evt_"))} for row in result.samples])
    assert again == result.metrics
    json.dumps(result.samples)  # per-sample stats are JSON-serialisable

    out = tmp_path / "r.json"
    code = cli_main(
        [
            "score",
            "--task",
            "avvp",
            "--data",
            str(tmp_path / "d"),
            "--split",
            "test",
            "--predictions",
            str(preds),
            "--output",
            str(out),
        ]
    )
    assert code == 0
    assert json.loads(out.read_text())["metrics"]["seg_event"] == pytest.approx(expected["seg_event"], abs=1e-9)


def test_unparsed_text_scores_as_empty(tmp_path):
    layout.write_dataset(tmp_path / "d", {"test": {"x_0_10": {"audio": [("Dog", 0, 2)]}}})
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "x_0_10", "text": "a dog barks"}])
    result = score("avvp", tmp_path / "d", "test", preds)
    assert result.n_unparsed == 1
    # Empty prediction: audio class Dog active -> 0; no visual anywhere -> 1.0; no AV anywhere -> 1.0.
    assert result.metrics["seg_a"] == 0.0 and result.metrics["seg_v"] == 100.0 and result.metrics["seg_av"] == 100.0
    assert result.metrics["seg_type"] == pytest.approx(200 / 3)


def test_benchmark_case_builds(tmp_path):
    path = Path(__file__).parents[1] / "benchmarks" / "scoring_cases" / "avvp.py"
    spec = importlib.util.spec_from_file_location("avvp_scoring_case", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ((task_id, data_dir, split, preds),) = module.build(tmp_path, seed=0)
    assert task_id == "avvp" and split == "test"
    assert len(TASK.load(data_dir, split)) == 1200
    start = time.perf_counter()
    result = score(task_id, data_dir, split, preds)
    assert time.perf_counter() - start < 5  # the benchmark target is < 1 s; generous here for slow CI machines
    assert result.n_samples == 1200 and result.n_unparsed > 0 and result.n_missing > 0
    assert 0 < result.metrics["seg_event"] < 100
