"""The decoded ground-truth cache (crab_eval/gt_cache.py) and its use by the mask tasks' ``load``.

The reference for every cached load is the same task loaded with ``CRAB_EVAL_NO_CACHE=1`` (the adapters' own
tests check that load against independent decoders); decode calls are counted by wrapping the module-level PNG
readers the adapters call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crab_eval import gt_cache
from crab_eval.errors import AnnotationError
from crab_eval.layouts import avsbench as avsbench_layout
from crab_eval.layouts import avss as avss_layout
from crab_eval.layouts import ref_avs as ref_avs_layout
from crab_eval.metrics.masks import counts_to_string, encode_mask, mask_to_counts
from crab_eval.scoring import score
from crab_eval.tasks import avsbench, avss, ref_avs

OLD = time.time_ns() - 3600 * 10**9  # an hour ago: well outside the cache's "racily clean" window


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRAB_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a default-path cache would show up here
    monkeypatch.delenv("CRAB_EVAL_NO_CACHE", raising=False)


def backdate(root: Path, ns: int = OLD) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(ns, ns))


def canon(x: Any) -> Any:
    """A comparable form of samples: dataclasses field by field, arrays with their dtype, tuples vs lists kept."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, {f.name: canon(getattr(x, f.name)) for f in dataclasses.fields(x)})
    if isinstance(x, np.ndarray):
        return ("ndarray", str(x.dtype), x.tolist())
    if isinstance(x, list | tuple):
        return (type(x).__name__, [canon(v) for v in x])
    if isinstance(x, Mapping):
        return {k: canon(v) for k, v in x.items()}
    return x


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


# ---- the three adapters: data, a way to count decodes, a way to change one GT file -----------------------------
def _s4(data: Path) -> tuple[Any, str, list[Path]]:
    rng = np.random.default_rng(0)
    videos = [
        avsbench_layout.Video(f"vid{i}", "test", avsbench_layout.random_blob_masks(rng, 5, (16, 12)), "dog")
        for i in range(3)
    ]
    avsbench_layout.write_s4(data, videos)
    return avsbench.S4Task(), "test", [avsbench_layout.s4_mask_path(data, v, k) for v in videos for k in range(1, 6)]


def _ms3(data: Path) -> tuple[Any, str, list[Path]]:
    rng = np.random.default_rng(1)
    videos = [
        avsbench_layout.Video(f"vid{i}", "test", avsbench_layout.random_blob_masks(rng, 5, (10, 14))) for i in range(2)
    ]
    avsbench_layout.write_ms3(data, videos)
    return avsbench.MS3Task(), "test", [avsbench_layout.ms3_mask_path(data, v, k) for v in videos for k in range(1, 6)]


def _avss(data: Path) -> tuple[Any, str, list[Path]]:
    rng = np.random.default_rng(2)
    videos = [
        avss_layout.Video("a_1", "test", "v1s", avss_layout.random_label_maps(rng, 5, (40, 60))),
        avss_layout.Video("b_2", "test", "v2", avss_layout.random_label_maps(rng, 10, (40, 60))),
    ]
    avss_layout.write_avss(data, videos)
    paths = [avss_layout.label_png_path(data, v, i) for v in videos for i in range(len(v.labels))]
    return avss.AVSSTask(), "test", paths


def _ref_avs(data: Path) -> tuple[Any, str, list[Path]]:
    rng = np.random.default_rng(3)
    masks = [ref_avs_layout.random_masks(rng, (48, 64), p_empty=0.2) for _ in range(2)]
    rows = [
        ref_avs_layout.Expression("v0_0_1000_dog_1", "test_s", masks=masks[0]),
        ref_avs_layout.Expression("v0_0_1000_dog_2", "test_s", masks=masks[0]),  # shares the first row's PNGs
        ref_avs_layout.Expression("v1_0_1000_cat_1", "test_s", masks=masks[1]),
    ]
    ref_avs_layout.write_ref_avs(data, rows)
    paths = [ref_avs_layout.gt_path(data, r.uid, r.fid, i) for r in (rows[0], rows[2]) for i in range(10)]
    return ref_avs.RefAVSTask(), "test_s", paths


