"""Inference: batched greedy generation -> the scoring contract's prediction file.

Text tasks get ``{"id", "text"}`` (the raw answer; the task's parser reads it at scoring time). Mask tasks get
``{"id", "prediction": {"masks": [RLE, ...]}}``: the answer is generated, run once more to read the hidden states of
its mask tokens, and the mask head decodes one mask per annotated frame at the ground truth's size (the number and
size of the masks are read from ``task.oracle_prediction``; nothing else of the ground truth is used). An answer
without all mask tokens is written as its raw ``text``: the scorer counts it as unparsed, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from crab_eval.errors import CrabEvalError
from crab_eval.io import atomic_open
from crab_eval.model.checkpoint import load_for_inference
from crab_eval.model.data import Collator, ExampleBuilder, FeatureFn, TaskData, default_features, frame_targets
from crab_eval.model.mask_head import frame_indices, masks_to_rles
from crab_eval.registry import get_task
from crab_eval.scoring import load_split
from crab_eval.tasks.base import Split


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Predictor:
    """A loaded checkpoint that answers samples: ``rows(task, split, samples)`` gives the prediction file's lines.
    ``crab-eval predict`` and the ``crab-av`` model of ``crab-eval evaluate`` both run through it."""

    def __init__(self, checkpoint: str | Path, device: str | None = None, features: FeatureFn | None = None) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model, self.tokenizer, self.config = load_for_inference(checkpoint)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.features = features or default_features(self.config.train.feature_cache, self.config.train.features)

    def task_index(self, task_id: str) -> int:
        """The task's index for the adapters' routing; a task the model never trained on runs as task 0 (adapters
        without a task gate), while MoE-LoRA needs its task embedding."""
        config = self.config
        if task_id in config.task_ids:
            return config.task_ids.index(task_id)
        if config.adapter.kind == "moelora":
            raise CrabEvalError(f"MoE-LoRA model was not trained on {task_id!r} (tasks: {', '.join(config.task_ids)})")
        return 0

    @torch.no_grad()
    def rows(
        self,
        task: Any,
        split: Split,
        samples: Sequence[Any],
        batch_size: int = 8,
        max_new_tokens: int = 64,
        progress: Any = None,
        **generate_kwargs: Any,
    ) -> list[dict[str, Any]]:
        """One prediction line per sample of ``samples`` (samples of ``split``); ``progress(n)`` after each batch."""
        model, tokenizer = self.model, self.tokenizer
        task_index = self.task_index(task.id)
        builder = ExampleBuilder([TaskData(task, split)], self.features, self.config.model.mask_train_size)
        collator: Collator | None = None
        # Work items: one per sample, or one per annotated frame where the task asks frame by frame (AVSBench).
        items = [(s, k) for s in samples for k in (range(len(frame_targets(task, s) or [])) or [None])]
        results: dict[str, list[tuple[int | None, Any]]] = {s.id: [] for s in samples}
        for chunk in _chunks(items, batch_size):
            examples = [builder.build(task_index, task, split.data_dir, s, False, k) for s, k in chunk]
            if collator is None:
                collator = model.collator(tokenizer, examples[0], self.config.train.max_length)
            batch = {key: v.to(self.device) for key, v in collator.prompt_batch(examples).items()}
            gen = model.generate(batch, max_new_tokens, tokenizer, **generate_kwargs)
            texts = tokenizer.batch_decode(gen["ids"], skip_special_tokens=True)
            if task.text_predictions:
                outputs: list[Any] = texts
            else:
                outputs = _mask_outputs(model, task, chunk, batch, gen, texts, tokenizer)
            for (s, k), output in zip(chunk, outputs, strict=True):
                results[s.id].append((k, output))
            if progress is not None:
                progress(len(chunk))
        return [_row(task, s, results[s.id]) for s in samples]


def predict(
    checkpoint: str | Path,
    task_id: str,
    data_dir: str | Path,
    split: str,
    out: str | Path,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    features: FeatureFn | None = None,
    device: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> int:
    """Write predictions for every sample of the split (or the first ``limit``); returns the number written."""
    from tqdm.auto import tqdm

    predictor = Predictor(checkpoint, device, features)
    task = get_task(task_id)
    loaded = load_split(task, Path(data_dir), split)[:limit]
    n_items = sum(len(frame_targets(task, s) or [None]) for s in loaded)
    bar = tqdm(total=n_items, disable=not progress, desc=f"predict {task_id}")
    rows = predictor.rows(task, loaded, loaded.samples, batch_size, max_new_tokens, progress=bar.update)
    bar.close()
    with atomic_open(out) as handle:
        for row in rows:
            handle.write(json.dumps(row, allow_nan=False) + "\n")
    return len(rows)


def _mask_outputs(
    model: Any,
    task: Any,
    chunk: Sequence[tuple[Any, int | None]],
    batch: dict[str, torch.Tensor],
    gen: dict[str, Any],
    texts: list[str],
    tokenizer: Any,
) -> list[Any]:
    """Per work item: a list of RLEs (its frame, or every annotated frame), or the raw text if mask tokens are
    missing from the answer."""
    n_frames = batch["frames"].shape[1]
    sizes, frames = [], []
    for sample, k in chunk:
        all_sizes = [tuple(m["size"]) for m in task.oracle_prediction(sample)["masks"]]
        all_frames = frame_indices(len(all_sizes), n_frames)
        sizes.append(all_sizes if k is None else all_sizes[k : k + 1])
        frames.append(all_frames if k is None else all_frames[k : k + 1])
    logits, _ = model.masks_after_generation(batch, gen, tokenizer.eos_token_id, frames)
    return [text if lg is None else masks_to_rles(lg, sz) for lg, sz, text in zip(logits, sizes, texts, strict=True)]


def _row(task: Any, sample: Any, outputs: list[tuple[int | None, Any]]) -> dict[str, Any]:
    if task.text_predictions:
        return {"id": sample.id, "text": outputs[0][1]}
    texts = [out for _, out in outputs if isinstance(out, str)]
    if texts:  # an answer without its mask tokens: the sample is unparsed (counted by the scorer), not guessed
        return {"id": sample.id, "text": texts[0]}
    masks = [rle for _, out in sorted(outputs, key=lambda o: -1 if o[0] is None else o[0]) for rle in out]
    return {"id": sample.id, "prediction": {"masks": masks}}
