"""Leaderboard submissions: the schema, file naming, and every unsafe or malformed archive refused in one line."""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from crab_eval.cli import main
from crab_eval.errors import CrabEvalError
from crab_eval.leaderboard.archive import Limits, SubmissionError, open_submission
from crab_eval.leaderboard.submission import ENTRY_KIND, check_metadata, score_submission, validate
from crab_eval.results import read_result

pytestmark = pytest.mark.usefixtures("toy")  # the toy task of tests/toy_task.py

ROWS = [("a", "v1", "dog"), ("b", "v1", "cat"), ("c", "v2", "dog"), ("d", "v3", "cow")]
META: dict[str, Any] = {
    "schema_version": 1,
    "model": "Toy-LLM",
    "team": "Test team",
    "url": "https://example.org/toy",
    "parameters": 7_000_000,
    "llm_backbone": "tiny",
    "encoders": {"audio": "mel-conv", "visual": "patch-conv"},
    "training_data": ["toy val"],
    "variant": "unified",
    "date": "2025-06-01",
}
GOOD = "".join(json.dumps({"id": i, "prediction": {"label": "dog"}}) + "\n" for i in "abcd")


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy_test.tsv").write_text("".join(f"{i}\t{v}\t{y}\n" for i, v, y in ROWS))
    return folder.parent


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Extraction folders go under the test's tmp_path, so the test can check they are removed."""
    folder = tmp_path / "sys_tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def make_zip(
    path: Path, members: dict[str, str | bytes], meta: dict[str, Any] | None = META, method: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        if meta is not None:
            archive.writestr("submission.json", json.dumps(meta))
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def make_folder(path: Path, members: dict[str, str], meta: dict[str, Any] | None = META) -> Path:
    path.mkdir()
    if meta is not None:
        (path / "submission.json").write_text(json.dumps(meta))
    for name, data in members.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(data)
    return path


