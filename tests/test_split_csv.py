"""The shared reader of one-table-for-all-splits metadata CSVs (AVSBench-semantic, Ref-AVS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crab_eval.errors import AnnotationError
from crab_eval.readers.split_csv import read_split_rows


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "metadata.csv"
    path.write_bytes(data)
    return path


def test_rows_of_one_split_in_file_order_with_their_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbfuid,split,label\n\na,train,v1s\nb,test,v1m\n\nc,test,v2\n")
    assert read_split_rows(path, "test", ("uid", "label")) == [
        (4, {"uid": "b", "split": "test", "label": "v1m"}),
        (6, {"uid": "c", "split": "test", "label": "v2"}),
    ]
    assert read_split_rows(path, "val", ("uid",)) == []


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"uid,label\nx,y\n", "no column(s) ['split']", 1),
        (b"uid,split\nx,train\ny,train,extra\n", "expected 2 fields as in the header, got 3", 3),  # another split
        (b'uid,split\nx,test\n"' + b"y" * 200_000 + b'",test\n', "malformed CSV", 3),  # over csv's field limit
        (b"\n\n", "empty file", None),
        (b"uid,split\n\xff\xfe,test\n", "not UTF-8 text", None),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path: Path, data: bytes, message: str, line: int | None) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(AnnotationError) as info:
        read_split_rows(path, "test", ("uid",))
    assert message in str(info.value) and str(path) in str(info.value)
    if line is not None:
        assert f":{line}" in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="not found"):
        read_split_rows(tmp_path / "metadata.csv", "test", ("uid",))
