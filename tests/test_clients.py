"""Client outputs -> predictions: files in each tool's exact format (crab_eval/layouts/clients.py, written from the
tools' code: key order, ``", "``/``": "`` separators, ``<s> ... </s></s>`` padding, interleaved ranks, appended
reruns), converted and scored, against a hand-made conversion: the contract file a careful person writes, ids
worked out by hand in the comments, scored by the same scorer. Absolute numbers are worked by hand where short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crab_eval.cli import main
from crab_eval.clients import ClientError, convert, write_predictions
from crab_eval.layouts import clients as fmt
from crab_eval.layouts.ave import write_dataset as write_ave
from crab_eval.layouts.avvp import write_dataset as write_avvp
from crab_eval.layouts.music_avqa import make_entry as mavqa_entry
from crab_eval.layouts.music_avqa import write_split as write_mavqa
from crab_eval.scoring import score


def write_contract(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def converted_score(tmp_path: Path, task: str, data: Path, source: str, inputs: list, **kw) -> tuple:
    conversion = convert(source, task, data, inputs, **kw)
    out = tmp_path / f"converted_{task}.jsonl"
    write_predictions(conversion.rows, out)
    return score(task, data, conversion.report.split, out), conversion


def hand_score(tmp_path: Path, task: str, data: Path, split: str, rows: list[dict]):
    return score(task, data, split, write_contract(tmp_path / f"hand_{task}.jsonl", rows))


# ---- AVE ----------------------------------------------------------------------------------------------------------
AVE_ROWS = [("Church bell", "vidA", 0, 10), ("Bark", "vidB", 2, 5), ("Flute", "vidA", 3, 7)]  # vidA twice


def _ave_data(tmp_path: Path) -> Path:
    data = tmp_path / "AVE_Dataset"
    write_ave(data, {"test": AVE_ROWS}, annotations=False)
    return data


def _ave_answer(event: str, start: int, end: int) -> str:
    return f"The audible and visible event is <event> {event} </event>, the range is <range> {start},{end} </range>."


def _crab_ave_lines() -> list[dict]:
    # Crab's test json order is not the split file's: vidA's Flute row first. Batch of 8: shorter rows padded.
    return [
        fmt.crab_ave("vidA", "Flute", 3, 7, fmt.crab_decoded(_ave_answer("Flute", 3, 7), pad=2)),
        fmt.crab_ave("vidB", "Bark", 2, 5, fmt.crab_decoded(_ave_answer("Bark", 2, 4), pad=1)),
        fmt.crab_ave("vidA", "Church bell", 0, 10, fmt.crab_decoded(_ave_answer("Church bell", 0, 10))),
    ]


def test_crab_ave_repeated_video_ids_by_gold_not_order(tmp_path: Path) -> None:
    data = _ave_data(tmp_path)
    run = fmt.append_jsonlines(tmp_path / "run" / "inference_ave" / "infer_results.jsonl", _crab_ave_lines())
    first = run.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith('{"instruction": "<s>[INST] <<SYS>>\\nYou are a helpful assistant.')  # jsonlines' format
    assert '"output": "event:Flute start_time:3 end_time:7</s>", "video_path": ' in first
    result, conversion = converted_score(tmp_path, "ave", data, "crab", [run])
    # By hand: split ids vidA (Church bell 0-10), vidB, vidA#2 (Flute 3-7); each line's gold names its row.
    hand = hand_score(
        tmp_path,
        "ave",
        data,
        "test",
        [
            {"id": "vidA", "text": _crab_ave_lines()[2]["predict"]},
            {"id": "vidB", "text": _crab_ave_lines()[1]["predict"]},
            {"id": "vidA#2", "text": _crab_ave_lines()[0]["predict"]},
        ],
    )
    assert result.metrics == hand.metrics
    # vidA 10/10, vidA#2 10/10, vidB predicted 2-4 for gold 2-5: segment 4 wrong -> 29/30.
    assert result.metrics["accuracy"] == pytest.approx(100 * 29 / 30)
    assert conversion.report.matched == 3 and conversion.report.missing == 0 and conversion.report.duplicates == 0
    # Assigning "#2" by line order would have swapped vidA's two answers: 0/10 each, 9/30 in all.


def test_crab_rerun_pooled_and_foreign_lines_are_accounted_for(tmp_path: Path) -> None:
    data = _ave_data(tmp_path)
    pooled = [
        *_crab_ave_lines(),
        fmt.crab_music_avqa(7, "00000001", ["Audio", "Counting"], "How many?", "two", fmt.crab_decoded("two")),
        fmt.crab_avvp("AAAAAAAAAAA", "Speech", "<audio_event>Speech,(0 10)</audio_event>"),
        fmt.crab_ave("vidZ", "Bark", 0, 1, fmt.crab_decoded(_ave_answer("Bark", 0, 1))),  # not in the split
        {"image_path": "x.jpg", "gt_path": "g.png", "pred_path": "p.png", "output": "o", "iou": 0.5, "fscore": 0.4},
    ]
    path = tmp_path / "infer_results.jsonl"
    fmt.append_jsonlines(path, pooled)
    fmt.append_jsonlines(path, pooled)  # the run again, appended
    result, conversion = converted_score(tmp_path, "ave", data, "crab", [path])
    report = conversion.report
    assert report.lines_read == 14
    assert (report.other_task, report.unrecognised, report.outside_split, report.duplicates) == (4, 2, 2, 3)
    assert report.matched == 3 and result.metrics["accuracy"] == pytest.approx(100 * 29 / 30)


def test_crab_rerun_with_another_answer_is_an_error_unless_told(tmp_path: Path) -> None:
    data = _ave_data(tmp_path)
    path = fmt.append_jsonlines(tmp_path / "infer_results.jsonl", _crab_ave_lines())
    other = fmt.crab_ave("vidB", "Bark", 2, 5, fmt.crab_decoded(_ave_answer("Bark", 2, 5)))
    fmt.append_jsonlines(path, [other])
    with pytest.raises(ClientError, match=r"infer_results.jsonl:4: a different answer for the sample of line 2"):
        convert("crab", "ave", data, [path])
    last, conversion = converted_score(tmp_path, "ave", data, "crab", [path], on_conflict="last")
    assert last.metrics["accuracy"] == 100.0 and conversion.report.conflicts_resolved == 1
    first, _ = converted_score(tmp_path, "ave", data, "crab", [path], on_conflict="first")
    assert first.metrics["accuracy"] == pytest.approx(100 * 29 / 30)


def test_crab_missing_sample_stays_missing(tmp_path: Path) -> None:
    data = _ave_data(tmp_path)
    path = fmt.append_jsonlines(tmp_path / "infer_results.jsonl", _crab_ave_lines()[:2])
    result, conversion = converted_score(tmp_path, "ave", data, "crab", [path])
    assert conversion.report.missing_ids == ["vidA"] and result.n_missing == 1
    assert result.metrics["accuracy"] == pytest.approx(100 * 19 / 30)  # vidA scores 0 of 10


# ---- AVVP, MUSIC-AVQA, ARIG, AVCAP from Crab ---------------------------------------------------------------------
def test_crab_avvp_ids_from_the_youtube_id(tmp_path: Path) -> None:
    data = tmp_path / "LLP"
    # YouTube ids may start with '-' and hold '_': the split's filename is {id}_{start}_{end}.
    videos = {
        "-_x_1AbC2dE_30_40": {"audio": [("Speech", 0, 4)], "visual": [("Dog", 2, 8)]},
        "BBBBBBBBBBB_10_20": {"audio": [("Cello", 0, 10)]},
    }
    write_avvp(data, {"test": videos})
    # AVVP is decoded with skip_special_tokens=True: no <s>, no padding.
    lines = [
        fmt.crab_avvp("BBBBBBBBBBB", "Cello", "<audio_event>Cello,(0 10)</audio_event>"),
        fmt.crab_avvp(
            "-_x_1AbC2dE",
            "Speech,Dog",
            "<audio_event>Speech,(0 3)</audio_event> <visual_event>Dog,(2 8)</visual_event>",
        ),
    ]
    path = fmt.append_jsonlines(tmp_path / "infer_results.jsonl", lines)
    result, _ = converted_score(tmp_path, "avvp", data, "crab", [path])
    hand = hand_score(
        tmp_path,
        "avvp",
        data,
        "test",
        [
            {"id": "-_x_1AbC2dE_30_40", "text": lines[1]["predict"]},
            {"id": "BBBBBBBBBBB_10_20", "text": lines[0]["predict"]},
        ],
    )
    assert result.metrics == hand.metrics and result.n_missing == 0


def _mavqa_data(tmp_path: Path) -> Path:
    data = tmp_path / "json_update"
    write_mavqa(
        data,
        "test",
        [
            mavqa_entry("00000001", 10, ("Audio", "Counting"), "How many instruments are sounding?", "two"),
            mavqa_entry("00000002", 11, ("Audio-Visual", "Existential"), "Is the <Object> playing?", "yes", ["piano"]),
            mavqa_entry("00000003", 12, ("Visual", "Location"), "Where is the <Object>?", "left", ["piano"]),
        ],
    )
    return data


def test_crab_music_avqa(tmp_path: Path) -> None:
    data = _mavqa_data(tmp_path)
    lines = [
        fmt.crab_music_avqa(
            10,
            "00000001",
            "['Audio', 'Counting']",
            "How many instruments are sounding?",
            "two",
            fmt.crab_decoded("So the answer is <answer> two </answer>.", pad=3),
        ),
        fmt.crab_music_avqa(
            11,
            "00000002",
            "['Audio-Visual', 'Existential']",
            "Is the piano playing?",
            "yes",
            fmt.crab_decoded("<answer> no </answer>."),
        ),
        fmt.crab_music_avqa(
            12,
            "00000003",
            "['Visual', 'Location']",
            "Where is the piano?",
            "left",
            fmt.crab_decoded("<answer> left", eos=False),
        ),  # cut by max_new_tokens: unparsed
    ]
    path = fmt.append_jsonlines(tmp_path / "infer_results.jsonl", lines)
    result, _ = converted_score(tmp_path, "music_avqa", data, "crab", [path])
    assert result.metrics["overall"] == pytest.approx(100 / 3)  # only question 10 right
    assert (result.n_unparsed, result.n_missing) == (1, 0)


def test_crab_arig_frame_annotated_twice(tmp_path: Path) -> None:
    from crab_eval.layouts.localization import arig_record, write_arig

    data = tmp_path / "AVS"
    frame = "/group/40061/cserdu/data/AVS/v1s/clipA_1/frames/0.jpg"
    records = [
        arig_record(frame, "dog", [10, 20], [110, 120]),
        arig_record(frame, "man", [120, 10], [200, 200]),  # the same frame, a second object: id frame#2
        arig_record("/group/40061/cserdu/data/AVS/v1s/clipB_2/frames/3.jpg", "guitar", [0, 0], [224, 224]),
    ]
    write_arig(data, records, split="test", crab=True)
    answer = "The sounding object is {}. Its coordinates are <obj>({},{})({},{})</obj>."
    lines = [  # the second object's line first: told apart by its gold corners, not its order
        fmt.crab_arig(
            frame, "man", (120, 10, 200, 200), "a.wav", fmt.crab_decoded(answer.format("man", 120, 10, 200, 200))
        ),
        fmt.crab_arig(
            frame, "dog", (10, 20, 110, 120), "a.wav", fmt.crab_decoded(answer.format("dog", 0, 0, 100, 100))
        ),
        fmt.crab_arig(records[2]["visual_path"], "guitar", (0, 0, 224, 224), "b.wav", "<s> [0,0,224,224]</s>"),
    ]
    path = fmt.append_jsonlines(tmp_path / "infer_results.jsonl", lines)
    result, _ = converted_score(tmp_path, "arig", data, "crab", [path])
    hand = hand_score(
        tmp_path,
        "arig",
        data,
        "test",
        [
            {"id": frame, "text": lines[1]["predict"]},
            {"id": frame + "#2", "text": lines[0]["predict"]},
            {"id": records[2]["visual_path"], "text": lines[2]["predict"]},
        ],
    )
    assert result.metrics == hand.metrics and result.n_unparsed == hand.n_unparsed == 1  # the box needs flexible


def test_crab_avcap_padding(tmp_path: Path) -> None:
    from crab_eval.layouts.avcap import make_entry, write_split

    data = tmp_path / "valor"
    write_split(data, "test", [make_entry("v1", "A man plays the guitar."), make_entry("v2", "Two dogs bark.")])
    lines = [
        fmt.crab_avcap("v2", "Two dogs bark.", fmt.crab_decoded("Two dogs bark loudly.", pad=4)),
        fmt.crab_avcap(
            "v1", "A man plays the guitar.", fmt.crab_decoded("A man plays a guitar.", pad_token="<unk>", pad=2)
        ),
    ]
    path = fmt.append_jsonlines(tmp_path / "inference_results_val.jsonl", lines)
    result, _ = converted_score(tmp_path, "avcap", data, "crab", [path])
    hand = hand_score(
        tmp_path,
        "avcap",
        data,
        "test",
        [
            {"id": "v1", "text": "A man plays a guitar."},
            {"id": "v2", "text": "Two dogs bark loudly."},
        ],
    )
    assert result.metrics == hand.metrics


def test_crab_run_folder_one_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _ave_data(tmp_path)
    run = tmp_path / "ckpt"
    fmt.append_jsonlines(run / "inference_ave" / "infer_results.jsonl", _crab_ave_lines())
    out = tmp_path / "results" / "ave.json"
    assert main(["score", "--from", "crab", "--task", "ave", "--data", str(data), str(run), "--output", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["metrics"]["accuracy"] == pytest.approx(100 * 29 / 30)
    assert written["provenance"]["client"]["from"] == "crab" and written["provenance"]["client"]["matched"] == 3
    assert written["provenance"]["predictions_file"].endswith("ave.predictions.jsonl")
    assert (out.parent / "ave.predictions.jsonl").is_file()
    printed = capsys.readouterr().out
    assert "matched 3 of the split's samples; 0 left missing" in printed


# ---- Crab+ --------------------------------------------------------------------------------------------------------
def _plus_ave(event: str, start: int, end: int, predict: str) -> dict:
    return fmt.crab_plus({"task_name": "ave", "output": f"event:{event} start_time:{start} end_time:{end}"}, predict)


def test_crab_plus_ave_interleaved_ranks_matched_by_gold(tmp_path: Path) -> None:
    data = tmp_path / "AVE_Dataset"
    rows = [("Bark", f"v{i}", 2, 5) for i in range(3)] + [("Flute", "v3", 0, 10), ("Banjo", "v4", 1, 9)]
    write_ave(data, {"test": rows}, annotations=False)
    answers = [("Bark", 2, 5), ("Bark", 2, 4), ("Flute", 0, 10), ("Flute", 0, 10), ("Bark", 1, 9)]
    lines = [
        _plus_ave(event, start, end, _ave_answer(*a)) for (event, _, start, end), a in zip(rows, answers, strict=True)
    ]
    lines.append(fmt.crab_plus({"task_name": "meld", "output": "<answer>joy</answer>."}, "<answer>joy</answer>."))
    merged = fmt.interleave_ranks(lines, ranks=2, batch=2, schedule=[1, 0, 1, 0])
    # rank 0 holds lines 0, 2, 4, rank 1 lines 1, 3, 5; rank 1's first batch landed first.
    assert merged == [lines[i] for i in (1, 3, 0, 2, 5, 4)]
    path = fmt.append_jsonlines(tmp_path / "inference_results" / "inference_ave.jsonl", merged)
    result, conversion = converted_score(tmp_path, "ave", data, "crab-plus", [tmp_path])
    # By hand: the three Bark 2-5 clips got answers 2-5, 2-4 and Flute 0-10 (10 + 9 + 0 segments right, whatever
    # clip each went to), v3 Flute 0-10 (10), v4 Banjo 1-9 answered Bark 1-9 (2 background segments right).
    assert result.metrics["accuracy"] == pytest.approx(100 * 31 / 50)
    assert conversion.report.other_task == 1 and conversion.report.assigned_among_equal_gold == 3
    assert not conversion.report.by_position
    assert path.is_file()


def test_crab_plus_one_rank_in_order_is_matched_by_position(tmp_path: Path) -> None:
    data = tmp_path / "AVE_Dataset"
    rows = [("Bark", "v0", 2, 5), ("Bark", "v1", 2, 5)]
    write_ave(data, {"test": rows}, annotations=False)
    lines = [_plus_ave("Bark", 2, 5, _ave_answer("Bark", 2, 5)), _plus_ave("Bark", 2, 5, _ave_answer("Bark", 0, 1))]
    path = fmt.append_jsonlines(tmp_path / "inference_ave.jsonl", lines)
    fmt.append_jsonlines(path, lines)  # a rerun
    result, conversion = converted_score(tmp_path, "ave", data, "crab-plus", [path])
    assert conversion.report.by_position and conversion.report.duplicates == 2
    assert [r["id"] for r in conversion.rows] == ["v0", "v1"] and conversion.rows[1]["text"] == lines[1]["predict"]
    # v1 answered Bark 0-1 for Bark 2-5: segment 0 and 2-4 wrong, 1 and 5-9 right: 6 of 10.
    assert result.metrics["accuracy"] == pytest.approx(100 * (10 + 6) / 20)


def test_crab_plus_music_avqa_and_avqa(tmp_path: Path) -> None:
    data = _mavqa_data(tmp_path)
    meta = [
        ("00000001", 10, "['Audio', 'Counting']", "two"),
        ("00000002", 11, "x", "yes"),
        ("00000003", 12, "y", "left"),
    ]
    predicts = ["<answer>two</answer>", "no", "The answer is <answer>left</answer>."]
    lines = [
        fmt.crab_plus({"vid": v, "qid": q, "type": t, "task_name": "avqa", "output": a}, p)
        for (v, q, t, a), p in zip(meta, predicts, strict=True)
    ]
    path = fmt.append_jsonlines(tmp_path / "inference_avqa.jsonl", fmt.interleave_ranks(lines, 2, 1, [1, 0, 1]))
    result, _ = converted_score(tmp_path, "music_avqa", data, "crab-plus", [path])
    hand = hand_score(
        tmp_path,
        "music_avqa",
        data,
        "test",
        [
            {"id": "10", "text": predicts[0]},
            {"id": "11", "text": predicts[1]},
            {"id": "12", "text": predicts[2]},
        ],
    )
    assert result.metrics == hand.metrics and result.metrics["overall"] == pytest.approx(200 / 3)

    from crab_eval.layouts.avqa import make_entry, write_split

    avqa = tmp_path / "avqa"
    entries = [
        make_entry(1, "v1", "What barks?", ["dog", "cat", "cow", "bird"], 0, "Which"),
        make_entry(2, "v2", "What meows?", ["dog", "cat", "cow", "bird"], 1, "Which"),
    ]
    write_split(avqa, "test", entries)
    lines = [
        fmt.crab_plus(
            {
                "vid": e["video_id"],
                "instruction": "Please answer the question based on the options: "
                f"{e['question_text']}, options:{e['multi_choice']}",
                "name": e["video_name"],
                "task_name": "avqa_thu",
                "type": e["question_type"],
                "relation": "",
                "output": e["answer"],
            },
            p,
        )
        for e, p in zip(reversed(entries), ["<answer>cat</answer>", "<answer>cow</answer>"], strict=True)
    ]
    path = fmt.append_jsonlines(tmp_path / "inference_avqa_thu.jsonl", lines)
    result, conversion = converted_score(tmp_path, "avqa", avqa, "crab-plus", [path], split="test")
    assert [r["id"] for r in conversion.rows] == ["1", "2"] and result.metrics["accuracy"] == 50.0


def test_crab_plus_classification_and_ucf(tmp_path: Path) -> None:
    from crab_eval.layouts.classification import make_entry, write_split

    meld = tmp_path / "meld"
    labels = ["joy", "anger", "joy", "neutral"]
    write_split(meld, "test", [make_entry("meld", lab, [f"c{i}"]) for i, lab in enumerate(labels)])
    answers = ["<answer>joy</answer>.", "<answer>joy</answer>.", "<answer>anger</answer>.", "<answer>neutral</answer>."]
    lines = [
        fmt.crab_plus({"task_name": "meld", "output": f"<answer>{lab}</answer>."}, a)
        for lab, a in zip(labels, answers, strict=True)
    ]
    path = fmt.append_jsonlines(tmp_path / "inference_meld.jsonl", fmt.interleave_ranks(lines, 2, 1, [1, 1, 0]))
    result, conversion = converted_score(tmp_path, "meld", meld, "crab-plus", [path])
    # By hand: joy clips answered joy, anger (either way round), anger answered joy, neutral neutral: 2 of 4 right.
    assert result.metrics["accuracy"] == 50.0 and conversion.report.assigned_among_equal_gold == 2

    ucf = tmp_path / "ucf"
    write_split(ucf, "test", [make_entry("ucf", "ApplyEyeMakeup", ["u0"]), make_entry("ucf", "Archery", ["u1"])])
    entries = json.loads((ucf / "test.json").read_text())
    lines = [
        fmt.crab_plus(
            {
                "task_name": "ucf",
                "audio_path": fmt.plus_media("/root/Crab_Plus", "ucf", "audio", e["audio_path"]),
                "video_path": fmt.plus_media("/root/Crab_Plus", "ucf", "video", e["video_path"]),
                "output": f"<answer>{e['label'].lower()}</answer>",
            },
            p,
        )
        for e, p in zip(reversed(entries), ["<answer>archery</answer>", "<answer>archery</answer>"], strict=True)
    ]
    path = fmt.append_jsonlines(tmp_path / "inference_ucf.jsonl", lines)
    result, conversion = converted_score(tmp_path, "ucf", ucf, "crab-plus", [path])
    assert [r["text"] for r in conversion.rows] == ["<answer>archery</answer>"] * 2  # ids from the media paths
    assert result.metrics["accuracy"] == 50.0 and conversion.report.assigned_among_equal_gold == 0


def test_crab_plus_avvp_needs_by_position(tmp_path: Path) -> None:
    data = tmp_path / "LLP"
    write_avvp(data, {"test": {"AAAAAAAAAAA_0_10": {"audio": [("Speech", 0, 4)]}, "BBBBBBBBBBB_0_10": {}}})
    lines = [
        fmt.crab_plus({"task_name": "avvp", "output": "Speech"}, "<audio_event>Speech,(0 4)</audio_event>"),
        fmt.crab_plus({"task_name": "avvp", "output": "Speech"}, "<audio_event>Dog,(0 4)</audio_event>"),
    ]
    path = fmt.append_jsonlines(tmp_path / "inference_avvp.jsonl", lines)
    with pytest.raises(ClientError, match="carries no id and no gold"):
        convert("crab-plus", "avvp", data, [path])
    result, conversion = converted_score(tmp_path, "avvp", data, "crab-plus", [path], by_position=True)
    hand = hand_score(
        tmp_path,
        "avvp",
        data,
        "test",
        [
            {"id": "AAAAAAAAAAA_0_10", "text": lines[0]["predict"]},
            {"id": "BBBBBBBBBBB_0_10", "text": lines[1]["predict"]},
        ],
    )
    assert result.metrics == hand.metrics and conversion.report.by_position
    fmt.append_jsonlines(path, lines)
    with pytest.raises(ClientError, match="4 lines of the task, 2 samples"):
        convert("crab-plus", "avvp", data, [path], by_position=True)


@pytest.mark.parametrize(
    ("source", "task", "reason"),
    [
        ("crab-plus", "ms3", "Crab\\+ saves no masks"),
        ("crab-plus", "s4", "Crab\\+ saves no masks"),
        ("crab-plus", "ref_avs", "Crab\\+ saves no masks"),
        ("crab-plus", "unav", "no UnAV test loader"),
        ("crab", "ref_avs", "overwrites the others"),
        ("crab", "unav", "writes no output crab-eval can read"),
    ],
)
def test_outputs_that_cannot_be_imported_say_why(tmp_path: Path, source: str, task: str, reason: str) -> None:
    from fixture_builders import build_split

    from crab_eval.registry import get_task

    data, split = build_split(get_task(task), tmp_path / "data")
    path = fmt.append_jsonlines(tmp_path / "x.jsonl", [{"task_name": task, "output": "o", "predict": "p"}])
    with pytest.raises(ClientError, match=reason):
        convert(source, task, data, [path], split=split)


# ---- lmms-eval and generic JSON Lines -----------------------------------------------------------------------------
def test_lmms_eval_doc_id_positions_id_map_and_old_logs(tmp_path: Path) -> None:
    data = _mavqa_data(tmp_path)
    texts = ["two", "<answer> yes </answer>", "left"]
    # Two ranks: rank 0 gathered first (docs 0, 2), then rank 1 (doc 1); v0.7 flattens filtered_resps to a string.
    path = tmp_path / "20250101_samples_music_avqa.jsonl"
    path.write_text(
        fmt.lmms_eval_line(0, "two", texts[0])
        + fmt.lmms_eval_line(2, "left", texts[2], version="0.7")
        + fmt.lmms_eval_line(1, "yes", texts[1]),
        encoding="utf-8",
    )
    result, conversion = converted_score(tmp_path, "music_avqa", data, "lmms-eval", [path])
    assert [r["id"] for r in conversion.rows] == ["10", "11", "12"]
    assert [r["text"] for r in conversion.rows] == texts
    assert result.metrics["overall"] == pytest.approx(100 / 3)  # strict: only the tagged "yes" is read
    # The id map: the user's lmms task lists the questions in another order.
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps(["12", "11", "10"]))
    _, mapped = converted_score(tmp_path, "music_avqa", data, "lmms-eval", [path], id_map=ids)
    assert {r["id"]: r["text"] for r in mapped.rows} == {"12": "two", "11": texts[1], "10": "left"}
    # lmms-eval <= 0.2.2: one JSON object with the logs.
    old = tmp_path / "music_avqa.json"
    logs = [json.loads(line) for line in path.read_text().splitlines()]
    old.write_text(json.dumps({"args": {}, "model_configs": {}, "logs": logs, "time": "x"}, indent=4))
    _, again = converted_score(tmp_path, "music_avqa", data, "lmms-eval", [old])
    assert again.rows == conversion.rows


def test_lmms_eval_targets_warn_when_positions_are_not_the_splits_order(tmp_path: Path) -> None:
    data = _mavqa_data(tmp_path)  # questions 10, 11, 12 with golds two, yes, left
    # The user's YAML lists the questions in reverse: doc 0 is question 12 (target "left"), doc 2 is question 10.
    path = tmp_path / "20250101_samples_music_avqa.jsonl"
    reverse = [(0, "left", "<answer> left </answer>"), (1, "yes", "<answer> yes </answer>"), (2, "two", "two")]
    path.write_text("".join(fmt.lmms_eval_line(*line) for line in reverse), encoding="utf-8")
    by_position = convert("lmms-eval", "music_avqa", data, [path])
    # By position doc 0 lands on question 10 (gold two, target left) and doc 2 on 12 (gold left, target two).
    assert (by_position.report.gold_mismatch, by_position.report.position_gold_mismatch) == (2, 2)
    assert any("warning: 2 lines named by position" in line for line in by_position.report.lines())
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps(["12", "11", "10"]))
    mapped = convert("lmms-eval", "music_avqa", data, [path], id_map=ids)
    assert (mapped.report.gold_mismatch, mapped.report.position_gold_mismatch) == (0, 0)
    assert {r["id"]: r["text"] for r in mapped.rows} == {"12": reverse[0][2], "11": reverse[1][2], "10": "two"}
    assert not any("warning" in line for line in mapped.report.lines())


def test_lmms_eval_reads_a_plain_label_target_as_the_gold(tmp_path: Path) -> None:
    from fixture_builders import build_split

    from crab_eval.clients import golds
    from crab_eval.registry import get_task
    from crab_eval.scoring import load_split

    data, split = build_split(get_task("ks"), tmp_path / "data")
    loaded = load_split(get_task("ks"), data, split)
    sample = loaded.samples[0]
    assert golds.plain_label_line(f"{sample.target}</s>", loaded) == sample.target
    assert golds.plain_label_line("<answer> x </answer>", loaded) != sample.target  # a tag is not a plain label
    assert golds.plain_label_line("", loaded) is None


def test_jsonl_dotted_fields_and_duplicates(tmp_path: Path) -> None:
    data = _mavqa_data(tmp_path)
    rows = [
        {"meta": {"qid": 10}, "out": {"text": "<answer> two </answer>"}},
        {"meta": {"qid": 10}, "out": {"text": "<answer> two </answer>"}},
        {"meta": {"qid": 99}, "out": {"text": "x"}},
    ]
    path = write_contract(tmp_path / "any.jsonl", rows)
    result, conversion = converted_score(
        tmp_path, "music_avqa", data, "jsonl", [path], id_field="meta.qid", text_field="out.text"
    )
    report = conversion.report
    assert (report.matched, report.duplicates, report.outside_split, report.missing) == (1, 1, 1, 2)
    assert result.metrics["overall"] == pytest.approx(100 / 3)


def test_convert_cli_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _ave_data(tmp_path)
    path = fmt.append_jsonlines(tmp_path / "infer_results.jsonl", _crab_ave_lines())
    out = tmp_path / "preds.jsonl"
    argv = ["convert", "--from", "crab", "--task", "ave", "--data", str(data), str(path), "--out", str(out)]
    assert main(argv) == 0
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["vidA", "vidB", "vidA#2"]
    printed = capsys.readouterr().out
    for phrase in (
        "3 lines read",
        "duplicates dropped (identical reruns): 0",
        "lines of other tasks skipped: 0",
        "lines outside the split skipped: 0",
        "wrote",
    ):
        assert phrase in printed
    fmt.append_jsonlines(path, [fmt.crab_ave("vidB", "Bark", 2, 5, "<s> other</s>")])
    out.unlink()
    assert main(argv) == 2 and not out.exists()  # an error: nothing written
    assert "a different answer" in capsys.readouterr().err
    assert (
        main(["convert", "--from", "lmms-eval", "--task", "ave", "--data", str(data), str(path), "--out", str(out)])
        == 2
    )


def test_crab_plus_lines_of_labels_outside_the_split(tmp_path: Path) -> None:
    from crab_eval.layouts.classification import make_entry, write_split

    data = tmp_path / "meld"
    write_split(data, "test", [make_entry("meld", "joy", ["c0"]), make_entry("meld", "anger", ["c1"])])
    lines = [
        fmt.crab_plus({"task_name": "meld", "output": f"<answer>{lab}</answer>."}, f"<answer>{lab}</answer>.")
        for lab in ("joy", "surprise", "anger")
    ]
    conversion = convert("crab-plus", "meld", data, [fmt.append_jsonlines(tmp_path / "m.jsonl", lines)])
    assert conversion.report.outside_split == 1 and conversion.report.by_position is False
    texts = {r["id"]: r["text"] for r in conversion.rows}
    assert texts == {"c0.mp4|c0.wav": "<answer>joy</answer>.", "c1.mp4|c1.wav": "<answer>anger</answer>."}
    malformed = fmt.append_jsonlines(tmp_path / "bad.jsonl", [fmt.crab_plus({"task_name": "meld", "output": "?"}, "x")])
    with pytest.raises(ClientError, match=r"bad\.jsonl:1: the line carries no id and no gold"):
        convert("crab-plus", "meld", data, [malformed])


def test_replay_model_reads_a_crab_run_folder_through_the_converter(tmp_path: Path) -> None:
    # `crab-eval evaluate --model replay --model-args path=RUN,format=crab` scores a Crab run as a model.
    from crab_eval.api import evaluate

    root = tmp_path / "root"
    write_ave(root / "ave", {"test": AVE_ROWS}, annotations=False)
    run = fmt.append_jsonlines(tmp_path / "run" / "inference_ave" / "infer_results.jsonl", _crab_ave_lines())
    out = evaluate("replay", "ave", root, tmp_path / "out", model_args={"path": str(run.parent.parent),
                   "format": "crab"}, progress=False)  # fmt: skip
    # The same 29/30 as the conversion by hand in test_crab_ave_repeated_video_ids_by_gold_not_order.
    assert out.results[("ave", "test")].metrics["accuracy"] == pytest.approx(100 * 29 / 30)