BUILDERS = {"s4": _s4, "ms3": _ms3, "avss": _avss, "ref_avs": _ref_avs}
READERS = {"s4": (avsbench, "_read_gt_mask"), "ms3": (avsbench, "_read_gt_mask"), "avss": (avss, "read_label_png")}
READERS["ref_avs"] = (ref_avs, "read_gt_mask")


def _rewrite(task_id: str, path: Path) -> None:
    """Different content in one GT file: a mask / label map unlike the original."""
    if task_id in ("s4", "ms3"):
        shape = (16, 12) if task_id == "s4" else (10, 14)
        mask = np.zeros(shape, bool)
        mask[2:5, 3:9] = True
        avsbench_layout.write_mask_png(path, mask)
    elif task_id == "avss":
        lab = np.zeros((40, 60), np.uint8)
        lab[5:20, 10:50] = 7
        avss_layout.write_color_png(path, lab)
    else:
        mask = np.zeros((48, 64), bool)
        mask[10:30, 5:25] = True
        ref_avs_layout.write_mask(path, mask)


class Counter:
    def __init__(self, monkeypatch, task_id: str) -> None:
        module, name = READERS[task_id]
        original = getattr(module, name)
        self.calls = 0

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    def take(self) -> int:
        calls, self.calls = self.calls, 0
        return calls


def _uncached(monkeypatch, task, data: Path, split: str) -> Any:
    monkeypatch.setenv("CRAB_EVAL_NO_CACHE", "1")
    try:
        return canon(task.load(data, split))
    finally:
        monkeypatch.delenv("CRAB_EVAL_NO_CACHE")


def _cache_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "cache"
    return sorted(root.iterdir()) if root.exists() else []


# ---- behaviour through the adapters ----------------------------------------------------------------------------
@pytest.mark.parametrize("task_id", sorted(BUILDERS))
def test_second_load_identical_and_decodes_nothing(tmp_path, monkeypatch, task_id):
    data = tmp_path / "data"
    task, split, gt_files = BUILDERS[task_id](data)
    backdate(data)
    expected = _uncached(monkeypatch, task, data, split)
    count = Counter(monkeypatch, task_id)
    assert canon(task.load(data, split)) == expected
    assert count.take() == len(gt_files)  # cold: every GT file decoded once (ref_avs: shared PNGs once)
    assert len(_cache_files(tmp_path)) == 1
    before = snapshot(tmp_path / "cache")
    assert canon(task.load(data, split)) == expected
    assert count.take() == 0
    assert snapshot(tmp_path / "cache") == before  # nothing changed, nothing written
    # the whole scoring path gives the same metrics as without the cache (oracle predictions, first one empty)
    preds = tmp_path / "preds.jsonl"
    samples = task.load(data, split)
    with preds.open("w") as handle:
        for s in samples[1:]:
            handle.write(json.dumps({"id": s.id, "prediction": task.oracle_prediction(s)}) + "\n")
    cached = score(task_id, data, split, preds).metrics
    assert count.take() == 0
    monkeypatch.setenv("CRAB_EVAL_NO_CACHE", "1")
    assert score(task_id, data, split, preds).metrics == cached


@pytest.mark.parametrize("task_id", sorted(BUILDERS))
def test_rewritten_gt_file_is_picked_up(tmp_path, monkeypatch, task_id):
    data = tmp_path / "data"
    task, split, gt_files = BUILDERS[task_id](data)
    backdate(data)
    count = Counter(monkeypatch, task_id)
    original = canon(task.load(data, split))
    count.take()
    _rewrite(task_id, gt_files[1])
    os.utime(gt_files[1], ns=(OLD + 10**9, OLD + 10**9))
    changed = canon(task.load(data, split))
    assert count.take() == 1  # only the rewritten file
    assert changed != original
    assert changed == _uncached(monkeypatch, task, data, split)
    count.take()
    assert canon(task.load(data, split)) == changed and count.take() == 0  # and the new value was stored


