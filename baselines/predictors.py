"""Reference predictors: real prediction files for any task, fitted on its training split via the Task interface.

- ``majority``: the most common contract-form answer of the training split (``oracle_prediction`` of every train
  sample, compared as canonical JSON), given to every test sample.
- ``prior``: an answer drawn per test sample from the training distribution of answers (seeded).
- ``random``: an answer drawn uniformly from the distinct training answers (seeded).
- ``blind``: text only, for question answering: the majority answer of the same question in train, else of the
  same question type (``meta["qtype"]`` / ``meta["type"]``), else the overall majority. It needs no media.

Tasks whose answer depends on the sample's shape (segmentation masks, COCO RLE in the contract) cannot reuse a
training answer: a mask must have the ground truth's size. For them the predictors keep the structure of the
test sample's own contract form (how many frames, which size — nothing else is read from it) and fill every mask:
``majority`` -> all empty, ``prior`` -> a centre box of half the height and width, ``random`` -> one uniformly
random box per mask (seeded). ``blind`` is refused there.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.errors import CrabEvalError, PredictionError
from crab_eval.io import write_jsonl
from crab_eval.registry import get_task
from crab_eval.scoring import load_split
from crab_eval.tasks.base import Sample, Split, Task

KINDS = ("majority", "prior", "random", "blind")


class NotApplicable(CrabEvalError):
    """The baseline kind cannot be made for this task (e.g. the blind baseline where there are no questions)."""


_TYPE_KEYS = ("qtype", "question_type", "type")


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _is_rle(obj: Any) -> bool:
    return isinstance(obj, dict) and set(obj) == {"size", "counts"}


def contains_rle(obj: Any) -> bool:
    if _is_rle(obj):
        return True
    if isinstance(obj, dict):
        return any(contains_rle(v) for v in obj.values())
    if isinstance(obj, list):
        return any(contains_rle(v) for v in obj)
    return False


class _BoxEncoder:
    """COCO RLE of one axis-aligned box in an h x w mask (cached: most masks of a task share one size)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, ...], dict[str, Any]] = {}

    def __call__(self, h: int, w: int, y0: int = 0, y1: int = 0, x0: int = 0, x1: int = 0) -> dict[str, Any]:
        key = (h, w, y0, y1, x0, x1)
        if key not in self._cache:
            from pycocotools import mask as mask_utils

            grid = np.zeros((h, w), dtype=np.uint8, order="F")
            grid[y0:y1, x0:x1] = 1
            rle = mask_utils.encode(grid)
            self._cache[key] = {"size": [int(h), int(w)], "counts": rle["counts"].decode("ascii")}
        return dict(self._cache[key])


def fill_masks(obj: Any, fill: Callable[[int, int], dict[str, Any]]) -> Any:
    """``obj`` with every RLE replaced by ``fill(h, w)``; lists, dicts and other values kept as they are."""
    if _is_rle(obj):
        h, w = (int(v) for v in obj["size"])
        return fill(h, w)
    if isinstance(obj, dict):
        return {k: fill_masks(v, fill) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fill_masks(v, fill) for v in obj]
    return obj


def _question_type(sample: Sample) -> str | None:
    for key in _TYPE_KEYS:
        if key in sample.meta:
            return canonical(sample.meta[key])
    return None


def _majority(counter: Counter[str]) -> str:
    # Counter.most_common keeps first-seen order among ties, so the result follows the training file's order.
    return counter.most_common(1)[0][0]


def _checked(task: Task, split: Split, sample: Sample, prediction: Any, base_dir: Path) -> Any:
    task.check_prediction(json.loads(canonical(prediction)), sample, split, base_dir)
    return prediction


