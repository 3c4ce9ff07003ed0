"""A gateway in front of the emulator, as APIYI or any proxy is in front of the real service.

It forwards every request upstream, except that a create can be answered with a gateway error
after it was forwarded (the upstream made the task, the client never hears of it), or held without
being forwarded until the test releases it (a create that hangs before it reaches the service).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from renderspec.emulator.server import serve_in_thread

GATEWAY_TIMEOUT = "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>"


class Gateway:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.create_status: int | None = None  # answer forwarded creates with this (None: pass the answer on)
        self.hold_creates = False  # never forward creates (until `release` is set)
        self.release = threading.Event()
        self.creates_seen = 0
        self.url = ""
        self.rewrite: Callable[[Request, httpx.Response], Response | None] | None = None
        """A test's own answer in place of the upstream's (None keeps the upstream's)."""

    async def forward(self, request: Request) -> Response:
        is_create = request.method == "POST" and request.url.path.endswith("/video-synthesis")
        if is_create:
            self.creates_seen += 1
            while self.hold_creates and not self.release.is_set():
                await anyio.sleep(0.01)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(
                request.method,
                f"{self.upstream}{request.url.path}",
                params=request.query_params,
                content=await request.body(),
                headers=headers,
            )
        if is_create and self.create_status is not None:
            return Response(GATEWAY_TIMEOUT, status_code=self.create_status, media_type="text/html")
        if self.rewrite is not None and (replaced := self.rewrite(request, answer)) is not None:
            return replaced
        keep = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        return Response(answer.content, status_code=answer.status_code, headers=keep)


@contextmanager
def gateway(upstream: str) -> Iterator[Gateway]:
    made = Gateway(upstream)
    app = Starlette(routes=[Route("/{path:path}", made.forward, methods=["GET", "POST", "HEAD"])])
    with serve_in_thread(app) as running:
        made.url = running.url
        try:
            yield made
        finally:
            made.release.set()
