"""``hf``: a local Hugging Face checkpoint of an audio-visual, audio or video LLM, run with transformers' classes.

Families (read from the checkpoint's ``config.json`` ``model_type``):
- Qwen2.5-Omni, Crab+'s base (``qwen2_5_omni``, ``qwen2_5_omni_thinker``): text comes from the thinker alone,
  ``Qwen2_5OmniThinkerForConditionalGeneration``, also loaded from a full Omni checkpoint; reads video, audio, image;
- Qwen2-Audio (``qwen2_audio``): ``Qwen2AudioForConditionalGeneration``; reads audio.

A request becomes one user turn of the checkpoint's chat template: the task's prompt cut at its placeholders
(``crab_eval.models.media``), each text piece a text item and each placeholder a media item in the same order,
after an optional system turn (``system``; for Qwen2.5-Omni the default is the system prompt Crab+ trains and
tests with). Media the family cannot read are left out and named in the provenance. Media are decoded with the
project's decoders (``crab_eval.media``): ``n_frames`` frames at the centres of equal segments of the video (Crab+
uses 10), the audio at the feature extractor's rate. The batch goes through the checkpoint's processor in one call
(left padding) and ``generate``; the answer is the decode of the new tokens with special tokens skipped, stripped
(as Crab+'s inference writes it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.models.base import Model, Request, Response, seed_batch
from crab_eval.models.media import MediaRef

# Crab+ (GeWu-Lab/Crab_Plus dataset/qwen2_5_omni/omni_dataset.py) opens every conversation with Qwen's system prompt.
QWEN_OMNI_SYSTEM = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and "
    "visual inputs, as well as generating text and speech."
)


@dataclass(frozen=True)
class Family:
    name: str
    model_class: str
    processor_class: str
    media: tuple[str, ...]  # roles the model reads
    system: str | None = None  # default system prompt


FAMILIES: dict[str, Family] = {
    "qwen2_5_omni": Family(
        "Qwen2.5-Omni", "Qwen2_5OmniThinkerForConditionalGeneration", "Qwen2_5OmniProcessor",
        ("video", "audio", "image"), QWEN_OMNI_SYSTEM,
    ),
    "qwen2_audio": Family("Qwen2-Audio", "Qwen2AudioForConditionalGeneration", "Qwen2AudioProcessor", ("audio",)),
}  # fmt: skip
FAMILIES["qwen2_5_omni_thinker"] = FAMILIES["qwen2_5_omni"]
# Processor call keyword and content type of each role.
KEYWORD = {"video": "videos", "audio": "audio", "image": "images"}


def family_of(path: Path) -> Family:
    config = path / "config.json"
    if not config.is_file():
        raise CrabEvalError("not a Hugging Face checkpoint folder (no config.json)", path)
    model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    if model_type not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        raise CrabEvalError(f"model_type {model_type!r} is not supported by the hf model; supported: {known}", path)
    return FAMILIES[model_type]


class HFModel(Model):
    id = "hf"
    description = "a local Hugging Face checkpoint (Qwen2.5-Omni thinker, Qwen2-Audio) with its own processor"

    def __init__(
        self,
        path: Path,
        device: str | None = None,
        dtype: str = "auto",
        system: str | None = None,
        n_frames: int = 10,
        video_min_pixels: int | None = None,
        video_max_pixels: int | None = None,
        name: str | None = None,
    ) -> None:
        import torch
        import transformers
        from transformers.utils import logging as hf_logging

        from crab_eval.models.hf_processor import load_processor

        hf_logging.disable_progress_bar()
        self.path, self.family = Path(path), family_of(Path(path))
        self.system = system if system is not None else self.family.system
        self.n_frames, self.name = n_frames, name
        self.video_size = {
            k: v for k, v in (("shortest_edge", video_min_pixels), ("longest_edge", video_max_pixels)) if v is not None
        }
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.processor = load_processor(self.path, self.family.processor_class)
        model_class = getattr(transformers, self.family.model_class)
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = model_class.from_pretrained(str(self.path), dtype=torch_dtype, local_files_only=True)
        self.model.to(self.device).eval()
        self.sampling_rate = int(getattr(self.processor.feature_extractor, "sampling_rate", 16_000))

    # ---- requests -> conversation and media --------------------------------------------------------------------
    def conversation(self, request: Request) -> tuple[list[dict[str, Any]], list[MediaRef]]:
        """The chat turns of a request and the media it carries, in order."""
        content: list[dict[str, Any]] = []
        media: list[MediaRef] = []
        for part in request.parts():
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            elif part.role in self.family.media:
                content.append({"type": part.role})
                media.append(part)
        turns: list[dict[str, Any]] = []
        if self.system:
            turns.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        turns.append({"role": "user", "content": content})
        return turns, media

    def model_input(self, request: Request) -> str:
        turns, _ = self.conversation(request)
        return str(self.processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))

    def _decode(self, ref: MediaRef) -> tuple[Any, float | None]:
        """(decoded media, video duration in seconds where known)."""
        import numpy as np

        from crab_eval.media import image_frames, load_audio, video_frames

        if ref.role == "audio":
            assert isinstance(ref.source, Path)
            return load_audio(ref.source, self.sampling_rate), None
        if ref.role == "image":
            assert isinstance(ref.source, Path)
            return image_frames([ref.source], 1)[0], None
        if isinstance(ref.source, tuple):  # a video given as still frames (AVSBench)
            return np.stack(image_frames(ref.source, min(self.n_frames, len(ref.source)))), None
        frames, duration = video_frames(ref.source, self.n_frames)
        return np.stack(frames), duration

    def inputs(self, requests: Sequence[Request]) -> Any:
        """The processor's batch for ``requests`` (tensors on the model's device)."""
        texts: list[str] = []
        media: dict[str, list[Any]] = {role: [] for role in KEYWORD}
        durations: list[float | None] = []
        for request in requests:
            turns, refs = self.conversation(request)
            texts.append(self.processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))
            for ref in refs:
                try:
                    value, duration = self._decode(ref)
                except CrabEvalError:
                    raise
                except Exception as exc:
                    raise CrabEvalError(
                        f"{request.task.id} sample {request.sample.id}: cannot read media ({exc})", ref.path
                    ) from exc
                media[ref.role].append(value)
                if ref.role == "video":
                    durations.append(duration)
        kwargs: dict[str, Any] = {KEYWORD[role]: values for role, values in media.items() if values}
        if media["audio"]:
            kwargs["sampling_rate"] = self.sampling_rate
        if media["video"] and self.video_size:
            kwargs["videos_kwargs"] = {"size": self.video_size}
        batch = self.processor(text=texts, padding=True, return_tensors="pt", **kwargs)
        if "video_second_per_grid" in batch:
            # the processor assumes 2 frames per second; a decoded clip's rate is known: n_frames over its duration
            tp = self.processor.video_processor.temporal_patch_size
            given = batch["video_second_per_grid"]
            values = [tp * d / self.n_frames if d else float(g) for d, g in zip(durations, given.tolist(), strict=True)]
            batch["video_second_per_grid"] = given.new_tensor(values)
        return batch.to(self.device)

    # ---- the model interface -------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        import torch

        generation = dict(requests[0].generation)
        seed_batch(generation, requests)
        batch = self.inputs(requests)
        with torch.inference_mode():
            generated = self.model.generate(**batch, **generation)
        new = generated[:, batch["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [Response(text=text.strip()) for text in texts]

    def run_info(self) -> dict[str, Any]:
        return {"model": self.name or self.path.name}

    def describe(self) -> dict[str, Any]:
        import transformers

        config = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
        return {
            "path": str(self.path),
            "family": self.family.name,
            "model_type": config.get("model_type"),
            "model_class": self.family.model_class,
            "processor": type(self.processor).__name__,
            "video_processor": type(getattr(self.processor, "video_processor", None)).__name__,
            "dtype": str(next(self.model.parameters()).dtype),
            "device": str(self.device),
            "transformers": transformers.__version__,
            "system": self.system,
            "media_read": list(self.family.media),
            "n_frames": self.n_frames,
            "video_size": self.video_size or "processor default",
            "decode": "new tokens only, skip_special_tokens=True, stripped",
        }
