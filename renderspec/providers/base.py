"""The provider interface and the plain values it returns; vendor modules only map wire shapes.

A provider uploads local files where the service needs links, creates tasks, queries and cancels
them, lists recent ones where the service can, and streams results to disk.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from renderspec.core.model import ShotLabels


class TaskState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"
    OTHER = "OTHER"  # a status this version does not know: keep polling, report it

    @property
    def is_final(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELED, TaskState.UNKNOWN)


class Secret:
    """An API key that never shows itself in a repr, a log line or an error."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Submitted:
    task_id: str
    request_id: str | None
    status: str = "PENDING"


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A task as the service last described it; `raw` keeps the whole answer for the record."""

    task_id: str
    state: TaskState
    raw_status: str
    video_url: str | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    times: Mapping[str, str] = field(default_factory=dict)
    unknown_fields: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)
    request_facts: Mapping[str, Any] | None = None
    """What the service says the task was asked to render, in the provider's `request_facts` form;
    None until the service has said enough to compare (DashScope: once the task has finished)."""


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """One entry of the service's task list, used to resolve a create whose answer was lost."""

    task_id: str
    state: TaskState
    model: str | None
    submitted: float | None
    """When the service made it, as epoch seconds (None when its answer did not say)."""


class Provider(Protocol):
    name: str
    kind: str
    poll_interval: float

    async def upload(self, path: Path, sha256: str, model: str) -> str:
        """A link the service accepts for a local file (cached for as long as it lives)."""
        ...

    async def create(self, body: Mapping[str, Any], *, labels: ShotLabels | None = None) -> Submitted:
        """Creates a task from `body`, exactly as planned.

        `labels` say who the shot is, in words the request does not carry. Only the local emulator
        is told them (its previews burn them in); a real service receives the documented request
        and nothing else, so its providers ignore them.
        """
        ...

    async def query(self, task_id: str) -> TaskStatus: ...

    async def cancel(self, task_id: str) -> None: ...

    async def recent_tasks(self, model: str, since_epoch: float, until_epoch: float) -> list[TaskSummary] | None:
        """Tasks of `model` created in that window, or None where the service offers no list."""
        ...

    def request_facts(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """What the service would report about a task made from `body` (see TaskStatus.request_facts).

        Finding the task of a lost create compares these, field by field, with what the service
        reports about each candidate: the comparison is provider-neutral, the projection is not.
        """
        ...

    async def download(self, url: str, destination: Path) -> int:
        """Streams a result to `destination` (atomically); returns its size in bytes."""
        ...

    async def aclose(self) -> None: ...


class UploadMemo(Protocol):
    """Remembers links made for (file hash, provider, model) until shortly before they expire."""

    def get(self, sha256: str, provider: str, model: str, now: float) -> str | None: ...

    def put(self, sha256: str, provider: str, model: str, url: str, expires: float) -> None: ...


class MemoryUploadMemo:
    def __init__(self) -> None:
        self._links: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, sha256: str, provider: str, model: str, now: float) -> str | None:
        found = self._links.get((sha256, provider, model))
        return found[0] if found and found[1] > now else None

    def put(self, sha256: str, provider: str, model: str, url: str, expires: float) -> None:
        self._links[(sha256, provider, model)] = (url, expires)
