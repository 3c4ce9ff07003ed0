"""Carrying out a plan: upload, submit, poll, download, verify, commit — concurrently, never paying twice.

Every create is journaled before it is sent and its task id the moment it is known, so a build
that dies resumes polling instead of creating again. One shot's failure is a result, not a crash.
The executor never reads specs or picks a provider: it receives planned shots and collaborators.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from renderspec.core.keys import map_media, substitute_files
from renderspec.core.model import LocalFile, PlannedShot
from renderspec.errors import InvalidOutput, JobTimedOut, OutcomeUnknown, ProviderError, Rejected, Unavailable
from renderspec.fsutil import file_sha256
from renderspec.providers.base import Provider, TaskState, TaskStatus

if TYPE_CHECKING:  # annotations only: the cache is handed in, never imported for behaviour
    from renderspec.cache import Cache, Entry

log = logging.getLogger("renderspec.executor")
VERIFY_ATTEMPTS = 3


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
        return self.shot.cost if self.outcome is Outcome.RENDERED else 0.0 if self.outcome is Outcome.CACHED else None


@dataclass(frozen=True, slots=True)
class BuildOptions:
    jobs: int = 4
    transfers: int = 4
    submit_interval: float = 0.2
    poll_interval: float = 15.0
    timeout: float = 1200.0
    keep_going: bool = False
    size_tolerance: float = 0.0


class Events(Protocol):
    """What the executor tells the console: a shot's stage, and its end."""

    def stage(self, shot_id: str, stage: str) -> None: ...

    def done(self, result: ShotResult) -> None: ...


