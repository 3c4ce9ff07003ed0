"""The emulator's task state machine, driven by an injected clock.

PENDING → RUNNING → SUCCEEDED or FAILED, with at most `concurrency` tasks RUNNING and each taking
`latency` seconds; PENDING tasks may be CANCELED. The work of a task (fetching its media, rendering
the preview) is handed to `start_work` and runs elsewhere; the board only records states.
"""

from __future__ import annotations

import collections
import enum
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class State(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"


@dataclass(slots=True, eq=False)
class Job:
    id: str
    request_id: str
    body: dict[str, Any]
    flavour: str
    created: float
    oss_resolve: bool = False
    state: State = State.PENDING
    scheduled: float | None = None
    ended: float | None = None
    doomed: tuple[str, str] | None = None
    work_done: bool = False
    work_error: tuple[str, str] | None = None
    video: Path | None = None
    input_video_seconds: float = 0.0
    size: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failure(self) -> tuple[str, str] | None:
        return self.work_error or self.doomed


class JobBoard:
    """All tasks the emulator knows; every public method first advances states to `clock()`."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        start_work: Callable[[Job], None],
        latency: float = 2.0,
        concurrency: int = 2,
        retention: float = 86_400.0,
    ) -> None:
        self._clock = clock
        self._start_work = start_work
        self.latency = latency
        self.concurrency = max(1, concurrency)
        self.retention = retention
        self._jobs: dict[str, Job] = {}
        self._pending: collections.deque[Job] = collections.deque()
        self._running: set[Job] = set()
        self._purged_at = -math.inf
        self._lock = threading.RLock()

    def create(
        self,
        body: dict[str, Any],
        *,
        flavour: str,
        oss_resolve: bool,
        doomed: tuple[str, str] | None,
        extra: dict[str, Any] | None = None,
    ) -> Job:
        with self._lock:
            job = Job(
                id=str(uuid.uuid4()),
                request_id=str(uuid.uuid4()),
                body=body,
                flavour=flavour,
                created=self._clock(),
                oss_resolve=oss_resolve,
                doomed=doomed,
                extra=dict(extra or {}),
            )
            self._jobs[job.id] = job
            self._pending.append(job)
            self._advance()
            return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._advance()
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            self._advance()
            return sorted(self._jobs.values(), key=lambda job: job.created)

    def cancel(self, job_id: str) -> tuple[bool, State]:
        with self._lock:
            self._advance()
            job = self._jobs.get(job_id)
            if job is None:
                return False, State.UNKNOWN
            if job.state is not State.PENDING:
                return False, job.state
            job.state = State.CANCELED
            job.ended = self._clock()
            return True, job.state

    def finish_work(self, job: Job, *, error: tuple[str, str] | None = None) -> None:
        with self._lock:
            job.work_error = error
            job.work_done = True
            self._advance()

    def tick(self) -> None:
        with self._lock:
            self._advance()

    def _advance(self) -> None:
        """Moves states to now; O(tasks running), since every request of the server calls it."""
        now = self._clock()
        if now - self._purged_at >= 1.0:
            self._purged_at = now
            for job in [job for job in self._jobs.values() if job.created + self.retention < now]:
                del self._jobs[job.id]  # purged: queries now answer UNKNOWN
                self._running.discard(job)
        for job in list(self._running):
            assert job.scheduled is not None
            if job.work_done and now >= job.scheduled + self.latency:
                job.state = State.FAILED if job.failure else State.SUCCEEDED
                job.ended = now
                self._running.discard(job)
        while self._pending and len(self._running) < self.concurrency:
            job = self._pending.popleft()
            if job.state is not State.PENDING or job.id not in self._jobs:
                continue  # canceled or purged while it waited
            job.state = State.RUNNING
            job.scheduled = now
            self._running.add(job)
            self._start_work(job)
