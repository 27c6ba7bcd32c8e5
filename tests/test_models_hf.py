"""The `hf` model on tiny random checkpoints of the real architectures (Qwen2.5-Omni thinker, a full Qwen2.5-Omni
checkpoint, Qwen2-Audio) written to a temporary folder: video patches in the layout of transformers' video
processor, the answers of `evaluate` equal a generate loop written here by hand, every family end to end through the
command line, and two processes give the prediction files of one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crab_eval.cli import main
from crab_eval.models.testing import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, tiny_qwen2_5_omni, tiny_qwen2_audio
from crab_eval.results import read_result

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("one_torch_thread")]
torch = pytest.importorskip("torch")
SMALL_VIDEO = f"video_min_pixels={VIDEO_MIN_PIXELS},video_max_pixels={VIDEO_MAX_PIXELS}"


@pytest.fixture(scope="module")
def omni(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen2_5_omni(tmp_path_factory.mktemp("omni"), seed=1)


def test_video_patches_are_the_image_processors_patches_stacked_over_time(omni: Path) -> None:
    from crab_eval.models.hf_processor import load_processor

    processor = load_processor(omni, "Qwen2_5OmniProcessor")
    video, image = processor.video_processor, processor.image_processor
    rng = np.random.default_rng(0)
    f0, f1, f2 = (rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(3))
    size = {"shortest_edge": VIDEO_MIN_PIXELS, "longest_edge": VIDEO_MAX_PIXELS}

    def image_patches(frame: np.ndarray) -> tuple[np.ndarray, list[int]]:
        out = image(images=[frame], size=size, return_tensors="np")
        return np.asarray(out["pixel_values"]), [int(v) for v in out["image_grid_thw"][0]]

    still, grid = image_patches(f0)
    same = video([np.stack([f0, f0])], size=size, return_tensors="np")
    # two identical frames are one image: transformers' image processor repeats a still over the temporal patch
    np.testing.assert_array_equal(same["pixel_values_videos"], still)
    assert same["video_grid_thw"].tolist() == [grid]
    moving = video([np.stack([f0, f1, f2])], size=size, return_tensors="np")  # 3 frames: the last is repeated
    assert moving["video_grid_thw"].tolist() == [[2, grid[1], grid[2]]]
    rows = np.asarray(moving["pixel_values_videos"]).reshape(2, grid[1] * grid[2], 3, 2, 14, 14)
    for t, frame in ((0, f0), (1, f1), (2, f2), (3, f2)):
        expected = image_patches(frame)[0].reshape(-1, 3, 2, 14, 14)[:, :, 0]
        np.testing.assert_array_equal(rows[t // 2, :, :, t % 2], expected)


def test_answers_equal_a_generate_loop_written_by_hand(omni: Path, synth_root: Path, tmp_path: Path) -> None:
    from crab_eval.evaluation import evaluate
    from crab_eval.models.hf_processor import load_processor
    from crab_eval.models.testing import bare_generate
    from crab_eval.registry import get_task
    from crab_eval.scoring import load_split

    args = {"path": str(omni), "video_min_pixels": str(VIDEO_MIN_PIXELS), "video_max_pixels": str(VIDEO_MAX_PIXELS)}
    evaluation = evaluate("hf", "ave,music_avqa", synth_root, tmp_path / "out", model_args=args,
                          generation="max_new_tokens=5", batch_size=2, limit=4, progress=False)  # fmt: skip

    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    processor = load_processor(omni, "Qwen2_5OmniProcessor")
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(str(omni)).eval()
    size = {"shortest_edge": VIDEO_MIN_PIXELS, "longest_edge": VIDEO_MAX_PIXELS}
    for task_id in ("ave", "music_avqa"):
        task = get_task(task_id)
        samples = load_split(task, synth_root / task_id, "test")[:4].samples
        expected = bare_generate(processor, model, samples, synth_root / task_id, 2, 5, size)
        written = (tmp_path / "out" / "predictions" / f"{task_id}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in written] == [
            {"id": s.id, "text": text} for s, text in zip(samples, expected, strict=True)
        ]
        result = evaluation.results[(task_id, "test")]
        assert result.n_samples == 4 and result.n_missing == 0
        inference = result.provenance["inference"]
        assert inference["model_input_template"].startswith("<|im_start|>system\nYou are Qwen")
        assert (
            "This is a video:\n<|vision_bos|><|VIDEO|><|vision_eos|>\nThis is an audio:\n<|audio_bos|>"
            in (inference["model_input_template"])
        )
        assert inference["model_info"]["video_processor"] in ("FramePatchVideoProcessor", "Qwen2VLVideoProcessor")


def test_every_family_runs_end_to_end_from_the_command_line(
    tmp_path: Path, synth_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = tiny_qwen2_5_omni(tmp_path / "omni_full", full=True)
    audio = tiny_qwen2_audio(tmp_path / "qwen2_audio")
    for name, path, extra in (("full", full, "," + SMALL_VIDEO), ("audio", audio, "")):
        out = tmp_path / name
        args = ["evaluate", "--model", "hf", "--model-args", f"path={path}{extra}", "--tasks", "ave,s4",
                "--data-root", str(synth_root), "--out", str(out), "--limit", "2", "--batch-size", "2",
                "--gen-kwargs", "max_new_tokens=4", "--no-progress"]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        ave, s4 = (read_result(out / "results" / f"{t}.test.json") for t in ("ave", "s4"))
        assert ave.n_samples == 2 and ave.n_missing == 0 and ave.run == {"model": path.name}
        assert s4.n_unparsed == 2  # a text model cannot give masks: counted, not dropped
        info = ave.provenance["inference"]["model_info"]
        template = ave.provenance["inference"]["model_input_template"]
        if name == "full":
            assert info["model_type"] == "qwen2_5_omni" and "<|VIDEO|>" in template
        else:  # an audio model: the video placeholder is left out, the audio becomes the family's audio item
            assert info["media_read"] == ["audio"] and "<|VIDEO|>" not in template
            assert "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>" in template
        assert main(["compare", str(out / "results" / "ave.test.json"), "--reference",
                     str(out / "results" / "ave.test.json"), "--exact"]) == 0  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_processes_write_the_prediction_files_of_one(omni: Path, synth_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    common = ["evaluate", "--model", "hf", "--model-args", f"path={omni},{SMALL_VIDEO}", "--tasks",
              "ave,music_avqa", "--data-root", str(synth_root), "--limit", "6", "--batch-size", "2",
              "--gen-kwargs", "max_new_tokens=5", "--no-progress"]  # fmt: skip
    # --multi_gpu starts the processes (torchrun); with no GPU they meet over gloo. accelerate's --cpu would start
    # only one process without MPI.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
              "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
              str(free_port()), "-m", "crab_eval"]  # fmt: skip
    runs = {
        "two": subprocess.Popen([*launch, *common, "--out", str(tmp_path / "two")], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
        "one": subprocess.Popen([sys.executable, "-m", "crab_eval", *common, "--out", str(tmp_path / "one")],
                                env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
    }  # fmt: skip
    for name, proc in runs.items():
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {output[-3000:]}"
    for task in ("ave", "music_avqa"):
        one = (tmp_path / "one" / "predictions" / f"{task}.jsonl").read_bytes()
        assert one == (tmp_path / "two" / "predictions" / f"{task}.jsonl").read_bytes()
        assert len(one.splitlines()) == {"ave": 4, "music_avqa": 6}[task]
        result = read_result(tmp_path / "two" / "results" / f"{task}.test.json")
        assert result.provenance["inference"]["processes"] == 2
    assert not (tmp_path / "two" / "predictions" / ".partial").exists()
