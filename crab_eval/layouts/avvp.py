"""AVVP / LLP (YapengTian/AVVP-ECCV20) annotation layout: the tab-separated files of the repository's ``data/``.

- ``AVVP_test_pd.csv`` / ``AVVP_val_pd.csv``: header ``filename<TAB>event_labels``, one row per video of the split,
  weak labels joined by commas (``Blender,Speech``).
- ``AVVP_eval_audio.csv`` / ``AVVP_eval_visual.csv``: header ``filename<TAB>onset<TAB>offset<TAB>event_labels``, one
  row per dense event, one label per row, whole seconds, offset exclusive; the rows of both splits share the file.
- Videos are ``LLP_dataset/video/{YouTube id}.mp4`` (the first 11 characters of the filename, as the official
  loader cuts them), audio ``LLP_dataset/audio/{YouTube id}.wav``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

AUDIO_FILE = "AVVP_eval_audio.csv"
VISUAL_FILE = "AVVP_eval_visual.csv"
SPLIT_FILES: Mapping[str, str] = {"test": "AVVP_test_pd.csv", "val": "AVVP_val_pd.csv"}
TRAIN_FILE = "AVVP_train.csv"  # weak labels only (filename, event_labels), like the split files
DENSE_HEADER = ("filename", "onset", "offset", "event_labels")
SPLIT_HEADER = ("filename", "event_labels")
N_SEGMENTS = 10  # ten 1-second segments per clip

# The 25 classes in the order of main_avvp.py (``categories`` in eval) and dataloader.py: that order is the row
# index of the official GT and prediction matrices.
CATEGORIES: tuple[str, ...] = (
    "Speech",
    "Car",
    "Cheering",
    "Dog",
    "Cat",
    "Frying_(food)",
    "Basketball_bounce",
    "Fire_alarm",
    "Chainsaw",
    "Cello",
    "Banjo",
    "Singing",
    "Chicken_rooster",
    "Violin_fiddle",
    "Vacuum_cleaner",
    "Baby_laughter",
    "Accordion",
    "Lawn_mower",
    "Motorcycle",
    "Helicopter",
    "Acoustic_guitar",
    "Telephone_bell_ringing",
    "Baby_cry_infant_cry",
    "Blender",
    "Clapping",
)

# One dense row: (filename, onset, offset, label). One video: {"audio": [(label, onset, offset), ...],
# "visual": [...]} (either key may be missing).
DenseRow = tuple[str, int, int, str]
Event = tuple[str, int, int]
Video = Mapping[str, Sequence[Event]]


def _write_tsv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)]
    lines.extend("\t".join(str(value) for value in row) for row in rows)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_dense(path: Path, rows: Iterable[DenseRow]) -> Path:
    """``AVVP_eval_audio.csv`` or ``AVVP_eval_visual.csv`` holding ``rows`` in the given order."""
    return _write_tsv(path, DENSE_HEADER, rows)


def write_split(data_dir: Path, split: str, rows: Iterable[tuple[str, Sequence[str]]]) -> Path:
    """``AVVP_{split}_pd.csv``: (filename, weak labels) per video, in the given order."""
    return _write_tsv(Path(data_dir) / SPLIT_FILES[split], SPLIT_HEADER, ((f, ",".join(w)) for f, w in rows))


def write_train(data_dir: Path, rows: Iterable[tuple[str, Sequence[str]]]) -> Path:
    """``AVVP_train.csv``: (filename, weak labels) per training video, in the given order."""
    return _write_tsv(Path(data_dir) / TRAIN_FILE, SPLIT_HEADER, ((f, ",".join(w)) for f, w in rows))


def weak_labels(video: Video) -> list[str]:
    """The video's labels in either modality, in class order (what the official ``*_pd.csv`` rows list)."""
    present = {label for modality in ("audio", "visual") for label, _, _ in video.get(modality, ())}
    return [label for label in CATEGORIES if label in present] or [CATEGORIES[0]]


def write_dataset(
    data_dir: Path,
    splits: Mapping[str, Mapping[str, Video]],
    extra_audio: Iterable[DenseRow] = (),
    extra_visual: Iterable[DenseRow] = (),
) -> Path:
    """All four files from ``{split: {filename: video}}``.

    The dense files list the videos of every given split, split by split (the official files interleave val and
    test; the harness does not care). ``extra_audio`` / ``extra_visual`` rows are appended as they are, to lay out
    the official files' oddities (rows of no split, zero-length or reversed rows, duplicates). A split file's weak
    labels are the union of the video's dense labels (the real files differ from it for ~4% of videos; scoring
    never reads them), or ``Speech`` for a video with no events, because an official row is never empty.
    """
    data_dir = Path(data_dir)
    audio: list[DenseRow] = []
    visual: list[DenseRow] = []
    for split, videos in splits.items():
        write_split(data_dir, split, ((name, weak_labels(video)) for name, video in videos.items()))
        for name, video in videos.items():
            audio.extend((name, onset, offset, label) for label, onset, offset in video.get("audio", ()))
            visual.extend((name, onset, offset, label) for label, onset, offset in video.get("visual", ()))
    write_dense(data_dir / AUDIO_FILE, [*audio, *extra_audio])
    write_dense(data_dir / VISUAL_FILE, [*visual, *extra_visual])
    return data_dir
