"""Crab+'s architecture: the thinker of a Qwen2.5-Omni checkpoint (audio tower, vision tower, language model) with
adapters on its language layers, trained and run by the same trainer, checkpoints and predict path as the AV-LLM.

Inputs are the features callable's segments, as for the AV-LLM (``frames`` [B, S, 3, H, W] in [0, 1], ``audio``
[B, S, n_mels, T]); the model turns them into the thinker's own inputs on the device:

- video: frames resized to ``model.omni.image_size``, normalised with the checkpoint's image statistics and cut into
  (temporal_patch x patch x patch) patches in the order of Qwen2-VL's image processor (each merge window's patches
  contiguous), grid (S / temporal_patch, side / patch, side / patch), ``seconds_per_segment x temporal_patch``
  seconds per temporal grid step (10 frames of 224 px: 5 x 16 x 16 patches -> 320 tokens, as Crab+ feeds 10 frames
  at 224 x 224);
- audio: the segments' log-mel slices joined along time (``input_features`` [B, n_mels, S * T], every frame
  valid). A real checkpoint wants Whisper's 128-bin log-mel at 100 frames/s (``recipes.omni_features``).

Prompt (Crab+'s ``omni_dataset.py``): ChatML with Qwen's system prompt, the user turn "This is a video and an
audio:" + ``<|vision_bos|><|VIDEO|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>`` + the task's instruction,
the answer closed by ``<|im_end|>``; audio and video are separate blocks (``use_audio_in_video`` false, as Crab+
trains), placed by the thinker's own multimodal rotary positions. The answer tags stay plain text (no tokens are
added to a pretrained vocabulary).

Trainable: the adapters on the language model's projections (the towers' layers share some of the names, e.g.
the audio tower's q/k/v_proj and the vision MLP's gate/up/down_proj, and stay untouched), the embeddings if
``train_embeddings``, the towers if ``omni.train_towers``. No mask head: Crab+ answers segmentation with a box and
points for SAM2, which this package does not train, so mask tasks are refused.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crab_eval.errors import CrabEvalError
from crab_eval.model.adapters import RoutingContext, apply_adapters
from crab_eval.model.avllm import answer_loss, enable_checkpointing
from crab_eval.model.config import ModelConfig
from crab_eval.model.data import Collator, Example
from crab_eval.model.encoders import _pixel_stats
from crab_eval.model.tokenizer import token_id
from crab_eval.tasks.base import CRAB_PREFIX

VIDEO_TOKEN, AUDIO_TOKEN = "<|VIDEO|>", "<|AUDIO|>"
VIDEO_BLOCK = "<|vision_bos|><|VIDEO|><|vision_eos|>"
AUDIO_BLOCK = "<|audio_bos|><|AUDIO|><|audio_eos|>"


def omni_prompt(prompt: str, system: str) -> str:
    """A task prompt (Crab's prefix + instruction) in Crab+'s chat layout, ready for the assistant's answer."""
    if prompt.startswith(CRAB_PREFIX):
        user = "This is a video and an audio:" + VIDEO_BLOCK + AUDIO_BLOCK + prompt[len(CRAB_PREFIX) :]
    else:  # a task with its own layout: keep its text, map Crab's media blocks to the thinker's
        user = prompt.replace("<video_start><video><video_end>", VIDEO_BLOCK)
        user = user.replace("<audio_start><audio><audio_end>", AUDIO_BLOCK)
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def patchify_video(frames: torch.Tensor, patch: int, temporal: int, merge: int) -> tuple[torch.Tensor, list[int]]:
    """Normalised frames [B, T, C, H, W] -> (patches [B * t * h * w, C * temporal * patch^2], grid [t, h, w]).

    The layout of Qwen2-VL's image processor: patches ordered (t, h / merge, w / merge, merge, merge), each the
    flattened (C, temporal, patch, patch) block; a clip whose frame count is not a multiple of ``temporal`` repeats
    its last frame, as the processor does.
    """
    b, t, c, h, w = frames.shape
    if t % temporal:
        frames = torch.cat([frames, frames[:, -1:].expand(b, temporal - t % temporal, c, h, w)], 1)
        t = frames.shape[1]
    gt, gh, gw = t // temporal, h // patch, w // patch
    x = frames.reshape(b, gt, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    return x.reshape(b * gt * gh * gw, c * temporal * patch * patch), [gt, gh, gw]


class OmniAVLLM(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, cfg: ModelConfig, adapter: Any, thinker: Any, tokenizer: Any, task_ids: list[str]) -> None:
        super().__init__()
        self.cfg, self.task_ids = cfg, list(task_ids)
        self.routing = RoutingContext(len(self.task_ids))
        self.thinker = thinker
        thinker.requires_grad_(False)
        self.adapted_layers = apply_adapters(thinker.model.language_model, adapter, self.routing)
        if cfg.train_embeddings:
            for module in (thinker.get_input_embeddings(), thinker.get_output_embeddings()):
                module.requires_grad_(True)
        if cfg.omni.train_towers:
            thinker.model.audio_tower.requires_grad_(True)
            thinker.model.visual.requires_grad_(True)
        config = thinker.config
        vision = config.vision_config
        self.patch, self.temporal, self.merge = vision.patch_size, vision.temporal_patch_size, vision.spatial_merge_size
        self.side = cfg.omni.image_size
        if self.side % (self.patch * self.merge):
            raise CrabEvalError(
                f"model.omni.image_size {self.side} must be a multiple of patch x merge = {self.patch * self.merge}"
            )
        self.n_mels = config.audio_config.num_mel_bins
        for name, expected in ((VIDEO_TOKEN, config.video_token_id), (AUDIO_TOKEN, config.audio_token_id)):
            if token_id(tokenizer, name) != expected:
                raise CrabEvalError(f"tokenizer's {name} is not the checkpoint's (id {expected})")
        mean, std = _pixel_stats(cfg.backbone or "")
        self.register_buffer("mean", torch.tensor(mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 1, 3, 1, 1), persistent=False)

    mask_loss_weight: float = 1.0  # no mask head (set by the trainer like the AV-LLM's)

    # ---- media -> the thinker's inputs ----------------------------------------------------------------------------
    def media_tokens(self, segments: int, audio_frames: int) -> tuple[int, int]:
        """(video, audio) placeholder counts for ``segments`` frames and ``audio_frames`` log-mel frames."""
        grid = (self.side // self.patch) ** 2 // self.merge**2
        video = -(-segments // self.temporal) * grid
        _, audio = self.thinker.model.audio_tower._get_feat_extract_output_lengths(torch.tensor(audio_frames))
        return video, int(audio)

    def collator(self, tokenizer: Any, example: Example, max_length: int) -> Collator:
        s, _, t = example.audio.shape
        nv, na = self.media_tokens(example.frames.shape[0], s * t)
        system = self.cfg.omni.system_prompt
        return Collator(tokenizer, nv, na, max_length, (VIDEO_TOKEN, AUDIO_TOKEN), lambda p: omni_prompt(p, system))

    def enable_gradient_checkpointing(self) -> None:
        enable_checkpointing(self.thinker)

    def media(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        frames, audio = batch["frames"], batch["audio"]
        b, s, mels, t = audio.shape
        if mels != self.n_mels:
            raise CrabEvalError(
                f"the audio features have {mels} mel bins, the checkpoint's audio tower wants {self.n_mels} "
                "(Whisper log-mel: train.features=crab_eval.model.recipes:omni_features)"
            )
        x = frames.flatten(0, 1)
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        x = (x.view(b, s, *x.shape[1:]) - self.mean) / self.std
        pixels, grid = patchify_video(x, self.patch, self.temporal, self.merge)
        return {
            "pixel_values_videos": pixels,
            "video_grid_thw": torch.tensor([grid] * b, device=frames.device),
            "video_second_per_grid": torch.full(
                (b,), self.temporal * self.cfg.omni.seconds_per_segment, device=frames.device
            ),
            "input_features": audio.permute(0, 2, 1, 3).reshape(b, mels, s * t),
            "feature_attention_mask": torch.ones(b, s * t, dtype=torch.long, device=audio.device),
        }

    def _set_routing(self, batch: dict[str, torch.Tensor], record: bool) -> None:
        self.routing.task_index = batch["task_index"]
        self.routing.token_mask = batch["attention_mask"].bool()
        self.routing.record = record

    # ---- training ---------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor], record_routing: bool = False) -> dict[str, torch.Tensor]:
        self._set_routing(batch, record_routing and self.training)
        try:
            hidden = self.thinker.model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                use_cache=False,
                use_audio_in_video=False,
                **self.media(batch),
            ).last_hidden_state
        finally:
            self.routing.record = False
        lm = answer_loss(hidden, batch["labels"], self.thinker.lm_head)
        return {"lm_loss": lm, "sample_loss": lm, "loss": lm.mean()}

    # ---- inference --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, batch: dict[str, torch.Tensor], max_new_tokens: int, tokenizer: Any, **generate_kwargs: Any
    ) -> dict[str, Any]:
        """Decoding from left-padded prompts, greedy unless ``generate_kwargs`` (the thinker's ``generate``) say
        otherwise; returns the new token ids."""
        self._set_routing(batch, record=False)
        self.routing.token_mask = None
        settings = {"do_sample": False, "num_beams": 1, **generate_kwargs}
        ids = self.thinker.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            use_audio_in_video=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **settings,
            **self.media(batch),
        )
        return {"ids": ids[:, batch["input_ids"].shape[1] :]}

    def masks_after_generation(self, *args: Any, **kwargs: Any) -> Any:
        raise CrabEvalError("a qwen2_5_omni model has no mask head (Crab+ segments with SAM2 from a box and points)")

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}
