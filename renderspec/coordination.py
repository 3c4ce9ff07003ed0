"""Claims during a build: two machines never pay for one shot.

Before a create, the executor asks the gate. The gate claims the shot's key on the remote; when
another build holds a live claim it waits (showing `waiting for HOST since TIME`) for that build's
render to appear on the remote and fetches it; when the claim has expired it takes it over, with
the task the claim names, so the task is collected rather than paid for again. While our task
runs the claim is renewed; it is released once the render is committed and shared, or failed.

A wait never outlasts the lease plus `timeout`: then the shot fails without paying, naming who
still renders it. Without a remote that can hold claims there is no gate.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio

from renderspec.core.model import PlannedShot
from renderspec.errors import JobTimedOut, RemoteError
from renderspec.outcomes import Events, Fetched, Go
from renderspec.remote.claims import Claim, Claims, Holder
from renderspec.remote.tier import Remote
from renderspec.store import Entry, LocalStore

log = logging.getLogger("renderspec.coordination")


class ClaimGate:
    def __init__(
        self,
        claims: Claims,
        remote: Remote,
        store: LocalStore,
        *,
        probe: Callable[[PlannedShot, Path], object],
        events: Events,
        poll_interval: float,
        timeout: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.claims = claims
        self.remote = remote
        self.store = store
        self.probe = probe
        self.events = events
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self._held: dict[str, Claim] = {}
        self._unusable = False

    async def wait_elsewhere(self, shot: PlannedShot) -> Fetched | None:
        """Before the shot takes an in-flight slot: while another build's live claim holds it, waits for
        that build's render without holding a slot (so this build's other shots go ahead); None: it is free."""
        started = self.clock()
        while True:
            holder = await self._peek(shot)
            if holder is None:
                return None
            self._check_deadline(holder, started)
            entry = await self._wait_for_entry(shot, holder)
            if entry is not None:
                return Fetched(entry, holder.describe())

    @property
    def _usable(self) -> bool:
        """Claims can be read and written now: the remote is reachable, writable, and claiming has not failed."""
        return not (self._unusable or self.remote.offline or self.remote.read_only)

    async def _peek(self, shot: PlannedShot) -> Holder | None:
        if not self._usable:
            return None
        try:
            return await anyio.to_thread.run_sync(self.claims.holder, shot.key)
        except RemoteError:
            return None  # taking the claim will say what is wrong

    def _check_deadline(self, holder: Holder, started: float) -> None:
        if self.clock() >= started + self.claims.lease + self.timeout:
            raise JobTimedOut(
                f"{holder.describe()} still renders it (claimed {_when(holder.since)}); nothing was paid here: "
                "run `renderspec build` again later to fetch it",
                code="Claimed",
            )

    async def before_create(self, shot: PlannedShot) -> Go | Fetched:
        started = self.clock()
        while True:
            outcome = await self._take(shot)
            if outcome is None:
                return Go()
            if isinstance(outcome, Claim):
                self._held[shot.key] = outcome
                if outcome.inherited_task is None:
                    # A build that claimed, rendered, pushed and released while this one waited for a slot
                    # leaves the claim free and the render on the remote: fetch it, never pay again.
                    entry = await self._fetch_if_there(shot)
                    if entry is not None:
                        await self.done(shot)
                        return Fetched(entry, "another build")
                return Go(outcome.inherited_task)
            self._check_deadline(outcome, started)
            entry = await self._wait_for_entry(shot, outcome)
            if entry is not None:
                return Fetched(entry, outcome.describe())

    async def _take(self, shot: PlannedShot) -> Claim | Holder | None:
        if not self._usable:
            return None
        try:
            return await anyio.to_thread.run_sync(self.claims.take, shot.key)
        except RemoteError as error:
            if not self._unusable:
                self._unusable = True
                log.warning("cannot claim shots on the remote cache (%s); rendering without claims", error.message)
            return None

    async def _fetch_if_there(self, shot: PlannedShot) -> Entry | None:
        if shot.key not in await anyio.to_thread.run_sync(self.remote.contains, [shot.key]):
            return None
        return await anyio.to_thread.run_sync(
            self.remote.fetch, shot.key, self.store, lambda path: self.probe(shot, path)
        )

    async def _wait_for_entry(self, shot: PlannedShot, holder: Holder) -> Entry | None:
        """Polls the remote for the holder's render until its claim would expire; None: look at the claim again."""
        self.events.stage(shot.id, f"waiting for {holder.describe()} since {_when(holder.since)}")
        while True:
            entry = await self._fetch_if_there(shot)
            if entry is not None:
                return entry
            left = holder.expires - self.clock()
            if left <= 0 or self.remote.offline:
                return None
            await self.sleep(min(self.poll_interval, left))

    async def task_started(self, shot: PlannedShot, task_id: str) -> None:
        """Records the task in the claim the moment the service answered: a taker collects it, never pays again."""
        claim = self._held.get(shot.key)
        if claim is not None:
            await self._renew(shot, claim, task_id)

    @contextlib.asynccontextmanager
    async def kept(self, shot: PlannedShot) -> AsyncIterator[None]:
        """Renews the shot's claim every third of the lease while the body runs (the task renders)."""
        if shot.key not in self._held:
            yield
            return
        async with anyio.create_task_group() as group:

            async def renewing() -> None:
                while shot.key in self._held:
                    await self.sleep(self.claims.lease / 3)
                    claim = self._held.get(shot.key)
                    if claim is not None:
                        await self._renew(shot, claim, None)

            group.start_soon(renewing)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _renew(self, shot: PlannedShot, claim: Claim, task_id: str | None) -> None:
        try:
            renewed = await anyio.to_thread.run_sync(self.claims.renew, claim, task_id)
        except RemoteError as error:
            log.warning("shot %s: could not renew its claim (%s)", shot.id, error.message)
            return
        if renewed is None:
            self._held.pop(shot.key, None)
            log.warning(
                "shot %s: its claim expired and another build took it over (it will collect this task)", shot.id
            )
        else:
            self._held[shot.key] = renewed

    async def done(self, shot: PlannedShot) -> None:
        """Releases the claim: after the render was committed and shared, or the shot failed."""
        claim = self._held.pop(shot.key, None)
        if claim is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await anyio.to_thread.run_sync(self.claims.release, claim)
            except RemoteError as error:
                log.warning("shot %s: could not release its claim (%s); it expires by itself", shot.id, error.message)


def _when(moment: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(moment))
