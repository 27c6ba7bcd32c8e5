"""MUSIC-AVQA questions whose answers follow from the scene, with the official templates and answer words.

Each template below is an official ``question_content`` (data/json_update/avqa-test.json of GeWu-Lab/MUSIC-AVQA,
spelling and spacing kept) with its official (modality, type). A template is asked only where its answer is
unambiguous in the scene (distinct loudness levels, distinct onsets, a unique reference instrument...).
Definitions: an instrument is *heard* if audible in some segment, *on screen* if drawn; its position is left /
middle / right by thirds of the frame; loudness is its gain (every class has the same RMS at gain 1); it *comes
in* at its first audible segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crab_eval.synth.config import NAMES_C
from crab_eval.synth.scene import Scene, SceneObject

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class Question:
    qtype: tuple[str, str]
    content: str
    values: tuple[str, ...]
    answer: str


def _name(obj: SceneObject) -> str:
    return NAMES_C[obj.cls]


def _position(obj: SceneObject) -> str:
    return "left" if obj.x < 1 / 3 else "right" if obj.x > 2 / 3 else "middle"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _onset(obj: SceneObject) -> int:
    return int(np.argmax(obj.audible))


def _unique(objects: list[SceneObject], cls: int) -> SceneObject | None:
    found = [o for o in objects if o.cls == cls]
    return found[0] if len(found) == 1 else None


class _Ctx:
    def __init__(self, scene: Scene, rng: np.random.Generator):
        self.rng = rng
        self.heard = [o for o in scene.objects if o.audible.any()]
        self.seen = sorted(scene.on_screen(), key=lambda o: o.x)
        self.seen_heard = [o for o in self.seen if o.audible.any()]
        self.n_classes = len(NAMES_C)

    def pick_class(self, present: list[SceneObject]) -> int:
        """A class present among ``present`` or (half the time) any class, so yes/no answers are balanced."""
        if present and self.rng.random() < 0.5:
            return int(present[int(self.rng.integers(len(present)))].cls)
        return int(self.rng.integers(self.n_classes))


Maker = Callable[[_Ctx], Question | None]


def q_heard_count(c: _Ctx) -> Question | None:
    return Question(
        ("Audio", "Counting"),
        "How many musical instruments were heard throughout the video?",
        (),
        NUMBER_WORDS[len(c.heard)],
    )


def q_sound_exists(c: _Ctx) -> Question | None:
    cls = c.pick_class(c.heard)
    return Question(
        ("Audio", "Counting"), "Is there a <Object> sound?", (NAMES_C[cls],), _yes(any(o.cls == cls for o in c.heard))
    )


def _two_heard(c: _Ctx) -> tuple[SceneObject, SceneObject] | None:
    singles = [o for o in c.heard if _unique(c.heard, o.cls) is o]
    if len(singles) < 2:
        return None
    i, j = c.rng.permutation(len(singles))[:2]
    return singles[int(i)], singles[int(j)]


def q_louder(c: _Ctx) -> Question | None:
    pair = _two_heard(c)
    if pair is None or pair[0].gain == pair[1].gain:
        return None
    a, b = pair
    return Question(
        ("Audio", "Comparative"),
        "Is the <Object> louder than the <Object>?",
        (_name(a), _name(b)),
        _yes(a.gain > b.gain),
    )


def q_longer(c: _Ctx) -> Question | None:
    pair = _two_heard(c)
    if pair is None or pair[0].audible.sum() == pair[1].audible.sum():
        return None
    a, b = pair
    return Question(
        ("Audio", "Comparative"),
        "Is the <Object> playing longer than the <Object>?",
        (_name(a), _name(b)),
        _yes(a.audible.sum() > b.audible.sum()),
    )


def q_count_class(c: _Ctx) -> Question | None:
    cls = c.pick_class(c.seen)
    return Question(
        ("Visual", "Counting"),
        "How many <Object> are in the entire video?",
        (NAMES_C[cls],),
        NUMBER_WORDS[sum(o.cls == cls for o in c.seen)],
    )


def q_seen_exists(c: _Ctx) -> Question | None:
    cls = c.pick_class(c.seen)
    return Question(
        ("Visual", "Counting"),
        "Is there a <Object> in the entire video?",
        (NAMES_C[cls],),
        _yes(any(o.cls == cls for o in c.seen)),
    )


def q_neighbour(c: _Ctx) -> Question | None:
    refs = [i for i, o in enumerate(c.seen) if _unique(c.seen, o.cls) is o and len(c.seen) > 1]
    if not refs:
        return None
    i = refs[int(c.rng.integers(len(refs)))]
    sides = [s for s, j in (("left", i - 1), ("right", i + 1)) if 0 <= j < len(c.seen)]
    side = sides[int(c.rng.integers(len(sides)))]
    other = c.seen[i - 1 if side == "left" else i + 1]
    return Question(
        ("Visual", "Location"),
        "What is the instrument on the <LR> of <Object>?",
        (side, _name(c.seen[i])),
        _name(other),
    )


def q_extreme(c: _Ctx) -> Question | None:
    if len(c.seen) < 2:
        return None
    word = "leftest" if c.rng.random() < 0.5 else "rightest"
    obj = c.seen[0] if word == "leftest" else c.seen[-1]
    return Question(("Visual", "Location"), "What kind of instrument is the <LRer> instrument? ", (word,), _name(obj))


def q_always(c: _Ctx) -> Question | None:
    singles = [o for o in c.seen if _unique(c.seen, o.cls) is o]
    if not singles:
        return None
    obj = singles[int(c.rng.integers(len(singles)))]
    return Question(
        ("Audio-Visual", "Existential"),
        "Is the <Object> in the video always playing?",
        (_name(obj),),
        _yes(bool(obj.audible.all())),
    )


def q_sound_from_video(c: _Ctx) -> Question | None:
    if not c.heard:
        return None
    return Question(
        ("Audio-Visual", "Existential"),
        "Is this sound from the instrument in the video?",
        (),
        _yes(all(o.on_screen for o in c.heard)),
    )


def q_sounding_count(c: _Ctx) -> Question | None:
    return Question(
        ("Audio-Visual", "Counting"),
        "How many instruments are sounding in the video?",
        (),
        NUMBER_WORDS[len(c.seen_heard)],
    )


def q_silent_count(c: _Ctx) -> Question | None:
    return Question(
        ("Audio-Visual", "Counting"),
        "How many instruments in the video did not sound from beginning to end?",
        (),
        NUMBER_WORDS[sum(not o.audible.any() for o in c.seen)],
    )


def q_loudest_where(c: _Ctx) -> Question | None:
    if len(c.seen_heard) < 2:
        return None
    gains = sorted((o.gain for o in c.heard), reverse=True)
    top = max(c.seen_heard, key=lambda o: o.gain)
    if gains[0] != top.gain or gains[1] == gains[0]:
        return None  # the loudest sound is off screen, or two are equally loud
    return Question(("Audio-Visual", "Location"), "Where is the <LL> instrument?", ("loudest",), _position(top))


def q_left_louder(c: _Ctx) -> Question | None:
    if len(c.seen) < 2:
        return None
    left, right = c.seen[0], c.seen[-1]
    if not (left.audible.any() and right.audible.any()) or left.gain == right.gain:
        return None
    order = ("left", "right") if c.rng.random() < 0.5 else ("right", "left")
    a, b = (left, right) if order[0] == "left" else (right, left)
    return Question(
        ("Audio-Visual", "Comparative"),
        "Is the instrument on the <LR> louder than the instrument on the <LR>?",
        order,
        _yes(a.gain > b.gain),
    )


def q_comes_in(c: _Ctx) -> Question | None:
    if len(c.seen_heard) < 2:
        return None
    onsets = sorted(_onset(o) for o in c.seen_heard)
    word = "first" if c.rng.random() < 0.5 else "last"
    target = onsets[0] if word == "first" else onsets[-1]
    if onsets.count(target) > 1:
        return None
    obj = next(o for o in c.seen_heard if _onset(o) == target)
    return Question(("Audio-Visual", "Temporal"), "What is the <TH> instrument that comes in?", (word,), _name(obj))


def q_before_after(c: _Ctx) -> Question | None:
    refs = [o for o in c.seen_heard if _unique(c.seen_heard, o.cls) is o]
    if len(c.seen_heard) < 2 or not refs:
        return None
    ref = refs[int(c.rng.integers(len(refs)))]
    word = "before" if c.rng.random() < 0.5 else "after"
    hits = [
        o
        for o in c.seen_heard
        if o is not ref and (_onset(o) < _onset(ref) if word == "before" else _onset(o) > _onset(ref))
    ]
    if len({o.cls for o in hits}) != 1:
        return None
    return Question(
        ("Audio-Visual", "Temporal"),
        "Which instrument makes sounds <BA> the <Object>?",
        (word, _name(ref)),
        _name(hits[0]),
    )


MAKERS: tuple[Maker, ...] = (
    q_heard_count, q_sound_exists, q_louder, q_longer, q_count_class, q_seen_exists, q_neighbour, q_extreme,
    q_always, q_sound_from_video, q_sounding_count, q_silent_count, q_loudest_where, q_left_louder, q_comes_in,
    q_before_after,
)  # fmt: skip


def scene_questions(scene: Scene, rng: np.random.Generator, k: int) -> list[Question]:
    """Up to ``k`` answerable questions about ``scene``, each from a different template, in template order."""
    ctx = _Ctx(scene, rng)
    order = [int(i) for i in rng.permutation(len(MAKERS))]
    chosen: list[tuple[int, Question]] = []
    for index in order:
        question = MAKERS[index](ctx)
        if question is not None:
            chosen.append((index, question))
        if len(chosen) == k:
            break
    return [q for _, q in sorted(chosen, key=lambda item: item[0])]