def special_member(path: Path, name: str, mode: int, data: bytes = b"x") -> Path:
    """A zip whose member carries Unix file-type bits (a link, a device, a FIFO) in its external attributes."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("submission.json", json.dumps(META))
        archive.writestr("toy.jsonl", GOOD)
        archive.writestr(info, data)
    return path


def refused(submission: Path, pattern: str, limits: Limits | None = None) -> str:
    with pytest.raises(CrabEvalError) as caught:
        validate(submission, limits=limits or Limits())
    message = str(caught.value)
    assert pattern in message, message
    assert "\n" not in message
    return message


# ---- the happy path ------------------------------------------------------------------------------------------------
def test_zip_submission_validates_and_scores_into_an_entry(tmp_path: Path, data_root: Path, private_tmp: Path) -> None:
    preds_single = "".join(json.dumps({"id": i, "text": f"<answer> {y} </answer>"}) + "\n" for i, _, y in ROWS[:3])
    sub = make_zip(
        tmp_path / "sub.zip", {"toy.jsonl": GOOD, "single_task/toy.test.jsonl": preds_single, "README.md": "# notes"}
    )
    meta, reports = validate(sub, data_root)
    assert meta["model"] == "Toy-LLM"
    by_file = {r["file"]: r for r in reports}
    assert by_file["toy.jsonl"]["variant"] == "unified"
    assert by_file["single_task/toy.test.jsonl"]["variant"] == "single-task"
    assert by_file["single_task/toy.test.jsonl"]["n_missing"] == 1
    assert by_file["single_task/toy.test.jsonl"]["parse_rate"] == 100.0
    out = tmp_path / "entries" / "toy.json"
    entry = score_submission(sub, data_root, out)
    saved = json.loads(out.read_text())
    assert saved["kind"] == ENTRY_KIND and saved["source"] == "rescored"
    assert saved["submission"] == META
    assert saved["submission_sha256"].startswith("sha256:")
    results = {r["variant"]: r for r in entry["results"]}
    # unified: a, c right (dog) of 4 -> 50; single-task: a, b, c right, d missing -> 75.
    assert results["unified"]["metrics"]["accuracy"] == 50.0
    assert results["single-task"]["metrics"]["accuracy"] == 75.0
    assert results["single-task"]["n_missing"] == 1
    result = read_result(out.parent / results["single-task"]["result_file"])
    assert result.provenance["predictions_file"].endswith("sub.zip!single_task/toy.test.jsonl")
    assert result.run["variant"] == "single-task"
    assert result.provenance["data_fingerprint"].startswith("sha256:")
    assert not list(private_tmp.iterdir())  # the extraction folder is gone


def test_folder_submission_and_single_wrapping_folder_in_zip(tmp_path: Path, data_root: Path) -> None:
    folder = make_folder(tmp_path / "sub", {"toy.jsonl": GOOD})
    assert validate(folder, data_root)[1][0]["n_lines"] == 4
    # zip -r sub.zip sub/ wraps everything in one folder; macOS clutter is skipped.
    wrapped = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(wrapped, "w") as archive:
        archive.writestr("sub/", "")
        archive.writestr("sub/submission.json", json.dumps(META))
        archive.writestr("sub/toy.jsonl", GOOD)
        archive.writestr("__MACOSX/sub/._toy.jsonl", b"\0\1")
    assert [r["file"] for r in validate(wrapped, data_root)[1]] == ["toy.jsonl"]


def test_cli_validate_and_score(tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = make_zip(tmp_path / "sub.zip", {"toy.jsonl": GOOD})
    assert main(["submit", "validate", str(sub), "--data-root", str(data_root)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["submit", "validate", str(sub)]) == 0  # without data: names, schema and safety only
    out = tmp_path / "e.json"
    assert main(["submit", "score", str(sub), "--data-root", str(data_root), "--out", str(out)]) == 0
    assert (tmp_path / "e.results" / "unified.toy.test.json").is_file()
    bad = make_zip(tmp_path / "bad.zip", {"toy.jsonl": GOOD + '{"id": "a", "prediction": {"label": "x"}}\n'})
    assert main(["submit", "validate", str(bad), "--data-root", str(data_root)]) == 1
    assert "duplicate id 'a'" in capsys.readouterr().out
    # Scoring refuses the bad line with exit 2 and the member's name, and leaves no entry behind.
    out2 = tmp_path / "bad.json"
    assert main(["submit", "score", str(bad), "--data-root", str(data_root), "--out", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "bad.zip!toy.jsonl:5: duplicate id 'a'" in err
    assert not out2.exists() and not (tmp_path / "bad.results").exists()


def test_missing_task_folder_in_data_root(tmp_path: Path) -> None:
    sub = make_zip(tmp_path / "sub.zip", {"toy.jsonl": GOOD})
    (tmp_path / "empty").mkdir()
    with pytest.raises(CrabEvalError, match="data root has no folder 'toy'"):
        score_submission(sub, tmp_path / "empty", tmp_path / "e.json")


# ---- unsafe archives -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("/etc/toy.jsonl", "absolute path"),
        ("C:/toy.jsonl", "absolute path"),
        ("../toy.jsonl", "leaves the archive"),
        ("sub/../../toy.jsonl", "leaves the archive"),
        ("sub\\toy.jsonl", "backslashes"),
        ("./toy.jsonl", "'.' path component"),
    ],
)
def test_unsafe_member_names_are_refused(tmp_path: Path, name: str, pattern: str) -> None:
    refused(make_zip(tmp_path / "evil.zip", {name: GOOD}), pattern)


@pytest.mark.parametrize(
    ("mode", "pattern"),
    [
        (stat.S_IFLNK | 0o777, "symbolic link"),
        (stat.S_IFCHR | 0o644, "device or special file"),
        (stat.S_IFBLK | 0o644, "device or special file"),
        (stat.S_IFIFO | 0o644, "device or special file"),
        (stat.S_IFSOCK | 0o644, "device or special file"),
    ],
)
def test_links_and_special_members_are_refused(tmp_path: Path, mode: int, pattern: str) -> None:
    refused(special_member(tmp_path / "evil.zip", "toy.val.jsonl", mode, b"/etc/passwd"), pattern)


def test_nul_in_name_duplicates_encryption_and_methods(tmp_path: Path) -> None:
    dup = tmp_path / "dup.zip"
    with zipfile.ZipFile(dup, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("submission.json", json.dumps(META))
        archive.writestr("toy.jsonl", GOOD)
        archive.writestr("toy.jsonl", "")
    refused(dup, "appears twice")
    encrypted = make_zip(tmp_path / "enc.zip", {"toy.jsonl": GOOD})
    raw = bytearray(encrypted.read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 8] |= 0x1  # general-purpose flag bit 0: encrypted (zipfile never writes it itself)
    encrypted.write_bytes(bytes(raw))
    refused(encrypted, "encrypted")
    lzma = tmp_path / "lzma.zip"
    with zipfile.ZipFile(lzma, "w", zipfile.ZIP_LZMA) as archive:
        archive.writestr("submission.json", json.dumps(META))
    refused(lzma, "compression method 14")
    raw = bytearray(make_zip(tmp_path / "nul.zip", {"toyXjsonl": GOOD}).read_bytes())
    raw[:] = raw.replace(b"toyXjsonl", b"toy\0jsonl")
    (tmp_path / "nul.zip").write_bytes(bytes(raw))
    # zipfile itself cuts names at NUL; either way the member must not be accepted as a prediction file.
    refused(tmp_path / "nul.zip", "toy")


def test_not_a_zip_and_missing_submission(tmp_path: Path) -> None:
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really a zip")
    refused(tmp_path / "junk.zip", "not a readable zip archive")
    refused(tmp_path / "nowhere.zip", "submission not found")


def test_zip_bomb_ratio_and_size_limits(tmp_path: Path) -> None:
    bomb = make_zip(tmp_path / "bomb.zip", {"toy.jsonl": b"\n" * (8 * 1024 * 1024)})
    refused(bomb, "compression ratio")
    big = make_zip(tmp_path / "big.zip", {"toy.jsonl": GOOD * 100})
    refused(big, "per-file limit", Limits(max_file_bytes=1000))
    refused(big, "total limit", Limits(max_total_bytes=1000))
    refused(big, "members, more than the limit", Limits(max_members=1))
    refused(big, "more than the limit of 10", Limits(max_archive_bytes=10))
    long_line = make_zip(tmp_path / "long.zip", {"toy.jsonl": json.dumps({"id": "a", "text": "x" * 5000}) + "\n"})
    refused(long_line, "line 1 is longer than 1000 bytes", Limits(max_line_bytes=1000))


def test_lying_size_header_is_caught(tmp_path: Path) -> None:
    """A central directory that declares fewer bytes than the member holds: refused, not trusted."""
    path = make_zip(tmp_path / "liar.zip", {"toy.jsonl": GOOD * 50})
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b"PK\x01\x02")  # the last central-directory record is toy.jsonl's
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")  # uncompressed size field
    path.write_bytes(bytes(raw))
    refused(path, "cannot be read")


def test_folder_with_symlink_or_fifo_is_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "sub", {"toy.jsonl": GOOD})
    os.symlink("/etc/passwd", folder / "toy.val.jsonl")
    refused(folder, "symbolic link")
    (folder / "toy.val.jsonl").unlink()
    os.mkfifo(folder / "pipe")
    refused(folder, "device or special file")
    (folder / "pipe").unlink()
    link = tmp_path / "link"
    os.symlink(folder, link)
    refused(link, "is a symbolic link")


def test_deep_json_nesting_is_refused(tmp_path: Path, data_root: Path) -> None:
    deep = '{"id": "a", "prediction": ' + "[" * 200_000 + "]" * 200_000 + "}\n"
    sub = make_zip(tmp_path / "deep.zip", {"toy.jsonl": deep}, method=zipfile.ZIP_STORED)
    with pytest.raises(CrabEvalError, match=r"deep\.zip!toy\.jsonl:1: JSON nests too deeply"):
        validate(sub, data_root)


def test_pickles_and_code_are_never_loaded(tmp_path: Path) -> None:
    import pickle

    payload = pickle.dumps({"id": "a"})
    refused(make_zip(tmp_path / "p.zip", {"toy.jsonl": GOOD, "model.pkl": payload}), "unexpected file 'model.pkl'")
    refused(
        make_zip(tmp_path / "c.zip", {"toy.jsonl": GOOD, "conftest.py": "raise SystemExit"}),
        "unexpected file 'conftest.py'",
    )


# ---- names and metadata ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("members", "meta", "pattern"),
    [
        ({"toy.jsonl": GOOD}, None, "no submission.json"),
        ({}, META, "no prediction files"),
        ({"nosuch.jsonl": GOOD}, META, "unknown task 'nosuch'"),
        ({"toy.train.jsonl": GOOD}, META, "has no split 'train'"),
        ({"toy.jsonl": GOOD, "toy.test.jsonl": GOOD}, META, "both hold toy/test predictions"),
        ({"preds/toy.jsonl": GOOD}, META, "unexpected file 'preds/toy.jsonl'"),
        ({"toy.json": GOOD}, META, "unexpected file 'toy.json'"),
        ({"single_task/toy.jsonl": GOOD}, {**META, "variant": "single-task"}, "belong to a unified submission"),
    ],
)
def test_file_naming_rules(tmp_path: Path, members: dict[str, str], meta: dict[str, Any] | None, pattern: str) -> None:
    refused(make_zip(tmp_path / "s.zip", members, meta), pattern)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"variant": "joint"}, "$.variant: 'joint' is not one of"),
        ({"date": "June 2025"}, "$.date"),
        ({"date": "2025-13-45"}, "$.date"),
        ({"parameters": -1}, "$.parameters"),
        ({"encoders": {}}, "$.encoders"),
        ({"url": "javascript:alert(1)"}, "$.url"),
        ({"extra": 1}, "Additional properties are not allowed"),
        ({"schema_version": 2}, "$.schema_version"),
    ],
)
def test_metadata_schema(change: dict[str, Any], pattern: str) -> None:
    with pytest.raises(SubmissionError) as caught:
        check_metadata({**META, **change}, "sub.zip!submission.json")
    assert pattern in str(caught.value)


def test_metadata_needs_url_or_paper_and_required_fields() -> None:
    no_link = {k: v for k, v in META.items() if k != "url"}
    with pytest.raises(SubmissionError, match="give 'url' or 'paper'"):
        check_metadata(no_link, "s")
    assert check_metadata({**no_link, "paper": "Toy, 2025"}, "s")["paper"] == "Toy, 2025"
    with pytest.raises(SubmissionError, match="'team' is a required property"):
        check_metadata({k: v for k, v in META.items() if k != "team"}, "s")


def test_malformed_submission_json(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("submission.json", "{not json")
        archive.writestr("toy.jsonl", GOOD)
    refused(path, "s.zip!submission.json: malformed JSON")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("submission.json", json.dumps({**META, "parameters": float("nan")}).replace("NaN", "NaN"))
        archive.writestr("toy.jsonl", GOOD)
    refused(path, "NaN is not valid JSON")


def test_open_submission_lists_regular_files_only(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("submission.json", json.dumps(META))
        archive.writestr("single_task/", "")
        archive.writestr("single_task/toy.jsonl", GOOD)
    (tmp_path / "s.zip").write_bytes(buf.getvalue())
    with open_submission(tmp_path / "s.zip") as files:
        assert sorted(files.files) == ["single_task/toy.jsonl", "submission.json"]
        assert files.files["single_task/toy.jsonl"].read_text() == GOOD
        assert files.display("single_task/toy.jsonl").endswith("s.zip!single_task/toy.jsonl")