class _MaskPredictor:
    def __init__(self, kind: str, rng: np.random.Generator):
        self.kind, self.rng, self.box = kind, rng, _BoxEncoder()

    def empty(self, h: int, w: int) -> dict[str, Any]:
        return self.box(h, w)

    def centre(self, h: int, w: int) -> dict[str, Any]:
        return self.box(h, w, h // 4, h - h // 4, w // 4, w - w // 4)

    def random_box(self, h: int, w: int) -> dict[str, Any]:
        y0, y1 = sorted(int(v) for v in self.rng.integers(0, h + 1, size=2))
        x0, x1 = sorted(int(v) for v in self.rng.integers(0, w + 1, size=2))
        return self.box(h, w, y0, y1, x0, x1)

    def predict(self, task: Task, split: Split, sample: Sample, base_dir: Path) -> Any:
        template = task.oracle_prediction(sample)  # read for its structure and mask sizes only
        fill = {"majority": self.empty, "prior": self.centre, "random": self.random_box}[self.kind]
        prediction = fill_masks(template, fill)
        try:
            return _checked(task, split, sample, prediction, base_dir)
        except PredictionError:
            # e.g. class maps where two boxes would claim the same pixel: fall back to the all-empty prediction.
            return _checked(task, split, sample, fill_masks(template, self.empty), base_dir)


def predict(
    task_id: str,
    data_dir: str | Path,
    kind: str,
    split: str | None = None,
    train_split: str = "train",
    seed: int = 0,
    cross_fit: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Prediction lines ``{"id", "prediction"}`` for every sample of ``split``, and a summary of the fit.

    ``cross_fit=K`` (K >= 2) is for tasks without public training labels: the scored split is cut into K folds
    (sample i in fold i mod K) and each fold is predicted from the answers of the other folds only, so no sample
    ever sees its own label. ``train_split`` is then ignored.
    """
    if kind not in KINDS:
        raise CrabEvalError(f"unknown baseline kind {kind!r}; kinds: {', '.join(KINDS)}")
    task = get_task(task_id)
    split = split or task.default_split
    data_dir = Path(data_dir)
    samples = load_split(task, data_dir, split)
    rng = np.random.default_rng(seed)
    summary: dict[str, Any] = {"task": task.id, "split": split, "kind": kind, "seed": seed, "n_samples": len(samples)}
    if contains_rle(task.oracle_prediction(samples[0])):
        if kind == "blind":
            raise NotApplicable(f"the blind baseline answers questions from text; task {task.id!r} predicts masks")
        masks = _MaskPredictor(kind, rng)
        summary["fit"] = {
            "majority": "all-empty masks",
            "prior": "centre box (half height and width)",
            "random": "uniform random box per mask",
        }[kind] + " of the ground truth's size"
        rows = [{"id": s.id, "prediction": masks.predict(task, samples, s, data_dir)} for s in samples]
        return rows, summary
    if cross_fit == 1 or cross_fit < 0:
        raise CrabEvalError(f"cross_fit must be 0 (fit on a training split) or at least 2 folds, not {cross_fit}")
    chosen: list[str]
    if cross_fit >= 2:
        by_index: dict[int, str] = {}
        fits = []
        for fold in range(cross_fit):
            train = [s for i, s in enumerate(samples) if i % cross_fit != fold]
            held = [i for i in range(len(samples)) if i % cross_fit == fold]
            fit: dict[str, Any] = {}
            answers = _answers(task, kind, train, [samples[i] for i in held], rng, fit)
            by_index.update(zip(held, answers, strict=True))
            fits.append(fit)
        chosen = [by_index[i] for i in range(len(samples))]
        summary.update(train_split=f"{split} ({cross_fit}-fold cross-fit)", cross_fit=cross_fit, folds=fits)
    else:
        if train_split not in task.splits:
            raise CrabEvalError(
                f"task {task.id!r} has no split {train_split!r} to fit on; splits: "
                f"{', '.join(task.splits)} (use --train-split)"
            )
        if train_split == split:
            raise CrabEvalError(f"fitting on the scored split {split!r} would read its labels; use cross_fit")
        train = load_split(task, data_dir, train_split)
        summary["train_split"] = train_split
        chosen = _answers(task, kind, train, samples, rng, summary)
    rows = []
    for sample, answer in zip(samples, chosen, strict=True):
        prediction = json.loads(answer)
        try:
            _checked(task, samples, sample, prediction, data_dir)
        except PredictionError as exc:
            raise CrabEvalError(
                f"{kind} baseline: the training answer {answer} is not a valid prediction for "
                f"{task.id} sample {sample.id!r} ({exc})"
            ) from None
        rows.append({"id": sample.id, "prediction": prediction})
    return rows, summary


def _answers(
    task: Task,
    kind: str,
    train: Sequence[Sample],
    samples: Sequence[Sample],
    rng: np.random.Generator,
    fit: dict[str, Any],
) -> list[str]:
    """One canonical training answer per sample of ``samples``, chosen by ``kind``; ``fit`` receives the counts."""
    answers = [canonical(task.oracle_prediction(s)) for s in train]
    counts = Counter(answers)
    distinct = list(counts)
    fit.update(n_train=len(train), n_distinct_answers=len(distinct))
    if kind == "majority":
        return [_majority(counts)] * len(samples)
    if kind == "prior":
        probs = np.array([counts[a] for a in distinct], dtype=np.float64) / len(answers)
        return [distinct[i] for i in rng.choice(len(distinct), size=len(samples), p=probs)]
    if kind == "random":
        return [distinct[i] for i in rng.integers(0, len(distinct), size=len(samples))]
    return _blind(task, train, answers, samples, fit)


def _blind(
    task: Task, train: Sequence[Sample], answers: Sequence[str], samples: Sequence[Sample], summary: dict[str, Any]
) -> list[str]:
    if len({s.instruction for s in train}) < 2 and all(_question_type(s) is None for s in train):
        raise NotApplicable(
            f"the blind baseline needs questions: task {task.id!r} has one fixed instruction and no question type"
        )
    by_question: dict[str, Counter[str]] = defaultdict(Counter)
    by_type: dict[str | None, Counter[str]] = defaultdict(Counter)
    for sample, answer in zip(train, answers, strict=True):
        by_question[sample.instruction][answer] += 1
        by_type[_question_type(sample)][answer] += 1
    overall = _majority(Counter(answers))
    used: Counter[str] = Counter()
    chosen = []
    for sample in samples:
        if sample.instruction in by_question:
            chosen.append(_majority(by_question[sample.instruction]))
            used["same question"] += 1
        elif _question_type(sample) in by_type:
            chosen.append(_majority(by_type[_question_type(sample)]))
            used["same question type"] += 1
        else:
            chosen.append(overall)
            used["overall majority"] += 1
    summary["fit"] = {"answered_from": dict(used)}
    return chosen


def fit_plan(task_id: str, data_dir: str | Path, split: str | None = None, folds: int = 2) -> dict[str, Any]:
    """Where to fit a baseline for ``split``: ``train`` when its files are present, else another split that is
    present (e.g. AVVP's ``val``, the only split besides ``test`` with dense labels), else ``folds``-fold
    cross-fitting on ``split`` itself (VGG-SS has test annotations only). Keyword arguments for ``predict``.
    """
    task = get_task(task_id)
    split = split or task.default_split
    data_dir = Path(data_dir)
    candidates = sorted((s for s in task.splits if s != split), key=lambda s: (s != "train", s != "val"))
    for candidate in candidates:
        if all(Path(f).is_file() for f in task.annotation_files(data_dir, candidate)):
            return {"train_split": candidate, "cross_fit": 0}
    return {"train_split": split, "cross_fit": folds}


def write_baseline(
    task_id: str,
    data_dir: str | Path,
    kind: str,
    out: str | Path,
    split: str | None = None,
    train_split: str = "train",
    seed: int = 0,
    cross_fit: int = 0,
) -> dict[str, Any]:
    rows, summary = predict(
        task_id, data_dir, kind, split=split, train_split=train_split, seed=seed, cross_fit=cross_fit
    )
    write_jsonl(out, rows)
    return summary
