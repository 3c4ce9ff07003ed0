"""The download's own check: a body that is not the length its Content-Length announced is never kept.

The emulator's HTTP server cannot send such a body (its HTTP layer refuses to), so these answers
come from an injected transport.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from renderspec.errors import Unavailable
from renderspec.providers.base import Secret
from renderspec.providers.http import HttpEngine, RetryPolicy

from .support import RecordingSleep

pytestmark = pytest.mark.anyio
LINK = "https://results.example.com/task.mp4?Expires=1&Signature=x"
VIDEO = bytes(range(256)) * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def engine_answering(answer: Callable[[httpx.Request], httpx.Response], sleep: RecordingSleep) -> HttpEngine:
    return HttpEngine(
        base_url="https://api.example.com",
        api_key=Secret("sk-downloads"),
        client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.01),
        sleep=sleep,
    )


async def test_a_body_shorter_than_its_content_length_is_retried_and_never_kept(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def short(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        headers = {"Content-Length": str(len(VIDEO)), "Content-Type": "video/mp4"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(VIDEO[: len(VIDEO) // 3]))

    sleep = RecordingSleep()
    engine = engine_answering(short, sleep)
    with pytest.raises(Unavailable, match=f"^the download was cut: got {len(VIDEO) // 3} of {len(VIDEO)} bytes$"):
        await engine.download(LINK, tmp_path / "video.mp4")
    await engine.aclose()
    assert len(sent) == 3 and len(sleep.delays) == 2
    assert list(tmp_path.iterdir()) == []


async def test_a_body_of_its_content_length_is_kept(tmp_path: Path) -> None:
    def whole(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Length": str(len(VIDEO)), "Content-Type": "video/mp4"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(VIDEO))

    engine = engine_answering(whole, RecordingSleep())
    assert await engine.download(LINK, tmp_path / "video.mp4") == len(VIDEO)
    await engine.aclose()
    assert (tmp_path / "video.mp4").read_bytes() == VIDEO


async def test_a_compressed_body_is_measured_as_sent(tmp_path: Path) -> None:
    """Content-Length counts the bytes on the wire; a storage host may gzip what it sends."""
    packed = gzip.compress(VIDEO)

    def gzipped(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Length": str(len(packed)), "Content-Encoding": "gzip", "Content-Type": "video/mp4"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(packed))

    engine = engine_answering(gzipped, RecordingSleep())
    await engine.download(LINK, tmp_path / "video.mp4")
    await engine.aclose()
    assert (tmp_path / "video.mp4").read_bytes() == VIDEO
