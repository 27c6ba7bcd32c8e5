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
    parts: list[bytes] = []
    _parts(parts, obj)
    # One update with the joined bytes gives the digest of one update per part.
    return hashlib.blake2b(b"".join(parts), digest_size=8).hexdigest()


_FIELD_ORDER: dict[type, tuple[str, ...]] = {}  # a dataclass's field names in the order they are hashed


def _parts(out: list[bytes], obj: Any) -> None:
    """The bytes ``content_hash`` digests for ``obj``, appended to ``out`` (ground truth of a mask task holds
    thousands of small arrays per split, so the common exact types are tested first)."""
    kind = type(obj)
    if kind is str or kind is int:
        out.append(f"{kind.__name__}:{obj!r};".encode())
    elif kind is np.ndarray:
        _array_parts(out, obj)
    elif kind is tuple or kind is list:
        out.append(b"[")
        for item in obj:
            if type(item) is np.ndarray:
                _array_parts(out, item)
            elif type(item) is int:
                out.append(f"int:{item!r};".encode())
            else:
                _parts(out, item)
        out.append(b"]")
    elif obj is None or isinstance(obj, bool | int | float | str):
        out.append(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, bytes):
        out.append(b"bytes:" + obj + b";")
    elif isinstance(obj, np.ndarray | np.generic):
        _array_parts(out, obj)
    elif isinstance(obj, Mapping):
        out.append(b"{")
        for key in sorted(obj, key=repr):
            _parts(out, key)
            _parts(out, obj[key])
        out.append(b"}")
    elif isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        out.append(b"[")
        for item in items:
            _parts(out, item)
        out.append(b"]")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # as the mapping {field name: value}, keys in repr order
        out.append(kind.__name__.encode() + b"{")
        names = _FIELD_ORDER.get(kind)
        if names is None:
            names = _FIELD_ORDER[kind] = tuple(sorted((f.name for f in dataclasses.fields(obj)), key=repr))
        for name in names:
            out.append(f"str:{name!r};".encode())
            _parts(out, getattr(obj, name))
        out.append(b"}")
    elif isinstance(obj, PurePath):
        out.append(f"path:{obj.as_posix()};".encode())
    else:
        raise TypeError(f"cannot hash a {type(obj).__name__} for the per-sample record")


def _array_parts(out: list[bytes], obj: np.ndarray | np.generic) -> None:
    array = np.ascontiguousarray(obj)
    out.append(f"ndarray:{array.dtype.str}:{array.shape}:".encode())
    out.append(array.tobytes())


def data_fingerprint(files: Iterable[Path], root: Path) -> str:
    """sha256 over (path relative to ``root``, content hash) of every file, in sorted order."""
    digest = hashlib.sha256()
    root = Path(root)
    prefix = str(root) + os.sep
    for path in sorted(f if type(f) is type(root) else Path(f) for f in files):
        name = str(path)
        if name.startswith(prefix) and len(name) > len(prefix):
            rel = name[len(prefix) :].replace(os.sep, "/")  # relative_to(root).as_posix(), without re-parsing
        else:
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
