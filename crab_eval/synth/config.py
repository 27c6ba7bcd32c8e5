"""SynthAV's fixed design: class families (look, sound, names per benchmark), suite sizes and planted relations.

Everything a reader needs to know what the suite *means* is here; the other modules only execute it. The design is
documented in docs/synth.md, and ``relations_manifest`` writes it beside the data (``synth_config.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SAMPLE_RATE = 16_000  # Hz, the rate of every official extracted-audio file (AVSBench, LLP, MUSIC-AVQA scripts)
FRAME_SIZE = 96  # pixels, square frames (even, for H.264)
VIDEO_FPS = 4  # frames per second in mp4 files; the scene only changes at segment boundaries
CLIP_SECONDS = 10  # AVE, LLP and the synthetic MUSIC-AVQA clips: ten 1 s segments
AVS_SECONDS = 5  # AVSBench-object clips: five seconds, one annotated frame per second
AUDIO_BITRATE = 32_000  # AAC bitrate of the audio track inside mp4 files


@dataclass(frozen=True)
class ClassSpec:
    """One synthetic sound-emitting object class: how it looks and how it sounds.

    ``waveform`` picks the harmonic recipe (render_audio.HARMONICS) or "noise" (band-passed noise);
    ``pattern`` the pitch / amplitude pattern over time: steady, rise, fall, trill, vibrato, pulse.
    """

    key: str
    shape: str
    colour: tuple[int, int, int]
    waveform: str
    base_hz: float
    pattern: str


# Family A: the world of ave, synth_ave_swap, avvp, s4 and ms3. Each class has a name in each benchmark's own
# vocabulary (MS3 scores masks only and names none); the eight are chosen so that the vocabularies name the same
# thing.
FAMILY_A: tuple[ClassSpec, ...] = (
    ClassSpec("violin", "triangle", (220, 40, 40), "saw", 660.0, "vibrato"),
    ClassSpec("guitar", "circle", (240, 200, 30), "pluck", 330.0, "pulse"),
    ClassSpec("dog", "square", (40, 160, 60), "square", 250.0, "pulse"),
    ClassSpec("cat", "diamond", (60, 90, 230), "sine", 800.0, "fall"),
    ClassSpec("chainsaw", "cross", (230, 120, 20), "noise", 1200.0, "steady"),
    ClassSpec("helicopter", "bar", (150, 60, 200), "square", 110.0, "trill"),
    ClassSpec("speech", "ring", (30, 190, 200), "formant", 180.0, "rise"),
    ClassSpec("race_car", "star", (240, 90, 170), "saw", 200.0, "rise"),
)
NAMES_A: dict[str, tuple[str, ...]] = {
    "ave": ("Violin, fiddle", "Acoustic guitar", "Bark", "Cat", "Chainsaw", "Helicopter",
            "Male speech, man speaking", "Race car, auto racing"),
    "avvp": ("Violin_fiddle", "Acoustic_guitar", "Dog", "Cat", "Chainsaw", "Helicopter", "Speech", "Car"),
    # Official S4 category folder names (s4_meta_data.csv, column 2).
    "s4": ("playing_violin", "playing_acoustic_guitar", "dog_barking", "cat_meowing", "chainsawing_trees",
           "helicopter", "male_speech", "race_car"),
}  # fmt: skip

# Family C: MUSIC-AVQA's world; names are answers of the official 42-word vocabulary.
FAMILY_C: tuple[ClassSpec, ...] = (
    ClassSpec("piano", "square", (245, 245, 245), "pluck", 262.0, "steady"),
    ClassSpec("flute", "bar", (170, 170, 60), "sine", 1046.0, "vibrato"),
    ClassSpec("trumpet", "triangle", (230, 170, 60), "saw", 523.0, "steady"),
    ClassSpec("drum", "circle", (110, 40, 40), "noise", 150.0, "pulse"),
    ClassSpec("xylophone", "diamond", (80, 200, 120), "sine", 1568.0, "pulse"),
    ClassSpec("erhu", "star", (90, 50, 150), "saw", 392.0, "trill"),
)
NAMES_C: tuple[str, ...] = ("piano", "flute", "trumpet", "drum", "xylophone", "erhu")

FAMILIES: dict[str, tuple[ClassSpec, ...]] = {"A": FAMILY_A, "C": FAMILY_C}

# The conflict task's vocabulary: other official AVE categories for the same eight classes, so the same clip and
# prompt have another answer word than in AVE. The words are used by no other SynthAV task (not AVE's eight, not
# LLP's or MUSIC-AVQA's vocabulary): the conflict stays inside the pair and cannot leak into the shared-skill
# group through a shared word (an earlier design reused AVE's own words shifted by one class, which made "Cat" mean
# a dog in one task and a cat in AVE and AVVP). Same clips distribution, instruction and answer template.
NAMES_A["synth_ave_swap"] = (
    "Church bell", "Ukulele", "Goat", "Horse", "Train horn", "Truck", "Shofar", "Clock",
)  # fmt: skip


@dataclass(frozen=True)
class SizeSpec:
    """Clips per split for every task of the suite (MUSIC-AVQA: videos; each gets several questions).

    ``per_task`` overrides the counts of some splits for one task: ``{"avvp": {"val": 256}}``.
    """

    train: int
    val: int
    test: int
    questions_per_video: int
    per_task: dict[str, dict[str, int]] = field(default_factory=dict)

    def clips(self, task: str) -> dict[str, int]:
        """Clips per split for ``task``."""
        return {"train": self.train, "val": self.val, "test": self.test, **self.per_task.get(task, {})}


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(train=4, val=2, test=4, questions_per_video=4),
    "small": SizeSpec(train=48, val=12, test=24, questions_per_video=6),
    # What `crab-eval demo` trains on: enough training clips that a small model learns the classes instead of
    # memorising clips (with 48, training loss reaches ~0 and test accuracy stays near 60), and enough test clips
    # for the planted effects to clear the bootstrap noise. AVVP trains on val (dense labels; train is weak). S4 is
    # the data-scarce task of RELATIONS["scarce_skill"]: 16 training clips. S4 and MS3 are scored on 64 test clips
    # (320 annotated frames each: J is precise, and every frame is a generation at prediction time).
    "demo": SizeSpec(
        train=256,
        val=8,
        test=128,
        questions_per_video=4,
        per_task={"avvp": {"train": 8, "val": 256}, "s4": {"train": 16, "test": 64}, "ms3": {"test": 64}},
    ),
    "medium": SizeSpec(train=480, val=60, test=160, questions_per_video=8),
}

# Task id -> (family, folder of the suite holding that task's official layout).
TASKS: dict[str, tuple[str, str]] = {
    "ave": ("A", "AVE_Dataset"),
    "synth_ave_swap": ("A", "SynthAVE_swap"),
    "avvp": ("A", "LLP"),
    "s4": ("A", "AVSBench/Single-source"),
    "ms3": ("A", "AVSBench/Multi-sources"),
    "music_avqa": ("C", "MUSIC-AVQA"),
}

# The planted relations. ``expect`` is the transfer a correct measurement should find when the listed tasks are
# trained together versus alone (same data per task, same budget); ``tasks`` lists the tasks the expectation is
# about first, then the tasks that cause it (``because``).
RELATIONS: dict[str, dict[str, Any]] = {
    "scarce_skill": {
        "tasks": ["s4", "ms3"],
        "expect": "positive",
        "expect_on": ["s4"],
        "mechanism": (
            "The classic case of positive transfer: a data-scarce task sharing its skill and its world with a "
            "data-rich one. s4 trains on few clips (16 at the demo size, one annotated frame each, as S4's train "
            "split has), ms3 on many (256, five annotated frames each). Both ask the same thing in the same words "
            "(AVSBench's instruction and answer template with mask tokens), need the same skill, 'segment the "
            "objects that make the sound, not the silent ones', learnt by the same mask decoder and image encoder, "
            "and show the same objects (family A: same shapes, colours and sounds). Alone, a model fits s4's 16 "
            "masks; trained with ms3 it segments family A's objects as 256 clips taught it, so s4's J rises."
        ),
    },
    "conflict": {
        "tasks": ["ave", "synth_ave_swap"],
        "expect": "negative",
        "expect_on": ["ave", "synth_ave_swap"],
        "mechanism": (
            "synth_ave_swap is AVE's layout, metric, instruction and answer template on clips drawn from the same "
            "generator, but its Annotations.txt names each class with another official AVE category, a word no "
            "other SynthAV task uses. The same input and prompt therefore have two contradicting targets on every "
            "event segment; a joint model that cannot tell the tasks apart must lose event-segment accuracy on at "
            "least one of them. Segment timing and background agree, so the conflict is confined to the class word."
        ),
    },
    "null": {
        "tasks": ["music_avqa", "ms3"],
        "expect": "none",
        "expect_on": ["music_avqa"],
        "mechanism": (
            "MUSIC-AVQA is built from family C and MS3 from family A: disjoint looks, sounds and words, disjoint "
            "outputs (answer words versus masks), independent random streams. No relation is planted; generic "
            "perception shared by any two audio-visual tasks remains, so 'none' means no planted transfer. "
            "MUSIC-AVQA shares nothing planted with any other task of the suite either; ms3, the data-rich side of "
            "scarce_skill, has nothing planted to gain."
        ),
    },
    "shared_world": {
        "tasks": ["ave", "synth_ave_swap", "avvp", "s4", "ms3"],
        "expect": "unspecified",
        "expect_on": [],
        "mechanism": (
            "All five are built from family A: the same eight classes with the same look and sound, named by the "
            "same words where the vocabularies allow. Sharing a world among data-rich tasks is not planted as a "
            "transfer: earlier demo runs measured AVVP and S4 (256 clips each) as neutral beside AVE, and AVVP's "
            "score varies too much between training seeds for a claim either way."
        ),
    },
}


def relations_manifest() -> dict[str, Any]:
    """The design as JSON-ready data: families with their names per task, and the relations."""
    families = {
        name: [
            {
                "key": c.key,
                "shape": c.shape,
                "colour": list(c.colour),
                "waveform": c.waveform,
                "base_hz": c.base_hz,
                "pattern": c.pattern,
            }
            for c in specs
        ]
        for name, specs in FAMILIES.items()
    }
    names = {task: list(v) for task, v in NAMES_A.items()}
    names["music_avqa"] = list(NAMES_C)
    return {
        "families": families,
        "class_names": names,
        "tasks": {task: {"family": fam, "folder": folder} for task, (fam, folder) in TASKS.items()},
        "relations": RELATIONS,
    }
