"""The content-addressed store of paid renders: `cache/objects/<k[:2]>/<key>/video.mp4` + `meta.json`.

An entry is staged in a temporary folder, fsynced and renamed into place, so it is whole or
absent; its files are read-only on disk, so a program that writes into `renders/` cannot reach
them. A damaged entry is a warning and a miss, never a crash: `check` re-hashes an entry and
`quarantine` moves a damaged one aside, where nothing reads it again.

`ObjectStore` is the small protocol a tier of the cache offers; the local folder is tier one, and
`renderspec.remote.tier.Remote` is tier two (the same keys and records, on S3, WebDAV or a share).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from renderspec.core.keys import is_key, is_task_id, key_of
from renderspec.errors import StorageError, WorkspaceError
from renderspec.fsutil import file_sha256, fsync_dir, fsync_file, remove_debris, write_atomic

CACHE_FORMAT = 1
READ_ONLY = 0o444
STAGE_PREFIX = ".stage-"
DOWNLOADS = ".downloads"


@dataclass(frozen=True, slots=True)
class Entry:
    """A complete entry: the video's path and the record of what made it."""

    key: str
    video: Path
    meta: Mapping[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.meta["video_sha256"])

    @property
    def size(self) -> int:
        return int(self.meta["video_size"])

    @property
    def task_id(self) -> str | None:
        task_id = self.meta.get("task_id")
        return task_id if is_task_id(task_id) else None


