"""Running the emulator under uvicorn: in the foreground (`renderspec emulator`) or in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import uvicorn

from renderspec.emulator.app import Emulator, EmulatorOptions


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(options: EmulatorOptions, *, host: str, port: int, out: TextIO, log_level: str = "warning") -> None:
    """Blocks until interrupted; the first line on `out` is `listening on http://HOST:PORT`."""
    emulator = Emulator(options)
    sock = _bind(host, port)
    try:
        print(f"listening on {_url(sock, host)}", file=out, flush=True)
        config = uvicorn.Config(emulator.app(), log_level=log_level, lifespan="on", timeout_graceful_shutdown=1)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        emulator.close()


@dataclass
class RunningApp:
    """An ASGI app serving from a background thread on loopback; `url` is its base URL."""

    url: str
    _server: uvicorn.Server
    _thread: threading.Thread
    _sock: socket.socket

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> RunningApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> RunningApp:
    """Serves `app` from a daemon thread and returns once it accepts requests."""
    sock = _bind(host, port)
    config = uvicorn.Config(app, log_level="critical", lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="renderspec-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    return RunningApp(url=_url(sock, host), _server=server, _thread=thread, _sock=sock)


@dataclass
class RunningEmulator:
    """An emulator serving from a background thread; `url` is its base URL."""

    url: str
    emulator: Emulator
    _app: RunningApp

    def stop(self) -> None:
        self._app.stop()
        self.emulator.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    options: EmulatorOptions | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.time,
) -> RunningEmulator:
    """Starts an emulator on a free loopback port and returns once it accepts requests."""
    emulator = Emulator(options or EmulatorOptions(), clock=clock)
    running = serve_in_thread(emulator.app(), host=host, port=port)
    return RunningEmulator(url=running.url, emulator=emulator, _app=running)
