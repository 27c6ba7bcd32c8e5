"""Feature callables for the recipes' pretrained checkpoints (``train.features``): a sample's media read the way the
checkpoints' own feature extractors read audio, in the package's segment layout ([10, n_mels, T] audio, [10, 3, H, W]
frames in [0, 1]).

Audio: each of the ten segments contributes the second of audio centred on it (a 10-s clip: all of it; a longer
clip: ten 1-s windows, as Crab feeds BEATs 1-s chunks; a shorter one: overlapping windows, silence past its ends),
joined into 10 s and run through the extractor once, then cut into ten slices of 100 frames:

- ``crab_features``: AST's input (``ASTFeatureExtractor``'s defaults, those of MIT/ast-finetuned-audioset-10-10:
  128-bin Kaldi fbank, 25-ms windows every 10 ms, normalised with AudioSet's mean and std) for
  ``audio_encoder: {type: hf, window: clip}``; frames at 224 px for CLIP ViT-L/14;
- ``omni_features``: Qwen2.5-Omni's audio input (``WhisperFeatureExtractor`` with 128 bins, as its processor: the
  input padded to 30 s, the real 1000 frames kept); frames at 224 px (Crab+ resizes video to 224 x 224).

Frames: the frame at each segment's centre (``crab_eval.media``). No cache: the extractors are cheap next to a 7B
step; decoding happens once per sample and step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from crab_eval.media import N_SEGMENTS, decode_sources, feature_sources

RATE = 16_000  # both extractors' sampling rate
FRAMES_PER_SECOND = 100  # 10-ms hop
IMAGE_SIZE = 224


def segment_seconds(wave: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The 1-s windows centred on the ten segments of ``wave``, joined: 10 s of samples."""
    out = np.zeros(N_SEGMENTS * rate, np.float32)
    n = len(wave)
    for i in range(N_SEGMENTS):
        start = round((i + 0.5) * n / N_SEGMENTS) - rate // 2
        lo, hi = max(start, 0), min(start + rate, n)
        if hi > lo:
            out[i * rate + lo - start : i * rate + hi - start] = wave[lo:hi]
    return out


def _slices(frames_by_mel: torch.Tensor) -> torch.Tensor:
    """[n_mels, 10 * 100] -> [10, n_mels, 100]."""
    mels = frames_by_mel.shape[0]
    return frames_by_mel.reshape(mels, N_SEGMENTS, FRAMES_PER_SECOND).permute(1, 0, 2).contiguous()


def _media(task: Any, data_dir: Path, sample: Any) -> tuple[np.ndarray, torch.Tensor]:
    audio_src, frame_src = feature_sources(Path(data_dir), getattr(sample, "media", {}) or {})
    wave, frames = decode_sources(task, sample, audio_src, frame_src, RATE, IMAGE_SIZE)
    return segment_seconds(wave), frames


def crab_features(task: Any, data_dir: Path, sample: Any) -> dict[str, torch.Tensor]:
    from transformers import ASTFeatureExtractor

    wave, frames = _media(task, data_dir, sample)
    extractor = ASTFeatureExtractor(max_length=N_SEGMENTS * FRAMES_PER_SECOND)
    fbank = extractor(wave, sampling_rate=RATE, return_tensors="pt")["input_values"][0]  # [1000, 128]
    return {"audio": _slices(fbank.T), "frames": frames}


def omni_features(task: Any, data_dir: Path, sample: Any) -> dict[str, torch.Tensor]:
    from transformers import WhisperFeatureExtractor

    wave, frames = _media(task, data_dir, sample)
    extractor = WhisperFeatureExtractor(feature_size=128)
    mel = extractor(wave, sampling_rate=RATE, return_tensors="pt")["input_features"][0]  # [128, 3000]: 30 s
    return {"audio": _slices(mel[:, : N_SEGMENTS * FRAMES_PER_SECOND]), "frames": frames}
