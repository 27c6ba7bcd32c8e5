"""Crab (GeWu-Lab/Crab ``scripts/finetune/inference_hyper_lora.py``): what its inference files hold, per task.

A line is the test sample's metadata + ``predict`` (keys ``instruction``, ``output`` = gold + ``</s>``, MUSIC-AVQA's
``question_type``/``vid``/``qid``, the media paths, ``predict``), appended with ``jsonlines`` (a rerun doubles the
file). No line names its task: with several task flags on, every task's file holds every task's samples, so a
line's task is read from its instruction (the test loader's task sentence) or, for MUSIC-AVQA, its ``qid``.
``predict`` is kept as written (``<s> ... </s></s>`` included): the task parsers ignore the special tokens.
See /docs/clients.md and the client spec for the sources of each rule.
"""

from __future__ import annotations

from pathlib import Path

from crab_eval.clients import golds
from crab_eval.clients.lines import ClientLine, text_of
from crab_eval.clients.source import Source, TaskRule, line_str, path_tail, sample_id, stem

# The task sentence of each test loader's instruction (dataset/unified_dataset.py, UnifiedTestDataset.add_*).
_SENTENCES = (
    ("music_avqa", "Please answer this question:"),
    ("ave", "Please describe the events and time range that occurred in the video."),
    ("avvp", "Please determine the events that occur based on the visual and audio information"),
    ("arig", "Please recognize the category of object that makes the sound and then output the location coordinates."),
    ("avcap", "Please describe this video"),
    ("avss", "segment it out."),
    ("ref_avs", "based on the referential expression"),
    ("avsbench", "segment out the object that makes the sound at the"),  # s4 (v1s paths) or ms3 (v1m paths)
)
# Task -> (folder under the run's --ckpt_dir, file names in it).
FOLDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ave": ("inference_ave", ("infer_results.jsonl",)),
    "avvp": ("inference_avvp", ("infer_results.jsonl",)),
    "music_avqa": ("inference_avqa", ("infer_results.jsonl",)),
    "arig": ("inference_arig", ("infer_results.jsonl",)),
    "avcap": ("inference_avcap", ("inference_results_val.jsonl",)),
    "ms3": ("inference_ms3", ("inference_results.jsonl",)),
    "s4": ("inference_s4", ("inference_results.jsonl",)),
    "avss": ("inference_avss", ("inference_results.jsonl",)),
}
# Tasks whose predictions are masks (the mask decoder's, saved as PNGs): imported with --masks, never from text.
MASK_TASKS = ("ms3", "s4", "avss")
REF_AVS_REFUSED = (
    "Crab saves Ref-AVS masks as mask_img_dir/{vid}/0000{i}_pred.png, one folder per video (the uid's fid level is "
    "dropped), so every expression of a video overwrites the others: per-expression masks cannot be recovered from "
    "a stock run (and they are 224x224 where Ref-AVS is scored at 256x256)"
)


def task_of(line: ClientLine) -> str | None:
    obj = line.obj
    if "qid" in obj and "question_type" in obj:
        return "music_avqa"
    instruction = obj.get("instruction")
    if not isinstance(instruction, str):
        return None
    for task, sentence in _SENTENCES:
        if sentence in instruction:
            if task != "avsbench":
                return task
            path = str(obj.get("mask_path") or obj.get("image_path") or "")
            return "s4" if "/v1s/" in path else "ms3" if "/v1m/" in path else None
    return None


def files(folder: Path, task: str) -> list[Path]:
    """The task's own file under a run folder (``--ckpt_dir``) or in the task's folder itself."""
    sub, names = FOLDERS.get(task, ("", ()))
    for base in (folder / sub, folder):
        found = [base / name for name in names if (base / name).is_file()]
        if found:
            return found
    return []


def _video(line: ClientLine) -> str:
    return stem(line_str("video_path")(line))


def _image_tail(line: ClientLine) -> str:
    return path_tail(line_str("image_path")(line))


RULES: dict[str, TaskRule] = {
    "ave": TaskRule(
        _video,
        lambda s: s.meta["video_id"],
        "VideoID = the name of video_path; a VideoID annotated twice is told apart by the gold event in 'output' "
        "(category, start, end), never by line order",
        golds.ave_line,
        golds.ave_sample,
    ),
    "avvp": TaskRule(
        _video,
        lambda s: s.id.rsplit("_", 2)[0],
        "the 11-character YouTube id of video_path -> the split's filename with that id (filename.rsplit('_', 2)[0])",
    ),
    "music_avqa": TaskRule(
        line_str("qid"),
        lambda s: str(s.meta["question_id"]),
        "str(qid); a question id listed twice is told apart by the gold answer in 'output'",
        golds.music_avqa_line,
        golds.target,
    ),
    "arig": TaskRule(
        _image_tail,
        lambda s: path_tail(s.media["image"]),
        "image_path (the json's frame_path; its last three parts, so the data root may differ); a frame annotated "
        "twice is told apart by the gold corners in 'output'",
        golds.arig_line,
        golds.arig_sample,
    ),
    "avcap": TaskRule(_video, sample_id, "video_id = the name of video_path (a video listed twice: one sample)"),
}

CRAB = Source(
    name="crab",
    task_of=task_of,
    text=lambda line: text_of(line, "predict"),
    rules=RULES,
    refused={
        "ms3": "its answer text holds no mask: import the mask PNGs with --masks (inference_ms3/mask_img_dir)",
        "s4": "its answer text holds no mask: import the mask PNGs with --masks (inference_s4/mask_img_dir)",
        "avss": "its answer text holds no mask: import the colour PNGs with --masks (inference_avss/mask_img_dir)",
        "ref_avs": REF_AVS_REFUSED,
    },
    files=files,
)
