"""The `local` provider: the bundled emulator, started in-process, spoken to over real HTTP.

It is the DashScope client pointed at the emulator, so the example storyboard renders with no
account and no network through exactly the code path the real service gets.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.providers.dashscope import DashScopeProvider
from renderspec.providers.http import HttpEngine

LOCAL_KEY = "local-emulator"


class LocalProvider(DashScopeProvider):
    name = "local"
    kind = "emulator"

    def __init__(self, engine: HttpEngine, emulator: RunningEmulator, *, poll_interval: float = 0.2) -> None:
        super().__init__(engine, poll_interval=poll_interval)
        self.emulator = emulator

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self.emulator.stop()


def start_local_emulator(workdir: Path | None = None) -> RunningEmulator:
    """The in-process emulator; its files live in `workdir` (the cache), so a killed build leaks nothing.

    Tasks of an earlier emulator died with it and are cleared; encoded previews are kept, since a
    preview depends only on its inputs.
    """
    if workdir is not None:
        for leftover in ("uploads", "tasks"):
            shutil.rmtree(workdir / leftover, ignore_errors=True)
        for result in workdir.glob("*.mp4"):
            result.unlink(missing_ok=True)
    return start_in_thread(EmulatorOptions(latency=0.5, concurrency=4, workdir=workdir))
