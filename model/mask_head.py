"""The mask head of S4/MS3-style tasks: mask-token hidden states prompt a small SAM-style decoder.

Crab's design at small scale: the LLM's last hidden states at ``<mask_0>`` .. ``<mask_{M-1}>`` are projected to prompt
tokens; with the frame's audio cue and a learned output token they attend to the frame's visual feature map (two-way,
as SAM's decoder: tokens -> image, then image -> tokens); the output token, through an MLP, is dotted with the
upscaled image features to give mask logits. Loss: binary cross-entropy + dice, as LISA/Crab train their decoders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crab_eval.model.encoders import heads_for


class MaskDecoder(nn.Module):
    def __init__(self, llm_dim: int, vis_dim: int, aud_dim: int, dim: int) -> None:
        super().__init__()
        heads = heads_for(dim)
        self.prompt_proj = nn.Sequential(nn.Linear(llm_dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.audio_proj = nn.Linear(aud_dim, dim)
        self.vis_proj = nn.Conv2d(vis_dim, dim, 1)
        self.coord_proj = nn.Conv2d(2, dim, 1)  # position of each pixel of the feature map
        self.output_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.token_layer = nn.TransformerDecoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.image_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.image_norm = nn.LayerNorm(dim)
        self.upscale = nn.Sequential(nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), nn.GELU())
        self.hyper = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim // 2))

    def forward(self, prompts: torch.Tensor, vis_map: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """prompts [K, M, llm_dim], vis_map [K, Dv, h, w], audio [K, Da] -> mask logits [K, 2h, 2w]."""
        k, _, h, w = vis_map.shape
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=vis_map.device),
            torch.linspace(-1, 1, w, device=vis_map.device),
            indexing="ij",
        )
        coords = torch.stack([ys, xs]).unsqueeze(0).to(vis_map.dtype)
        image = self.vis_proj(vis_map) + self.coord_proj(coords)  # [K, d, h, w]
        image_seq = image.flatten(2).transpose(1, 2)  # [K, h*w, d]
        tokens = torch.cat(
            [self.output_token.expand(k, -1, -1), self.prompt_proj(prompts), self.audio_proj(audio).unsqueeze(1)], 1
        )
        tokens = self.token_layer(tokens, image_seq)  # tokens attend to the image
        image_seq = self.image_norm(image_seq + self.image_attn(image_seq, tokens, tokens, need_weights=False)[0])
        up = self.upscale(image_seq.transpose(1, 2).reshape(k, -1, h, w))  # [K, d/2, 2h, 2w]
        weights = self.hyper(tokens[:, 0])  # [K, d/2]
        return torch.einsum("kc,kchw->khw", weights, up)


def mask_image_encoder(dim: int) -> nn.Module:
    """The mask decoder's own image features: frames [K, 3, H, W] -> [K, dim, H/4, W/4] (two convolutions).

    LISA gives its mask decoder a segmentation backbone (SAM's) beside the LLM's CLIP tower; Crab reads multi-scale
    features of its frozen CLIP. With the built-in encoders trained from scratch and shared by every task, a
    separate stem keeps the masks' spatial detail from competing with what the text tasks want of the shared
    encoder, and gives a finer map (1/4 instead of the shared encoder's 1/8).
    """
    return nn.Sequential(
        nn.Conv2d(3, dim // 2, 3, stride=2, padding=1),
        nn.GELU(),
        nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1),
        nn.GELU(),
    )


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask BCE + dice: logits [K, h, w] (resized to the target's size), target [K, H, W] in {0, 1} -> [K]."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits.unsqueeze(1), size=target.shape[-2:], mode="bilinear", align_corners=False)
        logits = logits.squeeze(1)
    logits, target = logits.float().flatten(1), target.float().flatten(1)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)
    prob = logits.sigmoid()
    dice = 1 - (2 * (prob * target).sum(1) + 1) / (prob.sum(1) + target.sum(1) + 1)
    return bce + dice


def frame_indices(n_masks: int, n_frames: int) -> list[int]:
    """The feature frame of each annotated mask: annotated frame k of n sits at k / n of the clip."""
    return [min(n_frames - 1, (k * n_frames) // n_masks) for k in range(n_masks)]


def masks_to_rles(logits: torch.Tensor, sizes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Mask logits [K, h, w] -> K COCO RLEs (counts as str) at the ground truth's sizes [(height, width)]."""
    from pycocotools import mask as mask_utils

    rles = []
    for logit, (height, width) in zip(logits, sizes, strict=True):
        up = F.interpolate(logit[None, None].float(), size=(height, width), mode="bilinear", align_corners=False)
        binary = np.asfortranarray((up[0, 0] > 0).cpu().numpy().astype(np.uint8))
        rle = mask_utils.encode(binary)
        rle["counts"] = rle["counts"].decode("ascii")
        rles.append({"size": [int(v) for v in rle["size"]], "counts": rle["counts"]})
    return rles


def rles_to_array(rles: list[dict[str, Any]], side: int) -> torch.Tensor:
    """Ground-truth RLEs -> float masks [n, side, side] (area-resized, then thresholded at 0.5)."""
    from pycocotools import mask as mask_utils

    out = []
    for rle in rles:
        counts = rle["counts"]
        raw = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        arr = torch.from_numpy(mask_utils.decode(raw).astype(np.float32))
        resized = F.interpolate(arr[None, None], size=(side, side), mode="area")[0, 0]
        out.append((resized >= 0.5).float())
    return torch.stack(out) if out else torch.zeros(0, side, side)
