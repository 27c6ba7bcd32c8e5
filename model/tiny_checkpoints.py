"""Tiny random checkpoints of the real recipes' architectures, written in the published checkpoints' formats.

Nothing is downloaded: each folder holds a transformers model of the real class at a tiny size (random weights),
its ``config.json`` and, where the real checkpoint ships one, its tokenizer or preprocessor config, so that
``from_pretrained`` reads it exactly as it reads the published checkpoint it stands for:

- ``llama_checkpoint``: ``LlamaForCausalLM`` + a ``LlamaTokenizer`` (byte-fallback BPE with sentencepiece's "▁"
  word marker, ``<unk> <s> </s>``, no pad token), as meta-llama/Llama-2-7b-chat-hf;
- ``clip_checkpoint``: a full ``CLIPModel`` (text and vision towers) with 24 vision layers, so that Crab's layer
  choice (hidden states 14, 22, 23) exists, + its image-processor config, as openai/clip-vit-large-patch14;
- ``ast_checkpoint``: ``ASTForAudioClassification`` + its feature-extractor config, as
  MIT/ast-finetuned-audioset-10-10-0.4593;
- ``qwen_omni_checkpoint``: ``Qwen2_5OmniForConditionalGeneration`` without the talker (its thinker: audio tower,
  vision tower, language model) + a ``Qwen2Tokenizer`` (byte-level BPE with Qwen2.5-Omni's special tokens), as
  Qwen/Qwen2.5-Omni-7B.

Tokenizers are trained locally on a few sentences in the prompt and answer style of the tasks (``CORPUS``) plus any
texts given. Used by the recipe tests and ``benchmarks/bench_train.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

CORPUS = (
    "This is a video:\nThis is an audio:\nPlease recognize the category of the audio-visual event in the video.",
    "<event> Male speech, man speaking </event>, and the time range is <range> 0,8 </range>",
    "The answer is <answer> two </answer>. How many instruments are sounding in the video?",
    "<audio_event>Speech,(0 10)</audio_event> <visual_event>Dog,(2 8)</visual_event>",
    "Please segment the object making the sound in the video frame at second 1.",
    "a dog barking, a man speaking, a car engine, a church bell, an acoustic guitar, a violin, a cello.",
)
# Qwen2.5-Omni's control tokens (tokenizer_config.json of Qwen/Qwen2.5-Omni-7B): chat markers and media markers.
OMNI_SPECIAL = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
)


def _bpe_vocab(texts: Iterable[str], pre_tokenizer: Any, specials: list[str], size: int, alphabet: list[str]):
    """(vocab, merges) of a BPE trained on ``texts`` with ``pre_tokenizer`` (the tokenizers library)."""
    from tokenizers import Tokenizer, models, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    bpe.train_from_iterator([*CORPUS, *texts], trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def llama_tokenizer(texts: Iterable[str] = (), size: int = 600) -> Any:
    """A Llama(-2) tokenizer: byte-fallback BPE over "▁"-marked words; ids 0, 1, 2 = <unk>, <s>, </s>."""
    from tokenizers import pre_tokenizers
    from transformers import LlamaTokenizer

    # Trained with words split at "▁" (sentencepiece never merges across words), used as LlamaTokenizer does.
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    specials = ["<unk>", "<s>", "</s>", *(f"<0x{i:02X}>" for i in range(256))]
    vocab, merges = _bpe_vocab(texts, pre, specials, size, [])
    return LlamaTokenizer(vocab=vocab, merges=merges)


def llama_checkpoint(
    folder: str | Path, texts: Iterable[str] = (), hidden: int = 32, layers: int = 2, seed: int = 0
) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tok = llama_tokenizer(texts)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,  # Llama-2-7B has no grouped-query attention
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def clip_checkpoint(
    folder: str | Path, layers: int = 24, hidden: int = 16, image_size: int = 32, patch: int = 8, seed: int = 0
) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    folder = Path(folder)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": 100,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch,
        },
        projection_dim=hidden,
    )
    CLIPModel(config).save_pretrained(str(folder))
    CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size=image_size).save_pretrained(str(folder))
    return folder


def ast_checkpoint(
    folder: str | Path, mels: int = 16, max_length: int = 240, hidden: int = 16, patch: int = 4, seed: int = 0
) -> Path:
    """AST at a tiny size: ``mels`` mel bins, ``max_length`` frames (the real one: 128 bins, 1024 frames)."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    folder = Path(folder)
    torch.manual_seed(seed)
    config = ASTConfig(
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        patch_size=patch,
        frequency_stride=patch,
        time_stride=patch,
        max_length=max_length,
        num_mel_bins=mels,
    )
    ASTForAudioClassification(config).save_pretrained(str(folder))
    ASTFeatureExtractor(num_mel_bins=mels, max_length=max_length).save_pretrained(str(folder))
    return folder


