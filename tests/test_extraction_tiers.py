"""The two answer-extraction tiers: ``strict`` (Crab's templates, the default) and ``flexible`` (free-form answers).

Every expected structure below is written by hand from the text (what a reader takes the answer to be); scores are
worked by hand in the comments. The free-text helpers are checked on hand-made strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crab_eval.errors import CrabEvalError
from crab_eval.layouts.ave import write_dataset as write_ave
from crab_eval.layouts.avqa import make_entry as avqa_entry
from crab_eval.layouts.avqa import write_split as write_avqa
from crab_eval.layouts.avvp import write_dataset as write_avvp
from crab_eval.layouts.classification import make_entry as cls_entry
from crab_eval.layouts.classification import write_split as write_cls
from crab_eval.layouts.localization import arig_record, write_arig
from crab_eval.layouts.music_avqa import make_entry as mavqa_entry
from crab_eval.layouts.music_avqa import write_split as write_mavqa
from crab_eval.layouts.unav import Video as UnavVideo
from crab_eval.layouts.unav import write_annotations as write_unav
from crab_eval.pairing import align_runs
from crab_eval.readers import free_text as ft
from crab_eval.registry import get_task
from crab_eval.scoring import load_split, score
from crab_eval.tasks import BUILTIN
from crab_eval.tasks.base import EXTRACT_TIERS


# ---- helpers -------------------------------------------------------------------------------------------------
def test_strip_special_tokens() -> None:
    assert ft.strip_special_tokens("<s> A dog barks.</s></s></s>") == "A dog barks."
    assert ft.strip_special_tokens("A dog barks.</s><unk><unk> \n") == "A dog barks."
    assert ft.strip_special_tokens("A cat.<|im_end|><|endoftext|>") == "A cat."
    assert ft.strip_special_tokens("A <s> inside stays</s>") == "A <s> inside stays"
    assert ft.strip_special_tokens("</s></s>") == ""


def test_ranges_boxes_letters() -> None:
    spans = [(r.start, r.end) for r in ft.find_ranges("[0,8] (3 5) from 2 to 4 s start_time:9 end_time:10 1-6")]
    assert spans == [(0, 8), (3, 5), (2, 4), (9, 10), (1, 6)]
    assert ft.find_ranges("a Frying (food) sound") == []
    assert ft.find_boxes("[30,40,150,200]; (1,2)(3,4); (5, 6), (7, 8); point [9,9]") == [
        (30, 40, 150, 200),
        (1, 2, 3, 4),
        (5, 6, 7, 8),
    ]
    letters = ["B", "(C) cow", "The answer is (B).", "Answer: D", "option a"]
    assert [ft.option_letter(t, 4) for t in letters] == [1, 2, 1, 3, None]
    assert ft.option_letter("A dog barks", 4) is None  # an article, not an option
    assert ft.option_letter("Option B, not option C", 4) is None  # two letters
    assert ft.option_letter("E", 4) is None  # past the options


def test_mentions_and_closed_answers() -> None:
    index = ft.build_search_index(["acoustic_guitar", "guitar", "more than ten", "ten", "yes", "no"])
    found = ft.mention_positions("An acoustic guitar, more than ten; a guitar", index)
    assert [name for _, name in found] == ["acoustic_guitar", "more than ten", "guitar"]  # nested ones not counted
    assert ft.closed_answer("The answer is yes.", index) == "yes"
    assert ft.closed_answer("No, it is not.", index) == "no"  # the answer it opens with
    assert ft.closed_answer("I think it is a guitar", index) == "guitar"  # the one mention
    assert ft.closed_answer("a guitar or an acoustic guitar", index) is None  # two answers, no cue
    assert ft.digits_as_words("2 dogs, 12 cats, 3.5 s") == "two dogs, more than ten cats, 3.5 s"
    parts = ft.with_comma_parts(["Violin, fiddle", "Rats, mice", "Mice, voles"])
    assert parts["fiddle"] == parts["Violin"] == "Violin, fiddle" and parts["Rats"] == "Rats, mice"
    assert "mice" not in parts and "Mice" not in parts  # a part two names share


# ---- the tier in the task base ---------------------------------------------------------------------------------
def test_a_task_without_a_flexible_reader_reads_flexible_as_strict(toy, tmp_path: Path) -> None:
    (tmp_path / "toy_test.tsv").write_text("a\tv1\tcat\nb\tv2\tdog\n", encoding="utf-8")
    task = get_task("toy")
    split = load_split(task, tmp_path, "test")
    for text in ("<answer> cat </answer>", "cat", "it is a dog"):
        assert task.extract(text, split[0], split, "flexible") == task.parse(text, split)
    with pytest.raises(CrabEvalError, match="unknown extraction tier"):
        task.extract("cat", split[0], split, "loose")


@pytest.mark.parametrize("task_id", sorted(BUILTIN))
def test_flexible_reads_every_template_as_strict_does(task_id: str, tmp_path: Path) -> None:
    from fixture_builders import build_split

    task = get_task(task_id)
    if not task.text_predictions:
        return
    data, split_name = build_split(task, tmp_path)
    split = load_split(task, data, split_name)
    for sample in split:
        text = task.target_text(sample)
        assert task.extract(text, sample, split, "flexible") == task.extract(text, sample, split, "strict")


# ---- each task's free-form reading ----------------------------------------------------------------------------
def _split(task_id: str, data: Path, split: str = "test"):
    task = get_task(task_id)
    return task, load_split(task, data, split)


def test_music_avqa_flexible(tmp_path: Path) -> None:
    write_mavqa(tmp_path, "test", [
        mavqa_entry("v1", 10, ("Audio", "Counting"), "How many instruments are sounding?", "two"),
        mavqa_entry("v2", 11, ("Audio-Visual", "Existential"), "Is the <Object> playing?", "yes", ["piano"]),
        mavqa_entry("v3", 12, ("Audio-Visual", "Temporal"), "Which instrument sounds first?", "piano"),
        mavqa_entry("v4", 13, ("Audio", "Counting"), "Is there a <Object> sound?", "yes", ["piano"]),
    ])  # fmt: skip
    task, split = _split("music_avqa", tmp_path)
    count, exists, temporal, yes_no_count = split
    cases = [
        (count, "The answer is two", "two"),
        (count, "2", "two"),
        (count, "<answer> 2 </answer>", "two"),  # strict reads "2", out of the vocabulary
        (count, "There are two instruments: a piano and a violin.", "two"),  # counting: numbers or yes/no
        (yes_no_count, "Yes.", "yes"),  # an official counting template asked as a yes/no question
        (yes_no_count, "Yes, there is one piano.", "yes"),  # the answer the text opens with
        (count, "maybe one, maybe three", None),
        (count, "15 instruments", "more than ten"),
        (exists, "yes</s>", "yes"),
        (exists, "Yes, the piano is playing.", "yes"),
        (exists, "I cannot tell", None),
        (temporal, "The piano sounds first, then the violin.", None),  # two instruments, no cue
        (temporal, "Piano.", "piano"),
        (temporal, "So the answer is <answer> piano </answer>.", "piano"),
    ]
    for sample, text, expected in cases:
        got = task.extract(text, sample, split, "flexible")
        assert got == (None if expected is None else {"answer": expected}), text
    # A tag naming no official answer stays as strict reads it: parsed (and wrong), never unparsed.
    assert task.extract("<answer> a tuba maybe </answer>", temporal, split, "flexible") == {"answer": "tuba"}
    assert task.extract("<answer> banana </answer>", temporal, split, "flexible") == {"answer": "banana"}


def test_avqa_flexible(tmp_path: Path) -> None:
    write_avqa(tmp_path, "val", [avqa_entry(1, "v1", "What animal barks?", ["dog", "cat", "cow", "bird"], 0, "Which")])
    task, split = _split("avqa", tmp_path, "val")
    sample = split[0]
    cases = [
        ("B", {"choice": 1}),
        ("(A) dog", {"choice": 0}),
        ("The answer is D.", {"choice": 3}),
        ("It is a dog.", {"answer": "dog"}),
        ("cow", {"answer": "cow"}),
        ("Either a dog or a cat", None),
        ("<answer> dog </answer>", {"answer": "dog"}),
    ]
    for text, expected in cases:
        assert task.extract(text, sample, split, "flexible") == expected, text


def test_ave_flexible(tmp_path: Path) -> None:
    write_ave(tmp_path, {"test": [("Flute", "vidA", 2, 5)]}, annotations=False)  # the 28 official categories
    task, split = _split("ave", tmp_path)
    sample = split[0]
    cases = [
        ("Flute, [9,10]", {"event": "Flute", "start": 9, "end": 10}),
        ("event:Flute start_time:9 end_time:10", {"event": "Flute", "start": 9, "end": 10}),
        ("A flute plays from 2 to 5 seconds.", {"event": "Flute", "start": 2, "end": 5}),
        ("A man speaking, [0,8]", {"event": "Male speech, man speaking", "start": 0, "end": 8}),  # a synonym
        ("a violin (0 10)", {"event": "Violin, fiddle", "start": 0, "end": 10}),
        ("Flute or Banjo, [0,10]", None),  # two events
        ("Flute [0,3] and [4,6]", None),  # two ranges
        ("Flute, [2.5,8]", None),  # not whole seconds
        ("Flute, [3,11]", None),  # past the clip
        ("Flute", None),  # no time
    ]
    for text, expected in cases:
        assert task.extract(text, sample, split, "flexible") == expected, text
        assert task.extract(text, sample, split, "strict") is None  # none is Crab's template


def test_avvp_flexible(tmp_path: Path) -> None:
    write_avvp(tmp_path, {"test": {"AAAAAAAAAAA_0_10": {"audio": [("Speech", 0, 4)], "visual": [("Dog", 2, 8)]}}})
    task, split = _split("avvp", tmp_path)
    sample = split[0]

    def ev(modality: str, label: str, onset: int, offset: int) -> dict:
        return {"modality": modality, "label": label, "onset": onset, "offset": offset}

    cases = [
        ("Audio: Speech, [0,4]; Dog, [3,10]. Visual: Dog, [2,8]",
         [ev("audio", "Speech", 0, 4), ev("audio", "Dog", 3, 10), ev("visual", "Dog", 2, 8)]),
        ("<audio_event>Speech,(0 4)</visual_event>", [ev("audio", "Speech", 0, 4)]),  # mismatched tags: strict fails
        ("Audio-visual: Dog (2 8)", [ev("audio", "Dog", 2, 8), ev("visual", "Dog", 2, 8)]),
        ("In the audio: Baby cry, infant cry from 1 to 3", [ev("audio", "Baby_cry_infant_cry", 1, 3)]),
        ("Speech [0,4]", None),  # no modality
        ("Audio: Chainsaw", None),  # no time
        ("Audio: Speech (3 3)", None),  # empty range
    ]  # fmt: skip
    for text, expected in cases:
        got = task.extract(text, sample, split, "flexible")
        assert got == (None if expected is None else {"events": expected}), text


def test_unav_flexible(tmp_path: Path) -> None:
    write_unav(tmp_path, {"v1": UnavVideo("test", 60, [("dog barking", 0, 10), ("man speaking", 5, 30)])})
    task, split = _split("unav", tmp_path)
    sample = split[0]
    got = task.extract("dog barking from 0 to 10.5 and (20 25), man speaking [5, 30]", sample, split, "flexible")
    assert got == {
        "segments": [
            {"label": "dog barking", "start": 0.0, "end": 10.5, "score": 1.0},
            {"label": "dog barking", "start": 20.0, "end": 25.0, "score": 1.0},
            {"label": "man speaking", "start": 5.0, "end": 30.0, "score": 1.0},
        ]
    }
    assert task.extract("At 5 s a dog barking starts", sample, split, "flexible") is None  # time before the label
    assert task.extract("dog barking [9, 3]", sample, split, "flexible") is None


def test_arig_flexible(tmp_path: Path) -> None:
    write_arig(tmp_path, [arig_record("AVS/v1s/clipA/frames/0.jpg", "dog", [10, 20], [110, 120])], split="test")
    task, split = _split("arig", tmp_path)
    sample = split[0]
    box = {"bbox": [30 / 224, 40 / 224, 150 / 224, 200 / 224]}
    for text in ("[30,40,150,200]", "The dog is at (30,40),(150,200).", "(30, 40) to (150, 200)<|im_end|>"):
        assert task.extract(text, sample, split, "flexible") == box, text
        assert task.extract(text, sample, split, "strict") is None
    for text in ("[30,40,150,200] or [0,0,10,10]", "[30,40,250,200]", "[150,40,30,200]", "[30,40]"):
        assert task.extract(text, sample, split, "flexible") is None, text


def test_classification_flexible(tmp_path: Path) -> None:
    labels = ["neutral", "joy", "anger"]
    write_cls(tmp_path, "test", [cls_entry("meld", label, [f"c{i}"]) for i, label in enumerate(labels)])
    task, split = _split("meld", tmp_path)
    sample = split[0]
    cases = [
        ("Joy.", "joy"),
        ("The emotion is anger", "anger"),
        ("The speaker feels anger.", "anger"),
        ("Not neutral, it's joy", None),
        ("joyful", None),  # not the label's word
        ("<answer>neutral</answer>.", "neutral"),
    ]
    for text, expected in cases:
        got = task.extract(text, sample, split, "flexible")
        assert got == (None if expected is None else {"answer": expected}), text
    a2v = tmp_path / "a2v"
    write_cls(a2v, "test", [cls_entry("a2v", "1", ["a", "b", "c"]), cls_entry("a2v", "2", ["d", "e", "f"])])
    task, split = _split("a2v", a2v)
    assert task.extract("The first video matches.", split[0], split, "flexible") == {"answer": "1"}
    assert task.extract("video 2", split[0], split, "flexible") == {"answer": "2"}
    assert task.extract("The second one", split[0], split, "flexible") == {"answer": "2"}  # an alias opens it
    assert task.extract("Either video 1 or video 2", split[0], split, "flexible") is None


def test_avcap_strips_every_trailing_special_token(tmp_path: Path) -> None:
    from crab_eval.layouts.avcap import make_entry, write_split

    write_split(tmp_path, "test", [make_entry("v1", "A man sings.")])
    task, split = _split("avcap", tmp_path)
    for text in ("<s> A man sings.</s></s></s>", "A man sings.</s><unk><unk>", "A man sings.<|endoftext|>"):
        assert task.parse(text, split) == {"caption": "A man sings."}


# ---- scoring with a tier ---------------------------------------------------------------------------------------
def _music_fixture(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    write_mavqa(data, "test", [
        mavqa_entry("v1", 10, ("Audio", "Counting"), "How many instruments are sounding?", "two"),
        mavqa_entry("v2", 11, ("Audio-Visual", "Existential"), "Is the <Object> playing?", "yes", ["piano"]),
    ])  # fmt: skip
    preds = tmp_path / "preds.jsonl"
    rows = [{"id": "10", "text": "There are 2 instruments."}, {"id": "11", "text": "<answer> yes </answer>"}]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return data, preds


def test_score_records_the_tier_and_both_parse_rates(tmp_path: Path) -> None:
    data, preds = _music_fixture(tmp_path)
    strict = score("music_avqa", data, "test", preds)
    flexible = score("music_avqa", data, "test", preds, extract="flexible")
    # strict: "There are 2 instruments." has no tag (unparsed, wrong); the tag "yes" is right -> 1 of 2 = 50.
    # flexible: "2" is "two", right -> 2 of 2 = 100.
    assert strict.metrics["overall"] == 50.0 and flexible.metrics["overall"] == 100.0
    assert (strict.n_unparsed, flexible.n_unparsed) == (1, 0)
    assert strict.n_unparsed_by_extract == flexible.n_unparsed_by_extract == {"strict": 1, "flexible": 0}
    assert (strict.provenance["extract"], flexible.provenance["extract"]) == ("strict", "flexible")
    assert set(EXTRACT_TIERS) == {"strict", "flexible"}


def test_results_of_different_tiers_are_not_paired(tmp_path: Path) -> None:
    data, preds = _music_fixture(tmp_path)
    strict = score("music_avqa", data, "test", preds)
    flexible = score("music_avqa", data, "test", preds, extract="flexible")
    with pytest.raises(CrabEvalError, match="different answer-extraction tiers"):
        align_runs([strict, flexible], ["a", "b"])
    again = score("music_avqa", data, "test", preds, extract="flexible")
    assert align_runs([flexible, again], ["a", "b"]).ids == ("10", "11")
    # A result written before the tiers existed has no "extract": it was strict.
    del strict.provenance["extract"]
    assert align_runs([strict, score("music_avqa", data, "test", preds)], ["a", "b"]).ids == ("10", "11")


def test_score_cli_extract_flag(tmp_path: Path) -> None:
    from crab_eval.cli import main

    data, preds = _music_fixture(tmp_path)
    out = tmp_path / "r.json"
    argv = ["score", "--task", "music_avqa", "--data", str(data), "--predictions", str(preds), "--output", str(out)]
    assert main([*argv, "--extract", "flexible"]) == 0
    written = json.loads(out.read_text())
    assert written["provenance"]["extract"] == "flexible" and written["metrics"]["overall"] == 100.0
    assert written["n_unparsed_by_extract"] == {"strict": 1, "flexible": 0}
    alias = ["score", "--task", "music_avqa", "--data", str(data), "--predictions", str(preds), "--out", str(out)]
    assert main(alias) == 0 and json.loads(out.read_text())["provenance"]["extract"] == "strict"  # --out = --output


def test_validate_reads_with_the_chosen_tier_and_shows_both_parse_rates(tmp_path: Path, capsys) -> None:
    from crab_eval.cli import main

    data, preds = _music_fixture(tmp_path)
    argv = ["validate", "--task", "music_avqa", "--data", str(data), "--predictions", str(preds)]
    for tier, unparsed in (("strict", 1), ("flexible", 0)):
        assert main([*argv, "--extract", tier]) == 0
        out = capsys.readouterr().out
        # 2 text lines; strict reads 1 (the tag), flexible both ("2" is "two").
        assert "(parse rate: strict 50.0%, flexible 100.0%)" in out
        assert f"unparsed (scored wrong): {unparsed} ({tier} tier)" in out
    assert main(argv) == 0 and "(strict tier)" in capsys.readouterr().out  # strict by default


def test_api_score_takes_the_tier(tmp_path: Path) -> None:
    import crab_eval

    data, preds = _music_fixture(tmp_path)
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert crab_eval.score("music_avqa", data, rows).metrics["overall"] == 50.0  # worked in the test above
    flexible = crab_eval.score("music_avqa", data, rows, extract="flexible")
    assert flexible.metrics["overall"] == 100.0 and flexible.provenance["extract"] == "flexible"


def test_evaluate_scores_with_the_tier_and_rescores_a_finished_folder_without_predicting(tmp_path: Path) -> None:
    from crab_eval.evaluation import evaluate

    data, preds = _music_fixture(tmp_path)
    folder = tmp_path / "client"
    folder.mkdir()
    (folder / "music_avqa.jsonl").write_bytes(preds.read_bytes())
    out = tmp_path / "run"
    replay = {"path": str(folder)}
    strict = evaluate("replay", "music_avqa", {"music_avqa": data}, out, model_args=replay, progress=False)
    result_file = out / "results" / "music_avqa.test.json"
    seconds = json.loads(result_file.read_text())["provenance"]["inference"]["seconds"]
    (folder / "music_avqa.jsonl").unlink()  # a second prediction would fail: the folder's predictions are reused
    flexible = evaluate("replay", "music_avqa", {"music_avqa": data}, out, model_args=replay, progress=False,
                        extract="flexible")  # fmt: skip
    assert strict.results[("music_avqa", "test")].metrics["overall"] == 50.0
    assert flexible.results[("music_avqa", "test")].metrics["overall"] == 100.0
    written = json.loads(result_file.read_text())
    assert written["provenance"]["extract"] == "flexible"
    assert written["provenance"]["inference"]["seconds"] == seconds  # the prediction's own record is kept
    with pytest.raises(CrabEvalError, match="unknown extraction tier 'flex'"):  # refused before any prediction
        evaluate("replay", "music_avqa", {"music_avqa": data}, tmp_path / "typo", model_args=replay, extract="flex")
    assert not (tmp_path / "typo").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["settings"]["extract"] == "flexible"
        and "(flexible answer extraction)" in (out / "summary.md").read_text()
    )


def test_evaluate_command_names_the_tasks_the_other_tier_reads_more_of(tmp_path: Path, capsys) -> None:
    from crab_eval.cli import main

    data, preds = _music_fixture(tmp_path)
    root, folder = tmp_path / "root", tmp_path / "client"
    root.mkdir()
    folder.mkdir()
    (root / "music_avqa").symlink_to(data, target_is_directory=True)
    (folder / "music_avqa.jsonl").write_bytes(preds.read_bytes())
    argv = ["evaluate", "--model", "replay", "--model-args", f"path={folder}", "--tasks", "music_avqa",
            "--data-root", str(root), "--no-progress"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    # strict leaves "There are 2 instruments." unparsed, flexible reads it (test above): 1 -> 0.
    assert "unparsed answers under --extract flexible instead of strict: music_avqa 1 -> 0" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b"), "--extract", "flexible"]) == 0
    assert "unparsed answers under" not in capsys.readouterr().out
