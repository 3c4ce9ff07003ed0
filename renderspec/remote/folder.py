"""A shared folder (an NFS or SMB mount, or any local path) as a remote cache backend.

Every write goes to a temporary file in the target's folder and is renamed into place, so a
reader on another machine sees a whole object or none. Paths are checked to stay under the root;
a symlink on the share may point elsewhere, but only regular files are read, and what they hold
is verified like any other entry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO

from renderspec.errors import RemoteDenied, RemoteError, RemoteMissing, RemoteUnavailable, RemoteUnusable
from renderspec.fsutil import TEMP_SUFFIX, default_mode
from renderspec.remote.backend import MAX_SMALL


class FolderBackend:
    def __init__(self, root: Path, url: str | None = None) -> None:
        self.root = root
        self.url = url or str(root)
        self.requests = 0  # file system calls are cheap: counted only for symmetry with the other backends

    def _path(self, path: str) -> Path:
        parts = path.split("/")
        if not path or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"not a remote path: {path!r}")
        return self.root.joinpath(*parts)

    def _fail(self, error: OSError, path: str) -> RemoteError:
        reason = (error.strerror or str(error)).lower()
        if isinstance(error, FileNotFoundError):
            return RemoteMissing(f"{self.url}: {path} is not there", remote=self.url)
        if isinstance(error, PermissionError):
            return RemoteDenied(f"{self.url}: {path}: {reason}", remote=self.url)
        if isinstance(error, IsADirectoryError | NotADirectoryError):
            return RemoteUnusable(f"{path} on the remote is not a file", remote=self.url)
        return RemoteUnavailable(f"{self.url}: {path}: {reason}", remote=self.url)

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise RemoteUnavailable(
                f"the remote folder {self.url} does not exist or is not mounted",
                remote=self.url,
                hint="create it, mount the share, or fix [renderspec.remote] url",
            )

    def exists(self, paths: Collection[str]) -> set[str]:
        self._check_root()
        return {path for path in paths if self._path(path).is_file()}

    def _open(self, path: str) -> BinaryIO:
        """Opens a regular file for reading; a FIFO, device or folder (which a teammate could leave
        there) is refused without blocking on it or reading it without end."""
        descriptor = os.open(self._path(path), os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise RemoteUnusable(f"{path} on the remote is not a regular file", remote=self.url)
            os.set_blocking(descriptor, True)
            return os.fdopen(descriptor, "rb")
        except BaseException:
            os.close(descriptor)
            raise

    def read(self, path: str, limit: int = MAX_SMALL) -> bytes:
        try:
            with self._open(path) as handle:
                data = handle.read(limit + 1)
        except OSError as error:
            raise self._fail(error, path) from error
        if len(data) > limit:
            raise RemoteUnusable(f"{path} on the remote is larger than {limit} bytes", remote=self.url)
        return data

    def download(self, path: str, target: Path, limit: int | None = None) -> int:
        try:
            with self._open(path) as reader:
                size = os.fstat(reader.fileno()).st_size
                if limit is not None and size > limit:
                    raise RemoteUnusable(f"{self.url}: {path} has {size} bytes, more than {limit}", remote=self.url)
                with open(target, "wb") as writer:
                    shutil.copyfileobj(reader, writer, 1 << 20)
                    return writer.tell()
        except OSError as error:
            with contextlib.suppress(OSError):
                target.unlink()
            raise self._fail(error, path) from error

    def upload(self, path: str, source: Path) -> None:
        with open(source, "rb") as reader:
            self._put(path, lambda writer: shutil.copyfileobj(reader, writer, 1 << 20))

    def write(self, path: str, data: bytes) -> None:
        self._put(path, lambda writer: writer.write(data))

    def _put(self, path: str, fill: Callable[[BinaryIO], object]) -> None:
        self._check_root()
        target = self._path(path)
        temp: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
            with os.fdopen(fd, "wb") as writer:
                os.fchmod(writer.fileno(), default_mode())
                fill(writer)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temp, target)
            temp = None
        except OSError as error:
            raise self._fail(error, path) from error
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)

    def delete(self, path: str) -> None:
        try:
            self._path(path).unlink(missing_ok=True)
        except OSError as error:
            raise self._fail(error, path) from error

    def close(self) -> None:
        pass
