"""Run folders, model construction and checkpoints (trainable weights only, safetensors).

A run folder holds ``config.yaml`` (the resolved config), ``tokenizer/``, ``backbone/`` (only for the built-in tiny
backbone, whose random weights are part of the model), ``checkpoints/step-NNNNNNN/`` with ``trainable.safetensors``
(+ optimizer and scheduler state for resuming) and the logs. ``load_for_inference`` accepts the run folder (newest
checkpoint) or one checkpoint folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import torch
import yaml

from crab_eval.errors import CrabEvalError
from crab_eval.io import atomic_open
from crab_eval.model.avllm import AVLLM, tiny_llama
from crab_eval.model.config import RunConfig, config_from_dict, config_to_dict
from crab_eval.model.tokenizer import build_tokenizer, extend_tokenizer, load_tokenizer

WEIGHTS = "trainable.safetensors"
DEEPSPEED = "deepspeed"  # under DeepSpeed: the engine's checkpoint (its optimizer partitions) in this subfolder
DEEPSPEED_TAG = "zero"
if TYPE_CHECKING:
    from crab_eval.model.omni import OmniAVLLM

    Model: TypeAlias = AVLLM | OmniAVLLM  # what build_model makes: the same training and inference interface


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:07d}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(p for p in (run_dir / "checkpoints").glob("step-*") if (p / "state.json").is_file())
    return found[-1] if found else None


def write_config(config: RunConfig, run_dir: Path) -> None:
    with atomic_open(run_dir / "config.yaml") as handle:
        yaml.safe_dump(config_to_dict(config), handle, sort_keys=False)


def read_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise CrabEvalError(f"not a run folder (no config.yaml): {run_dir}")
    return config_from_dict(yaml.safe_load(path.read_text()))


def prepare_tokenizer(config: RunConfig, run_dir: Path, corpus: Callable[[], Iterable[str]], is_main: bool) -> None:
    """Create ``run_dir/tokenizer`` once (main process). Others load it after a barrier."""
    path = run_dir / "tokenizer"
    if not is_main or (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file():
        return
    m = config.model
    if m.arch == "qwen2_5_omni":
        tok = load_tokenizer(m.backbone)  # its own media markers; answer tags stay text (no new embedding rows)
    elif m.backbone:
        tok = extend_tokenizer(load_tokenizer(m.backbone), m.mask_tokens)
    else:
        tok = build_tokenizer(corpus(), m.vocab_size, m.mask_tokens)
    tok.save_pretrained(str(path))


def prepare_backbone(config: RunConfig, run_dir: Path, tokenizer: Any, is_main: bool) -> None:
    """Save the built-in backbone's random weights once (seeded), so that every process and predict share them."""
    path = run_dir / "backbone"
    if config.model.backbone or not is_main or (path / "config.json").is_file():
        return
    torch.manual_seed(config.seed)
    tiny_llama(config.model, tokenizer).save_pretrained(str(path))


def load_backbone(config: RunConfig, run_dir: Path, tokenizer: Any) -> Any:
    """The causal LM (or, for qwen2_5_omni, the thinker read from a full Qwen2.5-Omni checkpoint or a thinker-only
    one), in ``model.dtype``; embeddings grown to the tokenizer if tokens were added."""
    import transformers

    path = config.model.backbone or str(run_dir / "backbone")
    loader: Any = transformers.AutoModelForCausalLM
    if config.model.arch == "qwen2_5_omni":
        loader = transformers.Qwen2_5OmniThinkerForConditionalGeneration
    dtype = getattr(torch, config.model.dtype)
    backbone: Any = loader.from_pretrained(path, local_files_only=True, dtype=dtype)
    if backbone.get_input_embeddings().weight.shape[0] < len(tokenizer):
        torch.manual_seed(config.seed)  # the new rows are drawn at random: the same on every process and session
        # New rows for Crab's tokens: trained (and saved with the adapters), since they start random.
        backbone.resize_token_embeddings(len(tokenizer))
        config.model.train_embeddings = True
    return backbone


def build_model(config: RunConfig, run_dir: Path, tokenizer: Any) -> Model:
    """The run's model with freshly initialised trainable parts (seeded: identical on every process)."""
    backbone = load_backbone(config, run_dir, tokenizer)
    torch.manual_seed(config.seed + 1)
    model: Model
    if config.model.arch == "qwen2_5_omni":
        from crab_eval.model.omni import OmniAVLLM
        from crab_eval.registry import get_task

        masks = [t for t in config.task_ids if not get_task(t).text_predictions]
        if masks:
            raise CrabEvalError(
                f"model.arch qwen2_5_omni has no mask head (Crab+ segments with SAM2): remove {', '.join(masks)}"
            )
        model = OmniAVLLM(config.model, config.adapter, backbone, tokenizer, config.task_ids)
    else:
        model = AVLLM(config.model, config.adapter, backbone, tokenizer, config.task_ids)
    model.mask_loss_weight = config.train.mask_loss_weight
    return model


def save_trainable(model: Model, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().float().cpu().contiguous() for k, v in model.trainable_state().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp))
    tmp.replace(path)


def load_trainable(model: Model, path: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path))
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    missing, unexpected = expected - set(state), set(state) - set(params)
    if missing or unexpected:
        raise CrabEvalError(
            f"{path}: checkpoint does not fit the model (missing {sorted(missing)[:3]}, unexpected "
            f"{sorted(unexpected)[:3]})"
        )
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].dtype))


def save_checkpoint(model: Model, optimizer: Any, scheduler: Any, step: int, run_dir: Path) -> Path:
    folder = checkpoint_dir(run_dir, step)
    folder.mkdir(parents=True, exist_ok=True)
    save_trainable(model, folder / WEIGHTS)
    if optimizer is not None:  # None under DeepSpeed: its engine saved the optimizer state beside
        torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    torch.save(scheduler.state_dict(), folder / "scheduler.pt")
    # state.json last: its presence marks a complete checkpoint.
    with atomic_open(folder / "state.json") as handle:
        json.dump({"step": step}, handle)
    return folder


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """(run folder, checkpoint folder) from either of them."""
    path = Path(path)
    if (path / WEIGHTS).is_file():
        return path.parent.parent, path
    if (path / "config.yaml").is_file():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CrabEvalError(f"run folder {path} has no checkpoint yet")
        return path, latest
    raise CrabEvalError(f"not a run folder or checkpoint: {path}")


def load_for_inference(path: str | Path) -> tuple[Model, Any, RunConfig]:
    run_dir, ckpt = resolve_checkpoint(path)
    config = read_run_config(run_dir)
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    model = build_model(config, run_dir, tokenizer)
    load_trainable(model, ckpt / WEIGHTS)
    return model.eval(), tokenizer, config
