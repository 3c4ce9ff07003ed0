"""How each shot of a build ended, and what the executor tells the console while it works.

Shared by the executor (which produces results), the build glue and reporting (which show them),
so neither side needs to know the other.
"""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from renderspec.core.model import PlannedShot, RenderOf

if TYPE_CHECKING:
    from renderspec.store import Entry


class Outcome(enum.StrEnum):
    RENDERED = "rendered"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(slots=True)
class ShotResult:
    shot: PlannedShot
    outcome: Outcome
    seconds: float = 0.0
    task_id: str | None = None
    output: str | None = None
    code: str | None = None
    message: str | None = None

    @property
    def cost(self) -> float | None:
        """What this build paid for the shot: its estimate when rendered, nothing when cached."""
        if self.outcome is Outcome.RENDERED:
            return self.shot.cost
        return 0.0 if self.outcome is Outcome.CACHED else None


class Events(Protocol):
    """What the executor tells the console: a shot's stage, and its end."""

    def stage(self, shot_id: str, stage: str) -> None: ...

    def done(self, result: ShotResult) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Go:
    """A claim's answer: submit (or, with `inherited_task`, collect that task of an expired claim instead)."""

    inherited_task: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A claim's answer: another build rendered the shot; its entry is verified into the local cache."""

    entry: Entry
    by: str


class Gate(Protocol):
    """What the executor asks before paying for a shot (claims on the remote cache; see coordination.py)."""

    async def wait_elsewhere(self, shot: PlannedShot) -> Fetched | None: ...

    async def before_create(self, shot: PlannedShot) -> Go | Fetched: ...

    async def task_started(self, shot: PlannedShot, task_id: str) -> None: ...

    def kept(self, shot: PlannedShot) -> AbstractAsyncContextManager[None]: ...

    async def done(self, shot: PlannedShot) -> None: ...


class Upstream(Protocol):
    """How a shot that uses other shots' renders is keyed once they exist, and fed their files (continuity.py)."""

    async def resolve(self, shot: PlannedShot) -> PlannedShot | str:
        """The shot keyed by its upstream renders (and fetched into the local cache when the remote holds
        that key), or why it cannot be."""
        ...

    async def file_of(self, ref: RenderOf) -> tuple[Path, str]:
        """A local file holding `ref` (the render, or the still of it) and its sha256, for the upload."""
        ...