def qwen_omni_tokenizer(texts: Iterable[str] = (), size: int = 700) -> Any:
    """A Qwen2 tokenizer (byte-level BPE with Qwen2's pre-tokenizer) carrying Qwen2.5-Omni's special tokens."""
    from tokenizers import Regex, pre_tokenizers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    vocab, merges = _bpe_vocab(texts, pre, [], size, pre_tokenizers.ByteLevel.alphabet())
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,  # type: ignore[arg-type]  # Qwen's tokenizer has no unknown token (byte-level)
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(OMNI_SPECIAL),
    )


def qwen_omni_checkpoint(
    folder: str | Path, mels: int = 16, texts: Iterable[str] = (), hidden: int = 32, seed: int = 0
) -> Path:
    """The thinker of Qwen2.5-Omni at a tiny size, saved as the full model (``thinker.`` weights, model_type
    qwen2_5_omni, no talker). Audio tower: ``mels`` mel bins, 1-s attention windows of 100 frames at the real
    size become ``n_window`` 12 here; vision tower: 4-pixel patches, 2 x 2 merge, 2-frame temporal patches."""
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration, Qwen2VLImageProcessorPil
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    tok = qwen_omni_tokenizer(texts)
    ids = {t: tok.convert_tokens_to_ids(t) for t in OMNI_SPECIAL}
    token_ids = {
        "audio_token_index": ids["<|AUDIO|>"],
        "image_token_index": ids["<|IMAGE|>"],
        "video_token_index": ids["<|VIDEO|>"],
        "audio_start_token_id": ids["<|audio_bos|>"],
        "audio_end_token_id": ids["<|audio_eos|>"],
    }
    vision_markers = {"vision_start_token_id": ids["<|vision_bos|>"], "vision_end_token_id": ids["<|vision_eos|>"]}
    thinker = {
        "audio_config": {
            "num_mel_bins": mels,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 2 * hidden,
            "d_model": hidden // 2,
            "n_window": 12,
            "max_source_positions": 64,
            "output_dim": hidden,
        },
        "vision_config": {
            "depth": 2,
            "hidden_size": hidden // 2,
            "intermediate_size": hidden,
            "num_heads": 2,
            "patch_size": 4,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 16,
            "out_hidden_size": hidden,
            "fullatt_block_indexes": [1],
        },
        "text_config": {
            "vocab_size": len(tok),
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            # head_dim 8: the multimodal rotary sections (t, h, w) cover its 4 frequencies (7B: 16, 24, 24 of 64)
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 1, 1]},
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        **token_ids,
        **vision_markers,
    }
    # Unused (no talker); its token ids are kept inside the tiny vocabulary.
    tts = [f"tts_text_{k}_token_id" for k in ("start", "end", "pad")]
    tts += [f"tts_codec_{k}_token_id" for k in ("start", "end", "pad", "mask")]
    talker = {"vocab_size": len(tok), **token_ids, **vision_markers, **{k: i for i, k in enumerate(tts)}}
    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a default talker config's token ids (151k) lie outside the tiny vocabulary
    try:
        config = Qwen2_5OmniConfig(thinker_config=thinker, talker_config=talker, enable_audio_output=False)
        Qwen2_5OmniForConditionalGeneration(config).save_pretrained(str(folder))
    finally:
        hf_logging.set_verbosity(verbosity)
    tok.save_pretrained(str(folder))
    Qwen2VLImageProcessorPil(patch_size=4, merge_size=2, temporal_patch_size=2).save_pretrained(str(folder))
    return folder
