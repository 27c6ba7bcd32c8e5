"""Build the SynthAV suite: every task's official layout (annotations via crab_eval.layouts, media beside them).

Each clip has its own random stream, seeded by (suite seed, task, split, clip index), so clips can be rendered in
any order or in parallel and the suite is still byte-identical for one seed. Annotation files are written after
all clips, in clip order, by the layout writers shared with the tests and the scoring benchmarks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.layouts import ave as ave_layout
from crab_eval.layouts import avsbench as avs_layout
from crab_eval.layouts import avvp as avvp_layout
from crab_eval.layouts import music_avqa as avqa_layout
from crab_eval.synth import scene as sc
from crab_eval.synth.config import AVS_SECONDS, CLIP_SECONDS, FAMILIES, NAMES_A, SIZES, TASKS, relations_manifest
from crab_eval.synth.questions import scene_questions
from crab_eval.synth.render_audio import render_audio, write_wav
from crab_eval.synth.render_video import render_frames, sounding_masks, write_mp4, write_png

SPLITS = ("train", "val", "test")
MANIFEST = "synth_config.json"
_TASK_CODE = {task: i for i, task in enumerate(TASKS)}
_SPLIT_CODE = {split: i for i, split in enumerate(SPLITS)}
_ID_PREFIX = {"ave": "ave", "synth_ave_swap": "swp", "avvp": "vvp", "s4": "s4x", "ms3": "ms3"}


def clip_rng(seed: int, task: str, split: str, index: int) -> tuple[np.random.Generator, int]:
    """The clip's generator and the seed of its scene (texture, noise)."""
    rng = np.random.default_rng([seed, _TASK_CODE[task], _SPLIT_CODE[split], index])
    return rng, int(rng.integers(2**31 - 1))


def clip_name(task: str, split: str, index: int) -> str:
    """An 11-character id, like the YouTube ids of the real sets (LLP cuts filenames at 11 characters)."""
    return f"{_ID_PREFIX[task]}{split[:2]}{index:06d}"


# ---- one clip per task: render media, return the annotation record -------------------------------------------------
def _ave_clip(task: str, root: Path, seed: int, split: str, index: int, k: int) -> tuple:
    rng, scene_seed = clip_rng(seed, task, split, index)
    scene, cls, start, end = sc.ave_scene(rng, len(FAMILIES["A"]), scene_seed, CLIP_SECONDS)
    vid = clip_name(task, split, index)
    images, _ = render_frames(scene)
    write_mp4(root / "AVE" / f"{vid}.mp4", images, render_audio(scene))
    return (NAMES_A[task][cls], vid, start, end)


def _avvp_clip(task: str, root: Path, seed: int, split: str, index: int, k: int) -> tuple:
    rng, scene_seed = clip_rng(seed, task, split, index)
    scene = sc.avvp_scene(rng, len(FAMILIES["A"]), scene_seed, CLIP_SECONDS)
    vid = clip_name(task, split, index)
    images, _ = render_frames(scene)
    # LLP_dataset/video holds the clips (audio inside); LLP_dataset/audio is an optional extraction step of the
    # official README, left out to keep the suite small (the feature loader reads the mp4's audio track).
    write_mp4(root / "LLP_dataset" / "video" / f"{vid}.mp4", images, render_audio(scene))
    names = NAMES_A["avvp"]
    events = {m: [(names[c], a, b) for c, a, b in evs] for m, evs in sc.avvp_events(scene).items()}
    return (f"{vid}_0_10", events)


def _avs_clip(task: str, root: Path, seed: int, split: str, index: int, k: int) -> avs_layout.Video:
    rng, scene_seed = clip_rng(seed, task, split, index)
    name = clip_name(task, split, index)
    if task == "s4":
        scene, cls = sc.s4_scene(rng, len(FAMILIES["A"]), scene_seed, AVS_SECONDS)
        category = NAMES_A["s4"][cls]
        base = root / avs_layout.S4_DATA
        frame_dir = base / "visual_frames" / split / category / name
        frame_names = [f"{name}_{k}.png" for k in range(1, AVS_SECONDS + 1)]
        wav = base / "audio_wav" / split / category / f"{name}.wav"
    else:
        scene = sc.ms3_scene(rng, len(FAMILIES["A"]), scene_seed, AVS_SECONDS)
        category = "none"  # MS3 has no category column
        base = root / avs_layout.MS3_DATA
        frame_dir = base / "visual_frames" / name
        frame_names = [f"{name}.mp4_{k}.png" for k in range(1, AVS_SECONDS + 1)]
        wav = base / "audio_wav" / split / f"{name}.wav"
    images, object_masks = render_frames(scene)
    for image, frame_name in zip(images, frame_names, strict=True):
        write_png(frame_dir / frame_name, image)
    write_wav(wav, render_audio(scene))
    truth = sounding_masks(scene, object_masks)
    masks = [truth[k - 1] for k in avs_layout.frames_annotated(task, split)]
    return avs_layout.Video(name=name, split=split, masks=masks, category=category, start_time=0)


