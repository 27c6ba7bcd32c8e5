"""Opening an untrusted submission (a folder or a ``.zip``) safely.

Nothing in a submission is ever imported, unpickled or executed: it is read as JSON text only. Before a byte is
extracted every archive member is checked: absolute paths, ``..``, backslashes, NUL bytes, links, device and other
special files, encrypted members, unusual compression methods and duplicate names are refused, and the declared sizes
must fit the limits (member count, per file, total, compression ratio). The members that are needed are then
streamed into a private temporary folder under names chosen here (never the member's own path), counting the bytes
actually produced, so a lying size header cannot get past the limits either, and every line is checked against
the per-line limit on the way. A folder submission goes through the same checks, without a copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from crab_eval.errors import CrabEvalError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Size limits of a submission; generous for real prediction files, fatal for zip bombs."""

    max_archive_bytes: int = 1024 * MiB  # the .zip file itself
    max_members: int = 256  # archive members or folder entries
    max_file_bytes: int = 1024 * MiB  # one uncompressed file
    max_total_bytes: int = 2048 * MiB  # all uncompressed files together
    max_line_bytes: int = 16 * MiB  # one JSONL line (one sample's masks at most)
    # Deflate tops out near 1030:1; real prediction files stay below ~100:1 (an all-empty-mask file is ~80:1).
    max_ratio: float = 500.0
    ratio_floor_bytes: int = 64 * 1024  # tiny members are exempt from the ratio check
    max_metadata_bytes: int = 1 * MiB  # submission.json


DEFAULT_LIMITS = Limits()
# Archive clutter that packers add; checked for safety like everything else, then skipped.
IGNORED_PARTS = ("__MACOSX",)
IGNORED_NAMES = (".DS_Store", "Thumbs.db")
_ALLOWED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_CHUNK = 1 << 16


class SubmissionError(CrabEvalError):
    """An unsafe or malformed submission; one line naming the submission and member."""


@dataclass
class SubmissionFiles:
    """The regular files of a submission: relative POSIX name -> a local path that is safe to read."""

    source: Path
    files: dict[str, Path] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    sha256: str = ""  # of the archive file, or of the folder's (name, content hash) list

    def display(self, name: str) -> str:
        return f"{self.source}!{name}" if self.source.is_file() else str(self.source / name)


def _check_name(name: str, where: Path) -> str:
    """The member name as a clean relative POSIX path, or an error naming what is unsafe about it."""
    if "\0" in name:
        raise SubmissionError(f"member name {name!r} contains a NUL byte", where)
    if "\\" in name:
        raise SubmissionError(f"member {name!r}: backslashes are not allowed in names", where)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise SubmissionError(f"member {name!r} has an absolute path", where)
    parts = name.rstrip("/").split("/")
    if any(part == ".." for part in parts):
        raise SubmissionError(f"member {name!r} leaves the archive ('..' in its path)", where)
    if any(part in ("", ".") for part in parts):
        raise SubmissionError(f"member {name!r} has an empty or '.' path component", where)
    return "/".join(parts)


def _member_kind(info: zipfile.ZipInfo) -> str:
    """'dir', 'file', or the name of a refused kind, from the Unix mode bits when the packer stored them."""
    mode = info.external_attr >> 16
    fmt = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if fmt and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "device or special file"
    if info.is_dir() or stat.S_ISDIR(mode):
        return "dir"
    return "file"


def _ignored(name: str) -> bool:
    parts = name.split("/")
    return parts[0] in IGNORED_PARTS or parts[-1] in IGNORED_NAMES


def _strip_single_top_folder(names: list[str]) -> str:
    """The common top folder when the archive wraps everything in one (``zip -r sub.zip sub/``), else ''."""
    if not names or "submission.json" in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        return tops.pop() + "/"
    return ""


class _LineGuard:
    """Counts bytes since the last newline across chunks; raises when a line exceeds the limit."""

    def __init__(self, limit: int, label: str, where: Path):
        self.limit, self.label, self.where = limit, label, where
        self.current = 0
        self.line = 1

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            end = len(chunk) if nl < 0 else nl
            self.current += end - start
            if self.current > self.limit:
                raise SubmissionError(f"{self.label}: line {self.line} is longer than {self.limit} bytes", self.where)
            if nl < 0:
                return
            self.current = 0
            self.line += 1
            start = nl + 1


def _copy_limited(src, dst, label: str, where: Path, limits: Limits, budget: list[int]) -> tuple[int, str]:
    """Stream src -> dst enforcing the per-file, total and per-line limits on the bytes actually produced."""
    guard = _LineGuard(limits.max_line_bytes, label, where)
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(_CHUNK):
        size += len(chunk)
        budget[0] += len(chunk)
        if size > limits.max_file_bytes:
            raise SubmissionError(f"{label}: larger than the per-file limit of {limits.max_file_bytes} bytes", where)
        if budget[0] > limits.max_total_bytes:
            raise SubmissionError(
                f"uncompressed content exceeds the total limit of {limits.max_total_bytes} bytes", where
            )
        guard.feed(chunk)
        digest.update(chunk)
        if dst is not None:
            dst.write(chunk)
    return size, digest.hexdigest()


