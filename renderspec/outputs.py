"""renders/<shot>.mp4 materialised from the cache, the lock entry that says what produced it, and a
record of every file renderspec put there.

An edit in renders/ must never reach the cache: a render is a hard link to the read-only cache
object only where the operating system enforces read-only (not for root, not on filesystems that
ignore modes); otherwise it is a reflink or a copy. `cache/renders.json` remembers what was
materialised (path, sha256, size, mtime, inode), so `clean` removes only renderspec's own files and
a render changed since is noticed by a stat, then re-hashed, and restored from the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from renderspec.core.keys import is_key
from renderspec.core.model import PlannedShot
from renderspec.errors import StorageError
from renderspec.fsutil import TEMP_SUFFIX, file_sha256, remove_debris, write_atomic
from renderspec.manifest import LockEntry, Manifest
from renderspec.store import Entry

INDEX_NAME = "renders.json"
_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks (btrfs, xfs, ...): a copy at no cost


_WRITABLE_LINKS: set[int] = set()  # devices where this process could write through a read-only object's link


def materialise(source: Path, target: Path) -> None:
    """Puts `source`'s bytes at `target` atomically: a hard link when the read-only source cannot be
    written through it, else a reflink or a copy."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        linked = False
        device = source.stat().st_dev
        with contextlib.suppress(OSError):
            if device in _WRITABLE_LINKS:  # found once, true for every object there: no link to try and undo
                raise OSError
            os.link(source, temporary)
            linked = True
            if os.access(temporary, os.W_OK):  # root, or modes not enforced: a link would expose the cache
                _WRITABLE_LINKS.add(device)
                temporary.unlink()
                linked = False
        if not linked:
            _clone_or_copy(source, temporary)
        os.replace(temporary, target)
    except OSError as error:
        raise StorageError(error, target) from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _clone_or_copy(source: Path, target: Path) -> None:
    with open(source, "rb") as reader, open(target, "wb") as writer:
        try:
            fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
        except OSError:
            shutil.copyfileobj(reader, writer, 1 << 20)


