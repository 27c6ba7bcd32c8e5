"""Training and inference examples: (task, sample) -> prompt + target text + media features (+ ground-truth masks).

Sampling is a pure function of (seed, step): the global batch of step k is drawn from ``default_rng([seed, k])`` and
each process takes its contiguous share. Resuming at step k therefore needs no data-loader state, and a run on P
processes sees exactly the examples of a run on one process with the same global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from crab_eval.errors import CrabEvalError
from crab_eval.model.mask_head import frame_indices, rles_to_array
from crab_eval.model.tokenizer import AUDIO, VIDEO, token_id
from crab_eval.tasks.base import Split

FeatureFn = Callable[[Any, Path, Any], dict[str, torch.Tensor]]
IGNORE = -100


def default_features(cache: str | Path | None = None, spec: str | None = None) -> FeatureFn:
    """The features callable: ``spec`` ("module:function", called as ``f(task, data_dir, sample)``) or, by default,
    ``crab_eval.media.sample_features`` with its on-disk ``cache`` (imported lazily: the model package must import
    without it)."""
    if spec:
        import importlib

        module, sep, name = spec.partition(":")
        if not sep:
            raise CrabEvalError(f"features must be 'module:function', got {spec!r}")
        return getattr(importlib.import_module(module), name)
    from crab_eval.media import FeatureCache, sample_features

    store = FeatureCache(cache) if cache else None

    def features(task: Any, data_dir: Path, sample: Any) -> dict[str, torch.Tensor]:
        return sample_features(task, data_dir, sample, cache=store)

    return features


def frame_targets(task: Any, sample: Any) -> list[str] | None:
    """Per-frame answers of a mask task whose samples hold several annotated frames (AVSBench: one instruction and
    answer per frame, ``meta["frame_instructions"]`` / ``meta["frame_targets"]``, as Crab trains them), else None."""
    meta = getattr(sample, "meta", None) or {}
    if task.text_predictions or "frame_targets" not in meta or "frame_instructions" not in meta:
        return None
    return list(meta["frame_targets"])


@dataclass
class TaskData:
    """One task's split (``load_split``). ``units`` are the training examples: (sample index, annotated frame or
    None)."""

    task: Any
    split: Split

    @property
    def samples(self) -> tuple[Any, ...]:
        return self.split.samples

    @property
    def data_dir(self) -> Path:
        return self.split.data_dir

    def __post_init__(self) -> None:
        self.units: list[tuple[int, int | None]] = []
        for i, sample in enumerate(self.samples):
            per_frame = frame_targets(self.task, sample)
            self.units.extend([(i, k) for k in range(len(per_frame))] if per_frame else [(i, None)])


@dataclass
class Example:
    task_index: int
    task: Any
    sample: Any
    prompt: str
    target: str | None
    audio: torch.Tensor
    frames: torch.Tensor
    masks: torch.Tensor | None = None  # ground truth [n, side, side] for mask tasks in training
    mask_frames: list[int] | None = None  # the feature frame of each mask


class TrainSet:
    """The run's tasks with their sampling probabilities."""

    def __init__(self, tasks: list[TaskData], weights: Sequence[float | None], seed: int) -> None:
        self.tasks, self.seed = tasks, seed
        sizes = np.array([len(t.units) for t in tasks], dtype=float)
        if (sizes == 0).any():
            empty = [t.task.id for t, n in zip(tasks, sizes, strict=True) if n == 0]
            raise CrabEvalError(f"no training samples for task(s) {', '.join(empty)}")
        # No weights: proportional to size, which is what concatenating the datasets (as Crab does) amounts to.
        raw = sizes if all(w is None for w in weights) else np.array(weights, dtype=float)
        if raw.sum() <= 0:
            raise CrabEvalError("task sampling weights sum to zero")
        self.probs = raw / raw.sum()

    def global_batch(self, step: int, size: int) -> list[tuple[int, int]]:
        """(task index, unit index) pairs of the step's global batch."""
        rng = np.random.default_rng([self.seed, step])
        task_idx = rng.choice(len(self.tasks), size=size, p=self.probs)
        picks = rng.random(size)
        return [(int(t), int(p * len(self.tasks[t].units))) for t, p in zip(task_idx, picks, strict=True)]

    def task_batch(self, task: int, step: int, size: int) -> list[tuple[int, int]]:
        """A fixed-task batch for affinity statistics (its own random stream, independent of training's)."""
        rng = np.random.default_rng([self.seed, step, 1 + task])
        return [(task, int(i)) for i in rng.integers(0, len(self.tasks[task].units), size=size)]


def local_share(items: list[Any], rank: int, world: int) -> list[Any]:
    if len(items) % world:
        raise CrabEvalError(f"global batch {len(items)} does not split over {world} processes")
    per = len(items) // world
    return items[rank * per : (rank + 1) * per]


