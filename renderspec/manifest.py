"""renderspec.lock: what produced every file in renders/, deterministic and diff-friendly.

Entries are sorted by shot id with keys in a fixed order. The lock merges: everything a re-render
changes (key, video hash and size, task id) sits inside that shot's own `[shots.<id>]` table, in
the middle of it, with fields that stay put around it (spec, model, duration, resolution, ratio
above; output below), so two branches that render different shots, even adjacent ones, touch
lines git's merge keeps apart. Locks that still keep task ids in a separate `[tasks]` table
(written before this layout) are read, and rewritten in it. The file is written atomically, and
only when its content changes. It is read as untrusted input (it comes from git):
any value of the wrong shape is one clear error naming the field, never a crash.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, field_validator

from renderspec.core.keys import is_key, is_task_id
from renderspec.errors import StorageError, WorkspaceError
from renderspec.fsutil import write_atomic

LOCK_NAME = "renderspec.lock"
LOCK_VERSION = 1
LOCK_MEMO = "lock-memo.json"
HEADER = "# renderspec.lock: written by `renderspec build`; commit it. One entry per rendered shot.\n"
# The order of a shot's table. What a re-render changes (VOLATILE) sits in the middle, the fields a
# re-render leaves alone around it: git's merge takes changes that touch or adjoin each other for a
# conflict. Headers and blank lines part neighbouring tables; a stable last line (output) also keeps
# a re-render clear of a dropped next table, whose deletion can take the blank line before it along.
VOLATILE = ("key", "video_sha256", "video_size", "task_id")
FIELDS = ("spec", "model", "duration", "resolution", "ratio", *VOLATILE, "output")
_SHOT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
FIX_HINT = "restore it from git, or delete it to rebuild it from the cache"


@dataclass(frozen=True, slots=True)
class LockEntry:
    spec: str
    key: str
    output: str
    video_sha256: str
    model: str
    duration: int
    resolution: str
    ratio: str | None
    task_id: str | None = None
    video_size: int | None = None

    def as_table(self) -> dict[str, Any]:
        table = {name: getattr(self, name) for name in FIELDS}
        return {name: value for name, value in table.items() if value is not None}


class _Shot(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # fields of a newer renderspec are not an error

    spec: StrictStr
    key: StrictStr
    output: StrictStr
    video_sha256: StrictStr
    video_size: StrictInt | None = None
    task_id: StrictStr | None = None
    model: StrictStr
    duration: StrictInt
    resolution: StrictStr
    ratio: StrictStr | None = None

    @field_validator("key", "video_sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not is_key(value):
            raise ValueError("must be 64 lowercase hex digits")
        return value

    @field_validator("task_id")
    @classmethod
    def _task_id(cls, value: str | None) -> str | None:
        if value is not None and not is_task_id(value):
            raise ValueError("must be a task id (letters, digits and . _ : -, at most 128)")
        return value

    @field_validator("output")
    @classmethod
    def _video(cls, value: str) -> str:
        # Where renders/ is, the settings say (it may be outside the project); this is only shown and compared.
        if not value.endswith(".mp4") or not value.isprintable():
            raise ValueError("must be the path of an .mp4 file")
        return value


class _Lock(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: StrictInt
    shots: dict[str, _Shot] = {}
    tasks: dict[str, StrictStr] = {}  # where locks written before task ids moved into the shot tables keep them

    @field_validator("shots", "tasks")
    @classmethod
    def _shot_ids(cls, value: dict[str, Any]) -> dict[str, Any]:
        for shot_id in value:
            if not _SHOT_ID.fullmatch(shot_id):
                raise ValueError(f"{shot_id[:60]!r} is not a shot id")
        return value

    @field_validator("tasks")
    @classmethod
    def _task_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for shot_id, task_id in value.items():
            if not is_task_id(task_id):
                raise ValueError(f"{shot_id}: {task_id[:60]!r} is not a task id")
        return value


class Manifest:
    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self.entries: dict[str, LockEntry] = {}
        self._written: str | None = None

    @classmethod
    def load(cls, root: Path, memo_dir: Path | None = None) -> Manifest:
        """The lock as committed; a JSON memo keyed by the text's hash skips TOML parsing when unchanged."""
        manifest = cls(root)
        if not manifest.path.exists():
            return manifest
        try:
            text = manifest.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise WorkspaceError(f"{LOCK_NAME} cannot be read: {error}", hint=FIX_HINT) from None
        lock = _from_memo(memo_dir, text)
        if lock is None:
            data = _parsed(text)
            lock = _validated(data)
            _memo_put(memo_dir, text, data)
        manifest.entries = _entries(lock)
        manifest._written = text
        return manifest

    def set(self, shot_id: str, entry: LockEntry) -> None:
        self.entries[shot_id] = entry

    def drop(self, shot_id: str) -> None:
        self.entries.pop(shot_id, None)

    def task_ids(self) -> builtins.set[str]:
        return {entry.task_id for entry in self.entries.values() if entry.task_id}

    def render(self) -> str:
        return render_lock(self.entries)

    def save(self) -> bool:
        """Writes the lock if its content changed; True when it did."""
        text = self.render()
        if text == self._written:
            return False
        write_atomic(self.path, text.encode("utf-8"))
        self._written = text
        return True


