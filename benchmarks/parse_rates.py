"""Parse rate of each answer-extraction tier (strict, flexible) on a fixed set of answer styles; prints a table.

    python benchmarks/parse_rates.py [--show]

For each text task, a small split holds one sample per answer below (all with the same ground truth); the answers
are written in a client's format (Crab, Crab+ or generic JSON Lines, as that client would write the task), converted
with ``crab_eval.clients.convert`` and scored under both tiers: the table gives, per task, how many answers each tier
reads and the main metric under each. The answers are hand-written styles: Crab's templates (with its special-token
padding), the forms in Crab's README and gold strings, the free-form answers of models not trained on the templates
(as in the issue: "The answer is two", ``2``, ``[30,40,150,200]``, "Audio: Chainsaw, [0,10]"), and ambiguous or
truncated text that no tier should read. They are fixtures, not a sample of any model's outputs: the rates say what
each tier reads, not how often a model writes it. ``--show`` prints every answer with what each tier made of it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crab_eval.clients import convert, write_predictions
from crab_eval.layouts import clients as fmt
from crab_eval.registry import get_task
from crab_eval.scoring import load_split, score

AVE_T = "The audible and visible event in the video is <event> {} </event>, and the time range is <range> {} </range>."
ANSWERS: dict[str, list[str]] = {
    "ave": [  # gold: Bark, 2-5
        AVE_T.format("Bark", "2,5"),
        fmt.crab_decoded(AVE_T.format("Bark", "2,5"), pad=2),
        "A dog barks in the clip. <event> bark </event> <range> [2,5] </range>.",
        "event:Bark start_time:2 end_time:5",
        "Bark, [2,5]",
        "The event is Bark, between 2 and 5 seconds.",
        "Bark (2-5 s)",
        "A dog is barking from 2 to 5 seconds.",
        "Bark or Cat, [2,5]",
        "Bark",
        "<event> Bark </event> <range> 2,",
        "Bark, [2.5, 5]",
    ],
    "music_avqa": [  # gold: two (counting), yes (existential), left (location), in that order of groups
        "So the answer is <answer> two </answer>.",
        "<answer> 2 </answer>",
        "2",
        "The answer is two",
        "There are two instruments playing.",
        "two</s>",
        "Maybe one, maybe three.",
        "yes</s>",
        "Yes, the piano is playing.",
        "<answer> yes",
        "The piano is on the left.",
        "It is on the left side of the violin, not the right.",
        "I cannot tell.",
    ],
    "avqa": [  # options dog, cat, cow, bird; gold: dog
        "So the answer is <answer> dog </answer>.",
        "A",
        "(A) dog",
        "The answer is A.",
        "dog",
        "It is a dog barking.",
        "Either a dog or a cat.",
        "An animal.",
    ],
    "avvp": [  # gold: audio Speech 0-4, visual Dog 2-8
        "<audio_event>Speech,(0 4)</audio_event> <visual_event>Dog,(2 8)</visual_event>",
        "<audio>Speech,(0 4)</audio> and <visual>Dog,(2 8)</visual>",
        "<audio_event>Speech,(0 4)</visual_event>",
        "Audio: Speech, [0,4]; Visual: Dog, [2,8]",
        "The audio contains speech from 0 to 4 seconds and the visual shows a dog from 2 to 8 seconds.",
        "Speech,Dog",
        "Speech from 0 to 4 and a dog from 2 to 8.",
        "Guitar",
    ],
    "unav": [  # gold: dog barking 0-10, man speaking 5-30
        "<event>dog barking, (0 10)</event><event>man speaking, (5 30)</event>",
        "dog barking from 0 to 10 seconds, man speaking from 5 to 30 seconds",
        "dog barking: [0, 10]; man speaking: [5, 30]",
        "From 0 to 10 s, dog barking.",
        "dog barking",
    ],
    "arig": [  # gold box (10,20)-(110,120) on the 224 x 224 frame
        "The sounding object is dog. Its coordinates are <obj>(10,20)(110,120)</obj>.",
        "[10,20,110,120]",
        "<|box_start|>(10,20),(110,120)<|box_end|>",
        "The dog is located at (10, 20) to (110, 120).",
        "[10,20,110,120] or [0,0,50,50]",
        "[10,20,250,120]",
        "The dog is in the middle.",
    ],
    "meld": [  # labels neutral, joy, anger; gold: joy
        "<answer>joy</answer>.",
        "joy",
        "The emotion is joy.",
        "Joy, not anger.",
        "The speaker seems happy.",
        "Either joy or anger.",
    ],
    "avcap": [
        fmt.crab_decoded("A man plays the guitar.", pad=3),
        "A man plays the guitar.<|endoftext|>",
        fmt.crab_decoded("", pad=1),
    ],
}


def _ave(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.ave import write_dataset

    write_dataset(root, {"test": [("Bark", f"v{i}", 2, 5) for i in range(len(answers))]}, annotations=False)
    lines = [fmt.crab_plus({"task_name": "ave", "output": "event:Bark start_time:2 end_time:5"}, a) for a in answers]
    return root, "crab-plus", [fmt.append_jsonlines(root / "inference_ave.jsonl", lines)]


def _music_avqa(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.music_avqa import make_entry, write_split

    groups = [(("Audio", "Counting"), "How many instruments are sounding?", "two", []),
              (("Audio-Visual", "Existential"), "Is the <Object> playing?", "yes", ["piano"]),
              (("Visual", "Location"), "Where is the <Object>?", "left", ["piano"])]  # fmt: skip
    group_of = [0] * 7 + [1] * 3 + [2] * 3
    entries = [make_entry(f"v{i}", i, *groups[g][:3], groups[g][3]) for i, g in enumerate(group_of)]
    write_split(root, "test", entries)
    lines = [
        fmt.crab_plus({"vid": f"v{i}", "qid": i, "type": "", "task_name": "avqa", "output": groups[g][2]}, a)
        for i, (g, a) in enumerate(zip(group_of, answers, strict=True))
    ]
    return root, "crab-plus", [fmt.append_jsonlines(root / "inference_avqa.jsonl", lines)]


def _avqa(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.avqa import make_entry, write_split

    choices = ["dog", "cat", "cow", "bird"]
    entries = [make_entry(i, f"v{i}", "What makes the sound?", choices, 0, "Which") for i in range(len(answers))]
    write_split(root, "val", entries)  # the task's default split
    instruction = f"Please answer the question based on the options: What makes the sound?, options:{choices}"
    lines = [
        fmt.crab_plus({"vid": i, "instruction": instruction, "name": f"v{i}", "task_name": "avqa_thu",
                       "type": "Which", "relation": "Both", "output": 0}, a)
        for i, a in enumerate(answers)
    ]  # fmt: skip
    return root, "crab-plus", [fmt.append_jsonlines(root / "inference_avqa_thu.jsonl", lines)]


def _avvp(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.avvp import write_dataset

    video = {"audio": [("Speech", 0, 4)], "visual": [("Dog", 2, 8)]}
    write_dataset(root, {"test": {f"V{i:010d}_0_10": video for i in range(len(answers))}})
    lines = [fmt.crab_avvp(f"V{i:010d}", "Speech,Dog", a) for i, a in enumerate(answers)]
    return root, "crab", [fmt.append_jsonlines(root / "infer_results.jsonl", lines)]


def _unav(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.unav import Video, write_annotations

    events = [("dog barking", 0, 10), ("man speaking", 5, 30)]
    write_annotations(root, {f"v{i}": Video("test", 60, events) for i in range(len(answers))})
    path = root / "answers.jsonl"
    path.write_text("".join(json.dumps({"id": f"v{i}", "text": a}) + "\n" for i, a in enumerate(answers)))
    return root, "jsonl", [path]


def _arig(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.localization import arig_record, write_arig

    frames = [f"AVS/v1s/clip{i}_1/frames/0.jpg" for i in range(len(answers))]
    write_arig(root, [arig_record(f, "dog", [10, 20], [110, 120]) for f in frames], split="test")
    gold = "The sounding object is dog. Its coordinates are <obj>(10,20)(110,120)</obj>."
    lines = [
        fmt.crab_plus({"frame_path": fmt.plus_media("/root", "arig", None, f), "idx": 0, "tot": 5, "task_name": "arig",
                       "output": gold}, a)
        for f, a in zip(frames, answers, strict=True)
    ]  # fmt: skip
    return root, "crab-plus", [fmt.append_jsonlines(root / "inference_arig.jsonl", lines)]


def _meld(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.classification import make_entry, write_split

    labels = ["joy"] * len(answers) + ["neutral", "anger"]  # the other labels exist in the split
    write_split(root, "test", [make_entry("meld", lab, [f"c{i}"]) for i, lab in enumerate(labels)])
    lines = [fmt.crab_plus({"task_name": "meld", "output": "<answer>joy</answer>."}, a) for a in answers]
    return root, "crab-plus", [fmt.append_jsonlines(root / "inference_meld.jsonl", lines)]


def _avcap(root: Path, answers: list[str]) -> tuple[Path, str, list[Path]]:
    from crab_eval.layouts.avcap import make_entry, write_split

    write_split(root, "test", [make_entry(f"v{i}", "A man plays the guitar.") for i in range(len(answers))])
    lines = [fmt.crab_avcap(f"v{i}", "A man plays the guitar.", a) for i, a in enumerate(answers)]
    return root, "crab", [fmt.append_jsonlines(root / "inference_results_val.jsonl", lines)]


BUILDERS: dict[str, Callable[[Path, list[str]], tuple[Path, str, list[Path]]]] = {
    "ave": _ave, "music_avqa": _music_avqa, "avqa": _avqa, "avvp": _avvp, "unav": _unav, "arig": _arig,
    "meld": _meld, "avcap": _avcap,
}  # fmt: skip


def measure(task_id: str, root: Path, show: bool) -> dict[str, Any]:
    answers = ANSWERS[task_id]
    data, source, inputs = BUILDERS[task_id](root, answers)
    conversion = convert(source, task_id, data, inputs)
    preds = root / "converted.jsonl"
    write_predictions(conversion.rows, preds)
    task = get_task(task_id)
    split_name = conversion.report.split
    results = {tier: score(task_id, data, split_name, preds, extract=tier) for tier in ("strict", "flexible")}
    main = results["strict"].main_metric
    if show:
        split = load_split(task, data, split_name)
        by_id = {s.id: s for s in split}
        for row in conversion.rows:
            sample = by_id[row["id"]]
            got = {t: task.extract(row["text"], sample, split, t) for t in ("strict", "flexible")}
            print(f"{task_id:11s} {row['text']!r}")
            for tier, parsed in got.items():
                print(f"{'':11s}   {tier}: {parsed}")
    n = len(answers)
    return {
        "task": task_id,
        "source": source,
        "answers": n,
        **{f"{t}_parsed": n - results[t].n_unparsed for t in results},
        "metric": main,
        **{f"{t}_{main}": results[t].metrics[main] for t in results},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", action="store_true", help="print every answer with what each tier read")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task_id in ANSWERS:
            rows.append(measure(task_id, Path(tmp) / task_id, args.show))
    print(f"{'task':11s} {'from':9s} {'answers':>7s} {'strict':>13s} {'flexible':>13s}  main metric strict -> flexible")
    total = {"answers": 0, "strict": 0, "flexible": 0}
    for r in rows:
        n, s, f = r["answers"], r["strict_parsed"], r["flexible_parsed"]
        total["answers"] += n
        total["strict"] += s
        total["flexible"] += f
        m = r["metric"]
        print(f"{r['task']:11s} {r['source']:9s} {n:7d} {s:4d} ({100 * s / n:5.1f}%) {f:4d} ({100 * f / n:5.1f}%)"
              f"  {m} {r['strict_' + m]:.2f} -> {r['flexible_' + m]:.2f}")  # fmt: skip
    n, s, f = total["answers"], total["strict"], total["flexible"]
    print(f"{'all':11s} {'':9s} {n:7d} {s:4d} ({100 * s / n:5.1f}%) {f:4d} ({100 * f / n:5.1f}%)")


if __name__ == "__main__":
    main()
