"""Run configuration: one YAML file, typed sections, ``key.sub=value`` overrides from the command line.

Unknown keys are errors (a typo must not silently train the wrong model). See docs/model.md for every key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crab_eval.errors import CrabEvalError
from crab_eval.models.hf import QWEN_OMNI_SYSTEM

ADAPTER_KINDS = ("lora", "ilora", "moelora", "none")
ARCHES = ("avllm", "qwen2_5_omni")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class EncoderConfig:
    type: str = "builtin"  # "builtin" (small conv net, trained) or "hf" (a local Hugging Face checkpoint, frozen)
    path: str | None = None  # local checkpoint folder for type "hf"
    dim: int = 64  # builtin feature width
    grid: int = 8  # builtin visual: patch grid side (grid x grid tokens per frame); audio: 4 x 4 tokens
    layers: int = 1  # builtin: transformer layers over each segment's tokens
    hidden_layers: list[int] = field(default_factory=lambda: [-1])  # hf: hidden states concatenated (Crab: 14,22,23)
    image_size: int = 224  # hf visual: frames are resized to this side
    time_major: bool = False  # hf audio: the model wants [time, mels] instead of [mels, time]
    # hf audio: "segment" feeds each 1-s slice on its own; "clip" joins them and runs the model once (AST, whose
    # input length is fixed at ~10 s), giving each segment the tokens of its second
    window: str = "segment"
    train: bool | None = None  # None: builtin trains, hf is frozen


@dataclass
class OmniConfig:
    """Settings of the ``qwen2_5_omni`` architecture (Crab+): its own towers read the segments' frames and audio."""

    image_size: int = 224  # frames are resized to this side (Crab+: 224); a multiple of patch x merge size
    seconds_per_segment: float = 1.0  # time between frames, for the temporal rotary positions (Crab: 10 x 1 s)
    system_prompt: str = QWEN_OMNI_SYSTEM  # Qwen's, which Crab+ trains and tests with
    train_towers: bool = False  # also train the audio and vision towers (Crab+ freezes them)


@dataclass
class ModelConfig:
    # "avllm": encoders -> Q-Former projectors -> a causal LM (Crab); "qwen2_5_omni": a Qwen2.5-Omni checkpoint's
    # thinker with its own audio and vision towers (Crab+), adapters on its language layers; needs ``backbone``
    arch: str = "avllm"
    backbone: str | None = None  # local causal-LM checkpoint; None builds the tiny Llama below
    dtype: str = "float32"  # the backbone's weights as loaded: float32 (Crab trains in fp32), bfloat16 (Crab+), float16
    hidden_size: int = 64
    intermediate_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    max_positions: int = 2048
    vocab_size: int = 512  # builtin tokenizer: byte-level BPE trained on the run's own texts up to this size
    train_embeddings: bool = False  # also train input/output embeddings (forced on if the vocabulary is resized)
    audio_encoder: EncoderConfig = field(default_factory=EncoderConfig)
    visual_encoder: EncoderConfig = field(default_factory=EncoderConfig)
    queries: int = 4  # Q-Former queries per segment (Crab: 32)
    projector_dim: int = 64
    projector_layers: int = 1
    mask_tokens: int = 6  # <mask_0> .. <mask_{n-1}> (Crab: 6)
    mask_dim: int = 32
    mask_train_size: int = 64  # ground-truth masks are resized to this side for the training loss
    # The mask decoder's own image encoder (LISA's design: a segmentation backbone beside the LLM's vision tower),
    # a small conv stem at 1/4 resolution; 0 reads the LLM-side visual encoder's feature map instead.
    mask_image_dim: int = 0
    omni: OmniConfig = field(default_factory=OmniConfig)


@dataclass
class AdapterConfig:
    kind: str = "ilora"
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    heads: int = 3  # I-LoRA B heads / MoE-LoRA experts
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    task_embedding_dim: int = 64  # MoE-LoRA gate input (Crab's peft_hyper default)


