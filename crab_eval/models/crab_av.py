"""``crab-av``: this project's own checkpoints (``crab-eval train``), answering as ``crab-eval predict`` does.

``checkpoint`` is a run folder (its newest checkpoint) or one checkpoint folder. Text tasks get the raw answer;
mask tasks get the mask head's masks (or the raw answer when it lacks its mask tokens: unparsed, counted). The run
metadata come from the run's config: ``model`` is the run folder's name, ``variant`` single or unified by the
number of training tasks, ``adapter`` and ``seed`` as trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crab_eval.models.base import Model, Request, Response, seed_batch


class CrabAV(Model):
    id = "crab-av"
    description = "a checkpoint of this project's AV-LLM (crab-eval train): text answers, and masks for mask tasks"

    def __init__(self, checkpoint: Path, device: str | None = None, features: str | None = None) -> None:
        from crab_eval.model.checkpoint import resolve_checkpoint
        from crab_eval.model.data import default_features
        from crab_eval.model.predict import Predictor

        self.run_dir, self.checkpoint = resolve_checkpoint(checkpoint)
        predictor = Predictor(checkpoint, device)
        if features is not None:  # "module:function", as train.features in a run config
            predictor.features = default_features(None, features)
        self.predictor = predictor

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        generation = dict(requests[0].generation)
        max_new_tokens = int(generation.pop("max_new_tokens", 64))
        first = requests[0]
        seed_batch(generation, requests)
        rows = self.predictor.rows(
            first.task, first.split, [r.sample for r in requests], len(requests), max_new_tokens, **generation
        )
        return [Response.from_row(row) for row in rows]

    def run_info(self) -> dict[str, Any]:
        config = self.predictor.config
        variant = "unified" if len(config.task_ids) > 1 else "single"
        return {"model": self.run_dir.name, "variant": variant, "adapter": config.adapter.kind, "seed": config.seed}

    def describe(self) -> dict[str, Any]:
        from crab_eval.provenance import file_sha256

        config = self.predictor.config
        weights = self.checkpoint / "trainable.safetensors"
        return {
            "run_dir": str(self.run_dir),
            "checkpoint": self.checkpoint.name,
            "weights_sha256": file_sha256(weights),
            "trained_tasks": list(config.task_ids),
            "device": str(self.predictor.device),
        }
