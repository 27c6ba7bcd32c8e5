"""A task's prompt cut at its media placeholders, each placeholder paired with the sample's media file.

Crab's prompts mark where media go: ``<video_start><video><video_end>``, ``<audio_start><audio><audio_end>`` and
``<image_start><image><image_end>``. ``prompt_parts`` returns the text between them and one ``MediaRef`` per
placeholder, so that a chat model can put its own media tokens there in the same order (the matching tasks a2v and
v2a carry three clips, in Crab+'s order).

Which file a placeholder takes (the k-th placeholder of a role takes the k-th source of that role):
- samples that list roles (``meta["roles"]``, the Crab+ classification family): the media keys in order, each with
  its role; a path is read relative to the data folder, else to its ``video/`` or ``audio/`` subfolder (Crab+'s
  ``AVUIE_2/{task}/{video,audio}/``);
- otherwise: ``<video>`` the "video" file, else the "frames" images (AVSBench); ``<audio>`` the "audio" file if it
  exists, else the video's audio track (AVE, MUSIC-AVQA); ``<image>`` the "image" file, else the first of the
  "frames" images (AVSS, Ref-AVS).
A placeholder with no source is a user error naming the sample. Decoding is left to the model
(``crab_eval.media``), so nothing is read here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crab_eval.errors import CrabEvalError
from crab_eval.media import folder_images

ROLES = ("video", "audio", "image")
PLACEHOLDER = re.compile(r"<(video|audio|image)_start><\1><\1_end>")


@dataclass(frozen=True)
class MediaRef:
    """One placeholder's media: ``role`` is what the prompt asks for; ``source`` is one file (a video, an audio
    file, an image) or, for a video made of still frames, the frame images in order."""

    role: str
    source: Path | tuple[Path, ...]

    @property
    def is_frames(self) -> bool:
        return isinstance(self.source, tuple)

    @property
    def path(self) -> Path:
        """The file, or the first frame image (for messages)."""
        return self.source[0] if isinstance(self.source, tuple) else self.source


Part = str | MediaRef


def prompt_parts(prompt: str, sample: Any, data_dir: str | Path) -> list[Part]:
    """Text pieces and media references in prompt order (empty text pieces dropped)."""
    queues = media_sources(sample, Path(data_dir))
    taken = dict.fromkeys(ROLES, 0)
    parts: list[Part] = []
    position = 0
    for match in PLACEHOLDER.finditer(prompt):
        if match.start() > position:
            parts.append(prompt[position : match.start()])
        role = match.group(1)
        options = queues[role]
        if taken[role] >= len(options):
            raise CrabEvalError(
                f"sample {sample.id!r}: the prompt has {taken[role] + 1} <{role}> placeholder(s) but the sample "
                f"has {len(options)} {role} source(s) (media: {dict(sample.media)})",
                data_dir,
            )
        parts.append(options[taken[role]])
        taken[role] += 1
        position = match.end()
    if position < len(prompt):
        parts.append(prompt[position:])
    return parts


def media_sources(sample: Any, data_dir: Path) -> dict[str, list[MediaRef]]:
    """Per role, the sample's sources in the order placeholders take them."""
    media: Mapping[str, Any] = sample.media or {}
    roles = (sample.meta or {}).get("roles")
    queues: dict[str, list[MediaRef]] = {role: [] for role in ROLES}
    if roles:
        for key, role in zip(media, roles, strict=False):
            queues[role].append(MediaRef(role, _role_path(data_dir, str(media[key]), role)))
        return queues
    video = _path(data_dir, media.get("video"))
    frames = _frames(data_dir, media.get("frames"))
    audio = _path(data_dir, media.get("audio"))
    image = _path(data_dir, media.get("image"))
    if video is not None:
        queues["video"].append(MediaRef("video", video))
    elif frames:
        queues["video"].append(MediaRef("video", frames))
    if audio is not None and audio.is_file():
        queues["audio"].append(MediaRef("audio", audio))
    elif video is not None:
        queues["audio"].append(MediaRef("audio", video))  # the video's own audio track
    if image is not None:
        queues["image"].append(MediaRef("image", image))
    elif frames:
        queues["image"].append(MediaRef("image", frames[0]))
    return queues


def _path(data_dir: Path, value: Any) -> Path | None:
    if value is None or value == "":
        return None
    return data_dir / str(value)


def _role_path(data_dir: Path, value: str, role: str) -> Path:
    direct = data_dir / value
    folder = data_dir / role / value
    return folder if not direct.exists() and folder.exists() else direct


def _frames(data_dir: Path, value: Any) -> tuple[Path, ...]:
    if isinstance(value, list | tuple):
        return tuple(data_dir / str(v) for v in value)
    if value:
        folder = data_dir / str(value)
        if folder.is_dir():
            return tuple(folder_images(folder))
    return ()
