"""Shots that use other shots' renders: keyed once those exist, and fed the render or a still of it.

A dependent shot's key holds its upstream render's sha256, so it is known only once that render
is committed. The build hands the executor this `Upstream`: it plans the waiting shot again with
the render now in the cache (fetching the result from the remote when a teammate already paid for
it), and gives the upload a file: the render itself, or one frame extracted with PyAV as a PNG at
the render's exact pixel size, kept in `cache/frames/` so a retry extracts nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import anyio

from renderspec.core.model import PlannedShot, RenderOf, State
from renderspec.core.planning import Plan
from renderspec.fsutil import file_sha256, write_atomic
from renderspec.media import extract_frame
from renderspec.remote.tier import Remote
from renderspec.store import LocalStore

FRAMES = "frames"


class Continuity:
    def __init__(
        self,
        plan: Plan,
        store: LocalStore,
        frames: Path,
        *,
        remote: Remote | None = None,
        probe: Callable[[PlannedShot, Path], object] | None = None,
        locked: Callable[[str], bool] = lambda shot_id: False,
    ) -> None:
        self.plan = plan
        self.store = store
        self.frames = frames
        self.remote = remote
        self.probe = probe
        self.locked = locked  # whether the lock remembers a render of this shot id (then it is stale, not new)
        self._extracting: dict[Path, anyio.Lock] = {}

    async def resolve(self, shot: PlannedShot) -> PlannedShot | str:
        resolved = self.plan.resolve(shot.id)  # on the event loop: one shot is planned at a time
        if resolved is None:
            return "it could not be planned again with its upstream render (run `renderspec plan`)"
        if resolved.waiting_on:
            missing = ", ".join(resolved.waiting_on)
            return f"it uses the render of {missing}, which this build did not make and no cache holds"
        state = State.STALE if self.locked(shot.id) else State.NEW
        resolved = resolved.with_state(state, ("its upstream render changed" if state is State.STALE else "new shot",))
        remote = self.remote
        if remote is not None and self.probe is not None and not self.store.has(resolved.key):
            probe = self.probe

            def fetch() -> None:
                if resolved.key in remote.contains([resolved.key]):
                    remote.fetch(resolved.key, self.store, functools.partial(probe, resolved))

            await anyio.to_thread.run_sync(fetch)
        return resolved

    async def file_of(self, ref: RenderOf) -> tuple[Path, str]:
        if ref.upstream_key is None or ref.sha256 is None:
            raise ValueError(f"{ref.label} is not rendered yet")
        entry = await anyio.to_thread.run_sync(self.store.get, ref.upstream_key)
        if entry is None or entry.sha256 != ref.sha256:
            raise ValueError(f"{ref.label} is not in the local cache (run `renderspec pull`, then build again)")
        if ref.frame is None:
            return entry.video, entry.sha256
        at = ref.frame if isinstance(ref.frame, str) else f"{float(ref.frame):g}s"
        target = self.frames / ref.sha256[:2] / f"{ref.sha256}.{at}.png"
        async with self._extracting.setdefault(target, anyio.Lock()):
            if not target.is_file():
                still = await anyio.to_thread.run_sync(extract_frame, entry.video, ref.frame)
                await anyio.to_thread.run_sync(functools.partial(write_atomic, target, still))
        return target, await anyio.to_thread.run_sync(file_sha256, target)