class ExampleBuilder:
    """(task index, sample index) -> Example, with features from the callable and ground-truth masks cached."""

    def __init__(self, tasks: list[TaskData], features: FeatureFn, mask_side: int) -> None:
        self.tasks, self.features, self.mask_side = tasks, features, mask_side
        self._masks: dict[tuple[int, str], torch.Tensor] = {}
        self._last: tuple[tuple[int, str], dict[str, torch.Tensor]] | None = None

    def __call__(self, task_index: int, unit_index: int) -> Example:
        td = self.tasks[task_index]
        sample_index, frame = td.units[unit_index]
        return self.build(task_index, td.task, td.data_dir, td.samples[sample_index], True, frame)

    def build(
        self, task_index: int, task: Any, data_dir: Path, sample: Any, train: bool, frame: int | None = None
    ) -> Example:
        """One example; ``frame`` picks one annotated frame of a per-frame mask task (its instruction, answer and
        mask); without it a mask example covers every annotated frame."""
        key = (task_index, sample.id)
        if self._last is None or self._last[0] != key:  # per-frame examples of one video reuse its features
            self._last = (key, self.features(task, data_dir, sample))
        feats = self._last[1]
        frames = torch.as_tensor(feats["frames"], dtype=torch.float32)
        prompt_sample = sample
        if frame is not None:
            prompt_sample = replace(sample, instruction=sample.meta["frame_instructions"][frame])
        masks = mask_frames = None
        if train and not task.text_predictions:
            key = (task_index, sample.id)
            if key not in self._masks:
                self._masks[key] = rles_to_array(task.oracle_prediction(sample)["masks"], self.mask_side)
            masks = self._masks[key]
            mask_frames = frame_indices(len(masks), frames.shape[0])
            if frame is not None:
                masks, mask_frames = masks[frame : frame + 1], mask_frames[frame : frame + 1]
        if train:
            target = sample.meta["frame_targets"][frame] if frame is not None else task.target_text(sample)
        else:
            target = None
        return Example(
            task_index=task_index,
            task=task,
            sample=sample,
            prompt=task.prompt(prompt_sample),
            target=target,
            audio=torch.as_tensor(feats["audio"], dtype=torch.float32),
            frames=frames,
            masks=masks,
            mask_frames=mask_frames,
        )


class Collator:
    """Examples -> padded tensors. Each video/audio placeholder becomes ``n_video``/``n_audio`` copies of itself,
    later overwritten by the media embeddings. Loss only on the target tokens (and the closing EOS).

    ``placeholders`` are the model's (video, audio) tokens and ``prompt_format`` maps the task's prompt to the
    model's prompt (both: Crab's own by default; the Qwen2.5-Omni recipe uses its chat layout and markers)."""

    def __init__(
        self,
        tokenizer: Any,
        n_video: int,
        n_audio: int,
        max_length: int,
        placeholders: tuple[str, str] = (VIDEO, AUDIO),
        prompt_format: Callable[[str], str] | None = None,
    ) -> None:
        self.tok, self.max_length = tokenizer, max_length
        self.placeholders, self.prompt_format = placeholders, prompt_format
        self.video_id, self.audio_id = (token_id(tokenizer, t) for t in placeholders)
        self.n_video, self.n_audio = n_video, n_audio
        self.pad_id = tokenizer.pad_token_id
        self.bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        self.eos_id = tokenizer.eos_token_id

    def _prompt_ids(self, examples: Sequence[Example]) -> list[torch.Tensor]:
        texts = [self.prompt_format(e.prompt) if self.prompt_format else e.prompt for e in examples]
        encoded = self.tok(texts, add_special_tokens=False)["input_ids"]
        out = []
        for ex, ids in zip(examples, encoded, strict=True):
            t = torch.tensor(self.bos + list(ids), dtype=torch.long)
            nv, na = int((t == self.video_id).sum()), int((t == self.audio_id).sum())
            if nv != 1 or na != 1:
                video, audio = self.placeholders
                raise CrabEvalError(
                    f"task {ex.task.id}: a prompt needs exactly one {video} and one {audio}, got {nv} and {na}"
                )
            repeats = torch.ones_like(t)
            repeats[t == self.video_id] = self.n_video
            repeats[t == self.audio_id] = self.n_audio
            out.append(torch.repeat_interleave(t, repeats))
        return out

    def _common(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        return {
            "task_index": torch.tensor([e.task_index for e in examples], dtype=torch.long),
            "audio": torch.stack([e.audio for e in examples]),
            "frames": torch.stack([e.frames for e in examples]),
        }

    def train_batch(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        prompts = self._prompt_ids(examples)
        targets = self.tok([e.target for e in examples], add_special_tokens=False)["input_ids"]
        ids, labels = [], []
        for p, t in zip(prompts, targets, strict=True):
            target = torch.tensor([*t, self.eos_id], dtype=torch.long)
            seq = torch.cat([p, target])[: self.max_length]
            lab = torch.cat([torch.full_like(p, IGNORE), target])[: self.max_length]
            ids.append(seq)
            labels.append(lab)
        batch = self._common(examples)
        batch["input_ids"] = pad_sequence(ids, batch_first=True, padding_value=self.pad_id)
        batch["labels"] = pad_sequence(labels, batch_first=True, padding_value=IGNORE)
        batch["attention_mask"] = pad_sequence([torch.ones_like(s) for s in ids], batch_first=True, padding_value=0)
        mask_sets = [
            (i, e.masks, e.mask_frames or []) for i, e in enumerate(examples) if e.masks is not None and len(e.masks)
        ]
        if mask_sets:
            batch["mask_targets"] = torch.cat([m for _, m, _ in mask_sets])
            batch["mask_sample"] = torch.tensor([i for i, _, fs in mask_sets for _ in fs], dtype=torch.long)
            batch["mask_frame"] = torch.tensor([f for _, _, fs in mask_sets for f in fs], dtype=torch.long)
        return batch

    def prompt_batch(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        """Left-padded prompts for batched generation."""
        prompts = self._prompt_ids(examples)
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attn = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            ids[row, width - len(p) :] = p
            attn[row, width - len(p) :] = 1
        batch = self._common(examples)
        batch["input_ids"], batch["attention_mask"] = ids, attn
        return batch
