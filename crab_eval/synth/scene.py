"""The scene model: sound-emitting objects over one-second segments, switching on and off in sight and in sound.

A scene is the whole truth of a clip; every label of every benchmark (AVE events, AVVP audio/visual events,
AVSBench masks, MUSIC-AVQA answers) is computed from it, and the renderers turn it into pixels and samples.
An object may be visible while silent, or audible while off screen, so the benchmarks' modality rules matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Horizontal slots (centre x as a fraction of the width) and the vertical jitter range; objects never overlap.
SLOTS_X = (1 / 6, 3 / 6, 5 / 6)
OBJECT_SIZE = (0.17, 0.24)  # radius range, fraction of the frame side


@dataclass
class SceneObject:
    """One object. ``visible[i]`` / ``audible[i]``: drawn in / heard in segment i. Off-screen objects never show."""

    cls: int
    x: float
    y: float
    radius: float
    visible: np.ndarray
    audible: np.ndarray
    gain: float = 1.0
    on_screen: bool = True

    @property
    def sounding_visible(self) -> np.ndarray:
        return self.visible & self.audible


@dataclass
class Scene:
    family: str
    n_seconds: int
    objects: list[SceneObject]
    seed: int  # the clip's own seed: background texture and audio noise derive from it

    def on_screen(self) -> list[SceneObject]:
        return [o for o in self.objects if o.on_screen]


def interval(n: int, start: int, end: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[start:end] = True
    return mask


def random_runs(rng: np.random.Generator, n: int, max_runs: int = 2, p_full: float = 0.3) -> np.ndarray:
    """A random on/off pattern with 1..max_runs runs (or fully on with probability p_full); never empty."""
    if rng.random() < p_full:
        return np.ones(n, dtype=bool)
    n_runs = int(rng.integers(1, max_runs + 1))
    cuts = np.sort(rng.choice(np.arange(n + 1), size=2 * n_runs, replace=False))
    mask = np.zeros(n, dtype=bool)
    for start, end in cuts.reshape(-1, 2):
        mask[start:end] = True
    if not mask.any():
        mask[int(rng.integers(0, n))] = True
    return mask


def _place(rng: np.random.Generator, slots: list[int]) -> list[tuple[float, float, float]]:
    """(x, y, radius) per slot index; radii fit inside a slot so that objects never overlap."""
    out = []
    for s in slots:
        radius = float(rng.uniform(*OBJECT_SIZE)) * 0.72
        x = SLOTS_X[s] + float(rng.uniform(-0.03, 0.03))
        y = float(rng.uniform(0.3, 0.7))
        out.append((x, y, radius))
    return out


def _gain(rng: np.random.Generator) -> float:
    # Discrete loudness levels a factor 2 apart, so that "louder" questions have clear answers.
    return float(rng.choice([0.25, 0.5, 1.0]))


def _new_object(rng, cls, place, n, visible, audible, on_screen=True) -> SceneObject:
    x, y, radius = place if place is not None else (-1.0, -1.0, 0.0)
    return SceneObject(cls, x, y, radius, visible, audible, _gain(rng), on_screen)


# ---- AVE: one audible-and-visible event, distractors that are only seen or only heard ---------------------------
def ave_scene(rng: np.random.Generator, n_classes: int, seed: int, n: int = 10) -> tuple[Scene, int, int, int]:
    """A scene and its AVE row (class, start, end): the class is audible AND visible exactly on [start, end)."""
    cls = int(rng.integers(n_classes))
    length = int(rng.integers(2, n + 1))
    start = int(rng.integers(0, n - length + 1))
    end = start + length
    # Visible and audible intervals whose intersection is exactly [start, end): one of them may start earlier,
    # one may end later, so the segments around the event are seen-only or heard-only (background for AVE).
    v0 = a0 = start
    v1 = a1 = end
    if start > 0 and rng.random() < 0.6:
        lead = int(rng.integers(1, start + 1))
        if rng.random() < 0.5:
            v0 = start - lead
        else:
            a0 = start - lead
    if end < n and rng.random() < 0.6:
        tail = int(rng.integers(1, n - end + 1))
        if rng.random() < 0.5:
            v1 = end + tail
        else:
            a1 = end + tail
    n_distract = int(rng.integers(0, 3))
    slots = [int(s) for s in rng.permutation(3)[: 1 + n_distract]]
    places = _place(rng, slots)
    objects = [_new_object(rng, cls, places[0], n, interval(n, v0, v1), interval(n, a0, a1))]
    others = [int(c) for c in rng.permutation([c for c in range(n_classes) if c != cls])[:n_distract]]
    for place, other in zip(places[1:], others, strict=True):
        if rng.random() < 0.5:  # seen, never heard
            objects.append(_new_object(rng, other, place, n, random_runs(rng, n), np.zeros(n, bool)))
        else:  # heard, never seen (off screen)
            objects.append(_new_object(rng, other, None, n, np.zeros(n, bool), random_runs(rng, n), False))
    return Scene("A", n, objects, seed), cls, start, end


# ---- AVVP: several classes, each with its own audio and visual runs -------------------------------------------------
def avvp_scene(rng: np.random.Generator, n_classes: int, seed: int, n: int = 10) -> Scene:
    n_objects = int(rng.integers(1, 4))
    classes = [int(c) for c in rng.permutation(n_classes)[:n_objects]]
    places = _place(rng, [int(s) for s in rng.permutation(3)[:n_objects]])
    objects = []
    for cls, place in zip(classes, places, strict=True):
        kind = rng.random()
        if kind < 0.2:  # heard only, off screen
            objects.append(_new_object(rng, cls, None, n, np.zeros(n, bool), random_runs(rng, n), False))
        elif kind < 0.35:  # seen only, silent
            objects.append(_new_object(rng, cls, place, n, random_runs(rng, n), np.zeros(n, bool)))
        else:
            objects.append(_new_object(rng, cls, place, n, random_runs(rng, n), random_runs(rng, n)))
    return Scene("A", n, objects, seed)


def avvp_events(scene: Scene) -> dict[str, list[tuple[int, int, int]]]:
    """{"audio"|"visual": [(class, onset, offset), ...]}: the runs of each object, offset exclusive."""
    out: dict[str, list[tuple[int, int, int]]] = {"audio": [], "visual": []}
    for obj in scene.objects:
        for modality, mask in (("audio", obj.audible), ("visual", obj.visible)):
            out[modality].extend((obj.cls, a, b) for a, b in runs(mask))
    return out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as (start, end) pairs, end exclusive."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in edges.reshape(-1, 2)]


# ---- AVSBench: S4 (one source, silent distractors) and MS3 (several sources switching on and off) -------------------
def s4_scene(rng: np.random.Generator, n_classes: int, seed: int, n: int = 5) -> tuple[Scene, int]:
    cls = int(rng.integers(n_classes))
    n_distract = int(rng.integers(0, 3))
    places = _place(rng, [int(s) for s in rng.permutation(3)[: 1 + n_distract]])
    objects = [_new_object(rng, cls, places[0], n, np.ones(n, bool), np.ones(n, bool))]
    others = [int(c) for c in rng.permutation([c for c in range(n_classes) if c != cls])[:n_distract]]
    for place, other in zip(places[1:], others, strict=True):
        objects.append(_new_object(rng, other, place, n, random_runs(rng, n, p_full=0.6), np.zeros(n, bool)))
    return Scene("A", n, objects, seed), cls


def ms3_scene(rng: np.random.Generator, n_classes: int, seed: int, n: int = 5) -> Scene:
    """2-3 on-screen objects of distinct classes with their own audible runs, maybe one off-screen source.

    At least one frame has a visible sounding object (a video whose masks are all empty scores F = 0 officially).
    """
    while True:
        n_on = int(rng.integers(2, 4))
        classes = [int(c) for c in rng.permutation(n_classes)]
        places = _place(rng, [int(s) for s in rng.permutation(3)[:n_on]])
        objects = [
            _new_object(rng, classes[i], places[i], n, random_runs(rng, n, p_full=0.7), random_runs(rng, n))
            for i in range(n_on)
        ]
        if n_on < n_classes and rng.random() < 0.3:
            objects.append(_new_object(rng, classes[n_on], None, n, np.zeros(n, bool), random_runs(rng, n), False))
        scene = Scene("A", n, objects, seed)
        if any(o.sounding_visible.any() for o in objects):
            return scene


# ---- MUSIC-AVQA: instruments in left/middle/right slots --------------------------------------------------------------
def avqa_scene(rng: np.random.Generator, n_classes: int, seed: int, n: int = 10) -> Scene:
    """1-3 on-screen instruments (a class may repeat), sometimes an off-screen one; some stay silent."""
    n_on = int(rng.integers(1, 4))
    slots = sorted(int(s) for s in rng.permutation(3)[:n_on])
    places = _place(rng, slots)
    objects = []
    for place in places:
        cls = int(rng.integers(n_classes))
        audible = random_runs(rng, n, p_full=0.4) if rng.random() < 0.8 else np.zeros(n, bool)
        objects.append(_new_object(rng, cls, place, n, np.ones(n, bool), audible))
    if rng.random() < 0.2:
        cls = int(rng.integers(n_classes))
        objects.append(_new_object(rng, cls, None, n, np.zeros(n, bool), random_runs(rng, n), False))
    return Scene("C", n, objects, seed)
