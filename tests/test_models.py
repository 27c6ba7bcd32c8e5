"""The model interface and `crab-eval evaluate` with models that need no torch: arguments, the registry, prompts cut
at their media, the reference predictors (their files equal `crab-eval baseline`'s), replay, resume, limits, and
results that `compare`, `transfer` and the leaderboard read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from crab_eval.cli import main
from crab_eval.errors import CrabEvalError
from crab_eval.evaluation import evaluate, parse_tasks
from crab_eval.models import MODELS, load_model, model_ids
from crab_eval.models.base import Model, Request, Response, generation_settings, parse_pairs
from crab_eval.models.media import MediaRef, prompt_parts
from crab_eval.results import read_result
from crab_eval.tasks.base import CRAB_PREFIX, Sample

TASKS = "ave,avvp,music_avqa,s4"


class Oracle(Model):
    """Answers every text task with its training target (Crab's answer template): parsed, it scores perfectly."""

    id = "test-oracle"
    calls: list[int] = []  # noqa: RUF012 - batch sizes seen, shared by the instances of a test
    fail_after: int | None = None

    def __init__(self, tag: str = "x", times: int = 1, device: str | None = None) -> None:
        self.tag, self.times, self.device = tag, times, device

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if Oracle.fail_after is not None and len(Oracle.calls) >= Oracle.fail_after:
            raise KeyboardInterrupt  # the run is stopped midway
        Oracle.calls.append(len(requests))
        return [Response(text=r.task.target_text(r.sample)) for r in requests]


@pytest.fixture()
def oracle() -> Iterator[type[Oracle]]:
    with MODELS.isolated():
        MODELS.register(Oracle)
        Oracle.calls, Oracle.fail_after = [], None
        yield Oracle


# ---- arguments -------------------------------------------------------------------------------------------------
def test_pairs_split_at_keys_only_and_generation_values_are_typed() -> None:
    assert parse_pairs("path=/a/b,c,d=1 , e = x=y", "--x") == {"path": "/a/b,c", "d": "1", "e": "x=y"}
    assert parse_pairs("", "--x") == {}
    with pytest.raises(CrabEvalError, match="--model-args: expected KEY=VALUE"):
        parse_pairs("novalue", "--model-args")
    with pytest.raises(CrabEvalError, match="given twice"):
        parse_pairs("a=1,a=2", "--x")
    gen = generation_settings("max_new_tokens=8,temperature=0.5,do_sample=true,stop=none,name=abc")
    assert gen == {"max_new_tokens": 8, "do_sample": True, "temperature": 0.5, "stop": None, "name": "abc"}
    assert generation_settings(None) == {"max_new_tokens": 64, "do_sample": False}


def test_model_arguments_are_converted_by_the_constructor_types(oracle: type[Oracle]) -> None:
    model = load_model("test-oracle", {"tag": "y", "times": "3"}, device="cpu")
    assert (model.tag, model.times, model.device) == ("y", 3, "cpu")
    assert model.args == {"tag": "y", "times": "3"}
    assert load_model("test-oracle", {"device": "meta"}, device="cpu").device == "meta"  # the user's wins
    with pytest.raises(CrabEvalError, match="has no argument 'tga'; its arguments: tag, times, device"):
        load_model("test-oracle", {"tga": "y"})
    with pytest.raises(CrabEvalError, match="times='x' is not a valid int"):
        load_model("test-oracle", {"times": "x"})
    with pytest.raises(CrabEvalError, match="needs --model-args path="):
        load_model("replay", {})


def test_registry_lists_builtins_without_importing_them_and_names_unknown_models() -> None:
    before = set(sys.modules)
    assert {"crab-av", "hf", "replay", "majority", "prior", "random", "blind"} <= set(model_ids())
    assert not {m for m in set(sys.modules) - before if m.startswith(("torch", "transformers"))}
    with pytest.raises(CrabEvalError, match="unknown model 'nope'; known models: blind, crab-av"):
        load_model("nope")


def test_responses_become_contract_lines() -> None:
    assert Response(text="a").row("i") == {"id": "i", "text": "a"}
    assert Response(prediction={"answer": "b"}).row("i") == {"id": "i", "prediction": {"answer": "b"}}
    assert Response().row("i") is None and Response().missing
    with pytest.raises(ValueError, match="not both"):
        Response(text="a", prediction={})
    with pytest.raises(CrabEvalError, match="exactly one of"):
        Response.from_row({"id": "i", "text": "a", "prediction": {}})


# ---- prompts and media -----------------------------------------------------------------------------------------
def test_prompt_is_cut_at_placeholders_with_each_placeholder_given_its_file(tmp_path: Path) -> None:
    (tmp_path / "clip.wav").write_bytes(b"")
    sample = Sample("s", "What?", "x", "g", media={"video": "clip.mp4"})
    parts = prompt_parts(CRAB_PREFIX + "What?", sample, tmp_path)
    video = MediaRef("video", tmp_path / "clip.mp4")
    track = MediaRef("audio", tmp_path / "clip.mp4")  # no audio file: the video's own track
    assert parts == ["This is a video:\n", video, "\nThis is an audio:\n", track, "\nWhat?"]
    with_audio = Sample("s", "Q", "x", "g", media={"video": "clip.mp4", "audio": "clip.wav"})
    assert prompt_parts(CRAB_PREFIX, with_audio, tmp_path)[3] == MediaRef("audio", tmp_path / "clip.wav")
    # Crab+'s matching task a2v: one audio clip, then two videos, found under AVUIE_2/a2v/{audio,video}/
    for role, name in (("audio", "q.wav"), ("video", "a.mp4"), ("video", "b.mp4")):
        (tmp_path / role).mkdir(exist_ok=True)
        (tmp_path / role / name).write_bytes(b"")
    a2v = Sample(
        "q", "Which?", "1", "q", media={"audio_path": "q.wav", "video1_path": "a.mp4", "video2_path": "b.mp4"},
        meta={"roles": ["audio", "video", "video"]},
    )  # fmt: skip
    prompt = "Two videos and an audio:\n<audio_start><audio><audio_end>\n<video_start><video><video_end>\n" * 1
    prompt += "<video_start><video><video_end>\nWhich?"
    refs = [p for p in prompt_parts(prompt, a2v, tmp_path) if isinstance(p, MediaRef)]
    assert refs == [
        MediaRef("audio", tmp_path / "audio" / "q.wav"),
        MediaRef("video", tmp_path / "video" / "a.mp4"),
        MediaRef("video", tmp_path / "video" / "b.mp4"),
    ]
    frames = Sample("f", "Seg", "x", "g", media={"frames": ["f1.png", "f2.png"], "audio": "clip.wav"})
    parts = prompt_parts(CRAB_PREFIX, frames, tmp_path)
    assert parts[1] == MediaRef("video", (tmp_path / "f1.png", tmp_path / "f2.png")) and parts[1].is_frames
    image = prompt_parts("<image_start><image><image_end>", frames, tmp_path)
    assert image == [MediaRef("image", tmp_path / "f1.png")]
    with pytest.raises(CrabEvalError, match="2 <video> placeholder"):
        prompt_parts(CRAB_PREFIX + "<video_start><video><video_end>", sample, tmp_path)


# ---- evaluate with the reference predictors --------------------------------------------------------------------
def test_reference_models_write_what_crab_eval_baseline_writes(synth_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "majority"
    assert main(["evaluate", "--model", "majority", "--tasks", TASKS, "--data-root", str(synth_root),
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    for task in TASKS.split(","):
        ref = tmp_path / f"{task}.baseline.jsonl"
        train = ["--train-split", "val"] if task == "avvp" else []  # LLP's dense labels: val (fit_plan's choice)
        assert main(["baseline", "--task", task, "--data", str(synth_root / task), "--kind", "majority",
                     "--out", str(ref), *train]) == 0  # fmt: skip
        assert (out / "predictions" / f"{task}.jsonl").read_bytes() == ref.read_bytes()
        scored = tmp_path / f"{task}.scored.json"
        assert main(["score", "--task", task, "--data", str(synth_root / task), "--predictions", str(ref),
                     "--output", str(scored)]) == 0  # fmt: skip
        # the same predictions, scored by `score`: compare --exact passes
        assert main(["compare", str(out / "results" / f"{task}.test.json"), "--reference", str(scored),
                     "--exact"]) == 0  # fmt: skip
    result = read_result(out / "results" / "ave.test.json")
    assert result.run == {"model": "baseline-majority", "variant": "baseline", "seed": 0}
    inference = result.provenance["inference"]
    assert inference["model"] == "majority" and inference["generation"] == {"max_new_tokens": 64, "do_sample": False}
    assert inference["prompt_template"] == CRAB_PREFIX + "{instruction}"
    summary = json.loads((out / "summary.json").read_text())
    assert [r["task"] for r in summary["results"]] == TASKS.split(",")
    assert "| ave | test | accuracy |" in (out / "summary.md").read_text()
    assert (out / "summary.csv").read_text().startswith("task,split,main metric,value,samples,missing,unparsed\n")
    assert not (out / "predictions" / ".partial").exists()


def test_text_answers_are_parsed_by_the_task_and_limit_scores_the_first_samples(
    synth_root: Path, tmp_path: Path, oracle: type[Oracle]
) -> None:
    evaluation = evaluate("test-oracle", "ave,music_avqa", synth_root, tmp_path / "o", batch_size=3, limit=5,
                          progress=False)  # fmt: skip
    ave, avqa = evaluation.results[("ave", "test")], evaluation.results[("music_avqa", "test")]
    assert ave.n_samples == 4 and avqa.n_samples == 5  # ave has 4 test clips, MUSIC-AVQA 16 questions cut to 5
    assert ave.metrics["accuracy"] == 100.0 and avqa.metrics["overall"] == 100.0
    assert ave.n_unparsed == ave.n_missing == 0
    assert Oracle.calls == [3, 1, 3, 2]
    lines = (tmp_path / "o" / "predictions" / "music_avqa.jsonl").read_text().splitlines()
    assert len(lines) == 5 and set(json.loads(lines[0])) == {"id", "text"}


def test_a_stopped_run_resumes_with_the_batches_it_lacks(
    synth_root: Path, tmp_path: Path, oracle: type[Oracle]
) -> None:
    whole = evaluate("test-oracle", "music_avqa", synth_root, tmp_path / "whole", batch_size=3, progress=False)
    Oracle.calls, Oracle.fail_after = [], 2
    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        evaluate("test-oracle", "music_avqa", synth_root, out, batch_size=3, progress=False)
    log = out / "predictions" / ".partial" / "music_avqa.test" / "rank-0.jsonl"
    assert [json.loads(line)["batch"] for line in log.read_text().splitlines()] == [0, 1]
    with log.open("a") as handle:
        handle.write('{"batch": 2, "ids": ["cut by a crash')  # a half-written line: batch 2 runs again
    Oracle.calls, Oracle.fail_after = [], None
    resumed = evaluate("test-oracle", "music_avqa", synth_root, out, batch_size=3, progress=False)
    assert Oracle.calls == [3, 3, 3, 1]  # batches 2..5 of 16 questions
    name = "predictions/music_avqa.jsonl"
    assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert resumed.results[("music_avqa", "test")].metrics == whole.results[("music_avqa", "test")].metrics
    Oracle.calls = []
    evaluate("test-oracle", "music_avqa", synth_root, out, batch_size=3, progress=False)
    assert Oracle.calls == []  # finished: nothing is predicted again
    with pytest.raises(CrabEvalError, match=r"other settings .*batch_size: 3 there, 4 now"):
        evaluate("test-oracle", "music_avqa", synth_root, out, batch_size=4, progress=False)


def test_replay_reads_a_predictions_folder_and_missing_samples_stay_missing(synth_root: Path, tmp_path: Path) -> None:
    first = evaluate("prior", TASKS, synth_root, tmp_path / "prior", progress=False)
    folder = tmp_path / "prior" / "predictions"
    lines = (folder / "ave.jsonl").read_text().splitlines()
    (folder / "ave.jsonl").write_text("\n".join(lines[1:]) + "\n")  # one sample lost
    again = evaluate("replay", TASKS, synth_root, tmp_path / "replay", model_args={"path": str(folder)},
                     progress=False)  # fmt: skip
    for task in TASKS.split(","):
        if task != "ave":
            assert again.results[(task, "test")].metrics == first.results[(task, "test")].metrics
        assert (tmp_path / "replay" / "predictions" / f"{task}.jsonl").read_text() == (
            folder / f"{task}.jsonl"
        ).read_text()
    assert again.results[("ave", "test")].n_missing == 1
    assert again.results[("ave", "test")].run == {"model": "replay-predictions"}
    with pytest.raises(CrabEvalError, match=r"no ave.jsonl or ave.test.jsonl"):
        evaluate("replay", "ave", synth_root, tmp_path / "r2", model_args={"path": str(tmp_path)}, progress=False)


def test_results_feed_transfer_and_an_entry_feeds_the_leaderboard(synth_root: Path, tmp_path: Path) -> None:
    meta = {
        "schema_version": 1, "model": "Prior baseline", "team": "tests", "paper": "none", "parameters": 0,
        "llm_backbone": "none", "encoders": {"none": "none"}, "training_data": ["SynthAV tiny train"],
        "variant": "unified", "date": "2026-01-01",
    }  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    for kind, variant in (("majority", "single"), ("prior", "unified")):
        args = ["evaluate", "--model", kind, "--tasks", TASKS, "--data-root", str(synth_root), "--out",
                str(tmp_path / kind), "--variant", variant, "--no-progress"]  # fmt: skip
        if kind == "prior":
            args += ["--entry", str(tmp_path / "meta.json")]
        assert main(args) == 0
    results = [str(tmp_path / kind / "results" / "ave.test.json") for kind in ("majority", "prior")]
    assert main(["transfer", "--single", results[0], "--unified", results[1], "--bootstrap", "50"]) == 0
    entry = json.loads((tmp_path / "prior" / "entry.json").read_text())
    assert sorted(r["task"] for r in entry["results"]) == sorted(TASKS.split(","))
    prior = read_result(tmp_path / "prior" / "results" / "ave.test.json")
    by_task = {r["task"]: r for r in entry["results"]}
    assert by_task["ave"]["metrics"] == prior.metrics  # `submit score` of the folder gives the same numbers
    assert main(["leaderboard", "build", "--entries", str(tmp_path / "prior"), "--out", str(tmp_path / "site"),
                 "--no-published"]) == 0  # fmt: skip
    assert "Prior baseline" in (tmp_path / "site" / "leaderboard.md").read_text()


def test_a_model_from_an_included_folder_runs_from_the_command_line(synth_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my_models"
    folder.mkdir()
    (folder / "echo.py").write_text(
        "from crab_eval.models import register_model\n"
        "from crab_eval.models.base import Model, Response\n\n"
        "@register_model\n"
        "class Echo(Model):\n"
        "    id = 'echo'\n"
        "    def __init__(self, word: str = 'hello') -> None:\n"
        "        self.word = word\n"
        "    def generate(self, requests):\n"
        "        return [Response(text=f'<answer> {self.word} </answer>') for _ in requests]\n"
    )
    with MODELS.isolated():
        assert main(["--include", str(folder), "evaluate", "--model", "echo", "--model-args", "word=yes", "--tasks",
                     "music_avqa", "--data-root", str(synth_root), "--out", str(tmp_path / "o"),
                     "--no-progress"]) == 0  # fmt: skip
    lines = (tmp_path / "o" / "predictions" / "music_avqa.jsonl").read_text().splitlines()
    assert {json.loads(line)["text"] for line in lines} == {"<answer> yes </answer>"}
    result = read_result(tmp_path / "o" / "results" / "music_avqa.test.json")
    assert result.run == {"model": "echo"} and result.provenance["inference"]["model_args"] == {"word": "yes"}


def test_cli_errors_and_listing(synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--list-models"]) == 0
    listing = capsys.readouterr().out
    assert "majority" in listing and "hf" in listing and "crab-av" in listing
    assert main(["evaluate", "--model", "majority", "--tasks", "ave", "--out", str(tmp_path / "x")]) == 2
    assert "--data-root is required" in capsys.readouterr().err
    assert main(["evaluate", "--model", "majority", "--tasks", "nope", "--data-root", str(synth_root),
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["evaluate", "--model", "majority", "--tasks", "ave:val", "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "data root has no folder 'ave'" in capsys.readouterr().err
    assert parse_tasks("ave, ref_avs:test_u,") == [("ave", None), ("ref_avs", "test_u")]
    shutil.rmtree(tmp_path / "x", ignore_errors=True)


def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crab_eval", "evaluate", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "--model-args" in done.stdout