@dataclass(frozen=True, slots=True)
class Made:
    """A file renderspec materialised, as it was when it did."""

    sha256: str
    size: int
    mtime_ns: int
    inode: int

    def matches(self, stat: os.stat_result) -> bool:
        return (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (self.size, self.mtime_ns, self.inode)


class RendersIndex:
    """cache/renders.json: project-relative path -> what renderspec put there. Speed and safety memo:
    damage is ignored (then `clean` keeps files it cannot vouch for)."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / INDEX_NAME
        self.files: dict[str, Made] = {}
        self._dirty = False
        with contextlib.suppress(OSError, ValueError, RecursionError, TypeError):
            data = json.loads(self.path.read_bytes())
            for rel, value in (data.get("files", {}) if isinstance(data, dict) else {}).items():
                if isinstance(rel, str) and _is_made(value):
                    self.files[rel] = Made(value[0], value[1], value[2], value[3])

    def note(self, rel: str, sha256: str, path: Path) -> None:
        stat = path.stat()
        self.files[rel] = Made(sha256, stat.st_size, stat.st_mtime_ns, stat.st_ino)
        self._dirty = True

    def drop(self, rel: str) -> None:
        if self.files.pop(rel, None) is not None:
            self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        data = {
            "version": 1,
            "files": {rel: [m.sha256, m.size, m.mtime_ns, m.inode] for rel, m in sorted(self.files.items())},
        }
        write_atomic(self.path, json.dumps(data).encode())
        self._dirty = False


def _is_made(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and is_key(value[0])
        and all(isinstance(part, int) and not isinstance(part, bool) for part in value[1:])
    )


class ProjectOutputs:
    """Commits renders into renders/ and renderspec.lock.

    The lock is saved at most once a second while a build runs (and always at its end): rewriting
    thousands of entries after every shot would make big builds quadratic, and a lock entry lost
    to a crash in that second comes back from the cache on the next build.
    """

    def __init__(
        self, root: Path, renders: str, manifest: Manifest, index: RendersIndex, *, save_every: float = 1.0
    ) -> None:
        self.root = root
        self.renders = renders
        self.manifest = manifest
        self.index = index
        self.save_every = save_every
        self._saved_at = -math.inf
        self._lock = threading.Lock()

    def output_path(self, shot_id: str) -> str:
        return f"{self.renders.rstrip('/')}/{shot_id}.mp4"

    def commit(self, shot: PlannedShot, entry: Entry, task_id: str | None) -> str:
        """Materialises the render and records it; safe from several threads (fetches commit in parallel).

        The pick of a shot's takes is materialised twice: as `<shot>.take<N>.mp4` and as `<shot>.mp4`,
        each with its lock entry, so the lock says which take the shot's own file is.
        """
        output = ""
        for shot_id in names_of(shot):
            rel = self.output_path(shot_id)
            target = self.root / rel
            materialise(entry.video, target)
            with self._lock:
                self._record(shot, shot_id, entry, task_id, rel, target)
            output = output or rel
        return output

    def _record(
        self, shot: PlannedShot, shot_id: str, entry: Entry, task_id: str | None, output: str, target: Path
    ) -> None:
        self.index.note(output, entry.sha256, target)
        self.manifest.set(
            shot_id,
            LockEntry(
                spec=shot.spec,
                key=shot.key,
                output=output,
                video_sha256=entry.sha256,
                video_size=entry.size,
                model=shot.model,
                duration=shot.duration,
                resolution=shot.resolution,
                ratio=shot.ratio,
                task_id=task_id,
            ),
        )
        if time.monotonic() - self._saved_at >= self.save_every:
            self.save()

    def save(self) -> None:
        self.manifest.save()
        self._saved_at = time.monotonic()
        with contextlib.suppress(StorageError):  # the index only helps clean and the intact check
            self.index.save()

    def is_intact(self, shot_id: str, video: Path, sha256: str) -> bool:
        """Whether renders/<shot>.mp4 holds exactly the cached `video` (stat first, hash only when it moved)."""
        output = self.output_path(shot_id)
        try:
            source = video.stat()
        except OSError:
            return False
        how = vouch(self.root / output, output, {sha256}, self.index, {(source.st_dev, source.st_ino)})
        if how == "hashed":
            self.index.note(output, sha256, self.root / output)
        return how is not None

    def sweep(self) -> int:
        """Temporary files of materialisations a kill interrupted (call under the workspace lock)."""
        return remove_debris(self.root / self.renders, f".*{TEMP_SUFFIX}")


def names_of(shot: PlannedShot) -> tuple[str, ...]:
    """The ids a render is committed under: its own, and its shot's when it is the pick of takes."""
    return (shot.id, shot.take_of) if shot.take_of is not None and shot.picked else (shot.id,)


def vouch(path: Path, rel: str, expected: Set[str], index: RendersIndex, objects: Set[tuple[int, int]]) -> str | None:
    """How `path` is known to hold one of the `expected` renders as renderspec put it there, or None.

    "linked": it is one of the cache `objects` (read-only); "recorded": unchanged since the index
    noted it (a stat); "hashed": its bytes are expected ones. A symlink or a folder is never vouched for.
    """
    try:
        stat = path.lstat()
    except OSError:
        return None
    if not S_ISREG(stat.st_mode):
        return None
    if (stat.st_dev, stat.st_ino) in objects:
        return "linked"
    made = index.files.get(rel)
    if made is not None and made.sha256 in expected and made.matches(stat):
        return "recorded"
    return "hashed" if expected and file_sha256(path) in expected else None


def made_by_renderspec(
    path: Path, rel: str, index: RendersIndex, manifest: Manifest, objects: Set[tuple[int, int]]
) -> bool:
    """Whether `path` is a render renderspec materialised (as the index or the lock says) and nobody has changed since."""
    made = index.files.get(rel)
    expected = {made.sha256} if made else set()
    expected |= {entry.video_sha256 for entry in manifest.entries.values() if entry.output == rel}
    return vouch(path, rel, expected, index, objects) is not None
