"""Writers of what Crab, Crab+ and lmms-eval write at inference, byte for byte (tests and benchmarks use them).

Read from the tools' own code (/work/shared/spec/clients.md has the sources): Crab and Crab+ append one line per
sample with ``jsonlines`` (``json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))``, mode 'a', so a
rerun doubles the file); a line is the test sample's metadata, keys in the loader's order, then ``predict``. Crab
decodes LLaMA-2 with special tokens (``<s> answer</s>`` and ``</s>`` padding for a batch's shorter rows); Crab+
decodes clean text, and its ranks append to one file in no fixed order. lmms-eval writes ``json.dumps`` lines keyed
by ``doc_id``. Nothing here reads those files: the converter (crab_eval/clients) is tested against these writers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Crab's test prompts (GeWu-Lab/Crab dataset/unified_dataset.py, UnifiedTestDataset.add_*_samples).
AV_PREFIX = "This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"
IMAGE_PREFIX = (
    "This is an image:\n<image_start><image><image_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n"
)
CRAB_PROMPTS = {
    "ave": AV_PREFIX + "Please describe the events and time range that occurred in the video.",
    "avvp": AV_PREFIX + "Please determine the events that occur based on the visual and audio information in the "
    "video, as well as the start and end times of these events.",
    "arig": IMAGE_PREFIX + "Please recognize the category of object that makes the sound and then output the location "
    "coordinates.",
    "avcap": AV_PREFIX + "Please describe this video.",
}
CRAB_ROOT = "/group/40061/cserdu/data"  # the authors' data root, as it appears in the paths of Crab's lines


def jsonlines_line(obj: Mapping[str, Any]) -> str:
    """One line as ``jsonlines`` 4.0 writes it by default (the writer of Crab's and Crab+'s ``write2json``)."""
    return json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode(obj) + "\n"


def append_jsonlines(path: Path, objs: Iterable[Mapping[str, Any]]) -> Path:
    """Append the lines (mode 'a', as ``jsonlines.open(fp, mode='a')``): writing twice is a rerun."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(jsonlines_line(o) for o in objs)
    return path


def llama2_chat(prompt: str) -> str:
    """``tokenizer.apply_chat_template`` of Crab's system + user messages with the LLaMA-2 chat template."""
    return f"<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\n{prompt} [/INST]"


def crab_decoded(answer: str, pad: int = 0, pad_token: str = "</s>", eos: bool = True) -> str:
    """What ``batch_decode(..., skip_special_tokens=False)`` gives for an embeds-only generate: the dummy BOS, the
    answer, EOS (absent if cut by max_new_tokens) and ``pad`` pad tokens of a shorter row of the batch."""
    return "<s> " + answer + ("</s>" if eos else "") + pad_token * pad


# ---- Crab lines: collator metadata (instruction, output, [question_type, vid, qid], media paths) + predict ------
def _crab_av(task: str, output: str, video: str, audio: str, predict: str) -> dict[str, Any]:
    """A video + audio test sample's line: instruction, output, video_path, audio_path, predict."""
    return {
        "instruction": llama2_chat(CRAB_PROMPTS[task]),
        "output": output + "</s>",
        "video_path": video,
        "audio_path": audio,
        "predict": predict,
    }


def crab_ave(vid: str, event: str, start: int, end: int, predict: str) -> dict[str, Any]:
    root = f"{CRAB_ROOT}/ave/AVE_Dataset"
    output = f"event:{event} start_time:{start} end_time:{end}"
    return _crab_av("ave", output, f"{root}/AVE/{vid}.mp4", f"{root}/audio_data/{vid}.mp3", predict)


def crab_avvp(vid: str, event: str, predict: str) -> dict[str, Any]:
    root = f"{CRAB_ROOT}/avvp"
    return _crab_av("avvp", event, f"{root}/llp_videos/{vid}.mp4", f"{root}/audio_data/{vid}.mp3", predict)


def crab_music_avqa(qid: int, vid: str, qtype: Any, question: str, answer: str, predict: str) -> dict[str, Any]:
    root = f"{CRAB_ROOT}/music-avqa"
    return {
        "instruction": llama2_chat(AV_PREFIX + f"Please answer this question: {question}"),
        "output": answer + "</s>",
        "question_type": qtype,
        "vid": vid,
        "qid": qid,
        "video_path": f"{root}/avqa-videos/{vid}.mp4",
        "audio_path": f"{root}/audio/{vid}.mp3",
        "predict": predict,
    }


def crab_arig(frame_path: str, a_obj: str, corners: Sequence[float], audio_path: str, predict: str) -> dict[str, Any]:
    x1, y1, x2, y2 = corners
    return {
        "instruction": llama2_chat(CRAB_PROMPTS["arig"]),
        "output": f"The sounding object is {a_obj}. Its coordinates are <obj>({x1},{y1})({x2},{y2})</obj>.</s>",
        "image_path": frame_path,
        "audio_path": audio_path,
        "predict": predict,
    }


def crab_avcap(video_id: str, desc: str, predict: str) -> dict[str, Any]:
    root = f"{CRAB_ROOT}/valor"
    return _crab_av("avcap", desc, f"{root}/video_data/{video_id}.mp4", f"{root}/audio_data/{video_id}.mp3", predict)


# ---- Crab+ lines: OmniTestDataset metadata (keys in the loader's order) + predict --------------------------------
def crab_plus(metadata: Mapping[str, Any], predict: str) -> dict[str, Any]:
    return {**metadata, "predict": predict.strip()}


def plus_media(data_root: str, task: str, kind: str | None, name: str) -> str:
    """``OmniTestDataset._get_media_path``: ``{data_root}/AVUIE_2/{task}[/{kind}]/{name}``."""
    return (
        os.path.join(data_root, "AVUIE_2", task, kind, name) if kind else os.path.join(data_root, "AVUIE_2", task, name)
    )


def interleave_ranks(lines: Sequence[Any], ranks: int, batch: int, schedule: Sequence[int]) -> list[Any]:
    """Lines as ``torchrun`` ranks append them to one file: rank r holds samples r, r + R, ... (Crab+'s
    Test_DistributedSampler), writes a batch at a time, and ``schedule`` says which rank's next batch lands next
    (ranks that run out are skipped)."""
    queues = [list(lines[r::ranks]) for r in range(ranks)]
    merged: list[Any] = []
    for r in schedule:
        merged.extend(queues[r][:batch])
        del queues[r][:batch]
    for queue in queues:
        merged.extend(queue)
    return merged


# ---- lmms-eval sample logs ----------------------------------------------------------------------------------------
def lmms_eval_line(doc_id: int, target: str, text: str, version: str = "0.3") -> str:
    """One ``--log_samples`` line: ``json.dumps(ensure_ascii=False)``; ``filtered_resps`` is ``[text]`` up to v0.6
    and the string itself from v0.7 (single-instance lists flattened)."""
    line: dict[str, Any] = {"doc_id": doc_id, "target": target}
    if version == "0.7":
        line.update({"resps": text, "filtered_resps": text})
    else:
        line.update({"resps": [[text]], "filtered_resps": [text]})
    line.update({"doc_hash": f"{doc_id:064x}", "prompt_hash": "0" * 64, "target_hash": "1" * 64})
    return json.dumps(line, ensure_ascii=False) + "\n"
