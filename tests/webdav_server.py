"""A real WebDAV server for tests: wsgidav under cheroot on 127.0.0.1, in a thread, logging every request.

The log keeps each request's full headers (credentials included: this is test code), so a test can
assert what reached the server, and that a secret went only where it should.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: Mapping[str, str]


@dataclass
class WebdavServer:
    url: str
    root: Path
    log: list[Seen] = field(default_factory=list)
    _server: wsgi.Server | None = None
    _thread: threading.Thread | None = None

    def methods(self, method: str) -> list[str]:
        """The paths of every `method` request, in order."""
        return [seen.path for seen in self.log if seen.method == method]

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)


def start_webdav(root: Path, users: Mapping[str, str] | None = None) -> WebdavServer:
    """A WebDAV server rooted at `root`: anonymous, or Basic auth for `users` (name → password)."""
    root.mkdir(parents=True, exist_ok=True)
    user_mapping: dict[str, Any] = (
        {"*": {name: {"password": password} for name, password in users.items()}} if users else {"*": True}
    )
    app = WsgiDAVApp(
        {
            "provider_mapping": {"/": str(root)},
            "simple_dc": {"user_mapping": user_mapping},
            # Basic only, so a 401 asks for what the client sends.
            "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
            "dir_browser": {"enable": False},
            "verbose": 0,
            "logging": {"enable": False},
        }
    )
    log: list[Seen] = []

    def logged(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        log.append(Seen(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), headers))
        answer: Iterable[bytes] = app(environ, start_response)
        return answer

    server = wsgi.Server(("127.0.0.1", 0), logged, numthreads=8, shutdown_timeout=1)
    server.expiration_interval = 0.05  # how often the loop looks for stop(): 0.5 s by default, per test
    server.prepare()  # binds, so the port is known before the thread starts
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name=f"webdav-{port}", daemon=True)
    thread.start()
    return WebdavServer(url=f"http://127.0.0.1:{port}", root=root, log=log, _server=server, _thread=thread)
