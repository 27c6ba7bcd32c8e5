"""A scene's pictures: one RGB image per segment (objects are still within a second), masks, PNG/JPEG/mp4 files.

Determinism: PNGs are written by Pillow without metadata chunks; mp4 files by PyAV with ``fflags=+bitexact``
(no creation time or muxer version), single-threaded libx264 and AAC, so the same scene gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from crab_eval.synth.config import AUDIO_BITRATE, FAMILIES, FRAME_SIZE, SAMPLE_RATE, VIDEO_FPS
from crab_eval.synth.render_audio import to_pcm16
from crab_eval.synth.scene import Scene, SceneObject

_GRID = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE].astype(np.float64) + 0.5


def shape_mask(obj: SceneObject, shape: str, size: int = FRAME_SIZE) -> np.ndarray:
    """Boolean pixels of ``obj`` drawn as ``shape`` (coordinates relative to its centre, in radii)."""
    yy, xx = _GRID if size == FRAME_SIZE else np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    r = obj.radius * size
    dx, dy = (xx - obj.x * size) / r, (yy - obj.y * size) / r
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx**2 + dy**2 <= 1.0
    if shape == "square":
        return (ax <= 0.8) & (ay <= 0.8)
    if shape == "triangle":
        return (dy <= 0.8) & (dy >= -1.0 + 2.0 * ax)
    if shape == "diamond":
        return ax + ay <= 1.0
    if shape == "cross":
        return ((ax <= 0.3) & (ay <= 1.0)) | ((ay <= 0.3) & (ax <= 1.0))
    if shape == "ring":
        d2 = dx**2 + dy**2
        return (d2 <= 1.0) & (d2 >= 0.4)
    if shape == "bar":  # vertical bar
        return (ax <= 0.35) & (ay <= 1.0)
    if shape == "star":
        angle = np.arctan2(dy, dx)
        return np.hypot(dx, dy) <= 0.55 + 0.45 * np.cos(5 * angle) ** 2
    raise ValueError(f"unknown shape {shape!r}")


def background(scene: Scene) -> np.ndarray:
    """A per-clip backdrop: a smooth random colour field (bilinear from a 4x4 grid), uint8-ready HxWx3 floats.

    Smooth rather than noisy so that PNG frames stay small; the colours vary from clip to clip.
    """
    rng = np.random.default_rng([scene.seed, 2])
    grid = rng.uniform(15, 95, size=(4, 4, 3))
    coords = np.linspace(0, 3, FRAME_SIZE)
    i0 = np.minimum(coords.astype(int), 2)
    frac = (coords - i0)[:, None]
    rows = grid[i0] * (1 - frac[:, :, None]) + grid[i0 + 1] * frac[:, :, None]  # (H, 4, 3)
    cols = rows[:, i0] * (1 - frac.T[:, :, None]) + rows[:, i0 + 1] * frac.T[:, :, None]  # (H, W, 3)
    return np.round(cols)


def render_frames(scene: Scene) -> tuple[np.ndarray, list[np.ndarray]]:
    """(images [n_seconds, H, W, 3] uint8, per-object pixel masks); object ``i`` shows in its visible segments."""
    specs = FAMILIES[scene.family]
    base = background(scene)
    masks = [
        shape_mask(o, specs[o.cls].shape) if o.on_screen else np.zeros((FRAME_SIZE, FRAME_SIZE), bool)
        for o in scene.objects
    ]
    images = np.empty((scene.n_seconds, FRAME_SIZE, FRAME_SIZE, 3), np.uint8)
    for i in range(scene.n_seconds):
        image = base.copy()
        for obj, mask in zip(scene.objects, masks, strict=True):
            if obj.visible[i]:
                image[mask] = specs[obj.cls].colour
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    return images, masks


def sounding_masks(scene: Scene, object_masks: Sequence[np.ndarray]) -> np.ndarray:
    """[n_seconds, H, W] bool: pixels of objects that are visible and audible in each second (objects never overlap)."""
    out = np.zeros((scene.n_seconds, FRAME_SIZE, FRAME_SIZE), bool)
    for obj, mask in zip(scene.objects, object_masks, strict=True):
        for i in np.flatnonzero(obj.sounding_visible):
            out[i] |= mask
    return out


def write_png(path: Path, image: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG", optimize=False)
    return path


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=quality)
    return path


def write_mp4(path: Path, images: np.ndarray, audio: np.ndarray | None, fps: int = VIDEO_FPS) -> Path:
    """H.264 video holding each image for one second (``fps`` frames), with the audio as an AAC track."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        # x264's "ultrafast" preset: with "fast", its lookahead / macroblock-tree made a few clips' bytes depend on
        # the process (a serial and a parallel build of one seed differed in some runs; asm=0 or no mbtree fixed it
        # too); ultrafast has neither and encodes faster. The pictures are flat shapes, held for a second each.
        video = container.add_stream("libx264", rate=fps, options={"threads": "1", "crf": "20", "preset": "ultrafast"})
        video.width, video.height = images.shape[2], images.shape[1]
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = 1
        stream_a = None
        if audio is not None:
            # FFmpeg's "fast" AAC coder: 2.7x quicker than the default two-loop search, which dominated the time
            # of a clip; the audio is synthetic tones and noise, and features are log-mels of 1 s segments.
            stream_a = container.add_stream("aac", rate=SAMPLE_RATE, options={"aac_coder": "fast"})
            stream_a.layout = "mono"
            stream_a.bit_rate = AUDIO_BITRATE
        for index, image in enumerate(np.repeat(images, fps, axis=0)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if stream_a is not None and audio is not None:
            frame_a = av.AudioFrame.from_ndarray(to_pcm16(audio)[None, :], format="s16", layout="mono")
            frame_a.sample_rate = SAMPLE_RATE
            frame_a.pts = 0
            container.mux(stream_a.encode(frame_a))
            container.mux(stream_a.encode(None))
    return path
