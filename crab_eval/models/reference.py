"""The reference predictors of ``crab_eval.baselines`` as models: ``majority``, ``prior``, ``random``, ``blind``.

Each is fitted once per (task, split) on the first request, exactly as ``crab-eval baseline`` fits it (on
``train_split``, or where the split has no training split on the one ``fit_plan`` finds, or by cross-fitting), and
answers every request from that fit. They read no media; their answers are structured predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from crab_eval.models.base import Model, Request, Response


class Reference(Model):
    kind: ClassVar[str]

    def __init__(self, train_split: str | None = None, seed: int = 0, folds: int = 2) -> None:
        self.train_split, self.seed, self.folds = train_split, seed, folds
        self._fits: dict[tuple[str, str], dict[str, Any]] = {}
        self._summaries: dict[str, dict[str, Any]] = {}

    def _fit(self, request: Request) -> dict[str, Any]:
        from crab_eval.baselines.predictors import fit_plan, predict

        key = (request.task.id, request.split.name)
        if key not in self._fits:
            task, data, split = request.task.id, request.data_dir, request.split.name
            if self.train_split is not None:
                plan: dict[str, Any] = {"train_split": self.train_split, "cross_fit": 0}
            else:
                plan = fit_plan(task, data, split, self.folds)
            rows, summary = predict(task, data, self.kind, split=split, seed=self.seed, **plan)
            self._fits[key] = {row["id"]: row["prediction"] for row in rows}
            self._summaries[f"{task}/{split}"] = summary
        return self._fits[key]

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(prediction=self._fit(r).get(r.sample.id)) for r in requests]

    def run_info(self) -> dict[str, Any]:
        return {"model": f"baseline-{self.kind}", "variant": "baseline", "seed": self.seed}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "fits": dict(self._summaries)}


class Majority(Reference):
    id = kind = "majority"
    description = "the most common training answer for every sample (crab_eval.baselines)"


class Prior(Reference):
    id = kind = "prior"
    description = "an answer drawn from the training distribution of answers (seeded)"


class Random(Reference):
    id = kind = "random"
    description = "an answer drawn uniformly from the distinct training answers (seeded)"


class Blind(Reference):
    id = kind = "blind"
    description = "question answering from the question text alone (majority answer of the same question)"
