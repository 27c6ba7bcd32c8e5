"""Media encoders and the Q-Former-style projector.

Input per sample (``crab_eval.media.sample_features``): ``audio`` [S, n_mels, T] log-mel, one slice per 1 s segment,
and ``frames`` [S, 3, H, W] in [0, 1]. Every encoder returns per segment a token sequence [B, S, N, D], a pooled
vector [B, S, D] (the audio cue of the mask decoder) and, for vision, a feature map [B, S, D, h, w] (the image side
of the mask decoder). Built-in encoders adapt to any n_mels / T / H / W through adaptive pooling.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# CLIP's pixel statistics: used when a local vision checkpoint ships no preprocessor config.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def heads_for(dim: int) -> int:
    return next(h for h in (8, 4, 2, 1) if dim % h == 0)


class BuiltinAudioEncoder(nn.Module):
    """Two strided convolutions over (mel, time), pooled to a 4 x 4 grid, then a small transformer."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.out_dim = dim
        self.conv = nn.Sequential(
            nn.Conv2d(1, dim // 2, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.pos = nn.Parameter(torch.zeros(16, dim))
        self.blocks = _encoder_stack(dim, layers)

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        b, s = audio.shape[:2]
        x = self.conv(audio.flatten(0, 1).unsqueeze(1))  # [B*S, D, 4, 4]
        tokens = self.blocks(x.flatten(2).transpose(1, 2) + self.pos)
        tokens = tokens.view(b, s, *tokens.shape[1:])
        return {"tokens": tokens, "pooled": tokens.mean(2)}


class BuiltinVisualEncoder(nn.Module):
    """A patchifying convolution stack pooled to a grid x grid map, then a small transformer over the patches."""

    def __init__(self, dim: int, grid: int, layers: int) -> None:
        super().__init__()
        self.out_dim, self.grid = dim, grid
        self.conv = nn.Sequential(
            nn.Conv2d(3, dim // 2, 4, stride=4),
            nn.GELU(),
            nn.Conv2d(dim // 2, dim, 2, stride=2),
            nn.GELU(),
            nn.AdaptiveAvgPool2d((grid, grid)),
        )
        self.pos = nn.Parameter(torch.zeros(grid * grid, dim))
        self.blocks = _encoder_stack(dim, layers)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        b, s = frames.shape[:2]
        x = self.conv(frames.flatten(0, 1))  # [B*S, D, g, g]
        tokens = self.blocks(x.flatten(2).transpose(1, 2) + self.pos)
        fmap = tokens.transpose(1, 2).reshape(b, s, self.out_dim, self.grid, self.grid)
        tokens = tokens.view(b, s, *tokens.shape[1:])
        return {"tokens": tokens, "pooled": tokens.mean(2), "map": fmap}


def _encoder_stack(dim: int, layers: int) -> nn.Module:
    if layers <= 0:
        return nn.Identity()
    layer = nn.TransformerEncoderLayer(dim, heads_for(dim), 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class _Frozen(nn.Module):
    """A checkpoint's encoder: while frozen it stays in eval mode (no dropout, fixed statistics), as Crab keeps its
    CLIP and BEATs towers, whatever mode the model around it is in."""

    model: Any  # the checkpoint's transformers model
    frozen = True

    def train(self, mode: bool = True) -> _Frozen:
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self


class HFVisualEncoder(_Frozen):
    """A local Hugging Face vision checkpoint (e.g. CLIP): chosen hidden layers concatenated, CLS dropped."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, path: str, hidden_layers: list[int], image_size: int) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
        self.model = getattr(model, "vision_model", model)  # a full CLIPModel: keep its vision tower
        vision_config = getattr(config, "vision_config", config)
        self.hidden_layers, self.image_size = list(hidden_layers), image_size
        self.out_dim = vision_config.hidden_size * len(self.hidden_layers)
        mean, std = _pixel_stats(path)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        b, s = frames.shape[:2]
        x = frames.flatten(0, 1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        out = self.model(pixel_values=x, output_hidden_states=True)
        tokens = torch.cat([out.hidden_states[i] for i in self.hidden_layers], dim=-1)
        side = math.isqrt(tokens.shape[1])
        if side * side != tokens.shape[1]:
            tokens = tokens[:, 1:]  # drop the CLS token
            side = math.isqrt(tokens.shape[1])
        fmap = tokens.transpose(1, 2).reshape(b, s, self.out_dim, side, side)
        tokens = tokens.view(b, s, *tokens.shape[1:])
        return {"tokens": tokens, "pooled": tokens.mean(2), "map": fmap}


class HFAudioEncoder(_Frozen):
    """A local Hugging Face audio checkpoint fed the log-mel slices (one per segment) under its own input name."""

    def __init__(self, path: str, hidden_layers: list[int], time_major: bool) -> None:
        super().__init__()
        from transformers import AutoModel

        self.model = AutoModel.from_pretrained(path, local_files_only=True)
        self.hidden_layers, self.time_major = list(hidden_layers), time_major
        self.out_dim = self.model.config.hidden_size * len(self.hidden_layers)

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        b, s = audio.shape[:2]
        x = audio.flatten(0, 1)
        if self.time_major:
            x = x.transpose(1, 2)
        out = self.model(**{self.model.main_input_name: x}, output_hidden_states=True)
        tokens = torch.cat([out.hidden_states[i] for i in self.hidden_layers], dim=-1)
        tokens = tokens.view(b, s, *tokens.shape[1:])
        return {"tokens": tokens, "pooled": tokens.mean(2)}


class ASTClipEncoder(_Frozen):
    """An Audio Spectrogram Transformer checkpoint run once over the whole clip (``window: clip``).

    AST's position embeddings fix its input to ``max_length`` frames (1024 = 10.24 s for the AudioSet checkpoints),
    so the segments' log-mel slices are joined along time into one clip, cut or padded to ``max_length`` (padding
    with what the checkpoint's feature extractor pads with: zero fbank, normalised), and encoded once: 10 s of
    audio cost one pass instead of ten padded 1-s passes. Its patch tokens form a (frequency x time) grid; the time
    columns over real frames are average-pooled to ``segments x k`` columns (k = real columns // segments), so
    segment s gets the ``frequency rows x k`` tokens of its second.
    """

    PREFIX = 2  # AST's [CLS] and distillation tokens

    def __init__(self, path: str, hidden_layers: list[int]) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(path, local_files_only=True)
        if config.model_type != "audio-spectrogram-transformer":
            raise ValueError(f"audio_encoder.window 'clip' needs an AST checkpoint, {path} is {config.model_type!r}")
        self.model = AutoModel.from_pretrained(path, local_files_only=True)
        self.hidden_layers = list(hidden_layers)
        self.out_dim = config.hidden_size * len(self.hidden_layers)
        self.max_length, self.patch, self.stride = config.max_length, config.patch_size, config.time_stride
        self.rows = (config.num_mel_bins - config.patch_size) // config.frequency_stride + 1
        self.pad_value = _ast_pad_value(path)

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        b, s, mels, t = audio.shape
        clip = audio.permute(0, 1, 3, 2).reshape(b, s * t, mels)[:, : self.max_length]  # AST: [time, mel bins]
        real = clip.shape[1]
        if real < self.max_length:
            clip = F.pad(clip, (0, 0, 0, self.max_length - real), value=self.pad_value)
        out = self.model(input_values=clip, output_hidden_states=True)
        tokens = torch.cat([out.hidden_states[i] for i in self.hidden_layers], dim=-1)[:, self.PREFIX :]
        grid = tokens.transpose(1, 2).reshape(b, self.out_dim, self.rows, -1)  # [B, D, freq, time]
        cols = max(1, (real - self.patch) // self.stride + 1)  # time columns that lie inside the real frames
        k = max(1, cols // s)
        grid = F.adaptive_avg_pool2d(grid[..., :cols], (self.rows, s * k))
        tokens = grid.reshape(b, self.out_dim, self.rows, s, k).permute(0, 3, 2, 4, 1).reshape(b, s, -1, self.out_dim)
        return {"tokens": tokens, "pooled": tokens.mean(2)}


def _ast_pad_value(path: str) -> float:
    """The normalised value of a zero fbank frame, what ASTFeatureExtractor pads a short clip with."""
    try:
        from transformers import AutoFeatureExtractor

        fe = AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
    except Exception:  # no feature-extractor config beside the weights: pad with zeros
        return 0.0
    return float((0.0 - fe.mean) / (fe.std * 2)) if getattr(fe, "do_normalize", False) else 0.0


def _pixel_stats(path: str) -> tuple[Any, Any]:
    if not (Path(path) / "preprocessor_config.json").is_file():
        return CLIP_MEAN, CLIP_STD
    try:
        from transformers import AutoImageProcessor

        proc = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        return tuple(proc.image_mean), tuple(proc.image_std)
    except Exception:  # no preprocessor config beside the weights: CLIP's statistics
        return CLIP_MEAN, CLIP_STD


def build_encoder(cfg: Any, modality: str) -> nn.Module:
    if cfg.type == "hf":
        if modality == "visual":
            enc: nn.Module = HFVisualEncoder(cfg.path, cfg.hidden_layers, cfg.image_size)
        elif cfg.window == "clip":
            enc = ASTClipEncoder(cfg.path, cfg.hidden_layers)
        else:
            enc = HFAudioEncoder(cfg.path, cfg.hidden_layers, cfg.time_major)
    elif modality == "visual":
        enc = BuiltinVisualEncoder(cfg.dim, cfg.grid, cfg.layers)
    else:
        enc = BuiltinAudioEncoder(cfg.dim, cfg.layers)
    trainable = cfg.train if cfg.train is not None else cfg.type == "builtin"
    for p in enc.parameters():
        p.requires_grad_(trainable)
    if isinstance(enc, _Frozen):
        enc.frozen = not trainable
    return enc


class QFormerProjector(nn.Module):
    """Learned queries attend over each segment's features (Q-Former style), then project to the LLM width.

    Output: [B, S * Q, llm_dim], segment-major, with a learned segment embedding so the LLM sees temporal order.
    """

    def __init__(self, in_dim: int, dim: int, llm_dim: int, queries: int, layers: int, max_segments: int = 64) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, dim) * 0.02)
        self.inp = nn.Linear(in_dim, dim)
        layer = nn.TransformerDecoderLayer(dim, heads_for(dim), 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerDecoder(layer, max(layers, 1))
        self.out = nn.Linear(dim, llm_dim)
        self.segment = nn.Embedding(max_segments, llm_dim)
        nn.init.zeros_(self.segment.weight)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, s, n, _ = tokens.shape
        memory = self.inp(tokens.reshape(b * s, n, -1))
        q = self.queries.unsqueeze(0).expand(b * s, -1, -1)
        out = self.out(self.blocks(q, memory)).view(b, s, q.shape[1], -1)
        out = out + self.segment.weight[:s].view(1, s, 1, -1)
        return out.flatten(1, 2)
