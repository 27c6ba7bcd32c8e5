"""Sound-source localisation layouts: VGG-SS, Flickr-SoundNet (hche11/Localizing-Visual-Sounds-the-Hard-Way) and
Crab's ARIG (boxes from AVSBench v1s).

- VGG-SS: ``vggss.json``, a list of ``{"file", "class", "bbox": [[x1, y1, x2, y2], ...]}`` with normalised
  coordinates, and ``vggss_test.csv``, one file id per row (no header, CRLF line ends in the release).
- Flickr-SoundNet: ``flickr_test.csv`` (file id, a second column the official code ignores) and one
  ``Annotations/{id}.xml`` per test id. The official reader walks root -> children -> ``bbox`` grandchildren, skips
  each ``bbox``'s first sub-element and reads the next four as integers on a 256-pixel frame (xmin, ymin, xmax,
  ymax); one ``bbox`` per annotator and object.
- ARIG: Crab+'s release ``AVUIE_2/arig/{split}.json`` (``visual_path``, ``audio_path``, ``top_left``,
  ``bottom_right``, ``a_obj``, ``frame_idx``) or Crab's ``v1s_grounding_samples.json`` (``split``, ``frame_path``,
  ``audio_path``, ``mask_path``, ``top_left``, ``bottom_right``, ``a_obj``); corners are pixels of the 224x224 frame
  the model sees, and ``top_left[0] == 1000`` marks a frame without a sounding object.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

VGGSS_JSON = "vggss.json"
VGGSS_TEST_CSV = "vggss_test.csv"
FLICKR_TEST_CSV = "flickr_test.csv"
FLICKR_ANNOTATIONS = "Annotations"
ARIG_CRAB_FILE = "v1s_grounding_samples.json"
ARIG_NO_OBJECT = 1000  # Crab's marker in top_left[0] for a frame with no sounding object
FLICKR_FRAME = 256  # the Flickr XML boxes are on a 256x256 frame (the official reader scales them by 224/256)

Box = Sequence[float]


def arig_split_file(split: str) -> str:
    """Crab+'s file name for an ARIG split (``AVUIE_2/arig/test.json``)."""
    return f"{split}.json"


def write_vggss(
    data_dir: Path,
    records: Iterable[tuple[str, str, Sequence[Box]]],
    test_ids: Sequence[str] | None = None,
) -> Path:
    """``vggss.json`` from ``(file, class, [box, ...])`` records and ``vggss_test.csv`` (all files, or ``test_ids``).

    Boxes are written as given (normalised [x1, y1, x2, y2]); the official file also holds a few malformed boxes
    (negative sentinels, x1 > x2) that a fixture may reproduce.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"file": f, "class": c, "bbox": [list(b) for b in boxes]} for f, c, boxes in records]
    (data_dir / VGGSS_JSON).write_text(json.dumps(rows), encoding="utf-8")
    ids = [r["file"] for r in rows] if test_ids is None else list(test_ids)
    # The release's CSV has one id per row and Windows line ends.
    (data_dir / VGGSS_TEST_CSV).write_bytes("".join(f"{i}\r\n" for i in ids).encode("utf-8"))
    return data_dir


def flickr_xml(boxes: Sequence[Sequence[int]]) -> str:
    """One Flickr annotation file: each box (xmin, ymin, xmax, ymax on the 256 frame) in its own object element.

    The element names other than ``bbox`` are ours (the official reader only looks at tag ``bbox`` and at positions
    inside it); the first sub-element of ``bbox`` is skipped by that reader, so it carries the annotator number.
    """
    root = ET.Element("annotation")
    for n, box in enumerate(boxes):
        obj = ET.SubElement(root, "object")
        bbox = ET.SubElement(obj, "bbox")
        ET.SubElement(bbox, "annotator").text = str(n % 3 + 1)
        for name, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ET.SubElement(bbox, name).text = str(int(value))
    return ET.tostring(root, encoding="unicode")


def write_flickr(data_dir: Path, annotations: Mapping[str, Sequence[Sequence[int]]]) -> Path:
    """``flickr_test.csv`` and ``Annotations/{id}.xml`` for ``{id: [box on the 256 frame, ...]}``."""
    data_dir = Path(data_dir)
    folder = data_dir / FLICKR_ANNOTATIONS
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, (file_id, boxes) in enumerate(annotations.items()):
        (folder / f"{file_id}.xml").write_text(flickr_xml(boxes), encoding="utf-8")
        lines.append(f"{file_id},{n}\n")  # second column: ignored by the official code
    (data_dir / FLICKR_TEST_CSV).write_text("".join(lines), encoding="utf-8")
    return data_dir


def arig_record(
    frame_path: str,
    a_obj: str,
    top_left: Sequence[float],
    bottom_right: Sequence[float],
    frame_idx: int = 0,
    audio_path: str | None = None,
) -> dict[str, Any]:
    """One ARIG record in Crab+'s keys (corners in pixels of the 224x224 frame)."""
    clip = str(Path(frame_path).parent.parent)
    return {
        "visual_path": frame_path,
        "audio_path": audio_path if audio_path is not None else f"{clip}/audio.wav",
        "top_left": list(top_left),
        "bottom_right": list(bottom_right),
        "a_obj": a_obj,
        "frame_idx": frame_idx,
    }


def write_arig(data_dir: Path, records: Sequence[Mapping[str, Any]], split: str = "test", crab: bool = False) -> Path:
    """Crab+'s ``{split}.json``, or (``crab``) Crab's ``v1s_grounding_samples.json`` with ``split`` on every row."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if not crab:
        path = data_dir / arig_split_file(split)
        path.write_text(json.dumps(list(records)), encoding="utf-8")
        return path
    rows = []
    for r in records:
        frame = r.get("visual_path", r.get("frame_path"))
        rows.append(
            {
                "split": r.get("split", split),
                "frame_path": frame,
                "audio_path": r["audio_path"],
                "mask_path": str(frame).replace("frames", "labels_rgb").replace(".jpg", ".png"),
                "top_left": r["top_left"],
                "bottom_right": r["bottom_right"],
                "a_obj": r["a_obj"],
            }
        )
    path = data_dir / ARIG_CRAB_FILE
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path
