"""An on-disk cache of decoded ground truth, so that scoring the same data again skips decoding it.

The mask tasks spend nearly all of ``load`` decoding ground-truth PNGs; their scoring kernels work on run-length
counts. This module keeps, per (task id, task version, split, resolved data directory), one JSON file mapping each
ground-truth file's path (relative to the data directory) to ``[size, mtime_ns, value]``, where ``value`` is the
task's JSON encoding of the decoded file (e.g. a COCO RLE counts string). A lookup only stats the file: same size
and mtime_ns is a hit; anything else is decoded again and the entry replaced.

Safety rules:
- JSON only, never pickle: a cache file is data, loading it cannot run code.
- A missing, unreadable or corrupt cache file (or entry) counts as empty and is rewritten; it is never an error.
  Failing to write the cache is not an error either: the cache only ever saves time.
- Files modified within ``RACY_NS`` of the lookup are decoded but not stored: a rewrite within the file system's
  timestamp granularity could keep both size and mtime ("racily clean", as git calls it).
- ``CRAB_EVAL_NO_CACHE=1`` turns it off; ``CRAB_EVAL_CACHE`` moves it (default ``~/.cache/crab-eval/ground-truth``).

The cache never stands in for the data fingerprint: provenance still hashes the files' content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from crab_eval.io import atomic_open

JSONValue = Any  # a value json.dumps accepts (str, int, float, bool, None, lists and dicts of them)

FORMAT = 1  # bump when the file layout changes; a task's decoded form changes with its ``version``
RACY_NS = 2_000_000_000  # 2 s: the coarsest common mtime granularity (FAT); finer file systems lose nothing


def cache_enabled() -> bool:
    return os.environ.get("CRAB_EVAL_NO_CACHE", "").strip() in ("", "0")


def cache_dir() -> Path:
    configured = os.environ.get("CRAB_EVAL_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "crab-eval" / "ground-truth"


def _header(task_id: str, version: str, split: str, data_dir: str | Path) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "task": task_id,
        "version": str(version),
        "split": split,
        "data_dir": str(Path(data_dir).resolve()),
    }


def cache_path(task_id: str, version: str, split: str, data_dir: str | Path) -> Path:
    """The cache file of one (task, version, split, data directory): a readable prefix and a hash of the key."""
    header = _header(task_id, version, split, data_dir)
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode("utf-8")).hexdigest()[:24]
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{task_id}-v{version}-{split}")
    return cache_dir() / f"{readable}-{digest}.json"


def _read_entries(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The cached entries, or {} if the file is missing, unreadable, corrupt or made for another key."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):  # ValueError covers JSONDecodeError and UnicodeDecodeError
        return {}
    if not isinstance(data, dict) or data.get("header") != header or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _write_entries(path: Path, header: dict[str, Any], entries: dict[str, Any]) -> None:
    try:
        with atomic_open(path) as handle:
            json.dump({"header": header, "files": entries}, handle, separators=(",", ":"), allow_nan=False)
    except (OSError, ValueError, TypeError):
        pass  # read-only or full disk, or a value JSON cannot hold: scoring goes on uncached


def _relative(path: str, root: str) -> str:
    prefix = root.rstrip(os.sep) + os.sep
    # plain slicing, not os.path.relpath: this runs for every ground-truth file of a split
    return path[len(prefix) :] if path.startswith(prefix) else os.path.abspath(path)


def _run(decode: Callable[[str], JSONValue], paths: Sequence[str], workers: int) -> list[JSONValue]:
    """``decode`` of each path in order; the first failure (in path order) propagates, as a plain loop would."""
    if workers > 1 and len(paths) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(decode, paths))
    return [decode(p) for p in paths]


def cached_decode(
    task_id: str,
    version: str,
    split: str,
    data_dir: str | Path,
    paths: Sequence[str | Path],
    decode: Callable[[str], JSONValue],
    *,
    workers: int = 1,
    refresh: bool = False,
) -> list[JSONValue]:
    """``[decode(p) for p in paths]``, served from the cache where a file's size and mtime_ns are unchanged.

    ``decode`` must return a JSON value and depend only on the file's content (and the task version).
    ``workers`` > 1 decodes the misses in threads (worth it where decoding releases the GIL, e.g. cv2).
    ``refresh`` ignores the stored entries (for a caller that found a cached value unusable) and rewrites them.
    Errors of ``decode`` (e.g. ``AnnotationError`` for a bad file) propagate unchanged; a file that cannot be
    stat'ed is handed to ``decode``, which reports it as it would without the cache.
    """
    names = [os.fspath(p) for p in paths]
    if not cache_enabled():
        return _run(decode, names, workers)
    header = _header(task_id, version, split, data_dir)
    file = cache_path(task_id, version, split, data_dir)
    stored = {} if refresh else _read_entries(file, header)
    root = os.fspath(data_dir)
    now = time.time_ns()
    out: list[JSONValue] = [None] * len(names)
    keep: dict[str, Any] = {}
    misses: list[tuple[int, str, tuple[int, int] | None]] = []
    for i, name in enumerate(names):
        rel = _relative(name, root)
        try:
            st = os.stat(name)
        except OSError:
            misses.append((i, rel, None))
            continue
        entry = stored.get(rel)
        if (
            isinstance(entry, list)
            and len(entry) == 3
            and entry[0] == st.st_size
            and entry[1] == st.st_mtime_ns
            and type(entry[0]) is int
            and type(entry[1]) is int
        ):
            out[i] = entry[2]
            keep[rel] = entry
        else:
            misses.append((i, rel, (st.st_size, st.st_mtime_ns)))
    values = _run(decode, [names[i] for i, _, _ in misses], workers)
    for (i, rel, sig), value in zip(misses, values, strict=True):
        out[i] = value
        if sig is not None and sig[1] < now - RACY_NS:
            keep[rel] = [sig[0], sig[1], value]
    if keep != stored:
        _write_entries(file, header, keep)
    return out


T = TypeVar("T")
# What a damaged cached value makes a task's parser raise (PredictionError is a ValueError of the RLE checks).
UNUSABLE = (TypeError, ValueError, IndexError, AttributeError)


def cached_parse(
    task_id: str,
    version: str,
    split: str,
    data_dir: str | Path,
    paths: Sequence[str | Path],
    decode: Callable[[str], JSONValue],
    parse: Callable[[list[JSONValue]], T],
    *,
    workers: int = 1,
) -> T:
    """``parse(cached_decode(...))``; if the cached values do not parse (a damaged cache: ``parse`` raises one of
    ``UNUSABLE``), they are decoded again and parsed once more. Fresh values that still do not parse are a bug in
    the task, not a data problem: RuntimeError."""
    for refresh in (False, True):
        values = cached_decode(task_id, version, split, data_dir, paths, decode, workers=workers, refresh=refresh)
        try:
            return parse(values)
        except UNUSABLE:
            continue
    raise RuntimeError(f"{task_id}: decoded ground truth does not round-trip")