def _warm_s4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Path, str, list[Path], Counter, Any]:
    """An S4 split loaded once (cache filled) with the decode counter reset: (task, data, split, files, counter,
    the loaded value)."""
    data = tmp_path / "data"
    task, split, gt_files = _s4(data)
    backdate(data)
    count = Counter(monkeypatch, "s4")
    first = canon(task.load(data, split))
    count.take()
    return task, data, split, gt_files, count, first


def test_touch_alone_redecodes_same_value(tmp_path, monkeypatch):
    task, data, split, gt_files, count, first = _warm_s4(tmp_path, monkeypatch)
    os.utime(gt_files[0], ns=(OLD + 5, OLD + 5))  # same size and content, new mtime
    assert canon(task.load(data, split)) == first
    assert count.take() == 1


def test_same_size_same_mtime_is_trusted(tmp_path, monkeypatch):
    # The documented contract: size and mtime_ns are the key, content is not read. A rewrite that restores both
    # is served from the cache (provenance's fingerprint still hashes content).
    task, data, split, gt_files, count, first = _warm_s4(tmp_path, monkeypatch)
    path = gt_files[0]
    raw = bytearray(path.read_bytes())
    path.write_bytes(bytes(raw))  # same bytes
    os.utime(path, ns=(OLD, OLD))
    assert canon(task.load(data, split)) == first and count.take() == 0


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"header": 1, "files": {}}',
        "files-not-dict",
        "entry-not-list",
        "bad-counts",
        "wrong-area",
    ],
)
@pytest.mark.parametrize("task_id", ["s4", "avss", "ref_avs"])
def test_corrupt_cache_is_ignored_and_rewritten(tmp_path, monkeypatch, task_id, damage):
    data = tmp_path / "data"
    task, split, gt_files = BUILDERS[task_id](data)
    backdate(data)
    expected = _uncached(monkeypatch, task, data, split)
    task.load(data, split)
    (file,) = _cache_files(tmp_path)
    if isinstance(damage, bytes):
        file.write_bytes(damage)
    else:
        content = json.loads(file.read_text())
        files = content["files"]
        key = next(iter(files))
        if damage == "files-not-dict":
            content["files"] = list(files)
        elif damage == "entry-not-list":
            files[key] = {"size": 1}
        elif damage == "bad-counts":  # a string that is no RLE (and for avss/s4 a value of the wrong shape)
            files[key][2] = "\x7f!" if task_id == "ref_avs" else [1, "x"]
        else:  # a valid RLE of the wrong number of pixels
            one = counts_to_string(np.array([5, 3]))
            files[key][2] = {"s4": [16, 12, one], "avss": [[0, one]], "ref_avs": one}[task_id]
        file.write_text(json.dumps(content))
    assert canon(task.load(data, split)) == expected  # never an error
    repaired = json.loads(file.read_text())  # rewritten, valid again
    assert len(repaired["files"]) == len(gt_files)
    count = Counter(monkeypatch, task_id)
    assert canon(task.load(data, split)) == expected and count.take() == 0


def test_no_cache_env(tmp_path, monkeypatch):
    data = tmp_path / "data"
    task, split, gt_files = _s4(data)
    backdate(data)
    monkeypatch.setenv("CRAB_EVAL_NO_CACHE", "1")
    count = Counter(monkeypatch, "s4")
    first = canon(task.load(data, split))
    assert canon(task.load(data, split)) == first
    assert count.take() == 2 * len(gt_files)
    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv("CRAB_EVAL_NO_CACHE", "0")  # "0" means enabled
    task.load(data, split)
    assert len(_cache_files(tmp_path)) == 1


def test_nothing_written_outside_the_cache_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    task, split, _ = _avss(data)
    backdate(data)
    before = snapshot(data)
    task.load(data, split)
    task.load(data, split)
    assert snapshot(data) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data"]  # no ~/.cache under HOME either
    (file,) = _cache_files(tmp_path)
    assert file.name.startswith("avss-v1-test-") and file.suffix == ".json"
    header = json.loads(file.read_text())["header"]
    assert header == {"format": 1, "task": "avss", "version": "1", "split": "test", "data_dir": str(data.resolve())}


def test_default_location_is_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("CRAB_EVAL_CACHE")
    assert gt_cache.cache_dir() == tmp_path / "home" / ".cache" / "crab-eval" / "ground-truth"


