"""Where a number came from: data fingerprint, code version, library versions, time."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any

import numpy as np

import crab_eval

_LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "pycocotools", "pillow", "torch", "transformers", "peft")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def content_hash(obj: Any) -> str:
    """A short, stable hash of a sample's prompt or ground truth, whatever its Python form: strings, numbers,
    containers, dataclasses, numpy arrays (dtype, shape and bytes). Equal content gives equal hashes across
    processes and machines (no ``id`` or memory address enters), so two result files can be checked item by item."""
    digest = hashlib.blake2b(digest_size=8)
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest: Any, obj: Any) -> None:
    if obj is None or isinstance(obj, bool | int | float | str):
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, bytes):
        digest.update(b"bytes:" + obj + b";")
    elif isinstance(obj, np.ndarray | np.generic):
        array = np.ascontiguousarray(obj)
        digest.update(f"ndarray:{array.dtype.str}:{array.shape}:".encode())
        digest.update(array.tobytes())
    elif isinstance(obj, Mapping):
        digest.update(b"{")
        for key in sorted(obj, key=repr):
            _feed(digest, key)
            _feed(digest, obj[key])
        digest.update(b"}")
    elif isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        digest.update(b"[")
        for item in items:
            _feed(digest, item)
        digest.update(b"]")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        digest.update(type(obj).__name__.encode())
        _feed(digest, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    elif isinstance(obj, PurePath):
        digest.update(f"path:{obj.as_posix()};".encode())
    else:
        raise TypeError(f"cannot hash a {type(obj).__name__} for the per-sample record")


def data_fingerprint(files: Iterable[Path], root: Path) -> str:
    """sha256 over (path relative to ``root``, content hash) of every file, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        digest.update(rel.encode())
        digest.update(b"\0")
        digest.update(file_sha256(path).encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the crab-eval checkout this code runs from (None outside a git checkout)."""
    package_dir = Path(crab_eval.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(package_dir), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def portable_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies inside it, else absolute: a result made inside a
    checkout (the demo's ``out/``) names its inputs without the folders of the machine that made it."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.getcwd()).as_posix()
    except ValueError:
        return str(absolute)


def command_line() -> str:
    """The command as run: the program by its name (where it was installed says nothing about the result), then the
    arguments as given."""
    if not sys.argv:
        return ""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_provenance() -> dict[str, Any]:
    return {
        "package": "crab-eval",
        "package_version": crab_eval.__version__,
        "git_commit": git_commit(),
        "libraries": library_versions(),
        "date": now_utc(),
        "command": command_line(),
    }
