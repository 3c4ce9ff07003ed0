"""renderspec.lock: what produced every file in renders/, deterministic and diff-friendly.

Entries are sorted by shot id with keys in a fixed order; the volatile task ids live apart in
`[tasks]`, so re-rendering an unchanged shot elsewhere touches one line. The file is written
atomically, and only when its content changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from renderspec.errors import WorkspaceError
from renderspec.fsutil import write_atomic

LOCK_NAME = "renderspec.lock"
LOCK_VERSION = 1
LOCK_MEMO = "lock-memo.json"
HEADER = "# renderspec.lock: written by `renderspec build`; commit it. One entry per rendered shot.\n"
FIELDS = ("spec", "key", "output", "video_sha256", "model", "duration", "resolution", "ratio")


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

    def as_table(self) -> dict[str, Any]:
        table = {name: getattr(self, name) for name in FIELDS}
        return {name: value for name, value in table.items() if value is not None}


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
            data = _memo_get(memo_dir, text)
            if data is None:
                data = tomllib.loads(text)
                _memo_put(memo_dir, text, data)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise WorkspaceError(
                f"{LOCK_NAME} cannot be read: {error}",
                hint="restore it from git, or delete it to rebuild it from the cache",
            ) from None
        if data.get("version") != LOCK_VERSION:
            raise WorkspaceError(
                f"{LOCK_NAME} has version {data.get('version')!r}; this renderspec writes version {LOCK_VERSION}"
            )
        tasks = data.get("tasks", {})
        for shot_id, table in data.get("shots", {}).items():
            try:
                manifest.entries[shot_id] = LockEntry(
                    **{name: table.get(name) for name in FIELDS}, task_id=tasks.get(shot_id)
                )
            except TypeError as error:
                raise WorkspaceError(f"{LOCK_NAME}: the entry for shot {shot_id} is damaged ({error})") from None
        manifest._written = text
        return manifest

    def set(self, shot_id: str, entry: LockEntry) -> None:
        self.entries[shot_id] = entry

    def drop(self, shot_id: str) -> None:
        self.entries.pop(shot_id, None)

    def render(self) -> str:
        shots = {shot_id: self.entries[shot_id].as_table() for shot_id in sorted(self.entries)}
        tasks = {shot_id: entry.task_id for shot_id, entry in sorted(self.entries.items()) if entry.task_id}
        document: dict[str, Any] = {"version": LOCK_VERSION, "shots": shots}
        if tasks:
            document["tasks"] = tasks
        return HEADER + tomli_w.dumps(document)

    def save(self) -> bool:
        """Writes the lock if its content changed; True when it did."""
        text = self.render()
        if text == self._written:
            return False
        write_atomic(self.path, text.encode("utf-8"))
        self._written = text
        return True


def _memo_get(memo_dir: Path | None, text: str) -> dict[str, Any] | None:
    if memo_dir is None:
        return None
    try:
        memo = json.loads((memo_dir / LOCK_MEMO).read_bytes())
        if memo.get("digest") == _digest(text):
            data = memo["data"]
            return data if isinstance(data, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def _memo_put(memo_dir: Path | None, text: str, data: dict[str, Any]) -> None:
    if memo_dir is None:
        return
    with contextlib.suppress(OSError, TypeError, ValueError):
        write_atomic(memo_dir / LOCK_MEMO, json.dumps({"digest": _digest(text), "data": data}).encode())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