@dataclass
class TrainConfig:
    steps: int = 200
    batch_size: int = 8  # global batch: split evenly over processes
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    schedule: str = "cosine"
    max_grad_norm: float = 1.0
    mixed_precision: str = "auto"  # auto | no | fp16 | bf16
    # Micro-batches per step: each process runs batch_size / (processes x grad_accum) examples at a time and
    # steps once per global batch (Crab: 256 = 8 GPUs x 4 x 8 accumulation steps)
    grad_accum: int = 1
    gradient_checkpointing: bool = False  # recompute the backbone's activations in backward (Crab, Crab+: on)
    checkpoint_every: int = 100
    log_every: int = 1
    router_log_every: int = 10
    affinity_every: int = 0  # 0: off
    affinity_kinds: list[str] = field(default_factory=lambda: ["grad_cosine", "lookahead"])
    affinity_batch: int = 4
    mask_loss_weight: float = 1.0
    max_length: int = 1024  # examples longer than this (tokens, media included) are cut at the end
    feature_cache: str | None = None
    features: str | None = None  # "module:function" computing features; None: crab_eval.media.sample_features
    stop_after: int | None = None  # end this session after this many steps (a time-boxed job); resume continues


@dataclass
class TaskSpec:
    task: str
    data: str
    split: str = "train"
    weight: float | None = None  # sampling weight; None everywhere: proportional to the split's size


