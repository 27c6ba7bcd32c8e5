"""Tokenizers: a byte-level BPE built locally (nothing downloaded), or a local checkpoint's, plus Crab's tokens.

Control tokens (padding, media placeholders, mask tokens) are *special*: they never come out of a decode. The tags of
the answer templates (``<answer>``, ``<event>``, ...) are added as ordinary whole tokens, so a decode keeps them and
the task's parser sees exactly what the model emitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
VIDEO, AUDIO = "<video>", "<audio>"
MEDIA_TOKENS = ("<video_start>", VIDEO, "<video_end>", "<audio_start>", AUDIO, "<audio_end>")
# Answer-template tags of Crab's tasks (crab.md): whole tokens so that the model cannot misspell them piecewise.
TAG_NAMES = ("answer", "event", "range", "audio_event", "visual_event", "obj")
TEMPLATE_TAGS = tuple(t for name in TAG_NAMES for t in (f"<{name}>", f"</{name}>"))


def mask_tokens(n: int) -> list[str]:
    return ["<mask_start>", *(f"<mask_{i}>" for i in range(n)), "<mask_end>"]


def special_tokens(n_mask: int) -> list[str]:
    return [*MEDIA_TOKENS, *mask_tokens(n_mask)]


def build_tokenizer(corpus: Iterable[str], vocab_size: int, n_mask: int) -> Any:
    """A byte-level BPE trained on ``corpus`` (the run's prompts and answers) up to ``vocab_size`` entries.

    Byte-level means any text round-trips, so an answer outside the training texts is still representable. The
    BPE trainer is deterministic for a given corpus order, so every process of a run gets the same vocabulary.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [PAD, BOS, EOS, *special_tokens(n_mask)]
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size - len(TEMPLATE_TAGS), 0),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEMPLATE_TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=special_tokens(n_mask),
    )


def extend_tokenizer(tokenizer: Any, n_mask: int) -> Any:
    """A local checkpoint's tokenizer with Crab's control tokens and template tags added (if absent)."""
    from tokenizers import AddedToken

    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens(n_mask)})
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEMPLATE_TAGS])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def token_id(tokenizer: Any, token: str) -> int:
    idx = tokenizer.convert_tokens_to_ids(token)
    if idx is None or idx == tokenizer.unk_token_id:
        raise KeyError(f"tokenizer has no token {token!r}")
    return int(idx)
