"""Small valid splits for every task family, written with the families' own layout writers.

``build_split(task, root)`` lays out a few samples of ``task``'s default split under ``root`` and returns
``(data_dir, split)``. The builder is chosen by the module of the adapter class (or of one of its bases), so a
task that reuses a family's adapter (``synth_ave_swap`` is AVE's) is covered without an entry of its own. Used by
the cross-task robustness sweep (tests/test_bad_input_all_tasks.py); the adapters' own tests keep their fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.tasks.base import Sample, Split, Task

Builder = Callable[[Task, Path], tuple[Path, str]]


def _ave(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.ave import OFFICIAL_CATEGORIES as CAT
    from crab_eval.layouts.ave import write_dataset

    rows = [(CAT[2], "vidA", 2, 5), (CAT[22], "vidB", 0, 10), (CAT[17], "vidB", 3, 7)]
    write_dataset(root, {"test": rows, "val": rows[:1], "train": rows[:1]})
    return root, task.default_split


def _avqa(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.avqa import make_entry, write_split

    choices = ["dog", "cat", "cow", "bird"]
    entries = [
        make_entry(1, "v1", "What animal barks?", choices, 0, "Which"),
        make_entry(2, "v2", "Where does the sound come from?", ["car", "train", "sea", "bell"], 1, "Come From"),
    ]
    write_split(root, task.default_split, entries)
    return root, task.default_split


def _avvp(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.avvp import write_dataset

    videos = {
        "AAAAAAAAAAA_0_10": {"audio": [("Speech", 0, 4), ("Dog", 3, 10)], "visual": [("Dog", 2, 8)]},
        "BBBBBBBBBBB_10_20": {"audio": [("Cello", 0, 10)]},
    }
    write_dataset(root, {task.default_split: videos})
    return root, task.default_split


def _classification(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.classification import LAYOUTS, make_entry, write_split

    layout = LAYOUTS[task.id]
    labels = list(layout.classes[:2]) if layout.classes else ["playing guitar", "dog barking"]
    n_clips = max(layout.clip_of_key) + 1
    entries = [make_entry(task.id, label, [f"c{i}_{k}" for k in range(n_clips)]) for i, label in enumerate(labels)]
    write_split(root, task.default_split, entries)
    return root, task.default_split


def _localization(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.localization import arig_record, write_arig, write_flickr, write_vggss

    if task.id == "vggss":
        write_vggss(root, [("a", "dog", [[0.1, 0.1, 0.5, 0.6]]), ("b", "cat", [[0.0, 0.2, 0.9, 0.8], [0, 0, 1, 1]])])
    elif task.id == "flickr":
        write_flickr(root, {"111": [[0, 0, 128, 128], [10, 10, 200, 200]], "222": [[30, 40, 100, 250]]})
    else:
        records = [
            arig_record("AVS/v1s/clipA/frames/0.jpg", "dog", [10, 20], [110, 120]),
            arig_record("AVS/v1s/clipB/frames/3.jpg", "guitar", [0, 0], [224, 224], frame_idx=3),
        ]
        write_arig(root, records, split=task.default_split)
    return root, task.default_split


def _music_avqa(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.music_avqa import make_entry, write_split

    entries = [
        make_entry("00000001", 10, ("Audio", "Counting"), "How many instruments were heard?", "two"),
        make_entry("00000002", 11, ("Audio-Visual", "Existential"), "Is the <Object> playing?", "yes", ["piano"]),
    ]
    write_split(root, task.default_split, entries)
    return root, task.default_split


def _unav(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.unav import Video, write_annotations

    subset = {"test": "test", "val": "validation", "train": "train"}[task.default_split]
    videos = {
        "v1": Video(subset, 60, [("dog barking", 0, 10), ("man speaking", 5, 30)]),
        "v2": Video(subset, 30, [("dog barking", 20, 30)]),
    }
    write_annotations(root, videos)
    return root, task.default_split


def _avsbench(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.avsbench import Video, frames_annotated, random_blob_masks, write_ms3, write_s4

    rng = np.random.default_rng(0)
    split = task.default_split
    n = len(frames_annotated(task.id, split))
    videos = [Video(f"vid{i}_{i}", split, random_blob_masks(rng, n, (16, 12))) for i in range(2)]
    (write_s4 if task.id == "s4" else write_ms3)(root, videos)
    return root, split


def _avss(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.avss import Video, random_label_maps, write_avss

    rng = np.random.default_rng(0)
    split = task.default_split
    # One v1 and one v2 video (5 and 10 frames); one object each keeps the oracle, and so the sweep, small.
    write_avss(root, [Video("a_1", split, "v1s", random_label_maps(rng, 5, max_objects=1)),
                      Video("b_1", split, "v2", random_label_maps(rng, 10, max_objects=1))])  # fmt: skip
    return root, split


def _ref_avs(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.ref_avs import SIDE, Expression, random_masks, write_ref_avs

    rng = np.random.default_rng(0)
    split = task.default_split
    masks = random_masks(rng, (SIDE, SIDE), p_empty=0.3)
    write_ref_avs(root, [Expression(f"vid0_0_10000_dog_{k}", split, masks=masks) for k in (1, 2)])
    return root, split


def _avcap(task: Task, root: Path) -> tuple[Path, str]:
    from crab_eval.layouts.avcap import make_entry, write_split

    entries = [
        make_entry("v1_0.000_10.000", "A man plays the guitar in a room."),
        make_entry("v2_0.000_10.000", "Two dogs bark while a car passes by."),
    ]
    write_split(root, task.default_split, entries)
    return root, task.default_split


# Adapter module (its last name) -> builder.
BUILDERS: dict[str, Builder] = {
    "ave": _ave,
    "avqa": _avqa,
    "avvp": _avvp,
    "classification": _classification,
    "localization": _localization,
    "music_avqa": _music_avqa,
    "unav": _unav,
    "avsbench": _avsbench,
    "avss": _avss,
    "ref_avs": _ref_avs,
    "avcap": _avcap,
}


def _ave_forms(task: Task, split: Split, sample: Sample, work: Path) -> list[Any]:
    # The per-segment form of the contract; the oracle uses the event form.
    names = list(split.context.categories)  # AVE's vocabulary, read by load
    return [{"segments": [names[i] if i < len(names) else "background" for i in sample.target]}]


def _localization_forms(task: Task, split: Split, sample: Sample, work: Path) -> list[Any]:
    # The heatmap form (a .npy beside the prediction file), next to the oracle's box form.
    np.save(work / "map.npy", np.linspace(0, 1, 49, dtype=np.float32).reshape(7, 7))
    return [{"heatmap": "map.npy"}]


# Adapter module -> valid predictions in the contract's forms that the oracle does not use.
ALTERNATE_FORMS: dict[str, Callable[[Task, Split, Sample, Path], list[Any]]] = {
    "ave": _ave_forms,
    "localization": _localization_forms,
}


def alternate_predictions(task: Task, split: Split, sample: Sample, work: Path) -> list[Any]:
    """Valid contract-form predictions of ``sample`` other than the oracle's form (files they need go in ``work``,
    the prediction file's folder); the form ``parse`` gives the target text is added when it differs."""
    forms: list[Any] = []
    for cls in type(task).__mro__:
        maker = ALTERNATE_FORMS.get(cls.__module__.rsplit(".", 1)[-1])
        if maker is not None:
            forms = maker(task, split, sample, work)
            break
    parsed = task.parse(task.target_text(sample), split) if task.text_predictions else None
    if parsed is not None and parsed != task.oracle_prediction(sample) and parsed not in forms:
        forms.append(parsed)
    return forms


def builder_for(task: Task) -> Builder | None:
    """The builder of the first class in ``task``'s MRO whose module has one."""
    for cls in type(task).__mro__:
        builder = BUILDERS.get(cls.__module__.rsplit(".", 1)[-1])
        if builder is not None:
            return builder
    return None


def build_split(task: Task, root: Path) -> tuple[Path, str]:
    """A small valid split of ``task`` under ``root``: ``(data_dir, split)``."""
    builder = builder_for(task)
    if builder is None:
        raise LookupError(f"no fixture builder for task {task.id!r} ({type(task).__module__}); add one here")
    root.mkdir(parents=True, exist_ok=True)
    return builder(task, root)