def _avqa_clip(task: str, root: Path, seed: int, split: str, index: int, k: int) -> tuple[str, list]:
    rng, scene_seed = clip_rng(seed, task, split, index)
    # MUSIC-AVQA video ids are 8-digit numbers; the split is encoded in the leading digit.
    video_id = f"{_SPLIT_CODE[split] + 1}{index:07d}"
    scene = sc.avqa_scene(rng, len(FAMILIES["C"]), scene_seed, CLIP_SECONDS)
    images, _ = render_frames(scene)
    write_mp4(root / "avqa-videos" / f"{video_id}.mp4", images, render_audio(scene))
    questions = scene_questions(scene, rng, k)
    return video_id, [(q.qtype, q.content, q.values, q.answer) for q in questions]


_CLIP: dict[str, Callable[..., Any]] = {
    "ave": _ave_clip, "synth_ave_swap": _ave_clip, "avvp": _avvp_clip, "s4": _avs_clip, "ms3": _avs_clip,
    "music_avqa": _avqa_clip,
}  # fmt: skip


def _render(job: tuple) -> Any:
    task, root, seed, split, index, k = job
    return _CLIP[task](task, Path(root), seed, split, index, k)


# ---- annotation files per task ---------------------------------------------------------------------------------------
def _write_annotations(task: str, root: Path, records: dict[str, list]) -> None:
    if task in ("ave", "synth_ave_swap"):
        ave_layout.write_dataset(root, records)
    elif task == "avvp":
        # The official layout has dense labels for val and test only (AVVP_train.csv is weak); the train clips'
        # dense rows are added to the eval files as rows of no scored split, for trainers that want them.
        evaluated = {s: dict(records[s]) for s in ("val", "test")}
        train = dict(records["train"])
        extra = {
            m: [(f, a, b, lab) for f, ev in train.items() for lab, a, b in ev.get(m, ())] for m in ("audio", "visual")
        }
        avvp_layout.write_dataset(root, evaluated, extra_audio=extra["audio"], extra_visual=extra["visual"])
        avvp_layout.write_train(root, ((f, avvp_layout.weak_labels(ev)) for f, ev in train.items()))
    elif task == "s4":
        avs_layout.write_s4(root, [v for s in SPLITS for v in records[s]])
    elif task == "ms3":
        avs_layout.write_ms3(root, [v for s in SPLITS for v in records[s]], mode="P")
    elif task == "music_avqa":
        question_id = 0
        for split in SPLITS:
            entries = []
            for video_id, questions in records[split]:
                for qtype, content, values, answer in questions:
                    question_id += 1
                    entries.append(avqa_layout.make_entry(video_id, question_id, qtype, content, answer, values))
            avqa_layout.write_split(root, split, entries)
    else:  # pragma: no cover - TASKS and this switch are kept together
        raise KeyError(task)


def build(
    out: str | Path, seed: int = 0, size: str = "tiny", jobs: int = 1, tasks: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Write the suite under ``out`` (replacing what the suite wrote there before); returns the manifest."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    out = Path(out)
    chosen = tuple(tasks) if tasks else tuple(TASKS)
    start = time.perf_counter()
    counts = {task: spec.clips(task) for task in chosen}
    jobs_list = [
        (task, str(out / TASKS[task][1]), seed, split, i, spec.questions_per_video)
        for task in chosen
        for split in SPLITS
        for i in range(counts[task][split])
    ]
    for task in chosen:
        folder = out / TASKS[task][1]
        if folder.exists():
            shutil.rmtree(folder)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_render, jobs_list, chunksize=4))
    else:
        results = [_render(job) for job in jobs_list]
    records: dict[str, dict[str, list]] = {task: {s: [] for s in SPLITS} for task in chosen}
    for job, record in zip(jobs_list, results, strict=True):
        records[job[0]][job[3]].append(record)
    for task in chosen:
        _write_annotations(task, out / TASKS[task][1], records[task])
    manifest = relations_manifest()
    manifest.update(
        {"seed": seed, "size": size, "clips_per_split": counts, "questions_per_video": spec.questions_per_video}
    )
    manifest["tasks"] = {t: v for t, v in manifest["tasks"].items() if t in chosen}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    manifest["build_seconds"] = round(time.perf_counter() - start, 2)
    return manifest


def tree_size(root: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``root``."""
    n = total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            n += 1
            total += (Path(dirpath) / name).stat().st_size
    return n, total