def test_bad_gt_file_is_not_cached(tmp_path, monkeypatch):
    data = tmp_path / "data"
    task, split, gt_files = _s4(data)
    gt_files[2].write_bytes(b"not a png")
    backdate(data)
    for _ in range(2):
        with pytest.raises(AnnotationError, match="not a readable image"):
            task.load(data, split)
    gt_files[2].unlink()
    with pytest.raises(AnnotationError, match="not found"):
        task.load(data, split)


def test_fresh_files_are_decoded_but_not_stored(tmp_path, monkeypatch):
    # a file modified within the racy window could be rewritten again with the same size and mtime
    data = tmp_path / "data"
    task, split, gt_files = _s4(data)
    backdate(data)
    os.utime(gt_files[0], ns=(time.time_ns(), time.time_ns()))
    count = Counter(monkeypatch, "s4")
    task.load(data, split)
    assert count.take() == len(gt_files)
    task.load(data, split)
    assert count.take() == 1


# ---- the generic function --------------------------------------------------------------------------------------
def _text_files(root: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = root / "sub" / f"{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"value {i}")
        paths.append(p)
    backdate(root)
    return paths


def test_cached_decode_keys_and_order(tmp_path):
    data = tmp_path / "data"
    paths = _text_files(data, 4)
    calls: list[str] = []

    def decode(p: str) -> dict[str, Any]:
        calls.append(p)
        return {"text": Path(p).read_text(), "n": [1, 2.5, None, True]}

    got = gt_cache.cached_decode("t", "1", "test", data, paths[::-1], decode)
    assert [g["text"] for g in got] == [f"value {i}" for i in (3, 2, 1, 0)]
    assert len(calls) == 4
    assert gt_cache.cached_decode("t", "1", "test", data, paths, decode) == [decode(str(p)) for p in paths]
    assert len(calls) == 8  # the comparison's own 4 calls only
    entries = json.loads(gt_cache.cache_path("t", "1", "test", data).read_text())["files"]
    assert sorted(entries) == [f"sub{os.sep}{i}.txt" for i in range(4)]  # relative to the data dir
    # another version, split or data dir is another cache file
    gt_cache.cached_decode("t", "2", "test", data, paths, decode)
    gt_cache.cached_decode("t", "1", "val", data, paths, decode)
    assert len(calls) == 16
    assert len(_cache_files(tmp_path)) == 3
    # threads give the same values, in order
    assert gt_cache.cached_decode("t", "3", "x", data, paths, decode, workers=4) == [decode(str(p)) for p in paths]


def test_cached_decode_prunes_and_survives_unwritable_cache(tmp_path, monkeypatch):
    data = tmp_path / "data"
    paths = _text_files(data, 3)
    gt_cache.cached_decode("t", "1", "test", data, paths, lambda p: Path(p).read_text())
    gt_cache.cached_decode("t", "1", "test", data, paths[:2], lambda p: Path(p).read_text())
    entries = json.loads(gt_cache.cache_path("t", "1", "test", data).read_text())["files"]
    assert len(entries) == 2  # a file no longer asked for is dropped
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("CRAB_EVAL_CACHE", str(blocker))
    assert gt_cache.cached_decode("t", "1", "test", data, paths, lambda p: Path(p).read_text()) == [
        "value 0",
        "value 1",
        "value 2",
    ]


def test_cached_decode_missing_file_goes_to_decode(tmp_path):
    def decode(p: str) -> str:
        raise AnnotationError("ground-truth mask not found", p)

    with pytest.raises(AnnotationError, match="not found"):
        gt_cache.cached_decode("t", "1", "test", tmp_path, [tmp_path / "missing.png"], decode)


def test_counts_strings_round_trip_like_masks(tmp_path):
    # the cached form of a mask is exactly the COCO counts string pycocotools would write
    rng = np.random.default_rng(5)
    for mask in avsbench_layout.random_blob_masks(rng, 4, (21, 17), p_empty=0.3):
        assert counts_to_string(mask_to_counts(mask)) == encode_mask(mask)["counts"]
