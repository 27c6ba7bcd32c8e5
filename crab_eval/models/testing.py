"""Tiny random checkpoints of the real architectures, written to a folder: for the tests and the benchmark.

Each is the layout a real checkpoint has (``config.json`` + safetensors weights, ``tokenizer.json`` with the
family's special tokens, ``preprocessor_config.json``, a chat template), built here from nothing: a byte-level BPE
trained on a few sentences, random weights of a few thousand parameters, a Whisper feature extractor with a
10-second window. Nothing is downloaded. The chat template is written here in the families' ChatML layout (system,
user and assistant turns; media items as the family's media tokens), not copied from a release.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QWEN_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>",
    "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>",
)  # fmt: skip
OMNI_TOKENS = {
    "image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
}  # fmt: skip
OMNI_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif item['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif item['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = (
    "This is a video. This is an audio. Please answer the question.",
    "<answer> yes </answer> <answer> no </answer> <event> dog barking </event> <range> 0,10 </range>",
    "The sounding object is a violin. What is making the sound? How many instruments are playing?",
)
SAMPLING_RATE, CHUNK_SECONDS, N_MELS = 16_000, 10, 16
# Video budget of the tiny vision tower: frames are resized to 28 x 28 .. 56 x 56 pixels.
VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS = 28 * 28, 56 * 56


def tiny_tokenizer(extra: dict[str, str] | None = None, vocab_size: int = 320) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(CORPUS) * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", extra_special_tokens=extra or {}
    )


def _feature_extractor() -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(
        feature_size=N_MELS, sampling_rate=SAMPLING_RATE, hop_length=160, chunk_length=CHUNK_SECONDS, n_fft=400
    )


def _audio_encoder(output_dim: int | None = None) -> dict[str, Any]:
    config = {
        "num_mel_bins": N_MELS, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
        "d_model": 16, "max_source_positions": CHUNK_SECONDS * 50,
    }  # fmt: skip
    if output_dim is not None:
        config.update(n_window=50, output_dim=output_dim)
    return config


def _text(tok: Any) -> dict[str, Any]:
    return {
        "vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
        "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id,
    }  # fmt: skip


def _save(model: Any, tok: Any, out: Path) -> Path:
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(out))
    return out


def tiny_qwen2_5_omni(out: str | Path, seed: int = 0, full: bool = False) -> Path:
    """A Qwen2.5-Omni thinker (``full``: inside a ``Qwen2_5OmniForConditionalGeneration`` checkpoint without talker,
    the layout of the released model) with its processor files."""
    import torch
    from transformers import Qwen2_5OmniThinkerConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer(OMNI_TOKENS)
    tok.save_pretrained(str(out))
    image = Qwen2VLImageProcessorPil(min_pixels=VIDEO_MIN_PIXELS, max_pixels=VIDEO_MAX_PIXELS)
    # One preprocessor_config.json for the feature extractor and the image processor, as the released model has.
    preprocessor = {**_feature_extractor().to_dict(), **image.to_dict(), "processor_class": "Qwen2_5OmniProcessor"}
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    video = {
        "video_processor_type": "Qwen2VLVideoProcessor", "size": {"shortest_edge": VIDEO_MIN_PIXELS,
        "longest_edge": VIDEO_MAX_PIXELS}, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": image.image_mean, "image_std": image.image_std,
    }  # fmt: skip
    (out / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2))
    (out / "chat_template.jinja").write_text(OMNI_TEMPLATE)
    ids = {name: tok.convert_tokens_to_ids(token) for name, token in OMNI_TOKENS.items()}
    text = _text(tok) | {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]}}
    config = Qwen2_5OmniThinkerConfig(
        audio_config=_audio_encoder(output_dim=32),
        vision_config={
            "depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56, "out_hidden_size": 32,
            "fullatt_block_indexes": [0],
        },
        text_config=text,
        audio_token_index=ids["audio_token"], image_token_index=ids["image_token"],
        video_token_index=ids["video_token"], audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"], user_token_id=tok.convert_tokens_to_ids("<|im_start|>"),
        # read by the rope index of the released config, not declared by the config class
        **{"vision_start_token_id": ids["vision_bos_token"], "vision_end_token_id": ids["vision_eos_token"]},
    )  # fmt: skip
    torch.manual_seed(seed)
    if full:
        from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

        whole = Qwen2_5OmniForConditionalGeneration(
            Qwen2_5OmniConfig(thinker_config=config.to_dict(), enable_audio_output=False)
        )
        return _save(whole, tok, out)
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    return _save(Qwen2_5OmniThinkerForConditionalGeneration(config), tok, out)


def tiny_qwen2_audio(out: str | Path, seed: int = 0) -> Path:
    """A Qwen2-Audio model with its processor files (the processor's own default chat template)."""
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

    out = Path(out)
    tok = tiny_tokenizer(
        {"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"}
    )
    Qwen2AudioProcessor(feature_extractor=_feature_extractor(), tokenizer=tok).save_pretrained(str(out))
    config = Qwen2AudioConfig(
        audio_config=_audio_encoder(),
        text_config={"model_type": "qwen2", **_text(tok)},
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    return _save(Qwen2AudioForConditionalGeneration(config), tok, out)


def bare_generate(
    processor: Any,
    model: Any,
    samples: Any,
    data_dir: Path,
    batch_size: int,
    max_new_tokens: int,
    video_size: dict[str, int] | None = None,
    n_frames: int = 10,
    sampling_rate: int = SAMPLING_RATE,
) -> list[str]:
    """The loop a user writes by hand around transformers for a Qwen2.5-Omni thinker and Crab's prompt (video, then
    audio, then the instruction, after Crab+'s system turn): the reference the ``hf`` model's answers are tested
    and timed against. It shares only the system prompt with ``crab_eval.models.hf``: the turns are spelled out."""
    import numpy as np
    import torch

    from crab_eval.media import load_audio, video_frames
    from crab_eval.models.hf import QWEN_OMNI_SYSTEM

    answers: list[str] = []
    for start in range(0, len(samples), batch_size):
        texts, videos, audios, seconds = [], [], [], []
        for sample in samples[start : start + batch_size]:
            clip = Path(data_dir) / sample.media["video"]
            user = [
                {"type": "text", "text": "This is a video:\n"},
                {"type": "video"},
                {"type": "text", "text": "\nThis is an audio:\n"},
                {"type": "audio"},
                {"type": "text", "text": "\n" + sample.instruction},
            ]
            turns = [
                {"role": "system", "content": [{"type": "text", "text": QWEN_OMNI_SYSTEM}]},
                {"role": "user", "content": user},
            ]
            texts.append(processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))
            frames, duration = video_frames(clip, n_frames)
            videos.append(np.stack(frames))
            seconds.append(2 * duration / n_frames)  # two frames per temporal patch, n_frames over the clip
            audios.append(load_audio(clip, sampling_rate))
        extra: dict[str, Any] = {"videos_kwargs": {"size": video_size}} if video_size else {}
        batch = processor(
            text=texts, videos=videos, audio=audios, sampling_rate=sampling_rate, padding=True, return_tensors="pt",
            **extra,
        )  # fmt: skip
        batch["video_second_per_grid"] = torch.tensor(seconds)
        device = next(model.parameters()).device
        with torch.inference_mode():
            out = model.generate(**batch.to(device), max_new_tokens=max_new_tokens, do_sample=False)
        new = out[:, batch["input_ids"].shape[1] :]
        answers += [text.strip() for text in processor.batch_decode(new, skip_special_tokens=True)]
    return answers
