"""Carrying out a plan: upload, submit, poll, download, verify, commit — concurrently, never paying twice.

Every create is journaled before it is sent and its task id the moment it is known, so a build
that dies resumes polling instead of creating again; a create whose answer is lost is looked for
at the service (recovery.py) before anything is sent again. One shot's failure is a result, not a
crash. The executor never reads specs or picks a provider: it receives planned shots and
collaborators, and blocking disk work (journal fsyncs, the lock file, hashing) runs in threads.
"""

from __future__ import annotations

import dataclasses
import functools
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
from renderspec.core.model import LocalFile, PlannedShot, RenderOf
from renderspec.errors import (
    InvalidOutput,
    JobTimedOut,
    OutcomeUnknown,
    ProviderError,
    Rejected,
    StorageError,
    Unavailable,
)
from renderspec.fsutil import file_sha256
from renderspec.outcomes import Events, Fetched, Gate, Outcome, ShotResult, Upstream
from renderspec.providers.base import Provider, TaskState, TaskStatus
from renderspec.recovery import ADOPT_HINT, LostCreate, lost_create, resolve_lost

if TYPE_CHECKING:  # annotations only: the store and journal are handed in, never imported for behaviour
    from renderspec.journal import Journal, Record
    from renderspec.store import Entry, LocalStore

log = logging.getLogger("renderspec.executor")
VERIFY_ATTEMPTS = 3
LOST_CREATES = 3  # creates of one shot whose answers may be lost (and found never made) before it fails


@dataclass(frozen=True, slots=True)
class BuildOptions:
    jobs: int = 4
    transfers: int = 4
    submit_interval: float = 0.2
    poll_interval: float = 15.0
    timeout: float = 1200.0
    keep_going: bool = False
    size_tolerance: float = 0.0