class Outputs(Protocol):
    """Where a committed render goes next (renders/ and the lock); called once per rendered shot."""

    def commit(self, shot: PlannedShot, entry: Entry, task_id: str | None) -> str: ...


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a render of one key must look like, and what its cache record says about it."""

    key: str
    shot: str
    spec: str
    model: str
    duration: int
    size: tuple[int, int] | None
    payload: Mapping[str, Any]


def expectation(shot: PlannedShot) -> Expectation:
    return Expectation(shot.key, shot.id, shot.spec, shot.model, shot.duration, shot.expected_size, shot.payload)


Verify = Callable[[Path, tuple[int, int] | None, float, float], Any]


class Executor:
    def __init__(
        self,
        *,
        provider: Provider,
        cache: Cache,
        files_root: Path,
        outputs: Outputs,
        events: Events,
        options: BuildOptions,
        verify: Verify,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        known_task_ids: Set[str] = frozenset(),
    ) -> None:
        self.provider = provider
        self.cache = cache
        self.files_root = files_root
        self.outputs = outputs
        self.events = events
        self.options = options
        self.verify = verify
        self.clock = clock
        self.sleep = sleep
        self._in_flight = anyio.CapacityLimiter(max(1, options.jobs))
        self._transfers = anyio.CapacityLimiter(max(1, options.transfers))
        self._submit_lock = anyio.Lock()
        self._last_submit = -math.inf
        self._stopping = False
        self._commit_lock = anyio.Lock()
        self._known: set[str] = set(known_task_ids)
        self._reported: set[str] = set()

    async def run(
        self,
        shots: list[PlannedShot],
        journal: Mapping[str, Mapping[str, Any]],
        orphans: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[ShotResult]:
        """Renders every shot (and collects `orphans`); returns one result per shot, in order."""
        results: dict[str, ShotResult] = {}

        async def one(shot: PlannedShot) -> None:
            results[shot.id] = await self._shot(shot, journal.get(shot.key))
            self.events.done(results[shot.id])

        async with anyio.create_task_group() as group:
            for shot in shots:
                group.start_soon(one, shot)
            for key, record in (orphans or {}).items():
                group.start_soon(self._orphan, key, record)
        return [results[shot.id] for shot in shots]

    # -- one shot ----------------------------------------------------------------------------

    async def _shot(self, shot: PlannedShot, record: Mapping[str, Any] | None) -> ShotResult:
        started = self.clock()
        try:
            return await self._render(shot, record, started)
        except _Skip:
            return ShotResult(
                shot,
                Outcome.SKIPPED,
                message="not started: an earlier shot failed (use --keep-going to render the rest)",
            )
        except ProviderError as error:
            self._after_failure()
            return ShotResult(
                shot,
                Outcome.FAILED,
                self.clock() - started,
                getattr(error, "task_id", None),
                code=error.code,
                message=str(error),
            )
        except InvalidOutput as error:
            self._after_failure()
            return ShotResult(shot, Outcome.FAILED, self.clock() - started, code="InvalidOutput", message=str(error))
        except OSError as error:  # disk full, permissions: the journal still holds any paid task
            self._stopping = True
            where = f" ({error.filename})" if error.filename else ""
            message = f"cannot write the render to disk: {error.strerror or error}{where}; the task stays journaled"
            return ShotResult(shot, Outcome.FAILED, self.clock() - started, code="OSError", message=message)

    def _after_failure(self) -> None:
        """Without --keep-going, the first failure stops new submissions (tasks in flight finish)."""
        if not self.options.keep_going:
            self._stopping = True

    async def _render(self, shot: PlannedShot, record: Mapping[str, Any] | None, started: float) -> ShotResult:
        if self.cache.has(shot.key):
            self.cache.forget(shot.key)  # a journal record left by a build that died after committing
            return ShotResult(shot, Outcome.CACHED, output=None)
        async with self._in_flight:
            task_id = record.get("task_id") if record else None
            submitted_at = float(record.get("submitted_at", started)) if record else started
            status: TaskStatus | None = None
            if task_id is not None:
                self.events.stage(shot.id, "resuming")
                status = await self._wait_for_final(shot.id, str(task_id), submitted_at)
                if status.state is TaskState.UNKNOWN:
                    # Expired or never known there (a restarted emulator): nothing to collect, nothing billed.
                    log.warning("shot %s: the service no longer knows task %s; submitting it again", shot.id, task_id)
                    self.cache.forget(shot.key)
                    task_id, status = None, None
            if task_id is None:
                if self._stopping:
                    raise _Skip()
                body = await self._with_links(shot)
                task_id, submitted_at = await self._submit(shot, body)
                status = await self._wait_for_final(shot.id, str(task_id), submitted_at)
        assert status is not None
        if status.state is not TaskState.SUCCEEDED:
            self.cache.forget(shot.key)  # failed, canceled or lost tasks are not billed: the next build may retry
            self._after_failure()
            return ShotResult(
                shot,
                Outcome.FAILED,
                self.clock() - started,
                str(task_id),
                code=status.code or status.state.value,
                message=_ended(status),
            )
        entry = await self._collect(expectation(shot), str(task_id), status)
        async with self._commit_lock:
            output = self.outputs.commit(shot, entry, str(task_id))
        self.cache.forget(shot.key)
        return ShotResult(shot, Outcome.RENDERED, self.clock() - started, str(task_id), output=output)

    async def _orphan(self, key: str, record: Mapping[str, Any]) -> None:
        """A task journaled for a shot that has changed since: paid for, so still collected.

        Its render goes into the cache (reverting the edit then costs nothing); one still running
        at the deadline stays journaled for a later build.
        """
        task_id, expected, shot_id = record.get("task_id"), record.get("expect"), str(record.get("shot"))
        if not task_id or not isinstance(expected, dict) or self.cache.has(key):
            return
        self.events.stage(shot_id, f"collecting task {task_id} of an earlier version")
        try:
            status = await self._wait_for_final(shot_id, str(task_id), float(record.get("submitted_at", self.clock())))
            if status.state is TaskState.SUCCEEDED:
                await self._collect(Expectation(key=key, **expected), str(task_id), status)
                self.events.stage(shot_id, f"collected task {task_id} of an earlier version into the cache")
        except (ProviderError, InvalidOutput, OSError, TypeError) as error:
            # Still running, or not collectable right now: it stays journaled for a later build.
            log.warning("shot %s: task %s of an earlier version stays journaled: %s", shot_id, task_id, error)
            return
        self.cache.forget(key)  # collected, or ended without a video (not billed)

    async def _with_links(self, shot: PlannedShot) -> dict[str, Any]:
        """The request with every local file replaced by a link the service can fetch."""
        self.events.stage(shot.id, "uploading")
        links: dict[str, str] = {}
        for path, digest in shot.digests.items():
            async with self._transfers:
                links[path] = await self.provider.upload(self.files_root / path, digest, shot.model)

        return substitute_files(shot.request, lambda ref: links[ref.path] if isinstance(ref, LocalFile) else ref.url)

    async def _submit(self, shot: PlannedShot, body: dict[str, Any]) -> tuple[str, float]:
        async with self._submit_lock:
            wait = self._last_submit + self.options.submit_interval - self.clock()
            if wait > 0:
                await self.sleep(wait)
            self._last_submit = self.clock()
            if self._stopping:
                raise _Skip()
            # Creates are serialised under this lock, so when one's answer is lost every other
            # create of this build has its task id recorded: the service's list can then tell.
            for _ in range(3):
                sent_at = self.clock()
                expect = dataclasses.asdict(expectation(shot))
                del expect["key"]  # the record's own key; `Expectation(key=key, **expect)` rebuilds it
                self.cache.record(
                    shot.key,
                    shot=shot.id,
                    provider=self.provider.name,
                    model=shot.model,
                    sent_at=sent_at,
                    expect=expect,
                    sent=as_recorded(body),
                )
                self.events.stage(shot.id, "submitting")
                try:
                    submitted = await self.provider.create(body)
                except OutcomeUnknown:
                    self.cache.record(shot.key, outcome="unknown")
                    found = await self._find_lost(shot, sent_at)
                    if found is _NOT_CREATED:
                        continue
                    if found is None:
                        raise
                    task_id = str(found)
                except ProviderError:
                    self.cache.forget(shot.key)  # answered with an error: nothing was created
                    raise
                else:
                    task_id = submitted.task_id
                self.cache.record(shot.key, task_id=task_id, submitted_at=sent_at)
                self._known.add(task_id)
                return task_id, sent_at
            raise OutcomeUnknown(f"three creates for shot {shot.id} lost their answers and none reached the service")

    async def _find_lost(self, shot: PlannedShot, sent_at: float) -> object:
        """The task a lost create made, _NOT_CREATED when the list shows none, None when unsure."""
        try:
            listed = await self.provider.recent_tasks(shot.model, sent_at - 2.0)
        except ProviderError:
            return None
        if listed is None:
            return None
        fresh = [task.task_id for task in listed if task.task_id not in self._known]
        if len(fresh) == 1:
            return fresh[0]
        return _NOT_CREATED if not fresh else None

    async def _wait_for_final(self, shot_id: str, task_id: str, submitted_at: float) -> TaskStatus:
        deadline = submitted_at + self.options.timeout
        stage = ""
        while True:
            try:
                status = await self.provider.query(task_id)
            except Unavailable:
                status = None
            if status is not None:
                self._note_unknowns(shot_id, status)
                if status.state.is_final:
                    return status
                current = "running" if status.state is TaskState.RUNNING else "queued"
                if current != stage:
                    stage = current
                    self.events.stage(shot_id, current)
            if self.clock() >= deadline:
                error = JobTimedOut(
                    f"task {task_id} is still not finished after {self.options.timeout / 60:.0f} min",
                    hint="run the build again later to keep waiting for it (no new charge)",
                )
                error.task_id = task_id  # type: ignore[attr-defined]
                raise error
            await self.sleep(self.options.poll_interval)

    async def _download(self, task_id: str, url: str | None, staging: Path) -> tuple[int, str]:
        """Streams the result to `staging`; an expired link is replaced by a fresh query's once."""
        for attempt in range(2):
            if not url:
                raise Rejected(f"task {task_id} SUCCEEDED without a video link")
            try:
                async with self._transfers:
                    return await self.provider.download(url, staging), url
            except Rejected as error:
                if attempt or "expired" not in error.message:
                    raise
                url = (await self.provider.query(task_id)).video_url
        raise AssertionError("unreachable")

    def _note_unknowns(self, shot_id: str, status: TaskStatus) -> None:
        """Unknown statuses and fields are tolerated, and said once, so a contract change is noticed."""
        news = [f"status {status.raw_status!r}"] if status.state is TaskState.OTHER else []
        news += [f"field {name!r}" for name in status.unknown_fields]
        for item in news:
            if item not in self._reported:
                self._reported.add(item)
                log.warning("shot %s: the service sent an unknown %s (kept polling; please report it)", shot_id, item)

    async def _collect(self, shot: Expectation, task_id: str, status: TaskStatus) -> Entry:
        """Downloads and verifies the result (asking for a fresh link if one expired), then caches it."""
        staging = self.cache.staging_file()
        url = status.video_url
        size_expected = (int(shot.size[0]), int(shot.size[1])) if shot.size else None  # JSON gives lists
        for attempt in range(VERIFY_ATTEMPTS):
            self.events.stage(shot.shot, "downloading" if not attempt else "downloading again")
            size, url = await self._download(task_id, url, staging)
            try:
                facts = await anyio.to_thread.run_sync(
                    self.verify, staging, size_expected, float(shot.duration), self.options.size_tolerance
                )
                break
            except InvalidOutput as error:
                staging.unlink(missing_ok=True)  # never cached: fetch it again, it may have been damaged in transit
                log.warning("shot %s: the download of task %s failed verification: %s", shot.shot, task_id, error)
                if attempt == VERIFY_ATTEMPTS - 1:
                    raise
        digest = await anyio.to_thread.run_sync(file_sha256, staging)
        meta = {
            "shot": shot.shot,
            "spec": shot.spec,
            "provider": self.provider.name,
            "provider_kind": self.provider.kind,
            "model": shot.model,
            "task_id": task_id,
            "request_id": status.request_id,
            "payload": shot.payload,
            "request_sent": self.cache.journal_record(shot.key).get("sent"),
            "usage": dict(status.usage),
            "times": dict(status.times),
            "video_sha256": digest,
            "video_size": size,
            "video": {
                "codec": getattr(facts, "codec", None),
                "width": getattr(facts, "width", None),
                "height": getattr(facts, "height", None),
                "seconds": getattr(facts, "seconds", None),
            },
            "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
        }
        return await anyio.to_thread.run_sync(self.cache.put, shot.key, staging, meta)


class _Skip(Exception):
    pass


def as_recorded(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request as sent, fit for the record: links without their query strings (signatures,
    which expire anyway) and data: URIs by hash, so no credential and no megabytes end up in it."""

    def shown(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("data:"):
            header, _, payload = value.partition(",")
            return f"{header},<{len(payload)} characters, sha256 {hashlib.sha256(payload.encode()).hexdigest()}>"
        return value.split("?", 1)[0]

    return map_media(body, shown)


def _ended(status: TaskStatus) -> str:
    what = {
        "FAILED": "the task failed",
        "CANCELED": "the task was canceled",
        "UNKNOWN": "the service no longer knows the task",
    }
    return f"{what.get(status.state.value, 'the task ended')}: {status.code or status.state.value}: {status.message or 'no message'}"


_NOT_CREATED = object()