def _open_zip(path: Path, limits: Limits, tmp: Path) -> SubmissionFiles:
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise SubmissionError(f"archive is {size} bytes, more than the limit of {limits.max_archive_bytes}", path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"not a readable zip archive ({exc})", path) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise SubmissionError(
                f"archive has {len(infos)} members, more than the limit of {limits.max_members}", path
            )
        seen: set[str] = set()
        declared_total = 0
        members: list[tuple[str, zipfile.ZipInfo]] = []
        for info in infos:
            name = _check_name(info.filename, path)
            if name in seen:
                raise SubmissionError(f"member {name!r} appears twice in the archive", path)
            seen.add(name)
            kind = _member_kind(info)
            if kind not in ("file", "dir"):
                raise SubmissionError(f"member {name!r} is a {kind}; only regular files are accepted", path)
            if kind == "dir":
                continue
            if info.flag_bits & 0x1:
                raise SubmissionError(f"member {name!r} is encrypted", path)
            if info.compress_type not in _ALLOWED_METHODS:
                raise SubmissionError(
                    f"member {name!r} uses compression method {info.compress_type}; only stored and deflate are "
                    "accepted",
                    path,
                )
            if info.file_size > limits.max_file_bytes:
                raise SubmissionError(
                    f"member {name!r} declares {info.file_size} bytes, more than the per-file "
                    f"limit of {limits.max_file_bytes}",
                    path,
                )
            declared_total += info.file_size
            if declared_total > limits.max_total_bytes:
                raise SubmissionError(
                    f"members declare more than the total limit of {limits.max_total_bytes} uncompressed bytes", path
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
                raise SubmissionError(
                    f"member {name!r} has a compression ratio of {ratio:.0f}:1, more than the "
                    f"limit of {limits.max_ratio:.0f}:1 (zip bomb?)",
                    path,
                )
            if not _ignored(name):
                members.append((name, info))
        prefix = _strip_single_top_folder([n for n, _ in members])
        result = SubmissionFiles(source=path, sha256=_sha256_file(path))
        budget = [0]
        for index, (name, info) in enumerate(members):
            rel = name[len(prefix) :]
            # The extracted file's name is chosen here, never taken from the archive.
            target = tmp / f"member_{index:04d}"
            try:
                with archive.open(info) as src, open(target, "xb") as dst:
                    result.sizes[rel], _ = _copy_limited(src, dst, f"member {name!r}", path, limits, budget)
            except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
                raise SubmissionError(f"member {name!r} cannot be read ({exc})", path) from None
            result.files[rel] = target
        return result


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _open_folder(root: Path, limits: Limits) -> SubmissionFiles:
    result = SubmissionFiles(source=root)
    budget = [0]
    count = 0
    listing = hashlib.sha256()
    stack = [root]
    entries: list[tuple[str, Path]] = []
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                count += 1
                if count > limits.max_members:
                    raise SubmissionError(f"folder has more than {limits.max_members} entries", root)
                rel = Path(entry.path).relative_to(root).as_posix()
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    raise SubmissionError(f"{rel!r} is a symbolic link; only regular files are accepted", root)
                if stat.S_ISDIR(mode):
                    stack.append(Path(entry.path))
                elif not stat.S_ISREG(mode):
                    raise SubmissionError(f"{rel!r} is a device or special file; only regular files are accepted", root)
                elif not _ignored(rel):
                    entries.append((rel, Path(entry.path)))
    for rel, path in sorted(entries):
        with path.open("rb") as src:
            result.sizes[rel], digest = _copy_limited(src, None, repr(rel), root, limits, budget)
        listing.update(f"{rel}\0{digest}\n".encode())
        result.files[rel] = path
    result.sha256 = "sha256:" + listing.hexdigest()
    return result


@contextmanager
def open_submission(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> Iterator[SubmissionFiles]:
    """The submission's files, checked; a zip is extracted into a private temporary folder removed afterwards."""
    path = Path(path)
    if path.is_symlink():
        raise SubmissionError("the submission itself is a symbolic link", path)
    if path.is_dir():
        yield _open_folder(path, limits)
        return
    if not path.is_file():
        raise SubmissionError("submission not found (expected a folder or a .zip file)", path)
    tmp = Path(tempfile.mkdtemp(prefix="crab-eval-submission-"))
    try:
        os.chmod(tmp, 0o700)
        yield _open_zip(path, limits, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
