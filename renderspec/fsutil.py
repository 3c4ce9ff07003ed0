"""Atomic file writes and chunked hashing: a reader sees the old content or the new, never a torn file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from renderspec.errors import StorageError

TEMP_SUFFIX = ".tmp"


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (videos need not fit in memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def default_mode() -> int:
    """The mode a plain `open()` would give a new file (mkstemp's 0600 is too private for renders)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Writes to a temporary file beside `path`, fsyncs it, renames it into place.

    A failure (no space, no permission) raises StorageError naming `path`, and leaves the old
    content and no temporary file behind.
    """
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), default_mode() if mode is None else mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        temp = None
    except OSError as error:
        raise StorageError(error, path) from error
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_debris(folder: Path, pattern: str, *, older_than: float = 0.0) -> int:
    """Deletes temporary files a killed process left in `folder` (those matching `pattern`).

    Only files untouched for `older_than` seconds go, so a writer that is still running (a `plan`
    beside a build) keeps its file. Returns how many were removed.
    """
    if not folder.is_dir():
        return 0
    moment = time.time()
    removed = 0
    for leftover in folder.glob(pattern):
        with contextlib.suppress(OSError):
            if older_than and moment - leftover.lstat().st_mtime < older_than:
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            removed += 1
    return removed
