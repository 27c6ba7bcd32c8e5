"""Training through accelerate: single-task or unified, resumable, with per-task logs and affinity statistics.

Determinism: the examples of step k depend only on (seed, k) and dropout is reseeded from (seed, k, rank) at every
step, so resuming from a checkpoint at step k (trainable weights + optimizer + scheduler state) ends with the same
weights as an uninterrupted run. Logs (``train_log.jsonl``, ``router_weights.jsonl``, ``affinity.jsonl``) are cut
back to the checkpoint on resume, so no step appears twice.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crab_eval.model import checkpoint as ck
from crab_eval.model.affinity import affinity_rows
from crab_eval.model.config import RunConfig
from crab_eval.model.data import Collator, ExampleBuilder, FeatureFn, TaskData, TrainSet, default_features, local_share
from crab_eval.model.tokenizer import load_tokenizer
from crab_eval.registry import get_task
from crab_eval.scoring import load_split

LOGS = {"train_log.jsonl": "after", "router_weights.jsonl": "after", "affinity.jsonl": "before"}


def resolve_mixed_precision(value: str) -> str:
    if value != "auto":
        return value
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"  # CPU autocast exists but is slower than fp32 on most CPUs


# train.schedule -> transformers' scheduler: linear warmup, then cosine, linear decay or constant.
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


def make_scheduler(optimizer: Any, kind: str, warmup: int, total: int) -> Any:
    """transformers' ``get_scheduler`` for ``train.schedule`` (a LambdaLR, saved and resumed with the run)."""
    from transformers import get_scheduler

    if kind not in SCHEDULES:
        raise ValueError(f"train.schedule must be cosine, linear or constant, got {kind!r}")
    return get_scheduler(SCHEDULES[kind], optimizer, num_warmup_steps=warmup, num_training_steps=total)


def load_task_data(config: RunConfig) -> list[TaskData]:
    out = []
    for spec in config.tasks:
        task = get_task(spec.task)
        out.append(TaskData(task, load_split(task, spec.data, spec.split)))
    return out


def _corpus(tasks: list[TaskData]) -> Iterator[str]:
    for td in tasks:
        for sample in td.samples:
            yield td.task.prompt(sample)
            yield td.task.target_text(sample)


