"""Encoders, projector and mask-head helpers: shapes, a local Hugging Face vision checkpoint, RLE round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crab_eval.model.config import EncoderConfig
from crab_eval.model.encoders import QFormerProjector, build_encoder
from crab_eval.model.mask_head import frame_indices, mask_loss, masks_to_rles, rles_to_array

pytestmark = pytest.mark.model


def test_builtin_encoders_adapt_to_any_input_size() -> None:
    audio = build_encoder(EncoderConfig(dim=16, layers=1), "audio")
    visual = build_encoder(EncoderConfig(dim=16, grid=4, layers=0), "visual")
    for mels, t, side in ((64, 32, 64), (16, 24, 40)):
        a = audio(torch.randn(2, 10, mels, t))
        v = visual(torch.rand(2, 10, 3, side, side))
        assert a["tokens"].shape == (2, 10, 16, 16) and a["pooled"].shape == (2, 10, 16)
        assert v["tokens"].shape == (2, 10, 16, 16) and v["map"].shape == (2, 10, 16, 4, 4)
    assert all(p.requires_grad for p in audio.parameters())  # built-in encoders train
    proj = QFormerProjector(16, 8, 12, queries=3, layers=1)
    assert proj(a["tokens"]).shape == (2, 30, 12)  # segment-major: 10 segments x 3 queries


def test_local_hf_vision_checkpoint_is_frozen_and_mapped(tmp_path: Path) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    cfg = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    CLIPVisionModel(cfg).save_pretrained(str(tmp_path / "clip"))
    enc = build_encoder(
        EncoderConfig(type="hf", path=str(tmp_path / "clip"), hidden_layers=[-1, -2], image_size=32), "visual"
    )
    out = enc(torch.rand(1, 10, 3, 48, 48))
    assert out["tokens"].shape == (1, 10, 16, 32)  # 4 x 4 patches (CLS dropped), two layers concatenated
    assert out["map"].shape == (1, 10, 32, 4, 4)
    assert not any(p.requires_grad for p in enc.parameters())


def test_rle_round_trip_and_sizes() -> None:
    from pycocotools import mask as mask_utils

    logits = torch.full((2, 8, 8), -5.0)
    logits[0, 2:6, 2:6] = 5.0
    rles = masks_to_rles(logits, [(16, 16), (10, 12)])
    first = mask_utils.decode({"size": rles[0]["size"], "counts": rles[0]["counts"].encode()})
    assert first.shape == (16, 16) and first[4:12, 4:12].all() and first.sum() == 64
    assert rles[1]["size"] == [10, 12] and isinstance(rles[1]["counts"], str)
    back = rles_to_array(rles, 8)
    assert back.shape == (2, 8, 8) and back[0, 2:6, 2:6].all() and back[1].sum() == 0


def test_mask_loss_prefers_the_right_mask_and_frames_spread_over_the_clip() -> None:
    target = torch.zeros(1, 8, 8)
    target[0, :4] = 1
    good, bad = (target * 20 - 10), (10 - target * 20)
    assert float(mask_loss(good, target)) < 0.05 < float(mask_loss(bad, target))
    assert float(mask_loss(good[:, ::2, ::2], target)) < 0.1  # low-resolution logits are resized to the target
    assert frame_indices(5, 10) == [0, 2, 4, 6, 8]  # AVSBench frame k of 5 <-> segments 2k, 2k + 1
    assert frame_indices(1, 10) == [0] and frame_indices(10, 10) == list(range(10))
    assert np.all(np.diff(frame_indices(3, 10)) > 0)
