"""The journal of paid work in flight: `cache/journal/<key>.json`, one record per shot's create.

A record is written and fsynced before a create is sent, and again the moment the service names
the task, so a build that dies resumes that task instead of paying for a new one. Records are
read as untrusted input: a field of the wrong type is dropped with a warning, a record that
cannot be used at all is moved to `journal/damaged/` (kept for a person, never a crash), and
only 64-hex keys and well-formed task ids are ever used as paths or in URLs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renderspec.core.keys import is_key, is_task_id
from renderspec.fsutil import TEMP_SUFFIX, remove_debris, write_atomic


@dataclass(frozen=True, slots=True)
class Record:
    """What the journal knows about one shot's create."""

    key: str
    shot: str | None = None
    provider: str | None = None
    model: str | None = None
    sent_at: float | None = None
    submitted_at: float | None = None
    task_id: str | None = None
    outcome: str | None = None
    expect: Mapping[str, Any] | None = None
    sent: Mapping[str, Any] | None = None
    duplicates: tuple[str, ...] = ()
    updated: float | None = None

    def as_json(self) -> dict[str, Any]:
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["duplicates"] = list(self.duplicates)
        return {name: value for name, value in data.items() if value is not None and value != []}


_TIMES = ("sent_at", "submitted_at", "updated")
_TEXTS = ("shot", "provider", "model", "outcome")
_TABLES = ("expect", "sent")


class Journal:
    def __init__(self, folder: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.damaged_dir = folder / "damaged"
        self._clock = clock
        self.warnings: list[str] = []

    def records(self) -> dict[str, Record]:
        """Every usable record, by key."""
        found: dict[str, Record] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("*.json")):
            record = self._load(path, report=True)
            if record is not None:
                found[record.key] = record
        return found

    def get(self, key: str) -> Record | None:
        if not is_key(key):
            return None
        return self._load(self.folder / f"{key}.json", report=False)

    def write(self, key: str, **changes: Any) -> Record:
        """Durably records a step of a shot's create (fsynced before this returns)."""
        if not is_key(key):
            raise ValueError(f"not a content key: {key!r}")
        current = self.get(key) or Record(key=key)
        record = dataclasses.replace(current, **changes, updated=self._clock())
        if record.task_id is not None and not is_task_id(record.task_id):
            raise ValueError(f"not a task id: {record.task_id!r}")
        write_atomic(self.folder / f"{key}.json", json.dumps(record.as_json(), sort_keys=True).encode())
        return record

    def forget(self, key: str) -> None:
        if is_key(key):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / f"{key}.json").unlink()

    def sweep(self) -> int:
        """Removes the temporary files of writes a kill interrupted (call under the workspace lock)."""
        return remove_debris(self.folder, f".*{TEMP_SUFFIX}")

    # -- reading untrusted records ------------------------------------------------------------

    def _load(self, path: Path, *, report: bool) -> Record | None:
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as error:
            return self._damaged(path, f"not readable JSON: {error}", report)
        if not isinstance(raw, dict):
            return self._damaged(path, "not a JSON object", report)
        key = path.stem
        if not is_key(key):
            return self._damaged(path, "its name is not a content key", report)
        if raw.get("key", key) != key:
            return self._damaged(path, f"it names the key {str(raw.get('key'))[:80]!r}, not its own", report)
        task_id = raw.get("task_id")
        if task_id is not None and not is_task_id(task_id):
            return self._damaged(path, f"its task_id {str(task_id)[:80]!r} is not a task id", report)
        fields: dict[str, Any] = {"key": key, "task_id": task_id}
        for name in _TIMES:
            value = raw.get(name)
            if value is None:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                fields[name] = float(value)
            elif report:
                self.warnings.append(
                    f"journal record {path}: {name} {str(value)[:40]!r} is not a time; treated as unknown"
                )
        for name in _TEXTS:
            if isinstance(raw.get(name), str):
                fields[name] = raw[name]
        for name in _TABLES:
            if isinstance(raw.get(name), dict):
                fields[name] = raw[name]
        duplicates = raw.get("duplicates")
        if isinstance(duplicates, list):
            fields["duplicates"] = tuple(item for item in duplicates if is_task_id(item))
        return Record(**fields)

    def _damaged(self, path: Path, why: str, report: bool) -> Record | None:
        """Moves an unusable record aside, so it is said once and kept for a person to look at."""
        if not report:
            return None
        moved = self.damaged_dir / f"{path.name}.{uuid.uuid4().hex[:8]}"
        try:
            self.damaged_dir.mkdir(parents=True, exist_ok=True)
            os.rename(path, moved)
            where = f"moved to {moved}"
        except OSError:
            where = "left in place"
        self.warnings.append(f"ignoring the damaged journal record {path.name} ({why}); {where}")
        return None
