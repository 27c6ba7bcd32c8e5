"""Crab+ (GeWu-Lab/Crab_Plus ``scripts/finetune/inference_omni.py``): what its inference files hold, per task.

``{ckpt_dir}/inference_results/inference_{task}.jsonl``: a line is the test sample's ``metadata`` + ``predict``
(decoded with ``skip_special_tokens=True``, stripped), appended by every rank of ``torchrun`` to the same file, so
the ranks' lines interleave in no fixed order. Every enabled task's loop runs over the whole pooled test set: a
line's ``task_name`` says which task it is. Most tasks carry no id at all; they are matched by the gold answer in
``output`` (exact for the metrics, which are per sample in gold and prediction), or by position when the golds are
the split's in order (one rank). Crab+ saves no masks and has no UnAV or captioning test loader.
"""

from __future__ import annotations

import re
from pathlib import Path

from crab_eval.clients import golds
from crab_eval.clients.crab import RULES as RULES_CRAB
from crab_eval.clients.lines import ClientLine, text_of
from crab_eval.clients.source import Source, TaskRule, line_str, path_tail

# Crab+ task_name -> crab-eval task.
TASK_NAMES: dict[str, str] = {
    "avqa": "music_avqa",
    "avqa_thu": "avqa",
    **{name: name for name in ("ave", "avvp", "arig", "ucf", "ks", "meld", "cremad", "mafw", "dfew", "a2v", "v2a")},
    **{name: name for name in ("ms3", "s4", "ref_avs")},
}
_FILE_NAME = {task: name for name, task in TASK_NAMES.items()}
NO_MASKS = (
    "Crab+ saves no masks: its stage 2 (seg/scripts/inference_3.py, inference_ref_3.py) runs SAM2 on the boxes "
    "and points of the answer text and writes only evaluation_results.json and overlay PNGs of poor samples"
)
_UCF_MEDIA_RE = re.compile(r"(?:^|[\\/])AVUIE_2[\\/]ucf[\\/](?:video|audio)[\\/](.+)$")


def task_of(line: ClientLine) -> str | None:
    name = line.obj.get("task_name")
    return TASK_NAMES.get(name) if isinstance(name, str) else None


def files(folder: Path, task: str) -> list[Path]:
    name = f"inference_{_FILE_NAME.get(task, task)}.jsonl"
    for path in (folder / "inference_results" / name, folder / name):
        if path.is_file():
            return [path]
    return []


def _ucf_media(line: ClientLine) -> tuple[str, str]:
    """(video, audio) as Crab+'s test.json names them: the paths minus ``{data_root}/AVUIE_2/ucf/{video,audio}/``."""
    found = []
    for key in ("video_path", "audio_path"):
        path = line_str(key)(line)
        match = _UCF_MEDIA_RE.search(path)
        found.append(match.group(1) if match else path)
    return found[0], found[1]


_BY_GOLD = (
    "none in the line: matched by the gold in 'output' (by position when the golds are the split's in order; "
    "otherwise which of several samples with the same gold gets which answer is arbitrary, the metric is exact)"
)


def _label_rule() -> TaskRule:
    return TaskRule(lambda line: None, lambda s: None, _BY_GOLD, golds.label_line, golds.target)


RULES: dict[str, TaskRule] = {
    "music_avqa": RULES_CRAB["music_avqa"],  # the same keys: qid and the answer
    "avqa": TaskRule(
        lambda line: (line_str("name")(line), line_str("instruction")(line)),
        lambda s: (s.group, s.instruction),
        "(video name, the instruction with question and options) -> the test.json question",
        golds.avqa_line,
        golds.target,
    ),
    "ave": TaskRule(lambda line: None, lambda s: None, _BY_GOLD, golds.ave_line, golds.ave_sample),
    "avvp": TaskRule(
        lambda line: None,
        lambda s: None,
        "none in the line, and the gold (weak labels) cannot tell videos apart: only --by-position (a one-rank "
        "run in the split's order) can match them",
    ),
    "arig": TaskRule(
        lambda line: path_tail(line_str("frame_path")(line)),
        lambda s: path_tail(s.media["image"]),
        "frame_path minus {data_root}/AVUIE_2/arig/ = the json's visual_path (its last three parts); a frame "
        "annotated twice is told apart by the gold corners in 'output'",
        golds.arig_line,
        golds.arig_sample,
    ),
    "ucf": TaskRule(
        _ucf_media,
        lambda s: (s.media["video_path"], s.media["audio_path"]),
        "video_path and audio_path minus {data_root}/AVUIE_2/ucf/{video,audio}/ -> the test.json entry",
        golds.label_line,
        golds.target,
    ),
    **{task: _label_rule() for task in golds.LABEL_TASKS if task != "ucf"},  # UCF's lines name their files
}

CRAB_PLUS = Source(
    name="crab-plus",
    task_of=task_of,
    text=lambda line: text_of(line, "predict"),
    rules=RULES,
    refused={
        "ms3": NO_MASKS,
        "s4": NO_MASKS,
        "ref_avs": NO_MASKS,
        "unav": "Crab+ has no UnAV test loader (OmniTestDataset.task_loaders), so it writes no UnAV predictions",
        "avcap": "Crab+ has no captioning test loader (OmniTestDataset.task_loaders), so it writes no captions",
    },
    files=files,
)
