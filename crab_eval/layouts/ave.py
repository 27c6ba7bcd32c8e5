"""AVE (YapengTian/AVE-ECCV18) annotation layout: ``Annotations.txt`` and the split files of the dataset zip.

Every file has one row per annotated event, ``Category&VideoID&Quality&StartTime&EndTime`` (times in whole
seconds of the 10 s clip, end exclusive in segment terms). The dataset zip's files start with that header line;
the repository's ``data/Annotations.txt`` has none. Videos live in ``AVE/{VideoID}.mp4``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

HEADER = "Category&VideoID&Quality&StartTime&EndTime"
ANNOTATIONS_FILE = "Annotations.txt"
SPLIT_FILES: Mapping[str, str] = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
N_SEGMENTS = 10  # ten 1-second segments per clip
BACKGROUND = "background"

# The 28 categories in order of first appearance in the repository's data/Annotations.txt (4,143 rows); that
# order is the class index of the official labels (mil_labels.h5 argmax == this index for every row, checked),
# and index 28 is background.
OFFICIAL_CATEGORIES: tuple[str, ...] = (
    "Church bell",
    "Male speech, man speaking",
    "Bark",
    "Fixed-wing aircraft, airplane",
    "Race car, auto racing",
    "Female speech, woman speaking",
    "Helicopter",
    "Violin, fiddle",
    "Flute",
    "Ukulele",
    "Frying (food)",
    "Truck",
    "Shofar",
    "Motorcycle",
    "Acoustic guitar",
    "Train horn",
    "Clock",
    "Banjo",
    "Goat",
    "Baby cry, infant cry",
    "Bus",
    "Chainsaw",
    "Cat",
    "Horse",
    "Toilet flush",
    "Rodents, rats, mice",
    "Accordion",
    "Mandolin",
)

# One annotation row: (category, video_id, start, end) or (category, video_id, start, end, quality).
Row = Sequence[object]


def format_row(row: Row) -> str:
    """One ``Category&VideoID&Quality&StartTime&EndTime`` line (quality defaults to "good", as every official row)."""
    if len(row) == 4:
        category, video_id, start, end = row
        quality: object = "good"
    elif len(row) == 5:
        category, video_id, start, end, quality = row
    else:
        raise ValueError(f"an AVE row has 4 or 5 fields, got {row!r}")
    return f"{category}&{video_id}&{quality}&{start}&{end}"


def write_rows(path: Path, rows: Iterable[Row], header: bool = True) -> Path:
    """Write ``rows`` to ``path`` in the official format, with the zip's header line unless ``header`` is False."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] if header else []
    lines.extend(format_row(row) for row in rows)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_split(data_dir: Path, split: str, rows: Iterable[Row], header: bool = True) -> Path:
    """``testSet.txt`` / ``valSet.txt`` / ``trainSet.txt`` of ``split`` in ``data_dir``."""
    return write_rows(Path(data_dir) / SPLIT_FILES[split], rows, header=header)


def write_annotations(data_dir: Path, rows: Iterable[Row], header: bool = True) -> Path:
    """``Annotations.txt``: all rows of the dataset; its category order defines the class indices."""
    return write_rows(Path(data_dir) / ANNOTATIONS_FILE, rows, header=header)


def write_dataset(
    data_dir: Path,
    splits: Mapping[str, Sequence[Row]],
    header: bool = True,
    annotations: bool = True,
) -> Path:
    """All given split files and (unless ``annotations`` is False) an ``Annotations.txt`` holding every row.

    As in the official file, ``Annotations.txt`` groups the rows by category, official categories first in their
    official order, others after them in order of first appearance. The harness takes its category vocabulary
    from that file when it is present, so a fixture that predicts categories absent from its rows should pass
    ``annotations=False`` (the built-in 28 official categories then apply).
    """
    data_dir = Path(data_dir)
    for split, rows in splits.items():
        write_split(data_dir, split, rows, header=header)
    if annotations:
        every_row = [row for split in ("train", "val", "test") for row in splits.get(split, ())]
        first_seen = {str(row[0]): i for i, row in reversed(list(enumerate(every_row)))}
        official = {name: i for i, name in enumerate(OFFICIAL_CATEGORIES)}

        def rank(row: Row) -> tuple[int, int]:
            name = str(row[0])
            return (0, official[name]) if name in official else (1, first_seen[name])

        write_annotations(data_dir, sorted(every_row, key=rank), header=header)
    return data_dir
