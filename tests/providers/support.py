"""Providers against a real emulator on loopback, with a sleeper that records and hurries."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.providers.apiyi import ApiyiProvider
from renderspec.providers.base import Provider, Secret, TaskStatus
from renderspec.providers.dashscope import DashScopeProvider
from renderspec.providers.http import HttpEngine, RetryPolicy

KEY = "sk-test-5f3c9a1e7d2b4c6f8a0e"
REFS = Path(__file__).resolve().parents[2] / "specs" / "refs"


class RecordingSleep:
    """Records every requested delay and sleeps at most a few milliseconds of it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await anyio.sleep(min(seconds, 0.005))


class ManualClock:
    """The emulator's clock in a test: still until `advance` moves it."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def emulator(*, clock: Callable[[], float] | None = None, **options: Any) -> Iterator[RunningEmulator]:
    options.setdefault("latency", 0.2)
    if clock is None:
        with start_in_thread(EmulatorOptions(**options)) as running:
            yield running
    else:
        with start_in_thread(EmulatorOptions(**options), clock=clock) as running:
            yield running


def engine(
    url: str, *, key: str = KEY, sleep: RecordingSleep | None = None, attempts: int = 8, read_timeout: float = 30.0
) -> HttpEngine:
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=read_timeout), follow_redirects=False)
    return HttpEngine(
        base_url=url,
        api_key=Secret(key),
        client=client,
        retry=RetryPolicy(attempts=attempts, base=0.05, cap=0.2),
        sleep=sleep or RecordingSleep(),
        rng=random.Random(7),
        allow_loopback_downloads=True,
    )


OPEN: list[Provider] = []


def provider(flavour: str, url: str, **kwargs: Any) -> Provider:
    """A provider closed by the `close_providers` fixture even when its test fails."""
    made: Provider
    if flavour == "dashscope":
        made = DashScopeProvider(engine(url, **kwargs), poll_interval=0.05)
    else:
        made = ApiyiProvider(engine(url, **kwargs), poll_interval=0.05, data_uri_max_bytes=10 * 2**20)
    OPEN.append(made)
    return made


async def close_all() -> None:
    while OPEN:
        await OPEN.pop().aclose()


async def upload_all(client: Provider, model: str = "wan2.7-r2v") -> dict[str, str]:
    from renderspec.assets import AssetFacts

    links = {}
    for name in ("mia.png", "mia.wav", "bottle.mp4", "start.png"):
        facts = AssetFacts(REFS, None).facts([name])[name]
        assert facts is not None
        links[name] = await client.upload(REFS / name, facts.sha256, model)
    return links


def body(
    links: dict[str, str],
    *,
    duration: int = 2,
    prompt: str = "image 1 holds the bottle from video 1",
    **parameters: Any,
) -> dict[str, Any]:
    return {
        "model": "wan2.7-r2v",
        "input": {
            "prompt": prompt,
            "media": [
                {"type": "reference_image", "url": links["mia.png"], "reference_voice": links["mia.wav"]},
                {"type": "reference_video", "url": links["bottle.mp4"]},
            ],
        },
        "parameters": {
            "resolution": "720P",
            "ratio": "16:9",
            "duration": duration,
            "prompt_extend": False,
            "watermark": False,
            **parameters,
        },
    }


async def wait_for_final(client: Provider, task_id: str, limit: float = 120.0) -> TaskStatus:
    """Polls until the task ends, as the executor would; `limit` is only a net under a hung emulator."""
    with anyio.fail_after(limit):
        while True:
            status = await client.query(task_id)
            if status.state.is_final:
                return status
            await anyio.sleep(0.05)


def emulator_tasks(running: RunningEmulator) -> list[dict[str, Any]]:
    return list(httpx.get(f"{running.url}/_emulator/tasks").json()["tasks"])
