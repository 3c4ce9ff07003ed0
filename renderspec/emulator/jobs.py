"""The emulator's task state machine, driven by an injected clock.

PENDING → RUNNING → SUCCEEDED or FAILED, with at most `concurrency` tasks RUNNING and each taking
`latency` seconds; PENDING tasks may be CANCELED. The work of a task (fetching its media, rendering
the preview) is handed to `start_work` and runs elsewhere; the board only records states. A board
that holds (a test aid) keeps each new task from ending until `release` lets it go, so a test can
act while tasks are certainly still RUNNING instead of racing their latency.
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
    held: bool = False
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
        hold: bool = False,
    ) -> None:
        self._clock = clock
        self.hold = hold
        self._start_work = start_work
        self.latency = latency
        self.concurrency = max(1, concurrency)
        self.retention = retention
        self._jobs: dict[str, Job] = {}
        self._pending: collections.deque[Job] = collections.deque()
        self._running: set[Job] = set()
        self._purged_at = -math.inf
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

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
                held=self.hold,
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
            self._changed.notify_all()
            return True, job.state

    def release(self, job_id: str | None = None) -> list[Job] | None:
        """Lets held tasks end: the one named, or every one (and then new tasks are no longer held).

        Returns the tasks released (empty when the named one was not held), or None for a task
        the board does not know. A released task ends once its work is done and its latency has
        passed, counted from when it started running as always.
        """
        with self._lock:
            self._advance()
            if job_id is None:
                self.hold = False
                released = [job for job in self._jobs.values() if job.held]
            else:
                job = self._jobs.get(job_id)
                if job is None:
                    return None
                released = [job] if job.held else []
            for job in released:
                job.held = False
            self._advance()
            return sorted(released, key=lambda job: job.created)

    def finish_work(self, job: Job, *, error: tuple[str, str] | None = None) -> None:
        with self._lock:
            job.work_error = error
            job.work_done = True
            self._advance()

    def tick(self) -> None:
        with self._lock:
            self._advance()

    def wait_for(self, condition: Callable[[list[Job]], bool], *, timeout: float) -> bool:
        """Blocks until `condition(all tasks)` holds (True) or `timeout` passes (False).

        For tests in the emulator's process, which act on what the service has seen (so many
        creates, this task rendered) instead of sleeping and hoping; the timeout is a safety net.
        """

        def holds() -> bool:
            self._advance()
            return condition(sorted(self._jobs.values(), key=lambda job: job.created))

        with self._changed:
            return self._changed.wait_for(holds, timeout=timeout)

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
            if not job.held and job.work_done and now >= job.scheduled + self.latency:
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
        self._changed.notify_all()  # waiters re-check; every call site holds the lock
