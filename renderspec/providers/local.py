"""The `local` provider: the bundled emulator, started in-process, spoken to over real HTTP.

It is the DashScope client pointed at the emulator, so the example storyboard renders with no
account and no network through exactly the code path the real service gets, plus one thing no
service is sent: the `X-Renderspec-Shot` header, saying who each shot is, for the previews.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from renderspec.core.model import ShotLabels
from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.emulator.wire import CAPTION_MAX, CAPTION_TEXT_MAX, SHOT_HEADER
from renderspec.providers.base import Submitted
from renderspec.providers.dashscope import DashScopeProvider
from renderspec.providers.http import HttpEngine

LOCAL_KEY = "local-emulator"


class LocalProvider(DashScopeProvider):
    name = "local"
    kind = "emulator"

    def __init__(self, engine: HttpEngine, emulator: RunningEmulator, *, poll_interval: float = 0.2) -> None:
        super().__init__(engine, poll_interval=poll_interval)
        self.emulator = emulator

    async def create(self, body: Mapping[str, Any], *, labels: ShotLabels | None = None) -> Submitted:
        """The DashScope create, with the shot's labels in the emulator-only header (when it has some)."""
        return await self._create(body, {SHOT_HEADER: shot_header(labels)} if labels is not None else {})

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


def shot_header(labels: ShotLabels) -> str:
    """The `X-Renderspec-Shot` value: compact JSON in ASCII (non-ASCII escaped, as a header must be),
    `{"shot", "take", "refs": {citation: name}, "matrix": {variable: value}}`.

    Texts are cut to what the emulator keeps; should the whole still be too long for it, only the
    shot and take go.
    """

    def short(text: str) -> str:
        return text[:CAPTION_TEXT_MAX]

    data = {
        "shot": short(labels.shot),
        "take": labels.take,
        "refs": {short(citation): short(name) for citation, name in labels.refs},
        "matrix": {short(name): short(value) for name, value in labels.matrix},
    }
    value = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    if len(value) > CAPTION_MAX:
        value = json.dumps({"shot": data["shot"], "take": labels.take}, ensure_ascii=True, separators=(",", ":"))
    return value
