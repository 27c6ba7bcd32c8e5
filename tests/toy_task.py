"""A minimal task for testing the harness core without any benchmark's quirks.

Annotation file ``toy_{split}.tsv``: ``id<TAB>video<TAB>label`` per line. Prediction ``{"label": str}``; text
template ``<answer> LABEL </answer>``. Metric: accuracy. Tests register it through the ``toy`` fixture
(tests/conftest.py), which restores the registry afterwards; a worker process of a test calls ``register()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crab_eval.additive import Additive
from crab_eval.errors import AnnotationError, PredictionError
from crab_eval.registry import TASKS
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task, require_file

_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.S)


class ToyTask(Task):
    id = "toy"
    version = "1"
    description = "test-only task"
    splits = ("test", "val")
    metrics = (MetricSpec("accuracy"), MetricSpec("error", higher_is_better=False))
    main_metric = "accuracy"

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        return [data_dir / f"toy_{split}.tsv"]

    def read_split(self, data_dir: Path, split: str) -> Split:
        path = require_file(data_dir / f"toy_{split}.tsv")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise AnnotationError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
        samples = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            parts = line.split("\t")
            if len(parts) != 3:
                raise AnnotationError(f"expected 3 tab-separated fields, got {len(parts)}", path, line_no)
            samples.append(Sample(id=parts[0], instruction="What is it?", target=parts[2], group=parts[1]))
        return Split(self.id, split, data_dir, samples)

    def target_text(self, sample: Sample) -> str:
        return f"<answer> {sample.target} </answer>"

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        match = _ANSWER.search(text)
        return None if match is None else {"label": match.group(1)}

    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> Any:
        if not isinstance(obj, dict) or not isinstance(obj.get("label"), str):
            raise PredictionError('expected {"label": STRING}')
        return obj["label"]

    def empty_prediction(self, sample: Sample) -> Any:
        return ""

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {"label": sample.target}

    def score_sample(self, sample: Sample, prediction: Any) -> dict[str, Any]:
        return {"correct": int(prediction == sample.target)}

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        acc = 100.0 * sum(s["correct"] for s in stats) / len(stats)
        return {"accuracy": acc, "error": 100.0 - acc}

    additive = Additive(
        columns=lambda stats: np.array([[s["correct"], 1] for s in stats], dtype=np.float64),
        finish=lambda sums: {"accuracy": (acc := 100.0 * sums[:, 0] / sums[:, 1]), "error": 100.0 - acc},
    )


def register() -> None:
    """Register ``toy`` in this process unless it is (worker processes of tests)."""
    if "toy" not in TASKS.registered():
        TASKS.register(ToyTask)