class ObjectStore(Protocol):
    """A tier of the render cache, addressed by content key: the local folder, and a remote next."""

    def contains(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` the store holds (one batched question, not one per key)."""
        ...

    def get(self, key: str) -> Entry | None: ...

    def put(self, key: str, video: Path, meta: Mapping[str, Any]) -> Entry: ...

    def remove(self, key: str) -> None: ...

    def keys(self) -> set[str]: ...


class LocalStore:
    """The project's cache/objects folder."""

    def __init__(self, cache_dir: Path) -> None:
        self.folder = cache_dir / "objects"
        self.damaged_dir = cache_dir / "damaged"
        self._folder_text = os.fspath(self.folder)
        self.warnings: list[str] = []

    def path_of(self, key: str) -> Path:
        if not is_key(key):  # keys name folders: nothing else may become a path
            raise ValueError(f"not a content key: {key!r}")
        return self.folder / key[:2] / key

    def video_of(self, key: str) -> Path:
        return self.path_of(key) / "video.mp4"

    # -- lookups -----------------------------------------------------------------------------

    def has(self, key: str, size: int | None = None) -> bool:
        """Stat only: the entry's record exists and, when `size` is known, its video has that size.

        String paths on purpose: a no-op plan asks this for every shot.
        """
        if not is_key(key):
            return False
        base = f"{self._folder_text}/{key[:2]}/{key}"
        if size is None:
            return os.path.isfile(f"{base}/meta.json")
        try:
            return os.stat(f"{base}/video.mp4").st_size == size and os.path.isfile(f"{base}/meta.json")
        except OSError:
            return False

    def contains(self, keys: Iterable[str]) -> set[str]:
        return {key for key in keys if self.has(key)}

    def keys(self) -> set[str]:
        if not self.folder.is_dir():
            return set()
        return {
            path.name
            for prefix in self.folder.iterdir()
            if prefix.is_dir() and len(prefix.name) == 2
            for path in prefix.iterdir()
            if is_key(path.name) and path.name.startswith(prefix.name) and (path / "meta.json").is_file()
        }

    def inodes(self) -> set[tuple[int, int]]:
        """(device, inode) of every entry's video: what a hard-linked render in renders/ shares."""
        found: set[tuple[int, int]] = set()
        for key in self.keys():
            with contextlib.suppress(OSError):
                stat = self.video_of(key).stat()
                found.add((stat.st_dev, stat.st_ino))
        return found

    def get(self, key: str) -> Entry | None:
        """The entry, when its record is readable and its video has the recorded size."""
        if not is_key(key):
            return None
        folder = self.path_of(key)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_bytes())
            problem = record_problem(key, meta)
            if problem is None and (folder / "video.mp4").stat().st_size != meta["video_size"]:
                problem = "its video's size differs from its record"
        except (OSError, ValueError, RecursionError) as error:
            problem = f"unreadable: {error}"
        if problem is not None:
            self.warnings.append(
                f"ignoring the damaged cache entry {folder} ({problem}); `renderspec verify` moves it aside"
            )
            return None
        return Entry(key=key, video=folder / "video.mp4", meta=meta)

    def task_ids(self) -> set[str]:
        """Every task id the entries record (reads every record: only for resolving lost creates)."""
        ids: set[str] = set()
        for key in self.keys():
            with contextlib.suppress(OSError, ValueError, RecursionError):
                meta = json.loads((self.path_of(key) / "meta.json").read_bytes())
                if isinstance(meta, dict):
                    duplicates = meta.get("duplicates")
                    listed = duplicates if isinstance(duplicates, list) else []  # records may come from a remote
                    ids.update(value for value in [meta.get("task_id"), *listed] if is_task_id(value))
        return ids

    # -- writes ------------------------------------------------------------------------------

    def put(self, key: str, video: Path, meta: Mapping[str, Any]) -> Entry:
        """Moves a verified `video` into the store with its record; the entry appears whole, read-only."""
        folder = self.path_of(key)
        stage = self.folder / f"{STAGE_PREFIX}{uuid.uuid4().hex}"
        try:
            stage.mkdir(parents=True)
            staged = stage / "video.mp4"
            os.replace(video, staged)
            os.chmod(staged, READ_ONLY)
            fsync_file(staged)
            record = {"format": CACHE_FORMAT, "key": key, **meta}
            write_atomic(stage / "meta.json", json.dumps(record, indent=1, sort_keys=True).encode(), mode=READ_ONLY)
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(stage, folder)
            except OSError:
                if self.get(key) is None:  # a damaged leftover: replace it
                    shutil.rmtree(folder, ignore_errors=True)
                    os.rename(stage, folder)
            fsync_dir(folder.parent)
        except OSError as error:
            raise StorageError(error, folder) from error
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        entry = self.get(key)
        if entry is None:
            raise WorkspaceError(f"the cache entry {folder} could not be written")
        return entry

    def remove(self, key: str) -> None:
        if is_key(key):
            shutil.rmtree(self.path_of(key), ignore_errors=True)

    def staging_file(self, suffix: str = ".mp4") -> Path:
        folder = self.folder / DOWNLOADS
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}{suffix}"

    # -- integrity ---------------------------------------------------------------------------

    def check(self, key: str) -> str | None:
        """Re-hashes an entry: None when it is exactly what its record says, else what is wrong."""
        folder = self.path_of(key)
        try:
            meta = json.loads((folder / "meta.json").read_bytes())
        except (OSError, ValueError, RecursionError) as error:
            return f"its record is unreadable ({error})"
        problem = record_problem(key, meta)
        if problem is not None:
            return problem
        payload = meta.get("payload")
        if isinstance(payload, dict) and key_of(payload) != key:
            return "its record's request does not hash to its key"
        try:
            size = (folder / "video.mp4").stat().st_size
            if size != meta["video_size"]:
                return f"its video has {size} bytes, its record says {meta['video_size']}"
            if file_sha256(folder / "video.mp4") != meta["video_sha256"]:
                return "its video's bytes differ from its record (sha256)"
        except OSError as error:
            return f"its video is unreadable ({error.strerror or error})"
        return None

    def quarantine(self, key: str, reason: str) -> Path:
        """Moves a damaged entry to cache/damaged/, out of every lookup, keeping it for inspection."""
        folder = self.path_of(key)
        target = self.damaged_dir / f"{key}.{time.strftime('%Y%m%dT%H%M%S')}.{uuid.uuid4().hex[:6]}"
        try:
            self.damaged_dir.mkdir(parents=True, exist_ok=True)
            os.rename(folder, target)
            write_atomic(target / "why.txt", f"{reason}\n".encode())
        except OSError as error:
            raise StorageError(error, folder) from error
        return target

    def sweep(self) -> int:
        """Removes what a killed build left while staging entries or downloading (call under the workspace lock)."""
        removed = remove_debris(self.folder, f"{STAGE_PREFIX}*")
        return removed + remove_debris(self.folder / DOWNLOADS, "*")


def record_problem(key: str, meta: Any) -> str | None:
    if not isinstance(meta, dict):
        return "its record is not a JSON object"
    if meta.get("format") != CACHE_FORMAT:
        shown = repr(meta.get("format"))  # a record may come from the remote: its text is anyone's
        return f"its record has format {shown if len(shown) <= 40 else shown[:37] + '...'}, not {CACHE_FORMAT}"
    if meta.get("key", key) != key:
        return "its record names another key"
    size, digest = meta.get("video_size"), meta.get("video_sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "its record has no video size"
    if not is_key(digest):  # a sha256 has the shape of a key
        return "its record has no video sha256"
    return None