def _cut_logs(run_dir: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    for name, when in LOGS.items():
        path = run_dir / name
        if not path.is_file():
            continue
        keep = []
        for line in path.read_text().splitlines():
            row_step = json.loads(line)["step"]
            if row_step < step or (when == "after" and row_step == step):
                keep.append(line)
        path.write_text("".join(line + "\n" for line in keep))


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, allow_nan=False) + "\n")


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def train(config: RunConfig, features: FeatureFn | None = None, progress: bool = True) -> Path:
    """Train the configured model; returns the run folder. Works under ``accelerate launch`` as well."""
    from accelerate import Accelerator, DistributedType
    from accelerate.utils import DistributedDataParallelKwargs
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tc = config.train
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(tc.mixed_precision),
        # Text-only batches leave the mask head without gradients; DDP must not wait for them.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if tc.batch_size % world:
        raise ValueError(f"train.batch_size {tc.batch_size} does not split over {world} processes")
    run_dir = Path(config.run_dir)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    tasks = load_task_data(config)
    features = features or default_features(tc.feature_cache, tc.features)

    ck.prepare_tokenizer(config, run_dir, lambda: _corpus(tasks), main)
    accelerator.wait_for_everyone()
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    ck.prepare_backbone(config, run_dir, tokenizer, main)
    accelerator.wait_for_everyone()
    model = ck.build_model(config, run_dir, tokenizer)
    if main:
        ck.write_config(config, run_dir)

    trainset = TrainSet(tasks, [s.weight for s in config.tasks], config.seed)
    segments = None  # known after the first example
    builder = ExampleBuilder(tasks, features, config.model.mask_train_size)
    collator: Collator | None = None

    def collate(items: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        nonlocal segments, collator
        examples = [builder(t, i) for t, i in items]
        if segments is None:
            segments = examples[0].frames.shape[0]
            n = model.n_media_tokens(segments)
            collator = Collator(tokenizer, n, n, tc.max_length)
        assert collator is not None
        return _to(collator.train_batch(examples), accelerator.device)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = make_scheduler(optimizer, tc.schedule, math.ceil(tc.warmup_ratio * tc.steps), tc.steps)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        if ds.get("train_micro_batch_size_per_gpu") in (None, "auto"):
            ds["train_micro_batch_size_per_gpu"] = tc.batch_size // world
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)

    start = 0
    latest = ck.latest_checkpoint(run_dir) if config.resume else None
    if latest is not None:
        start = json.loads((latest / "state.json").read_text())["step"]
        ck.load_trainable(core, latest / ck.WEIGHTS)
        if accelerator.distributed_type == DistributedType.DEEPSPEED:
            accelerator.load_state(str(latest / "accelerate_state"))
        else:
            optimizer.load_state_dict(torch.load(latest / "optimizer.pt", map_location="cpu", weights_only=True))
        scheduler.load_state_dict(torch.load(latest / "scheduler.pt", map_location="cpu", weights_only=True))
        if main:
            _cut_logs(run_dir, start)
    accelerator.wait_for_everyone()

    task_ids = config.task_ids
    model.train()
    bar = tqdm(total=tc.steps, initial=start, disable=not (main and progress), desc=f"train {config.variant}")
    t0 = time.perf_counter()
    end = tc.steps if tc.stop_after is None else min(tc.steps, tc.stop_after)
    for step in range(start, end):
        if tc.affinity_every and step % tc.affinity_every == 0 and len(task_ids) > 1 and main:
            batches = [collate(trainset.task_batch(t, step, tc.affinity_batch)) for t in range(len(task_ids))]
            # The step size of the lookahead: the scheduled lr, or the peak lr where warmup makes it 0 (Z would be 0).
            look_lr = scheduler.get_last_lr()[0] or tc.lr
            for row in affinity_rows(core, batches, look_lr, tc.affinity_kinds, step, task_ids):
                _append(run_dir / "affinity.jsonl", row)
        batch = collate(local_share(trainset.global_batch(step, tc.batch_size), rank, world))
        torch.manual_seed(_step_seed(config.seed, step, rank))
        record = tc.router_log_every > 0
        with accelerator.autocast():
            out = model(batch, record_routing=record)
        accelerator.backward(out["loss"])
        if tc.max_grad_norm:
            accelerator.clip_grad_norm_(params, tc.max_grad_norm)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1

        losses = accelerator.gather(out["sample_loss"].detach().float())
        which = accelerator.gather(batch["task_index"])
        if main and done % max(tc.log_every, 1) == 0:
            per_task = {
                task_ids[t]: float(losses[which == t].mean()) for t in range(len(task_ids)) if (which == t).any()
            }
            row = {
                "step": done,
                "lr": lr,
                "loss": float(losses.mean()),
                "tasks": per_task,
                "seconds": round(time.perf_counter() - t0, 3),
            }
            _append(run_dir / "train_log.jsonl", row)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
        if record and done % tc.router_log_every == 0:
            _log_router(core, accelerator, run_dir / "router_weights.jsonl", done, task_ids, main)
        if done % max(tc.checkpoint_every, 1) == 0 or done == end:
            accelerator.wait_for_everyone()
            if accelerator.distributed_type == DistributedType.DEEPSPEED:
                accelerator.save_state(str(ck.checkpoint_dir(run_dir, done) / "accelerate_state"))
            if main:
                ck.save_checkpoint(core, optimizer, scheduler, done, run_dir)
            accelerator.wait_for_everyone()
        bar.update(1)
    bar.close()
    accelerator.wait_for_everyone()
    return run_dir


def _log_router(core: Any, accelerator: Any, path: Path, step: int, task_ids: list[str], main: bool) -> None:
    """Mean routing weight per task, layer and head since the last log line; summed over processes."""
    ctx = core.routing
    layers = sorted(ctx.sums)
    if not layers:
        return
    sums = accelerator.reduce(torch.stack([ctx.sums[n] for n in layers]), reduction="sum")  # [layers, T, N]
    counts = accelerator.reduce(torch.stack([ctx.counts[n] for n in layers]), reduction="sum")  # [layers, T]
    ctx.reset()
    if not main:
        return
    means = (sums / counts.clamp_min(1).unsqueeze(-1)).permute(1, 0, 2)  # [T, layers, N]
    seen = counts[0] > 0
    row = {
        "step": step,
        "tasks": task_ids,
        "layers": layers,
        "counts": [int(c) for c in counts[0]],
        "weights": [means[t].tolist() if seen[t] else None for t in range(len(task_ids))],
    }
    _append(path, row)