@dataclass
class RunConfig:
    run_dir: str
    tasks: list[TaskSpec]
    seed: int = 0
    resume: bool = True  # continue from the newest checkpoint in run_dir if there is one
    model: ModelConfig = field(default_factory=ModelConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def task_ids(self) -> list[str]:
        return [t.task for t in self.tasks]

    @property
    def variant(self) -> str:
        return "single" if len(self.tasks) == 1 else "unified"


def _build(cls: type, data: Any, where: str) -> Any:
    if dataclasses.is_dataclass(data):
        return data
    if not isinstance(data, dict):
        raise CrabEvalError(f"config: {where or 'top level'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CrabEvalError(f"config: unknown key(s) {', '.join(unknown)} in {where or 'top level'}")
    kwargs: dict[str, Any] = {}
    # Sections by (owner, field): an encoder's boolean ``train`` is not the run's ``train`` section.
    sections = {
        (ModelConfig, "audio_encoder"): EncoderConfig,
        (ModelConfig, "visual_encoder"): EncoderConfig,
        (ModelConfig, "omni"): OmniConfig,
        (RunConfig, "model"): ModelConfig,
        (RunConfig, "adapter"): AdapterConfig,
        (RunConfig, "train"): TrainConfig,
    }
    for name, value in data.items():
        if (cls, name) in sections and value is not None:
            kwargs[name] = _build(sections[(cls, name)], value, f"{where}.{name}".strip("."))
        elif name == "tasks":
            if not isinstance(value, list) or not value:
                raise CrabEvalError("config: tasks must be a non-empty list")
            kwargs[name] = [_build(TaskSpec, t, f"tasks[{i}]") for i, t in enumerate(value)]
        else:
            kwargs[name] = _coerce(fields[name].type, value, f"{where}.{name}".strip("."))
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise CrabEvalError(f"config: {where or 'top level'}: {exc}") from None


def _coerce(annotation: Any, value: Any, where: str) -> Any:
    """YAML reads ``3e-4`` as a string (YAML 1.1 wants a dot); numbers in numeric fields are converted."""
    kind = str(annotation)
    if isinstance(value, str) and kind.split(" |")[0] in ("float", "int"):
        try:
            return float(value) if kind.startswith("float") else int(value)
        except ValueError:
            raise CrabEvalError(f"config: {where} must be a number, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool) and kind.startswith("float"):
        return float(value)
    return value


def apply_override(data: dict[str, Any], item: str) -> None:
    """``a.b.c=value`` sets data["a"]["b"]["c"]; the value is parsed as YAML (numbers, lists, null)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise CrabEvalError(f"override must be KEY=VALUE, got {item!r}")
    parts = key.split(".")
    node: Any = data
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]  # tasks.0.data=DIR
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise CrabEvalError(f"override {item!r}: {part} is not a section or list index")
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = yaml.safe_load(raw)
    elif isinstance(node, dict):
        node[last] = yaml.safe_load(raw)
    else:
        raise CrabEvalError(f"override {item!r}: cannot set {last}")


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    config = _build(RunConfig, data, "")
    validate(config)
    return config


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    path = Path(path)
    if not path.is_file():
        raise CrabEvalError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise CrabEvalError(f"{path}: a config is a YAML mapping")
    for item in overrides:
        apply_override(data, item)
    return config_from_dict(data)


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def validate(config: RunConfig) -> None:
    a, t, m = config.adapter, config.train, config.model
    if a.kind not in ADAPTER_KINDS:
        raise CrabEvalError(f"config: adapter.kind must be one of {', '.join(ADAPTER_KINDS)}, got {a.kind!r}")
    if a.kind == "moelora" and a.r % a.heads:
        # Crab's MoE-LoRA splits the rank evenly over the experts (peft_hyper/tuners/mmoelora.py asserts it).
        raise CrabEvalError(f"config: moelora needs adapter.r ({a.r}) divisible by adapter.heads ({a.heads})")
    if a.heads < 1 or a.r < 1:
        raise CrabEvalError("config: adapter.r and adapter.heads must be >= 1")
    if t.steps < 1 or t.batch_size < 1 or t.grad_accum < 1:
        raise CrabEvalError("config: train.steps, train.batch_size and train.grad_accum must be >= 1")
    if t.batch_size % t.grad_accum:
        raise CrabEvalError(f"config: train.batch_size {t.batch_size} does not split into {t.grad_accum} micro-batches")
    if m.dtype not in ("float32", "bfloat16", "float16"):
        raise CrabEvalError(f"config: model.dtype must be float32, bfloat16 or float16, got {m.dtype!r}")
    if m.arch not in ARCHES:
        raise CrabEvalError(f"config: model.arch must be one of {', '.join(ARCHES)}, got {m.arch!r}")
    if m.arch == "qwen2_5_omni" and not m.backbone:
        raise CrabEvalError("config: model.arch qwen2_5_omni needs model.backbone (a local Qwen2.5-Omni checkpoint)")
    bad = set(t.affinity_kinds) - {"grad_cosine", "lookahead"}
    if bad:
        raise CrabEvalError(f"config: unknown affinity kind(s) {sorted(bad)}")
    if t.mixed_precision not in ("auto", "no", "fp16", "bf16"):
        raise CrabEvalError(f"config: train.mixed_precision must be auto, no, fp16 or bf16, got {t.mixed_precision!r}")
    if len(set(config.task_ids)) != len(config.task_ids):
        raise CrabEvalError("config: a task is listed twice")
    weights = [s.weight for s in config.tasks]
    given = [w for w in weights if w is not None]
    if given and (len(given) < len(weights) or any(w < 0 for w in given)):
        raise CrabEvalError("config: give every task a weight >= 0, or none (then proportional to size)")
    for enc in (m.audio_encoder, m.visual_encoder):
        if enc.type not in ("builtin", "hf"):
            raise CrabEvalError(f"config: encoder type must be builtin or hf, got {enc.type!r}")
        if enc.type == "hf" and not enc.path:
            raise CrabEvalError("config: an hf encoder needs a local path")
    if m.audio_encoder.window not in ("segment", "clip") or m.visual_encoder.window != "segment":
        raise CrabEvalError("config: model.audio_encoder.window must be segment or clip (visual: segment)")
    if m.audio_encoder.window == "clip" and m.audio_encoder.type != "hf":
        raise CrabEvalError("config: model.audio_encoder.window clip needs type hf (an AST checkpoint)")
