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
from collections.abc import Callable, Collection, Iterator
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
        with self._staged(path, target.parent, fill) as temp:
            os.replace(temp, target)

    @contextlib.contextmanager
    def _staged(self, path: str, folder: Path, fill: Callable[[BinaryIO], object]) -> Iterator[Path]:
        """A whole, fsynced temporary file in `folder` (the caller renames or links it into place); then gone."""
        temp: str | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".", suffix=TEMP_SUFFIX, dir=folder)
            with os.fdopen(fd, "wb") as writer:
                os.fchmod(writer.fileno(), default_mode())
                fill(writer)
                writer.flush()
                os.fsync(writer.fileno())
            yield Path(temp)
        except OSError as error:
            raise self._fail(error, path) from error
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)

    # -- conditional writes (claims) ----------------------------------------------------------
    # An object written conditionally is a folder of generations, `<path>.d/<n>`: each write is an
    # exclusive create of the next generation (a hard link, which fails if the name exists, on NFS
    # too), so of two writers racing from one version exactly one wins, with no moment when the
    # object is absent. A removal is an empty `<n>.gone` generation. Its version is the generation.

    def _generations(self, path: str) -> tuple[Path, int, bool]:
        """The object's folder, its newest generation (0: none) and whether that one is a removal."""
        folder = self._path(path).with_name(self._path(path).name + ".d")
        newest, gone = 0, False
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(folder):
                stem, _, kind = name.partition(".")
                if stem.isdigit() and kind in ("json", "gone") and int(stem) >= newest:
                    # of a removal and a write that both made one generation, the removal stands
                    gone = kind == "gone" or (gone and int(stem) == newest)
                    newest = int(stem)
        return folder, newest, gone

    def read_versioned(self, path: str, limit: int = MAX_SMALL) -> tuple[bytes, str]:
        self._check_root()
        _, newest, gone = self._generations(path)
        if newest == 0 or gone:
            raise RemoteMissing(f"{self.url}: {path} is not there", remote=self.url)
        data = self.read(f"{path}.d/{newest}.json", limit)
        return data, str(newest)

    def create(self, path: str, data: bytes) -> str | None:
        self._check_root()
        _, newest, gone = self._generations(path)
        if newest and not gone:
            return None
        return self._next(path, newest, data)

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        self._check_root()
        _, newest, gone = self._generations(path)
        if gone or str(newest) != version:
            return None
        return self._next(path, newest, data)

    def remove(self, path: str, version: str) -> bool:
        self._check_root()
        _, newest, gone = self._generations(path)
        if gone or str(newest) != version:
            return False
        return self._next(path, newest, None) is not None

    def _next(self, path: str, newest: int, data: bytes | None) -> str | None:
        """Creates generation newest + 1 exclusively (None: another writer made it first)."""
        folder = self._path(path).with_name(self._path(path).name + ".d")
        name = f"{newest + 1}.{'json' if data is not None else 'gone'}"
        rival = folder / f"{newest + 1}.{'gone' if data is not None else 'json'}"
        with self._staged(path, folder, lambda writer: writer.write(data or b"")) as temp:
            try:
                if rival.exists():
                    return None
                try:
                    os.link(temp, folder / name)
                except FileExistsError:
                    return None
                if rival.exists() and rival.name < name:  # both kinds made this generation: the removal stands
                    (folder / name).unlink(missing_ok=True)
                    return None
                for old in folder.iterdir():  # what no reader needs any more
                    stem = old.name.partition(".")[0]
                    if stem.isdigit() and int(stem) < newest:
                        old.unlink(missing_ok=True)
            except OSError as error:
                raise self._fail(error, path) from error
        return str(newest + 1)

    def delete(self, path: str) -> None:
        try:
            self._path(path).unlink(missing_ok=True)
        except OSError as error:
            raise self._fail(error, path) from error

    def close(self) -> None:
        pass
