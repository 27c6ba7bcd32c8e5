"""AVE split files from the public repository: rows of ``Annotations.txt`` chosen by the ``*_order.h5`` index lists.

The dataset zip's ``trainSet.txt`` / ``valSet.txt`` / ``testSet.txt`` are not in a public repository, but
YapengTian/AVE-ECCV18 ships ``data/Annotations.txt`` (4,143 rows) and ``data/{train,val,test}_order.h5``, whose
``order`` arrays index its rows (3,339 / 402 / 402, disjoint, covering every row) and define the same splits. This
writes the three split files in the adapter's format: the zip's header line, then the chosen rows in file order.

    python -m crab_eval.baselines.ave_splits --repo-data AVE-ECCV18/data --out DIR

Reading the ``.h5`` lists needs ``h5py`` (not a crab-eval dependency: ``pip install h5py``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from crab_eval.errors import AnnotationError, CrabEvalError
from crab_eval.io import atomic_open

HEADER = "Category&VideoID&Quality&StartTime&EndTime"
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


def split_rows(annotation_lines: Sequence[str], orders: Mapping[str, Sequence[int]]) -> dict[str, list[str]]:
    """Rows per split, in file order; the index lists must be disjoint, in range and cover every row."""
    seen: dict[int, str] = {}
    for split, order in orders.items():
        for index in order:
            if not 0 <= index < len(annotation_lines):
                raise CrabEvalError(
                    f"{split} order lists row {index}, but the annotations have {len(annotation_lines)}"
                )
            if index in seen:
                raise CrabEvalError(f"row {index} is in both the {seen[index]} and the {split} order")
            seen[index] = split
    if len(seen) != len(annotation_lines):
        raise CrabEvalError(f"the order lists cover {len(seen)} of {len(annotation_lines)} annotation rows")
    return {split: [annotation_lines[i] for i in sorted(order)] for split, order in orders.items()}


def read_annotation_lines(path: Path) -> list[str]:
    """Non-blank rows of ``Annotations.txt``; a header line (the zip's copy has one) is dropped."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except FileNotFoundError:
        raise AnnotationError("file not found", path) from None
    if lines and lines[0].lower().replace(" ", "") == HEADER.lower():
        lines = lines[1:]
    return lines


def read_order(path: Path) -> list[int]:
    try:
        import h5py
    except ImportError:
        raise CrabEvalError("reading the .h5 order lists needs h5py: pip install h5py") from None
    if not path.is_file():
        raise AnnotationError("file not found", path)
    with h5py.File(path, "r") as handle:
        if "order" not in handle:
            raise AnnotationError("no 'order' dataset", path)
        return [int(i) for i in handle["order"][:]]


def write_splits(repo_data: Path, out: Path) -> dict[str, int]:
    lines = read_annotation_lines(repo_data / "Annotations.txt")
    rows = split_rows(lines, {split: read_order(repo_data / f"{split}_order.h5") for split in SPLIT_FILES})
    out.mkdir(parents=True, exist_ok=True)
    for split, name in SPLIT_FILES.items():
        with atomic_open(out / name) as handle:
            handle.write("".join(f"{row}\n" for row in [HEADER, *rows[split]]))
    if (out / "Annotations.txt").resolve() != (repo_data / "Annotations.txt").resolve():
        shutil.copyfile(repo_data / "Annotations.txt", out / "Annotations.txt")  # the class order beside the splits
    return {split: len(r) for split, r in rows.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo-data", required=True, help="the repository's data/ folder")
    parser.add_argument("--out", required=True, help="folder to write the split files to (the AVE data folder)")
    args = parser.parse_args(argv)
    try:
        counts = write_splits(Path(args.repo_data), Path(args.out))
    except CrabEvalError as exc:
        print(f"ave_splits: error: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{split} {n}" for split, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
