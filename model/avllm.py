"""The AV-LLM: encoders -> Q-Former projectors -> placeholder embeddings in a frozen causal LM (+ adapters, mask head).

``forward(batch)`` returns the training loss and per-sample losses. The LM loss of a sample is the mean over its
target tokens, and the batch loss the mean over samples: with equal per-process batch sizes, data-parallel gradient
averaging then gives exactly the gradient of the global batch (the 2-process test relies on it).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crab_eval.model.adapters import RoutingContext, apply_adapters
from crab_eval.model.config import ModelConfig
from crab_eval.model.data import IGNORE, Collator, Example
from crab_eval.model.encoders import QFormerProjector, build_encoder
from crab_eval.model.mask_head import MaskDecoder, mask_image_encoder, mask_loss
from crab_eval.model.tokenizer import AUDIO, VIDEO, token_id


def tiny_llama(cfg: ModelConfig, tokenizer: Any) -> Any:
    """The default backbone: a small Llama built in code (random weights; saved with the run so it is reproducible)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def answer_loss(hidden: torch.Tensor, labels: torch.Tensor, lm_head: nn.Module) -> torch.Tensor:
    """Per-sample LM loss [B]: mean cross-entropy over the sample's target tokens. Logits are computed only where a
    label follows (memory scales with the answers, not the prompts and media)."""
    shifted = labels[:, 1:]
    keep = shifted != IGNORE
    logits = lm_head(hidden[:, :-1][keep])
    token_loss = F.cross_entropy(logits.float(), shifted[keep], reduction="none")
    rows = keep.nonzero()[:, 0]
    lm = torch.zeros(labels.shape[0], device=hidden.device).index_add(0, rows, token_loss)
    return lm / keep.sum(1).clamp_min(1)


