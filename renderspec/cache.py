"""The content-addressed store of paid renders, the journal of tasks in flight, the workspace lock.

    cache/objects/<k[:2]>/<key>/video.mp4 + meta.json   complete, verified renders
    cache/journal/<key>.json                            a create about to be sent, or a task id
    cache/uploads.json                                  links made for local files, until they expire
    cache/lock                                          held by the build that owns the folder

An entry is staged in a temporary folder, fsynced and renamed into place: it is complete or
absent. A damaged entry or journal record is a warning and a miss, never a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from renderspec.errors import WorkspaceError
from renderspec.fsutil import write_atomic

CACHE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    video: Path
    meta: dict[str, Any]


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self._objects_text = os.fspath(self.objects)
        self.journal_dir = root / "journal"
        self.warnings: list[str] = []

    # -- entries -----------------------------------------------------------------------------

    def _folder(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def has(self, key: str) -> bool:
        # String paths: a no-op plan asks this for every shot, and pathlib would triple its cost.
        return os.path.isfile(f"{self._objects_text}/{key[:2]}/{key}/meta.json")

    def keys(self) -> set[str]:
        if not self.objects.is_dir():
            return set()
        return {
            path.name
            for prefix in self.objects.iterdir()
            if prefix.is_dir()
            for path in prefix.iterdir()
            if (path / "meta.json").is_file()
        }

    def get(self, key: str) -> Entry | None:
        folder = self._folder(key)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_bytes())
            video = folder / "video.mp4"
            if meta.get("format") != CACHE_FORMAT or video.stat().st_size != meta["video_size"]:
                raise ValueError("size or format does not match its record")
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.warnings.append(f"ignoring the damaged cache entry {folder} ({error})")
            return None
        return Entry(key=key, video=video, meta=meta)

    def put(self, key: str, video: Path, meta: dict[str, Any]) -> Entry:
        """Moves a verified `video` into the store with its record; the entry appears whole."""
        folder = self._folder(key)
        stage = self.objects / f".stage-{uuid.uuid4().hex}"
        stage.mkdir(parents=True)
        try:
            os.replace(video, stage / "video.mp4")
            _fsync_file(stage / "video.mp4")
            record = {"format": CACHE_FORMAT, "key": key, **meta}
            write_atomic(stage / "meta.json", json.dumps(record, indent=1, sort_keys=True).encode())
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(stage, folder)
            except OSError:
                if not self.has(key):  # a damaged leftover: replace it
                    shutil.rmtree(folder, ignore_errors=True)
                    os.rename(stage, folder)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        entry = self.get(key)
        if entry is None:
            raise WorkspaceError(f"the cache entry {folder} could not be written")
        return entry

    def remove(self, key: str) -> None:
        shutil.rmtree(self._folder(key), ignore_errors=True)

    def staging_file(self, suffix: str = ".mp4") -> Path:
        folder = self.objects / ".downloads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}{suffix}"

    # -- journal -----------------------------------------------------------------------------

    def journal(self) -> dict[str, dict[str, Any]]:
        """Records by key: tasks created (with ids) and creates sent with no answer yet."""
        records: dict[str, dict[str, Any]] = {}
        if not self.journal_dir.is_dir():
            return records
        for path in sorted(self.journal_dir.glob("*.json")):
            try:
                record = json.loads(path.read_bytes())
                records[str(record["key"])] = record
            except (OSError, ValueError, KeyError, TypeError) as error:
                self.warnings.append(f"ignoring the damaged journal record {path} ({error})")
        return records

    def record(self, key: str, **fields: Any) -> dict[str, Any]:
        """Durably records a step of a shot's task (fsynced before this returns)."""
        record = self.journal_record(key)
        record.update(fields, key=key, updated=time.time())
        write_atomic(self.journal_dir / f"{key}.json", json.dumps(record, sort_keys=True).encode())
        return record

    def journal_record(self, key: str) -> dict[str, Any]:
        """One shot's journal record ({} when there is none or it is damaged)."""
        with contextlib.suppress(OSError, ValueError):
            record = json.loads((self.journal_dir / f"{key}.json").read_bytes())
            return record if isinstance(record, dict) else {}
        return {}

    def forget(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.journal_dir / f"{key}.json").unlink()


class FileUploadMemo:
    """Upload links by (file hash, provider, model), kept in cache/uploads.json until they expire."""

    def __init__(self, path: Path, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        self._links: dict[str, list[Any]] = {}
        with contextlib.suppress(OSError, ValueError, TypeError):
            loaded = json.loads(path.read_bytes())
            if isinstance(loaded, dict):
                self._links = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 2}

    def get(self, sha256: str, provider: str, model: str, now: float) -> str | None:
        found = self._links.get(f"{provider}/{model}/{sha256}")
        return str(found[0]) if found and float(found[1]) > now else None

    def put(self, sha256: str, provider: str, model: str, url: str, expires: float) -> None:
        now = self._clock()
        self._links = {k: v for k, v in self._links.items() if float(v[1]) > now}
        self._links[f"{provider}/{model}/{sha256}"] = [url, expires]
        with contextlib.suppress(OSError):
            write_atomic(self.path, json.dumps(self._links, sort_keys=True).encode())


@contextlib.contextmanager
def workspace_lock(cache_root: Path, *, wait: bool, notice: TextIO | None = None) -> Iterator[None]:
    """Holds cache/lock for the duration; a second build waits (saying who holds it) or fails."""
    cache_root.mkdir(parents=True, exist_ok=True)
    path = cache_root / "lock"
    handle = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another renderspec process"
            if not wait:
                raise WorkspaceError(f"{path} is held by {holder}", hint="wait for it to finish") from None
            if notice is not None:
                print(f"waiting for {holder}, which holds {path}", file=notice, flush=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"renderspec build (pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
