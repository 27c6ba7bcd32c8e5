"""The real-data baseline run (baselines/rescore_real.py) on small stand-in folders, and the AVE split builder.

The real files are not in the repository; these folders have their layout. Expected values are worked by hand.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from test_baselines_adapters import write_ave, write_music_avqa

from crab_eval.baselines import ave_splits, rescore_real
from crab_eval.baselines.predictors import fit_plan, predict
from crab_eval.errors import CrabEvalError
from crab_eval.layouts.localization import write_vggss
from crab_eval.layouts.music_avqa import split_path
from crab_eval.registry import get_task
from crab_eval.scoring import load_split

WHOLE, SMALL, TINY = [0.0, 0.0, 1.0, 1.0], [0.25, 0.25, 0.5, 0.75], [0.5, 0.5, 0.75, 0.75]  # on the 224 pixel grid


def write_root(root: Path) -> Path:
    write_ave(root / "ave")
    write_music_avqa(root / "music_avqa")
    split_path(root / "music_avqa", "train").unlink()  # as here: the public copy lacks avqa-train.json
    write_vggss(
        root / "vggss", [("a", "dog", [WHOLE]), ("b", "cat", [SMALL]), ("c", "dog", [WHOLE]), ("d", "x", [TINY])]
    )
    return root


def test_vggss_is_cross_fitted_by_hand(tmp_path: Path) -> None:
    root = write_root(tmp_path / "data")
    assert fit_plan("vggss", root / "vggss") == {"train_split": "test", "cross_fit": 2}
    assert fit_plan("music_avqa", root / "music_avqa") == {"train_split": "val", "cross_fit": 0}
    assert fit_plan("ave", root / "ave") == {"train_split": "train", "cross_fit": 0}
    # Folds {a, c} and {b, d}. {a, c} from b, d (SMALL, TINY tie: first in file order, SMALL); {b, d} from a, c (WHOLE).
    rows, _ = predict("vggss", root / "vggss", "majority", cross_fit=2)
    assert [r["prediction"] for r in rows] == [{"bbox": SMALL}, {"bbox": WHOLE}, {"bbox": SMALL}, {"bbox": WHOLE}]


def _all_strings(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _all_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _all_strings(v)]
    return [obj] if isinstance(obj, str) else []


def test_rescore_writes_entries_site_and_manifest_without_machine_paths(tmp_path: Path) -> None:
    root = write_root(tmp_path / "data")
    out = tmp_path / "site"
    out.mkdir()
    (out / "stale.csv").write_text("from an earlier run")
    manifest = rescore_real.rescore(root, out)
    assert not (out / "stale.csv").exists()  # the folder is replaced as a whole
    assert sorted(p.name for p in (out / "entries").glob("*.json")) == [
        "blind.json",
        "majority.json",
        "prior.json",
        "random.json",
    ]
    tasks = manifest["tasks"]
    assert list(tasks) == [t for t in ("ave", "music_avqa", "vggss") if t in tasks] and len(tasks) == 3
    # Majority, by hand: AVE "Bark 0-10" from train is right on te1's 10 segments, wrong on te2's 10 -> 50.
    # MUSIC-AVQA fitted on val (two, no, no, left -> "no"): right on w2, w3 of four -> 50.
    assert tasks["ave"]["baselines"]["majority"]["value"] == 50.0
    assert tasks["music_avqa"]["baselines"]["majority"]["value"] == 50.0
    assert tasks["music_avqa"]["fit"] == {"train_split": "val", "cross_fit": 0}
    assert "2-fold cross-fit" in tasks["vggss"]["baselines"]["majority"]["fitted on"]
    assert set(tasks["ave"]["not_run"]) == {"blind"} and "blind" in tasks["music_avqa"]["baselines"]
    # Every annotation file read is listed with its sha256 (computed here with hashlib) and no known source.
    for task, info in tasks.items():
        for item in info["files"]:
            data = (root / task / item["name"]).read_bytes()
            assert item["sha256"] == hashlib.sha256(data).hexdigest() and item["bytes"] == len(data)
            assert item["source"] is None
        assert set(info["data_fingerprint"]) == {"test", info["fit"]["train_split"]}
    # Nothing of this machine's paths anywhere, no per-sample files (they can hold ground truth), no fixture rows.
    assert not list(out.rglob("*.samples.jsonl"))
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert str(tmp_path) not in text and "/tmp/" not in text, path
            if path.suffix == ".json":
                assert not [s for s in _all_strings(json.loads(text)) if s.startswith("/")], path
    result = json.loads((out / "entries" / "majority.results" / "single-task.ave.test.json").read_text())
    assert result["samples_file"] is None and result["provenance"]["data_dir"] == "DATA_ROOT/ave"
    assert result["provenance"]["predictions_file"] == "majority/ave.jsonl"
    md = (out / "leaderboard.md").read_text()
    assert "| Majority baseline | rescored | single-task |" in md and "fixture" not in md


def test_a_failed_rescore_keeps_the_old_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("old")
    (tmp_path / "empty").mkdir()
    assert rescore_real.main(["--data-root", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no task folder" in capsys.readouterr().err
    with pytest.raises(CrabEvalError, match="data root not found"):
        rescore_real.rescore(tmp_path / "missing", out)
    # A malformed file fails after the staging folder exists: it is removed and the old site stays.
    root = write_root(tmp_path / "data")
    (root / "ave" / "testSet.txt").write_text("Bark&te1&good&0\n")
    with pytest.raises(CrabEvalError, match=r"testSet\.txt"):
        rescore_real.rescore(root, out)
    assert (out / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "empty", "site"]


def test_relative_paths_and_the_absolute_path_guard() -> None:
    data = {"a": "/data/root/ave", "b": ["/tmp/w/majority/ave.jsonl", "/data/rootx"], "command": "/bin/x --y"}
    clean = rescore_real.relative_paths(data, {"/data/root": "DATA_ROOT", "/tmp/w": ""}, "CMD")
    assert clean == {"a": "DATA_ROOT/ave", "b": ["majority/ave.jsonl", "/data/rootx"], "command": "CMD"}
    assert rescore_real.absolute_strings(clean) == ["/data/rootx"]
    assert rescore_real.absolute_strings({"x": "C:\\data", "y": "https://a"}) == ["C:\\data"]


# ---- AVE split files from the repository's order lists -----------------------------------------------------------
LINES = [
    "Church bell&v0&good&0&10",
    "Church bell&v1&good&2&5",
    "Bark&v2&good&0&10",
    "Bark&v3&good&1&4",
    "Bark&v4&good&0&3",
]


def test_ave_split_rows_by_hand() -> None:
    rows = ave_splits.split_rows(LINES, {"train": [3, 0], "val": [1], "test": [4, 2]})
    assert rows == {"train": [LINES[0], LINES[3]], "val": [LINES[1]], "test": [LINES[2], LINES[4]]}
    with pytest.raises(CrabEvalError, match="in both"):
        ave_splits.split_rows(LINES, {"train": [0, 1, 2], "val": [2], "test": [3, 4]})
    with pytest.raises(CrabEvalError, match="lists row 5"):
        ave_splits.split_rows(LINES, {"train": [0, 1, 5], "val": [2], "test": [3, 4]})
    with pytest.raises(CrabEvalError, match="cover 4 of 5"):
        ave_splits.split_rows(LINES, {"train": [0, 1], "val": [2], "test": [3]})


def test_ave_split_files_load_in_the_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Annotations.txt").write_text("".join(f"{line}\r\n" for line in LINES), encoding="utf-8")
    orders = {"train": [3, 0], "val": [1], "test": [4, 2]}
    monkeypatch.setattr(ave_splits, "read_order", lambda path: orders[path.name.split("_")[0]])  # no h5py needed
    assert ave_splits.write_splits(repo, tmp_path / "ave") == {"train": 2, "val": 1, "test": 2}
    test_text = (tmp_path / "ave" / "testSet.txt").read_text(encoding="utf-8")
    assert test_text == f"{ave_splits.HEADER}\nBark&v2&good&0&10\nBark&v4&good&0&3\n"
    task = get_task("ave")
    assert [s.id for s in load_split(task, tmp_path / "ave", "train")] == ["v0", "v3"]
    assert (tmp_path / "ave" / "Annotations.txt").is_file()
