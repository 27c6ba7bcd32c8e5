"""Build the committed demo leaderboard: reference baselines on small *fixture* data, beside the published rows.

The fixture data are written by the layout writers (``crab_eval.layouts``) with a fixed seed: a few hundred random
but well-formed samples per task, NOT the official test sets. The baseline rows it produces show that the whole
path works (baseline -> submission -> validate -> score -> page); their numbers are not comparable with the
reported rows, and every such row says so in its name and notes.

    python -m crab_eval.baselines.reference_page --out results/leaderboard
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.baselines.predictors import write_baseline
from crab_eval.layouts import ave as ave_layout
from crab_eval.layouts import avsbench
from crab_eval.layouts import avvp as avvp_layout
from crab_eval.layouts import music_avqa as avqa_layout
from crab_eval.leaderboard.render import build_site
from crab_eval.leaderboard.submission import score_submission, validate

FIXTURE_NOTE = (
    "Scored on small synthetic fixture data written by crab_eval.layouts (seed {seed}), NOT on the "
    "official test sets: these numbers show the pipeline end to end and are not comparable with the "
    "reported rows."
)
# (modality, type) -> (question template, number of template values, answers with their weights)
QUESTIONS = {
    ("Audio", "Counting"): ("How many instruments are sounding in the video?", 0, {"two": 5, "one": 3, "three": 2}),
    ("Audio", "Comparative"): ("Is the <Object> more rhythmic than the <Object>?", 2, {"no": 3, "yes": 2}),
    ("Visual", "Counting"): ("How many <Object> are in the entire video?", 1, {"one": 4, "two": 3, "three": 1}),
    ("Visual", "Location"): ("Where is the <Object>?", 1, {"left": 2, "right": 2, "middle": 1}),
    ("Audio-Visual", "Existential"): ("Is this sound from the instrument in the video?", 0, {"yes": 7, "no": 3}),
    ("Audio-Visual", "Counting"): ("How many sounding <Object> in the video?", 1, {"one": 3, "two": 3, "three": 1}),
    ("Audio-Visual", "Location"): ("Where is the <FL> sounding instrument?", 1, {"left": 3, "right": 2}),
    ("Audio-Visual", "Comparative"): ("Is the <Object> louder than the <Object>?", 2, {"yes": 1, "no": 1}),
    ("Audio-Visual", "Temporal"): (
        "Which instrument sounds at the same time as the <Object>?",
        1,
        {"piano": 3, "violin": 2, "guzheng": 1},
    ),
}
INSTRUMENTS = ("piano", "violin", "cello", "flute", "guzheng", "trumpet")


def _weighted(rng: np.random.Generator, weights: dict[str, int]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def write_fixtures(root: Path, seed: int = 0) -> dict[str, Path]:
    """Fixture data for every task with a layout writer, one folder per task id (a submission data root)."""
    rng = np.random.default_rng(seed)
    cats = ave_layout.OFFICIAL_CATEGORIES[:6]
    cat_w = {c: 6 - i for i, c in enumerate(cats)}
    ave_rows = {}
    for split, n in (("train", 300), ("val", 40), ("test", 80)):
        rows = []
        for i in range(n):
            start = int(rng.integers(0, 6))
            rows.append((_weighted(rng, cat_w), f"{split[:2]}{i:09d}", start, int(rng.integers(start + 1, 11))))
        ave_rows[split] = rows
    ave_layout.write_dataset(root / "ave", ave_rows)
    qa = {}
    qid = 0
    for split, n in (("train", 400), ("val", 60), ("test", 120)):
        entries = []
        for i in range(n):
            qtype = list(QUESTIONS)[int(rng.integers(0, len(QUESTIONS)))]
            template, n_values, answers = QUESTIONS[qtype]
            values = [INSTRUMENTS[int(rng.integers(0, len(INSTRUMENTS)))] for _ in range(n_values)]
            qid += 1
            entries.append(
                avqa_layout.make_entry(f"{split}{i:05d}", qid, qtype, template, _weighted(rng, answers), values)
            )
        qa[split] = entries
    for split, entries in qa.items():
        avqa_layout.write_split(root / "music_avqa", split, entries)
    labels = avvp_layout.CATEGORIES[:5]
    videos: dict[str, dict[str, dict[str, list[tuple[str, int, int]]]]] = {}
    for split, n in (("val", 60), ("test", 40)):
        videos[split] = {}
        for i in range(n):
            video: dict[str, list[tuple[str, int, int]]] = {}
            for modality in ("audio", "visual"):
                if rng.random() < 0.8:
                    onset = int(rng.integers(0, 8))
                    video[modality] = [
                        (
                            labels[int(rng.integers(0, 3 if modality == "audio" else 5))],
                            onset,
                            int(rng.integers(onset + 1, 11)),
                        )
                    ]
            videos[split][f"{split[0]}{i:010d}_0_10"] = video
    avvp_layout.write_dataset(root / "avvp", videos)
    for task, writer in (("s4", avsbench.write_s4), ("ms3", avsbench.write_ms3)):
        vids: list[Any] = []
        for split, n in (("train", 4), ("test", 8)):
            n_frames = len(avsbench.frames_annotated(task, split))
            vids.extend(
                avsbench.Video(f"{task}_{split}_{i}", split, avsbench.random_blob_masks(rng, n_frames))
                for i in range(n)
            )
        writer(root / task, vids)
    return {task: root / task for task in ("ave", "music_avqa", "avvp", "s4", "ms3")}


def _submission(folder: Path, name: str, kind: str, seed: int) -> None:
    meta = {
        "schema_version": 1,
        "model": f"{name} (fixture data)",
        "team": "crab-eval reference baselines",
        "paper": "crab-eval docs/leaderboard.md (reference predictors)",
        "parameters": 0,
        "llm_backbone": "none",
        "encoders": {"audio": "none", "visual": "none"},
        "training_data": ["train split of each task (AVVP: val, which has the dense labels)"],
        "variant": "single-task",
        "date": "2025-01-01",
        "notes": f"crab-eval baseline --kind {kind}. " + FIXTURE_NOTE.format(seed=seed),
    }
    (folder / "submission.json").write_text(json.dumps(meta, indent=2))


def build(out: Path, seed: int = 0, generated: str | None = None) -> dict[str, Path]:
    out = Path(out)
    entries = out / "entries"
    if entries.exists():
        shutil.rmtree(entries)
    with tempfile.TemporaryDirectory(prefix="crab-eval-reference-") as tmp:
        root = Path(tmp) / "data"
        data = write_fixtures(root, seed)
        for kind, name in (
            ("majority", "Majority baseline"),
            ("prior", "Class-prior baseline"),
            ("random", "Random baseline"),
            ("blind", "Blind (question-only) baseline"),
        ):
            sub = Path(tmp) / f"{kind}-submission"
            sub.mkdir()
            tasks = ["music_avqa"] if kind == "blind" else list(data)
            for task in tasks:
                train = "val" if task == "avvp" else "train"
                write_baseline(task, data[task], kind, sub / f"{task}.jsonl", train_split=train, seed=seed)
            _submission(sub, name, kind, seed)
            validate(sub, root)
            score_submission(sub, root, entries / f"{kind}.json")
    return build_site(entries, out, generated=generated)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/leaderboard", help="site folder (entries go to OUT/entries)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = build(Path(args.out), args.seed)
    print(f"wrote {written['html']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
