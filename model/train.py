"""Training through accelerate: single-task or unified, resumable, with per-task logs and affinity statistics.

Determinism: the examples of step k depend only on (seed, k) and dropout is reseeded from (seed, k, rank) at every
step, so resuming from a checkpoint at step k (trainable weights + optimizer + scheduler state) ends with the same
weights as an uninterrupted run. Logs (``train_log.jsonl``, ``router_weights.jsonl``, ``affinity.jsonl``) are cut
back to the checkpoint on resume, so no step appears twice.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crab_eval.errors import CrabEvalError
from crab_eval.model import checkpoint as ck
from crab_eval.model.affinity import affinity_rows
from crab_eval.model.config import RunConfig
from crab_eval.model.data import Collator, ExampleBuilder, FeatureFn, TaskData, TrainSet, default_features, local_share
from crab_eval.model.tokenizer import load_tokenizer
from crab_eval.registry import get_task
from crab_eval.scoring import load_split

LOGS = {"train_log.jsonl": "after", "router_weights.jsonl": "after", "affinity.jsonl": "before"}


def resolve_mixed_precision(value: str) -> str:
    """``train.mixed_precision`` -> accelerate's value: auto = bf16 on GPUs that have it (Ampere and later), fp16 on
    older GPUs, none on the CPU (autocast there is slower than fp32 on most CPUs). bf16 asked of a GPU without it
    is refused rather than emulated."""
    cuda = torch.cuda.is_available()
    if value == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "no"
    if value == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise CrabEvalError("train.mixed_precision bf16: this GPU has no bf16; use fp16 or auto")
    return value


def deepspeed_batch(
    ds_config: dict[str, Any], batch_size: int, world: int, accum: int, max_grad_norm: float | None = None
) -> int:
    """Fill DeepSpeed's batch keys from the run: global batch = micro-batch x accumulation steps x processes.

    ``train.batch_size`` and ``train.grad_accum`` decide; ``gradient_accumulation_steps`` of the launcher config is
    replaced (accelerate's config file always carries one), while a ``train_batch_size`` or
    ``train_micro_batch_size_per_gpu`` it fixes must agree, and so must its ``gradient_clipping`` (DeepSpeed clips
    inside its step) with ``train.max_grad_norm``. Returns the micro-batch per process.
    """
    if batch_size % (world * accum):
        raise CrabEvalError(
            f"train.batch_size {batch_size} does not split into {world} processes x {accum} micro-batches"
        )
    micro = batch_size // (world * accum)
    for key, value in (("train_batch_size", batch_size), ("train_micro_batch_size_per_gpu", micro)):
        given = ds_config.get(key, "auto")
        if given not in (None, "auto") and int(given) != value:
            raise CrabEvalError(
                f"DeepSpeed config {key} = {given}, but the run has {value} (train.batch_size {batch_size} = "
                f"{world} processes x {accum} accumulation steps x {micro}); set it to auto"
            )
        ds_config[key] = value
    ds_config["gradient_accumulation_steps"] = accum
    clip = ds_config.get("gradient_clipping", "auto")
    if clip in (None, "auto"):
        ds_config["gradient_clipping"] = float(max_grad_norm or 0.0)
    elif float(clip) != float(max_grad_norm or 0.0):
        raise CrabEvalError(
            f"DeepSpeed config gradient_clipping = {clip}, but train.max_grad_norm is {max_grad_norm}: make them agree"
        )
    return micro


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
        # Without CUDA the launched processes meet over gloo (accelerate's MULTI_CPU); left to itself, accelerate
        # 1.16 gives each process of a CPU launch a world of its own, and data-parallel training silently is not.
        # A DeepSpeed launch sets up its own engine (cpu=True would drop the plugin).
        cpu=not torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() != "true",
        mixed_precision=resolve_mixed_precision(tc.mixed_precision),
        # Text-only batches leave the mask head without gradients; DDP must not wait for them.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    # The run decides the accumulation (a launcher's ACCELERATE_GRADIENT_ACCUMULATION_STEPS would override it).
    accelerator.gradient_accumulation_steps = tc.grad_accum
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if tc.batch_size % (world * tc.grad_accum):
        raise CrabEvalError(
            f"train.batch_size {tc.batch_size} does not split over {world} processes x {tc.grad_accum} micro-batches"
        )
    micro = tc.batch_size // (world * tc.grad_accum)
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
    net = model  # the model itself (``model`` becomes the prepared, possibly wrapped one)
    if tc.gradient_checkpointing:
        net.enable_gradient_checkpointing()
    if main:
        ck.write_config(config, run_dir)

    trainset = TrainSet(tasks, [s.weight for s in config.tasks], config.seed)
    builder = ExampleBuilder(tasks, features, config.model.mask_train_size)
    collator: Collator | None = None

    def collate(items: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        nonlocal collator
        examples = [builder(t, i) for t, i in items]
        if collator is None:
            collator = net.collator(tokenizer, examples[0], tc.max_length)
        return _to(collator.train_batch(examples), accelerator.device)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = make_scheduler(optimizer, tc.schedule, math.ceil(tc.warmup_ratio * tc.steps), tc.steps)
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    if deepspeed:
        ds_config = accelerator.state.deepspeed_plugin.deepspeed_config
        deepspeed_batch(ds_config, tc.batch_size, world, tc.grad_accum, tc.max_grad_norm)
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)

    start = 0
    latest = ck.latest_checkpoint(run_dir) if config.resume else None
    if latest is not None:
        start = json.loads((latest / "state.json").read_text())["step"]
        ck.load_trainable(core, latest / ck.WEIGHTS)
        if deepspeed:  # the engine's (partitioned) optimizer state; frozen weights were not saved
            tag, folder = ck.DEEPSPEED_TAG, str(latest / ck.DEEPSPEED)
            model.load_checkpoint(folder, tag=tag, load_module_strict=False, load_lr_scheduler_states=False)
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
        share = local_share(trainset.global_batch(step, tc.batch_size), rank, world)
        torch.manual_seed(_step_seed(config.seed, step, rank))
        record = tc.router_log_every > 0
        lr = scheduler.get_last_lr()[0]
        sample_losses, task_index = [], []
        for first in range(0, len(share), micro):
            batch = collate(share[first : first + micro])
            # accumulate(): no gradient sync before the last micro-batch; backward divides the loss by grad_accum,
            # and the optimizer (prepared) steps and zeroes only after the last one.
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    out = model(batch, record_routing=record)
                accelerator.backward(out["loss"])
                if tc.max_grad_norm and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, tc.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            sample_losses.append(out["sample_loss"].detach().float())
            task_index.append(batch["task_index"])
        scheduler.step()
        done = step + 1

        losses = accelerator.gather(torch.cat(sample_losses))
        which = accelerator.gather(torch.cat(task_index))
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
            if deepspeed:  # every rank writes its optimizer partition
                model.save_checkpoint(
                    str(ck.checkpoint_dir(run_dir, done) / ck.DEEPSPEED),
                    tag=ck.DEEPSPEED_TAG,
                    save_latest=False,
                    exclude_frozen_parameters=True,
                )
            if main:
                ck.save_checkpoint(core, None if deepspeed else optimizer, scheduler, done, run_dir)
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