class Outputs(Protocol):
    """Where a committed render goes next (renders/ and the lock); called once per rendered shot, in a thread."""

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
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The spec file and fragments the request was made from (sha256 of each text); journal records
    written before this field existed have none, and their renders record none."""


def expectation(shot: PlannedShot) -> Expectation:
    return Expectation(
        shot.key, shot.id, shot.spec, shot.model, shot.duration, shot.expected_size, shot.payload, dict(shot.sources)
    )


Verify = Callable[[Path, tuple[int, int] | None, float, float], Any]


class Spending(Protocol):
    """May the build spend this much now? (`budget.Budget`; the policy is not the executor's.)"""

    def charge(self, cost: float | None) -> None: ...

    def reserve(self, cost: float | None) -> str | None: ...

    def release(self, cost: float | None) -> None: ...


class Executor:
    def __init__(
        self,
        *,
        provider: Provider,
        store: LocalStore,
        journal: Journal,
        files_root: Path,
        outputs: Outputs,
        events: Events,
        options: BuildOptions,
        verify: Verify,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        known_task_ids: Callable[[], Set[str]] = frozenset,
        share: Callable[[Entry], Awaitable[object]] | None = None,
        gate: Gate | None = None,
        budget: Spending | None = None,
        upstream: Upstream | None = None,
    ) -> None:
        self.provider = provider
        self.store = store
        self.journal = journal
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
        self._claimed = known_task_ids  # ids the lock, the journal and the cache claim: read when a create is lost
        self._known: set[str] = set()  # tasks this build made or adopted
        self._reported: set[str] = set()
        self._share = share  # pushes a committed render to the remote cache; never raises
        self._gate = gate  # claims shots on the remote before paying for them
        self._budget = budget  # asked under the submit lock before every create
        self._upstream = upstream  # keys and feeds shots that use other shots' renders

    async def run(
        self,
        shots: list[PlannedShot],
        journal: Mapping[str, Record],
        orphans: Mapping[str, Record] | None = None,
    ) -> list[ShotResult]:
        """Renders every shot (and collects `orphans`); returns one result per shot, in order.

        A shot waiting on other shots' renders starts the moment the last of them is committed.
        """
        results: dict[str, ShotResult] = {}
        ended = {shot.key: anyio.Event() for shot in shots}
        by_key: dict[str, ShotResult] = {}
        # An orphan journaled for a waiting shot may be the task of the very key it resolves to: it
        # waits for that key to be known, and is collected as an orphan only if it is another's.
        waiting = {shot.id for shot in shots if shot.waiting_on}
        held = {key: record for key, record in (orphans or {}).items() if record.shot in waiting}

        async def one(shot: PlannedShot) -> None:
            try:
                if shot.waiting_on:
                    results[shot.id] = await self._after_upstream(shot, journal, ended, by_key)
                else:
                    results[shot.id] = await self._shot(shot, journal.get(shot.key))
            finally:
                if shot.id in results:
                    by_key[shot.key] = results[shot.id]
                ended[shot.key].set()
            self.events.done(results[shot.id])
            if shot.waiting_on:
                for key, record in held.items():
                    if record.shot == shot.id and key != results[shot.id].shot.key:
                        await self._orphan(key, record)

        async with anyio.create_task_group() as group:
            for shot in shots:
                group.start_soon(one, shot)
            for key, record in (orphans or {}).items():
                if key not in held:
                    group.start_soon(self._orphan, key, record)
        return [results[shot.id] for shot in shots]

    # -- disk, off the event loop ---------------------------------------------------------------

    async def _write(self, key: str, **fields: Any) -> Record:
        return await anyio.to_thread.run_sync(functools.partial(self.journal.write, key, **fields))

    async def _forget(self, key: str) -> None:
        await anyio.to_thread.run_sync(self.journal.forget, key)

    # -- one shot ----------------------------------------------------------------------------

    async def _after_upstream(
        self,
        shot: PlannedShot,
        journal: Mapping[str, Record],
        ended: Mapping[str, anyio.Event],
        by_key: Mapping[str, ShotResult],
    ) -> ShotResult:
        """Waits for the renders the shot uses, keys it by them, then renders (or takes) it."""
        self.events.stage(shot.id, f"waiting on {', '.join(shot.waiting_on)}")
        for ref in _upstream_refs(shot):
            if ref.upstream_key is None or ref.upstream_key not in ended:
                continue  # not made by this build (fetched before it started, or in no cache): resolving tells
            await ended[ref.upstream_key].wait()
            before = by_key.get(ref.upstream_key)
            if before is None or before.outcome not in (Outcome.RENDERED, Outcome.CACHED):
                what = "failed" if before is not None and before.outcome is Outcome.FAILED else "was not rendered"
                return ShotResult(shot, Outcome.SKIPPED, message=f"it uses the render of {ref.shot}, which {what}")
        if self._upstream is None:
            return ShotResult(shot, Outcome.SKIPPED, message="this build cannot use other shots' renders")
        started = self.clock()
        try:
            resolved = await self._upstream.resolve(shot)
        except (OSError, StorageError, ValueError) as error:
            return ShotResult(
                shot, Outcome.FAILED, code=type(error).__name__, message=f"cannot use its upstream render: {error}"
            )
        if isinstance(resolved, str):
            return ShotResult(shot, Outcome.SKIPPED, message=resolved)
        entry = await anyio.to_thread.run_sync(self.store.get, resolved.key)
        if entry is None:
            return await self._shot(resolved, journal.get(resolved.key) or self.journal.get(resolved.key))
        async with self._commit_lock:  # the same render was made before (or fetched): nothing to pay
            output = await anyio.to_thread.run_sync(self.outputs.commit, resolved, entry, entry.task_id)
        return ShotResult(resolved, Outcome.CACHED, self.clock() - started, entry.task_id, output=output)

    async def _shot(self, shot: PlannedShot, record: Record | None) -> ShotResult:
        started = self.clock()
        try:
            return await self._released(shot, record, started)
        except _Skip as skip:
            return ShotResult(
                shot,
                Outcome.SKIPPED,
                message=skip.reason or "not started: an earlier shot failed (use --keep-going to render the rest)",
            )
        except ProviderError as error:
            self._after_failure()
            return ShotResult(
                shot,
                Outcome.FAILED,
                self.clock() - started,
                getattr(error, "task_id", None),
                code=error.code or type(error).__name__,
                message=str(error),
            )
        except InvalidOutput as error:
            self._after_failure()
            return ShotResult(shot, Outcome.FAILED, self.clock() - started, code="InvalidOutput", message=str(error))
        except (OSError, StorageError) as error:  # disk full, permissions: the journal still holds any paid task
            self._stopping = True
            if isinstance(error, StorageError):
                reason = error.message
            else:
                reason = (error.strerror or str(error)) + (f" ({error.filename})" if error.filename else "")
            message = f"cannot write the render to disk: {reason}; any paid task stays journaled"
            return ShotResult(shot, Outcome.FAILED, self.clock() - started, code="OSError", message=message)

    async def _released(self, shot: PlannedShot, record: Record | None, started: float) -> ShotResult:
        """Renders the shot; its claim (if any) is released once it is committed and shared, or failed."""
        try:
            return await self._render(shot, record, started)
        finally:
            if self._gate is not None:
                await self._gate.done(shot)

    def _after_failure(self) -> None:
        """Without --keep-going, the first failure stops new submissions (tasks in flight finish)."""
        if not self.options.keep_going:
            self._stopping = True

    async def _render(self, shot: PlannedShot, record: Record | None, started: float) -> ShotResult:
        if self.store.has(shot.key):
            await self._forget(shot.key)  # a journal record left by a build that died after committing
            return ShotResult(shot, Outcome.CACHED, output=None)
        if self._gate is not None and (record is None or record.task_id is None) and not self._stopping:
            elsewhere = await self._gate.wait_elsewhere(shot)  # holds no slot: this build's other shots go ahead
            if elsewhere is not None:
                return await self._fetched(shot, elsewhere, started)
        async with self._in_flight:
            task_id = record.task_id if record else None
            submitted_at = started
            if record is not None:
                submitted_at = record.submitted_at or record.sent_at or started
            status: TaskStatus | None = None
            if task_id is not None:
                if self._budget is not None:
                    self._budget.charge(shot.cost)  # already paid: it counts, and is always collected
                self.events.stage(shot.id, "resuming")
                status = await self._earlier_task(shot, task_id, submitted_at)
                task_id = task_id if status is not None else None
            if task_id is None:
                if self._stopping:
                    raise _Skip()
                decision = await self._gate.before_create(shot) if self._gate is not None else None
                if isinstance(decision, Fetched):
                    return await self._fetched(shot, decision, started)
                if decision is not None and decision.inherited_task is not None:
                    task_id, submitted_at = decision.inherited_task, self.clock()
                    status = await self._collect_inherited(shot, task_id, submitted_at)
                    task_id = task_id if status is not None else None
            if task_id is None:
                body = await self._with_links(shot)
                task_id, submitted_at = await self._submit(shot, body)
                if self._gate is not None:
                    await self._gate.task_started(shot, task_id)
                status = await self._kept(shot, task_id, submitted_at)
        assert status is not None
        if status.state is not TaskState.SUCCEEDED:
            self._after_failure()  # before anything yields: no other shot may start in between
            if self._budget is not None:
                self._budget.release(shot.cost)  # failed, canceled or lost: not billed
            await self._forget(shot.key)  # failed, canceled or lost tasks are not billed: the next build may retry
            return ShotResult(
                shot,
                Outcome.FAILED,
                self.clock() - started,
                task_id,
                code=status.code or status.state.value,
                message=_ended(status),
            )
        entry = await self._collect(expectation(shot), task_id, status)
        async with self._commit_lock:
            output = await anyio.to_thread.run_sync(self.outputs.commit, shot, entry, task_id)
        await self._forget(shot.key)
        await self._shared(shot.id, entry)
        return ShotResult(shot, Outcome.RENDERED, self.clock() - started, task_id, output=output)

    async def _kept(self, shot: PlannedShot, task_id: str, submitted_at: float) -> TaskStatus:
        """Waits for the task, renewing the shot's claim meanwhile."""
        if self._gate is None:
            return await self._wait_for_final(shot.id, task_id, submitted_at)
        async with self._gate.kept(shot):
            return await self._wait_for_final(shot.id, task_id, submitted_at)

    async def _collect_inherited(self, shot: PlannedShot, task_id: str, submitted_at: float) -> TaskStatus | None:
        """A task an expired claim names: a build that died made it, and it was paid for; collected, not made again."""
        self.events.stage(shot.id, f"collecting task {task_id} of an expired claim")
        await self._write(
            shot.key,
            shot=shot.id,
            provider=self.provider.name,
            model=shot.model,
            task_id=task_id,
            submitted_at=submitted_at,
            outcome="adopted",
        )
        self._known.add(task_id)
        return await self._earlier_task(shot, task_id, submitted_at)

    async def _earlier_task(self, shot: PlannedShot, task_id: str, submitted_at: float) -> TaskStatus | None:
        """Waits for a task made before this build asked (journaled, or named by an expired claim).

        None when the service no longer knows it (expired, another account, a restarted emulator):
        nothing to collect, nothing billed, so the shot is submitted again.
        """
        status = await self._kept(shot, task_id, submitted_at)
        if status.state is TaskState.UNKNOWN:
            log.warning("shot %s: the service no longer knows task %s; submitting it again", shot.id, task_id)
            await self._forget(shot.key)
            return None
        return status

    async def _fetched(self, shot: PlannedShot, fetched: Fetched, started: float) -> ShotResult:
        """Another build rendered the shot while this one waited: its render, fetched and verified, is committed."""
        async with self._commit_lock:
            output = await anyio.to_thread.run_sync(self.outputs.commit, shot, fetched.entry, fetched.entry.task_id)
        self.events.stage(shot.id, f"fetched: rendered by {fetched.by}")
        return ShotResult(shot, Outcome.CACHED, self.clock() - started, fetched.entry.task_id, output=output)

    async def _orphan(self, key: str, record: Record) -> None:
        """A task journaled for a shot that has changed since: paid for, so still collected.

        Its render goes into the cache (reverting the edit then costs nothing); one still running
        at the deadline stays journaled for a later build.
        """
        task_id, expected, shot_id = record.task_id, record.expect, str(record.shot)
        if not task_id or not isinstance(expected, Mapping) or self.store.has(key):
            return
        self.events.stage(shot_id, f"collecting task {task_id} of an earlier version")
        try:
            status = await self._wait_for_final(shot_id, task_id, record.submitted_at or record.sent_at or self.clock())
            if status.state is TaskState.SUCCEEDED:
                entry = await self._collect(Expectation(key=key, **expected), task_id, status)
                self.events.stage(shot_id, f"collected task {task_id} of an earlier version into the cache")
                await self._shared(shot_id, entry)
        except (ProviderError, InvalidOutput, OSError, StorageError, TypeError) as error:
            # Still running, or not collectable right now: it stays journaled for a later build.
            log.warning("shot %s: task %s of an earlier version stays journaled: %s", shot_id, task_id, error)
            return
        await self._forget(key)  # collected, or ended without a video (not billed)

    async def _shared(self, shot_id: str, entry: Entry) -> None:
        if self._share is not None:
            self.events.stage(shot_id, "sharing with the remote cache")
            await self._share(entry)

    async def _with_links(self, shot: PlannedShot) -> dict[str, Any]:
        """The request with every local file replaced by a link the service can fetch."""
        self.events.stage(shot.id, "uploading")
        links: dict[str, str] = {}
        for path, digest in shot.digests.items():
            async with self._transfers:
                links[path] = await self.provider.upload(self.files_root / path, digest, shot.model)
        renders: dict[RenderOf, str] = {}
        for ref in _upstream_refs(shot):
            if self._upstream is None or ref.sha256 is None:
                raise Rejected(f"shot {shot.id} uses {ref.label}, which is not rendered yet")
            file, digest = await self._upstream.file_of(ref)
            async with self._transfers:
                renders[ref] = await self.provider.upload(file, digest, shot.model)

        def link(ref: Any) -> str:
            if isinstance(ref, LocalFile):
                return links[ref.path]
            return renders[ref] if isinstance(ref, RenderOf) else str(ref.url)

        return substitute_files(shot.request, link)

    async def _submit(self, shot: PlannedShot, body: dict[str, Any]) -> tuple[str, float]:
        """Creates the shot's task, journaled before the create leaves; a lost answer is looked for, not resent."""
        expect = dataclasses.asdict(expectation(shot))
        del expect["key"]  # the record's own key; `Expectation(key=key, **expect)` rebuilds it
        sent = as_recorded(body)
        reserved = self._budget is None
        for _ in range(LOST_CREATES):
            async with self._submit_lock:  # paces creates: at most one per submit_interval
                wait = self._last_submit + self.options.submit_interval - self.clock()
                if wait > 0:
                    await self.sleep(wait)
                self._last_submit = self.clock()
                if self._stopping:
                    raise _Skip()
                if not reserved:  # once per shot: a create found never made is sent again on the same reservation
                    refused = self._budget.reserve(shot.cost) if self._budget is not None else None
                    if refused is not None:
                        raise _Skip(refused)
                    reserved = True
                sent_at = self.clock()
                await self._write(
                    shot.key,
                    shot=shot.id,
                    provider=self.provider.name,
                    model=shot.model,
                    sent_at=sent_at,
                    submitted_at=None,
                    task_id=None,
                    outcome=None,
                    duplicates=(),
                    expect=expect,
                    sent=sent,
                )
                self.events.stage(shot.id, "submitting")
                try:
                    submitted = await self.provider.create(body, labels=shot.labels)
                except OutcomeUnknown as error:
                    lost: OutcomeUnknown | None = error
                except ProviderError:
                    if self._budget is not None:
                        self._budget.release(shot.cost)
                    await self._forget(shot.key)  # definitely refused: nothing was created
                    raise
                else:
                    lost = None
            if lost is None:
                await self._write(shot.key, task_id=submitted.task_id, submitted_at=sent_at)
                self._known.add(submitted.task_id)
                return submitted.task_id, sent_at
            task_id = await self._find_lost(shot, body, sent_at, lost)
            if task_id is not None:
                return task_id, sent_at
        raise OutcomeUnknown(
            f"{LOST_CREATES} creates for shot {shot.id} lost their answers, and the service made none of them"
        )

    async def _find_lost(
        self, shot: PlannedShot, body: Mapping[str, Any], sent_at: float, lost: OutcomeUnknown
    ) -> str | None:
        """The task a lost create made (adopted and journaled), or None when it made none; raises when unsure."""
        await self._write(shot.key, outcome="unknown")
        log.warning("shot %s: %s; looking for its task at the service", shot.id, lost.message)
        self.events.stage(shot.id, "looking for the task of a lost create")
        item = LostCreate(shot.key, shot.id, shot.model, sent_at, self.provider.request_facts(body), self.clock())
        claimed = await anyio.to_thread.run_sync(self._claimed)

        def rivals() -> list[LostCreate]:
            """This build's other creates without a task yet: takes differ only in their seed, which
            the service does not report, so a task that matches one of them too is nobody's to take."""
            found = []
            for record in self.journal.records().values():
                if record.key != shot.key and not record.task_id:
                    rival = lost_create(record, self.provider, self.clock)
                    if rival is not None:
                        found.append(rival)
            return found

        resolution = await resolve_lost(
            self.provider,
            [item],
            self._known | set(claimed),
            poll_interval=self.options.poll_interval,
            patience=self.options.timeout,
            settle=self.options.poll_interval,  # an empty list is trusted one poll after the answer was lost
            clock=self.clock,
            sleep=self.sleep,
            rivals=rivals,
        )
        for note in resolution.notes:
            log.warning("%s", note)
        if shot.key in resolution.adopted:
            task_id = resolution.adopted[shot.key]
            duplicates = tuple(resolution.duplicates.get(shot.key, ()))
            await self._write(shot.key, task_id=task_id, submitted_at=sent_at, outcome=None, duplicates=duplicates)
            self._known.update((task_id, *duplicates))
            return task_id
        if shot.key in resolution.unresolved:
            raise OutcomeUnknown(
                f"the answer to its create was lost and it cannot be told whether the task was made: "
                f"{resolution.unresolved[shot.key]}",
                hint=ADOPT_HINT,
            )
        return None  # never made: the caller sends it again

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
        staging = self.store.staging_file()
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
        record = await anyio.to_thread.run_sync(self.journal.get, shot.key)
        meta = {
            "shot": shot.shot,
            "spec": shot.spec,
            "provider": self.provider.name,
            "provider_kind": self.provider.kind,
            "model": shot.model,
            "task_id": task_id,
            "request_id": status.request_id,
            "payload": shot.payload,
            "request_sent": record.sent if record else None,
            "duplicates": list(record.duplicates) if record else [],
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
        if isinstance(shot.sources, Mapping) and shot.sources:  # for `renderspec explain`; a journal may lack it
            meta["sources"] = dict(shot.sources)
        return await anyio.to_thread.run_sync(self.store.put, shot.key, staging, meta)


def _upstream_refs(shot: PlannedShot) -> list[RenderOf]:
    refs = [value for item in shot.request["input"]["media"] for value in item.values() if isinstance(value, RenderOf)]
    return list(dict.fromkeys(refs))


class _Skip(Exception):
    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


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