def enable_checkpointing(model: Any) -> None:
    """Recompute a transformers model's layer activations in backward (non-reentrant: frozen inputs are fine)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


class AVLLM(nn.Module):
    backbone: Any  # a transformers causal LM (typed loosely: its accessors are not visible to type checkers)
    mask_ids: torch.Tensor

    def __init__(self, cfg: ModelConfig, adapter: Any, backbone: Any, tokenizer: Any, task_ids: list[str]) -> None:
        super().__init__()
        self.cfg, self.task_ids = cfg, list(task_ids)
        self.routing = RoutingContext(len(self.task_ids))
        self.backbone = backbone
        self.adapted_layers = apply_adapters(backbone, adapter, self.routing)  # also freezes the backbone
        if cfg.train_embeddings:
            for module in (backbone.get_input_embeddings(), backbone.get_output_embeddings()):
                for p in module.parameters():
                    p.requires_grad_(True)
        llm_dim = backbone.get_input_embeddings().weight.shape[1]
        self.audio_encoder = build_encoder(cfg.audio_encoder, "audio")
        self.visual_encoder = build_encoder(cfg.visual_encoder, "visual")
        self.audio_proj = QFormerProjector(
            self.audio_encoder.out_dim, cfg.projector_dim, llm_dim, cfg.queries, cfg.projector_layers
        )
        self.video_proj = QFormerProjector(
            self.visual_encoder.out_dim, cfg.projector_dim, llm_dim, cfg.queries, cfg.projector_layers
        )
        self.mask_image_encoder = mask_image_encoder(cfg.mask_image_dim) if cfg.mask_image_dim else None
        mask_vis_dim = cfg.mask_image_dim or self.visual_encoder.out_dim
        self.mask_decoder = MaskDecoder(llm_dim, mask_vis_dim, self.audio_encoder.out_dim, cfg.mask_dim)
        self.video_id, self.audio_id = token_id(tokenizer, VIDEO), token_id(tokenizer, AUDIO)
        self.register_buffer(
            "mask_ids",
            torch.tensor([token_id(tokenizer, f"<mask_{i}>") for i in range(cfg.mask_tokens)], dtype=torch.long),
            persistent=False,
        )

    # ---- media -> embeddings -----------------------------------------------------------------------------------
    def n_media_tokens(self, segments: int) -> int:
        return segments * self.cfg.queries

    def collator(self, tokenizer: Any, example: Example, max_length: int) -> Collator:
        """The batch maker of this model: each placeholder becomes segments x queries embedding slots."""
        n = self.n_media_tokens(example.frames.shape[0])
        return Collator(tokenizer, n, n, max_length)

    def enable_gradient_checkpointing(self) -> None:
        enable_checkpointing(self.backbone)

    def encode_media(self, audio: torch.Tensor, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        a, v = self.audio_encoder(audio), self.visual_encoder(frames)
        return {
            "audio_tokens": self.audio_proj(a["tokens"]),
            "video_tokens": self.video_proj(v["tokens"]),
            "audio_pooled": a["pooled"],
            "visual_map": v["map"],
            "frames": frames,
        }

    def embed(self, input_ids: torch.Tensor, media: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token embeddings with every placeholder run overwritten by the projected queries (in order)."""
        embeds = self.backbone.get_input_embeddings()(input_ids)
        for placeholder, key in ((self.video_id, "video_tokens"), (self.audio_id, "audio_tokens")):
            where = (input_ids == placeholder).unsqueeze(-1)
            values = media[key].to(embeds.dtype)
            if int(where.sum()) != values.shape[0] * values.shape[1]:
                raise ValueError(f"{key}: {int(where.sum())} placeholder positions for {values.shape[:2]} tokens")
            embeds = embeds.masked_scatter(where, values)
        return embeds

    def _set_routing(self, batch: dict[str, torch.Tensor], record: bool) -> None:
        self.routing.task_index = batch["task_index"]
        self.routing.token_mask = batch["attention_mask"].bool()
        self.routing.record = record

    # ---- training ---------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor], record_routing: bool = False) -> dict[str, torch.Tensor]:
        media = self.encode_media(batch["audio"], batch["frames"])
        embeds = self.embed(batch["input_ids"], media)
        self._set_routing(batch, record_routing and self.training)
        try:
            hidden = self.backbone.get_decoder()(
                inputs_embeds=embeds, attention_mask=batch["attention_mask"], use_cache=False
            ).last_hidden_state
        finally:
            self.routing.record = False
        lm = answer_loss(hidden, batch["labels"], self.backbone.get_output_embeddings())
        b = lm.shape[0]
        sample_loss = lm
        out = {"lm_loss": lm}
        if "mask_targets" in batch:
            per_mask = self._mask_loss(hidden, batch, media)
            counts = torch.zeros(b, device=hidden.device).index_add(0, batch["mask_sample"], torch.ones_like(per_mask))
            seg = torch.zeros(b, device=hidden.device).index_add(0, batch["mask_sample"], per_mask)
            seg = seg / counts.clamp_min(1)
            out["mask_loss"] = seg
            sample_loss = sample_loss + self.mask_loss_weight * seg
        out["sample_loss"] = sample_loss
        out["loss"] = sample_loss.mean()
        return out

    mask_loss_weight: float = 1.0

    def mask_prompts(self, input_ids: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states at the first ``<mask_k>`` of each row -> ([B, M, H], [B] all mask tokens present)."""
        eq = input_ids.unsqueeze(-1) == self.mask_ids.view(1, 1, -1)  # [B, L, M]
        present = eq.any(1).all(1)
        pos = eq.int().argmax(1)  # first occurrence (0 where absent; those rows are flagged by ``present``)
        prompts = torch.gather(hidden, 1, pos.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return prompts, present

    def decode_masks(
        self, prompts: torch.Tensor, media: dict[str, torch.Tensor], sample: torch.Tensor, frame: torch.Tensor
    ) -> torch.Tensor:
        if self.mask_image_encoder is not None:
            vis = self.mask_image_encoder(media["frames"][sample, frame])  # only the frames that get a mask
        else:
            vis = media["visual_map"][sample, frame]
        aud = media["audio_pooled"][sample, frame]
        return self.mask_decoder(prompts[sample].to(vis.dtype), vis, aud)

    def _mask_loss(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor], media: dict[str, torch.Tensor]):
        prompts, present = self.mask_prompts(batch["input_ids"], hidden)
        logits = self.decode_masks(prompts, media, batch["mask_sample"], batch["mask_frame"])
        loss = mask_loss(logits, batch["mask_targets"])
        return loss * present[batch["mask_sample"]].to(loss.dtype)

    # ---- inference --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, batch: dict[str, torch.Tensor], max_new_tokens: int, tokenizer: Any, **generate_kwargs: Any
    ) -> dict[str, Any]:
        """Decoding from left-padded prompts (greedy unless ``generate_kwargs`` say otherwise: they go to the
        backbone's ``generate``). Returns new token ids and, for later mask decoding, media."""
        media = self.encode_media(batch["audio"], batch["frames"])
        embeds = self.embed(batch["input_ids"], media)
        self._set_routing(batch, record=False)
        self.routing.token_mask = None
        settings = {"do_sample": False, "num_beams": 1, **generate_kwargs}
        generated = self.backbone.generate(
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **settings,
        )
        return {"ids": generated, "media": media, "embeds": embeds}

    @torch.no_grad()
    def masks_after_generation(
        self, batch: dict[str, torch.Tensor], gen: dict[str, Any], eos_id: int, frames: list[list[int]]
    ) -> tuple[list[torch.Tensor | None], torch.Tensor]:
        """Run prompt + generated answer once more to read the mask tokens' hidden states; decode per-sample masks.

        ``frames[b]`` lists the feature frames to decode for sample b. Rows whose answer lacks a mask token get None.
        """
        ids = gen["ids"]
        after_eos = (ids == eos_id).int().cumsum(1) - (ids == eos_id).int() > 0
        gen_attn = (~after_eos).long()
        embeds = torch.cat([gen["embeds"], self.backbone.get_input_embeddings()(ids)], 1)
        attn = torch.cat([batch["attention_mask"], gen_attn], 1)
        hidden = self.backbone.get_decoder()(inputs_embeds=embeds, attention_mask=attn, use_cache=False)
        hidden = hidden.last_hidden_state[:, batch["input_ids"].shape[1] :]
        prompts, present = self.mask_prompts(ids.masked_fill(after_eos, -1), hidden)
        sample = torch.tensor([b for b, fs in enumerate(frames) for _ in fs], dtype=torch.long, device=ids.device)
        frame = torch.tensor([f for fs in frames for f in fs], dtype=torch.long, device=ids.device)
        logits = self.decode_masks(prompts, gen["media"], sample, frame) if len(sample) else None
        out: list[torch.Tensor | None] = []
        start = 0
        for b, fs in enumerate(frames):
            out.append(logits[start : start + len(fs)] if present[b] and logits is not None else None)
            start += len(fs)
        return out, present

    # ---- trainable state ----------------------------------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}
