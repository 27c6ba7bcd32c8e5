"""AVCAP: audio-visual captioning on VALOR-32K, scored with coco-caption's BLEU-4, ROUGE-L and CIDEr(-D).

Crab trains and tests its captioning task on VALOR-32K (``add_avcap_samples`` in GeWu-Lab/Crab
dataset/unified_dataset.py); VALOR scores captions with coco-caption's ``COCOEvalCap`` (TXH-mercury/VALOR test.py
``compute_metric_cap``): PTBTokenizer, then Bleu(4), Meteor, Rouge, Cider, each x100. Here the Bleu, Rouge and Cider
algorithms are those of ``pycocoevalcap`` 1.2 (its scorers are the reference in the tests), PTBTokenizer (Stanford
CoreNLP 3.4.1, Java) is reproduced in pure Python, and METEOR and SPICE (Java only) are left out.
Every quirk, and where it comes from: docs/tasks/avcap.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crab_eval.errors import PredictionError
from crab_eval.layouts.avcap import split_path
from crab_eval.metrics.captions import bleu_counts, corpus_bleu4, corpus_cider, rouge_l
from crab_eval.metrics.ptb_tokenizer import tokenize_caption
from crab_eval.readers.free_text import strip_special_tokens
from crab_eval.readers.json_list import parse_json_list
from crab_eval.tasks.base import MetricSpec, Sample, Split, Task, require_file

# Crab's training instruction (unified_dataset.py, train mode; Crab_Plus omni_dataset.py uses it too). Crab's own
# test loader asks "Please describe this video." instead; we keep one wording for training and scoring.
INSTRUCTION = "Please describe this video and audio."


def _parse_caption(obj: Any) -> tuple[str, str, str]:
    """(video_id, desc, tokenised desc) of one element of a desc_*.json list; ``ValueError`` says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"must be an object, got {type(obj).__name__}")
    if not isinstance(obj.get("video_id"), str) or not obj["video_id"].strip():
        raise ValueError(f"'video_id' must be a non-empty string, got {obj.get('video_id')!r}")
    if not isinstance(obj.get("desc"), str):
        raise ValueError(f"'desc' must be a string, got {obj.get('desc')!r}")
    tokens = tokenize_caption(obj["desc"])
    if not tokens:
        # An empty reference would give an empty prediction ROUGE-L 1 and leave CIDEr without n-grams.
        raise ValueError(f"'desc' {obj['desc']!r} has no words")
    return obj["video_id"], obj["desc"], tokens


class AvcapTask(Task):
    id: ClassVar[str] = "avcap"
    version: ClassVar[str] = "2"  # 2: every trailing special token and padding is stripped (1: one </s>)
    description: ClassVar[str] = (
        "AV captioning on VALOR-32K (Crab's AVCAP): coco-caption BLEU-4, ROUGE-L, CIDEr-D without Java"
    )
    splits: ClassVar[tuple[str, ...]] = ("test", "val", "train")
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("bleu4", description="coco-caption Bleu_4 (corpus level, 'closest' reference length) x100"),
        MetricSpec("rouge_l", description="coco-caption ROUGE_L (LCS F-measure, beta 1.2, mean over videos) x100"),
        MetricSpec(
            "cider",
            description="coco-caption CIDEr (CIDEr-D, document frequencies from the scored set's references) x100",
            scale="0-1000",
        ),
    )
    main_metric: ClassVar[str] = "cider"

    def annotation_files(self, data_dir: Path, split: str) -> list[Path]:
        return [split_path(data_dir, split)]

    def read_split(self, data_dir: Path, split: str) -> Split:
        path = require_file(split_path(data_dir, split))
        # coco-caption groups annotations by video id: a video listed twice has two references.
        grouped: dict[str, list[tuple[str, str]]] = {}
        for video_id, desc, tokens in parse_json_list(path, _parse_caption, "entry", '{"video_id", "desc"} objects'):
            grouped.setdefault(video_id, []).append((desc, tokens))
        samples = [
            Sample(
                id=video_id,
                instruction=INSTRUCTION,
                target=tuple(tokens for _, tokens in descs),
                group=video_id,
                media={"video": f"video_data/{video_id}.mp4", "audio": f"audio_data/{video_id}.mp3"},
                meta={"captions": [desc for desc, _ in descs]},
            )
            for video_id, descs in grouped.items()
        ]
        return Split(self.id, split, data_dir, samples)

    # ---- text: the answer is the caption itself -------------------------------------------------------------
    def target_text(self, sample: Sample) -> str:
        return str(sample.meta["captions"][0])

    def parse(self, text: str, split: Split) -> dict[str, Any] | None:
        # Crab decodes with skip_special_tokens=False: a caption opens with <s> and a batch's shorter rows end in
        # </s></s>... or <unk> padding; none of it is caption.
        caption = strip_special_tokens(text)
        return {"caption": caption} if caption else None

    # ---- predictions -------------------------------------------------------------------------------------------
    def check_prediction(self, obj: Any, sample: Sample, split: Split, base_dir: Path) -> str:
        if not isinstance(obj, dict):
            raise PredictionError(f'prediction must be an object {{"caption": STRING}}, got {type(obj).__name__}')
        if set(obj) != {"caption"}:
            raise PredictionError(f"prediction must have exactly the key 'caption', got {sorted(map(str, obj))}")
        caption = obj["caption"]
        if not isinstance(caption, str):
            raise PredictionError(f"'caption' must be a string, got {type(caption).__name__}")
        return caption

    def empty_prediction(self, sample: Sample) -> str:
        return ""  # no words: no n-gram matches, and the brevity penalty charges its reference length

    def oracle_prediction(self, sample: Sample) -> dict[str, Any]:
        return {"caption": sample.meta["captions"][0]}

    # ---- scoring -------------------------------------------------------------------------------------------------
    def score_samples(self, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[dict[str, Any]]:
        """Tokenised candidate and references (CIDEr needs them in ``aggregate``), ROUGE-L, BLEU counts."""
        candidates = [tokenize_caption(p) for p in predictions]
        references = [list(s.target) for s in samples]
        bleu = bleu_counts(candidates, references) if samples else []
        return [
            {"candidate": c, "references": r, "rouge_l": rouge_l(c, r), **b}
            for c, r, b in zip(candidates, references, bleu, strict=True)
        ]

    def aggregate(self, stats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """BLEU from summed counts, ROUGE-L as the mean of per-video scores, CIDEr recomputed on this very set."""
        if not stats:
            return {}
        return {
            "bleu4": 100.0 * corpus_bleu4(stats),
            "rouge_l": 100.0 * float(np.mean([s["rouge_l"] for s in stats])),
            "cider": 100.0 * corpus_cider([s["candidate"] for s in stats], [s["references"] for s in stats]),
        }