def parse_lock(text: str) -> dict[str, LockEntry]:
    """The entries of a lock's text (any layout this renderspec reads), validated like `Manifest.load`."""
    return _entries(_validated(_parsed(text)))


def _parsed(text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise WorkspaceError(f"{LOCK_NAME} is not valid TOML: {error}", hint=FIX_HINT) from None


def _entries(lock: _Lock) -> dict[str, LockEntry]:
    entries: dict[str, LockEntry] = {}
    for shot_id, shot in lock.shots.items():
        fields = {name: getattr(shot, name) for name in FIELDS}
        if fields["task_id"] is None:
            fields["task_id"] = lock.tasks.get(shot_id)
        entries[shot_id] = LockEntry(**fields)
    return entries


def render_lock(entries: Mapping[str, LockEntry]) -> str:
    """The text of a lock holding `entries`: sorted by shot id, fields in their fixed order."""
    shots = {shot_id: entries[shot_id].as_table() for shot_id in sorted(entries)}
    return HEADER + tomli_w.dumps({"version": LOCK_VERSION, "shots": shots})


def _validated(data: Any) -> _Lock:
    if not isinstance(data, dict):
        raise WorkspaceError(f"{LOCK_NAME} is not a TOML document", hint=FIX_HINT)
    if data.get("version") != LOCK_VERSION:
        raise WorkspaceError(
            f"{LOCK_NAME} has version {str(data.get('version'))[:20]!r}; this renderspec reads and writes version {LOCK_VERSION}",
            hint=FIX_HINT,
        )
    try:
        return _Lock.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        shown = first.get("input")
        got = "" if isinstance(shown, dict | list) or shown is None else f" (got {str(shown)[:40]!r})"
        raise WorkspaceError(f"{LOCK_NAME}: {where}: {message}{got}", hint=FIX_HINT) from None


def _from_memo(memo_dir: Path | None, text: str) -> _Lock | None:
    """The parsed lock from the memo, when it was made from this very text and still validates."""
    if memo_dir is None:
        return None
    try:
        memo = json.loads((memo_dir / LOCK_MEMO).read_bytes())
        if isinstance(memo, dict) and memo.get("digest") == _digest(text):
            return _validated(memo["data"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError, WorkspaceError):
        return None  # speed only: garbage here is ignored and rebuilt
    return None


def _memo_put(memo_dir: Path | None, text: str, data: dict[str, Any]) -> None:
    if memo_dir is None:
        return
    with contextlib.suppress(StorageError, TypeError, ValueError):
        write_atomic(memo_dir / LOCK_MEMO, json.dumps({"digest": _digest(text), "data": data}).encode())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
