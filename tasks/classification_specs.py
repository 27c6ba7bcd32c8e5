"""Declarations of Crab+'s classification, emotion and matching tasks: one ``ClassificationSpec`` per task id.

Everything a task differs in is data here (file layout, instruction, answer template, label spelling, metrics);
``tasks/classification.py`` holds the one adapter class they all share. Instructions and answer templates are the
ones of Crab+'s ``OmniTestDataset`` (GeWu-Lab/Crab_Plus ``dataset/qwen2_5_omni/omni_dataset.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crab_eval.layouts.classification import LAYOUTS, CrabJsonLayout
from crab_eval.tasks.base import CRAB_PREFIX

ACTION = "Please identify the action taking place in the video."
EMOTION = "Please judge the person's emotion at the moment."
A2V = "Please listen to the audio and indicate which of the two videos matches what you hear."
V2A = "Please view the video and indicate which of the two audio clips matches what you see."

VIDEO_SLOT = "<video_start><video><video_end>\n"
AUDIO_SLOT = "<audio_start><audio><audio_end>\n"
# Crab+ puts a lead-in text, then the media in this order, then the instruction. For one video and one audio this
# is Crab's own prefix; the matching tasks carry three clips, in Crab+'s order.
A2V_PREFIX = "These are two videos and an audio:\n" + AUDIO_SLOT + VIDEO_SLOT + VIDEO_SLOT
V2A_PREFIX = "This is a video and two audio clips:\n" + VIDEO_SLOT + AUDIO_SLOT + AUDIO_SLOT


def _ordinal_aliases(noun_words: tuple[str, ...]) -> dict[str, str]:
    """Spellings of "1" / "2" a model plausibly writes for a two-way choice: one, first, video 1, the second clip."""
    words = {"1": ("1", "one", "first", "1st"), "2": ("2", "two", "second", "2nd")}
    nouns = ("", *noun_words)
    aliases: dict[str, str] = {}
    for label, forms in words.items():
        for form in forms:
            for noun in nouns:
                for text in (form, f"{noun} {form}", f"{form} {noun}", f"the {form} {noun}", f"{noun} number {form}"):
                    aliases[" ".join(text.split())] = label
    return aliases


@dataclass(frozen=True)
class ClassificationSpec:
    id: str
    description: str
    layout: CrabJsonLayout
    instruction: str
    metrics: tuple[str, ...]  # names from METRIC_DESCRIPTIONS
    main_metric: str
    prompt_prefix: str = CRAB_PREFIX
    # Crab+ closes some answers with a full stop (``<answer>{x}</answer>.``), others not; kept per task.
    answer_suffix: str = "."
    lowercase_label: bool = False  # Crab+'s ucf test loader lower-cases the class name
    ignore_spaces: bool = False  # label keys ignore spaces ("apply eye makeup" == "applyeyemakeup")
    closed_labels: tuple[str, ...] = ()  # a label outside these is an annotation error
    aliases: Mapping[str, str] = field(default_factory=dict)  # answer key -> label


METRIC_DESCRIPTIONS: dict[str, str] = {
    "accuracy": "top-1 accuracy (%)",
    "weighted_f1": "F1 (%) per class averaged with class support as weights (sklearn average='weighted')",
    "uar": "unweighted average recall (%): mean of the per-class recalls (balanced accuracy)",
    "war": "weighted average recall (%): recall weighted by class support, i.e. accuracy",
}

SPECS: tuple[ClassificationSpec, ...] = (
    ClassificationSpec(
        "ks", "Kinetics-Sounds action classification (Crab+ AVUIE_2/ks): accuracy",
        LAYOUTS["ks"], ACTION, ("accuracy",), "accuracy", answer_suffix="",
    ),
    ClassificationSpec(
        "ucf", "UCF-101 action classification (Crab+ AVUIE_2/ucf): accuracy",
        LAYOUTS["ucf"], ACTION, ("accuracy",), "accuracy", answer_suffix="", lowercase_label=True, ignore_spaces=True,
    ),
    ClassificationSpec(
        "meld", "MELD utterance emotion recognition (Crab+ AVUIE_2/meld): weighted F1 and accuracy",
        LAYOUTS["meld"], EMOTION, ("weighted_f1", "accuracy"), "weighted_f1",
    ),
    ClassificationSpec(
        "cremad", "CREMA-D emotion recognition (Crab+ AVUIE_2/cremad): accuracy",
        LAYOUTS["cremad"], EMOTION, ("accuracy",), "accuracy",
    ),
    ClassificationSpec(
        "mafw", "MAFW dynamic facial expression recognition (Crab+ AVUIE_2/mafw): UAR and WAR",
        LAYOUTS["mafw"], EMOTION, ("uar", "war"), "uar",
    ),
    ClassificationSpec(
        "dfew", "DFEW dynamic facial expression recognition (Crab+ AVUIE_2/dfew): UAR and WAR",
        LAYOUTS["dfew"], EMOTION, ("uar", "war"), "uar",
    ),
    ClassificationSpec(
        "a2v", "audio-to-visual matching, two candidate videos (Crab+ AVUIE_2/a2v): accuracy (chance 50)",
        LAYOUTS["a2v"], A2V, ("accuracy",), "accuracy", prompt_prefix=A2V_PREFIX, closed_labels=("1", "2"),
        aliases=_ordinal_aliases(("video", "clip", "video clip")),
    ),
    ClassificationSpec(
        "v2a", "visual-to-audio matching, two candidate audio clips (Crab+ AVUIE_2/v2a): accuracy (chance 50)",
        LAYOUTS["v2a"], V2A, ("accuracy",), "accuracy", prompt_prefix=V2A_PREFIX, closed_labels=("1", "2"),
        aliases=_ordinal_aliases(("audio", "clip", "audio clip")),
    ),
)  # fmt: skip
