"""The HTTP/WebDAV remote backend: blobs under a base URL, moved with GET, HEAD, PUT, DELETE and MKCOL.

It serves any server that stores PUT bodies and hands them back (nginx's dav module, Apache
mod_dav, wsgidav, rclone serve webdav, a Bazel-style HTTP cache). Credentials come from the
environment only and go to the base URL's host only: redirects are never followed, and a URL that
carries a password, or plain http to anything but this machine, is refused. Every request is
retried under the providers' RetryPolicy where that may help, and every failure leaves this module
as a RemoteError, chained with `from`.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from renderspec.errors import (
    RemoteDenied,
    RemoteError,
    RemoteMissing,
    RemoteUnavailable,
    RemoteUnusable,
    SettingsError,
    StorageError,
    WorkspaceError,
)
from renderspec.providers.base import Secret
from renderspec.providers.http import RETRY_STATUSES, RetryPolicy, default_timeout, retry_after_seconds
from renderspec.remote.backend import MAX_SMALL

log = logging.getLogger("renderspec.remote")
T = TypeVar("T")

TOKEN = "RENDERSPEC_REMOTE_TOKEN"
USER = "RENDERSPEC_REMOTE_USER"
PASSWORD = "RENDERSPEC_REMOTE_PASSWORD"
CHUNK = 2**20
CONNECTIONS = 32
HEADS = 16  # concurrent existence questions: enough to hide latency, few enough not to look like a flood
SMALL_BODY = 64 * 2**10  # what an answer to PUT, HEAD, DELETE or MKCOL may send that is worth draining
IDENTITY = {"Accept-Encoding": "identity"}  # the bytes as stored, so Content-Length counts what we keep


@dataclass(frozen=True, slots=True)
class _Again:
    """An attempt that failed in a way the next one may not: what to raise if none is left."""

    error: RemoteUnavailable
    cause: BaseException | None = None
    retry_after: float | None = None


class _BearerAuth(httpx.Auth):
    """Adds the token at send time, so it lives in no header dict a debugger or repr could show."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request


class HttpBackend:
    """A remote cache on a WebDAV server or a plain HTTP blob store; thread-safe."""

    def __init__(
        self,
        base_url: str,
        *,
        env: Mapping[str, str],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = base_url
        self._base = checked_base(base_url)
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._has_credentials, auth = _auth_from(env)
        self._lock = threading.Lock()
        self._collections: set[str] = set()
        self._base_made = False
        self._base_lock = threading.Lock()
        self.requests = 0
        """Requests sent (every attempt, MKCOLs included): what a benchmark counts."""
        self._client = httpx.Client(
            auth=auth,
            transport=transport,
            timeout=default_timeout(),
            limits=httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS),
            follow_redirects=False,
            event_hooks={"request": [self._count]},
        )

    def __repr__(self) -> str:
        return f"HttpBackend({self.url!r})"

    def exists(self, paths: Collection[str]) -> set[str]:
        """Which of `paths` exist: one HEAD each, at most HEADS at a time; the first failure stops the rest."""
        wanted = sorted(set(paths))
        if not wanted:
            return set()
        with ThreadPoolExecutor(max_workers=min(HEADS, len(wanted)), thread_name_prefix="remote-head") as pool:
            futures = {pool.submit(self._is_present, path): path for path in wanted}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    pool.shutdown(cancel_futures=True)  # no point asking the rest of a remote that failed
                    future.result()
        return {path for future, path in futures.items() if future.result()}

    def read(self, path: str, limit: int = MAX_SMALL) -> bytes:
        """A small object's bytes, never holding more than `limit` of them in memory."""

        def once() -> bytes | _Again:
            with self._client.stream("GET", self._address(path), headers=IDENTITY) as response:
                if again := self._verdict(response, "GET", path):
                    return again
                expected = _content_length(response)
                if expected is not None and expected > limit:
                    raise self._too_large(path, limit)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise self._too_large(path, limit)
                received = _received(response, len(body))
                if expected is not None and received != expected:
                    return self._cut(path, received, expected)
                return bytes(body)

        return self._with_retries("GET", path, once)

    def download(self, path: str, target: Path, limit: int | None = None) -> int:
        """Streams an object into `target`; any failure leaves no `target` behind, never a short file."""

        def once() -> int | _Again:
            with self._client.stream("GET", self._address(path), headers=IDENTITY) as response:
                if again := self._verdict(response, "GET", path):
                    return again
                expected = _content_length(response)
                if limit is not None and expected is not None and expected > limit:
                    raise RemoteUnusable(
                        f"{self._shown(path)} has {expected} bytes, more than {limit}", remote=self.url
                    )
                size = 0
                try:
                    with target.open("wb") as handle:
                        for chunk in response.iter_bytes(CHUNK):
                            handle.write(chunk)
                            size += len(chunk)
                            if limit is not None and size > limit:
                                raise RemoteUnusable(
                                    f"{self._shown(path)} has more than {limit} bytes", remote=self.url
                                )
                except OSError as error:
                    raise StorageError(error, target) from error
                received = _received(response, size)
                if expected is not None and received != expected:
                    return self._cut(path, received, expected)
                return size

        try:
            return self._with_retries("GET", path, once)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def upload(self, path: str, source: Path) -> None:
        """PUTs a file's bytes, streamed from disk with its Content-Length (a video is not read into memory)."""
        try:
            size = source.stat().st_size
        except OSError as error:
            raise WorkspaceError(f"cannot read {source} to upload it: {error.strerror}") from error

        def send() -> httpx.Response | _Again:
            try:
                handle = source.open("rb")
            except OSError as error:
                raise WorkspaceError(f"cannot read {source} to upload it: {error.strerror}") from error
            with handle:
                return self._send("PUT", path, content=_chunks(handle), headers={"Content-Length": str(size)})

        self._put(path, send)

    def write(self, path: str, data: bytes) -> None:
        """PUTs `data` (a meta record, a claim)."""
        self._put(path, functools.partial(self._send, "PUT", path, content=data))

    def delete(self, path: str) -> None:
        """DELETEs `path`; one that is already gone is what was asked for."""
        response = self._with_retries("DELETE", path, functools.partial(self._send, "DELETE", path))
        if not response.is_success and response.status_code != 404:
            raise self._failure(response, "DELETE", path)

    def close(self) -> None:
        self._client.close()

    # What every operation shares: addressing, counting, retrying, translating.

    def _count(self, request: httpx.Request) -> None:
        with self._lock:
            self.requests += 1

    def _address(self, path: str) -> str:
        parts = path.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"not a relative remote path: {path!r}")
        return self._base + "/".join(quote(part, safe="") for part in parts)

    def _is_present(self, path: str) -> bool:
        response = self._with_retries("HEAD", path, functools.partial(self._send, "HEAD", path))
        if response.status_code == 404:
            return False
        if not response.is_success:
            raise self._failure(response, "HEAD", path)
        return True

    def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        collection: bool = False,
    ) -> httpx.Response | _Again:
        """One request whose answer's body is not wanted; the caller judges any status not worth retrying.

        Up to SMALL_BODY of the body is read (so the connection can be kept) and dropped; no more,
        whatever a server sends.
        """
        url = self._address(path) + ("/" if collection else "")  # nginx's MKCOL insists on the slash
        with self._client.stream(method, url, content=content, headers=headers) as response:
            read = 0
            for chunk in () if response.is_stream_consumed else response.iter_raw():  # an injected answer is read
                read += len(chunk)
                if read > SMALL_BODY:
                    break
        if response.status_code in RETRY_STATUSES:
            return self._again(response, method, path)
        return response

    def _with_retries(self, method: str, path: str, once: Callable[[], T | _Again]) -> T:
        """Runs `once` until it gives a result, raises, or the policy's attempts run out.

        The same backoff as the API client: exponential with full jitter, or the server's Retry-After.
        Every httpx error is translated here: network trouble is retried, anything else is not.
        """
        last: _Again | None = None
        for attempt in range(self._retry.attempts):
            if last is not None:
                delay = self._retry.delay(attempt - 1, self._rng, last.retry_after)
                log.info(
                    "%s; retrying in %.1f s (attempt %d of %d)",
                    last.error.message,
                    delay,
                    attempt + 1,
                    self._retry.attempts,
                )
                self._sleep(delay)
            try:
                outcome = once()
            except httpx.TransportError as error:
                outcome = _Again(
                    RemoteUnavailable(f"{method} {self._shown(path)} failed ({type(error).__name__})", remote=self.url),
                    cause=error,
                )
            except httpx.HTTPError as error:
                raise self._error(f"{method} {self._shown(path)} failed ({type(error).__name__})") from error
            if not isinstance(outcome, _Again):
                return outcome
            last = outcome
        assert last is not None, "a RetryPolicy makes at least one attempt"
        raise last.error from last.cause

    def _verdict(self, response: httpx.Response, method: str, path: str) -> _Again | None:
        """None for a 2xx, _Again for a status worth retrying; raises the RemoteError of any other."""
        if response.is_success:
            return None
        if response.status_code in RETRY_STATUSES:
            return self._again(response, method, path)
        raise self._failure(response, method, path)

    def _again(self, response: httpx.Response, method: str, path: str) -> _Again:
        return _Again(
            RemoteUnavailable(
                f"{method} {self._shown(path)} answered {response.status_code} {response.reason_phrase}",
                remote=self.url,
            ),
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )

    def _failure(self, response: httpx.Response, method: str, path: str) -> RemoteError:
        """The one translation of a final HTTP status into renderspec's errors.

        Never quotes the body: a misconfigured server may echo the request's headers into it.
        """
        status = response.status_code
        what = f"{method} {self._shown(path)}"
        if status in (401, 403):
            hint = (
                f"the remote refused the credentials in {TOKEN} or {USER}/{PASSWORD}; check they are current"
                if self._has_credentials
                else f"set {TOKEN}, or {USER} and {PASSWORD}, in the environment"
            )
            return RemoteDenied(f"{what} was refused ({status})", remote=self.url, hint=hint)
        if status == 404:
            return RemoteMissing(f"{what}: not on the remote (404)", remote=self.url)
        if status in RETRY_STATUSES:
            return self._again(response, method, path).error
        if response.is_redirect:
            return RemoteError(
                f"{what} answered {status} (a redirect), which renderspec does not follow",
                remote=self.url,
                hint="credentials go to the remote's own host only; set the remote URL to where the files live",
            )
        return RemoteError(f"{what} answered {status} {response.reason_phrase}", remote=self.url)

    def _cut(self, path: str, received: int, expected: int) -> _Again:
        return _Again(
            RemoteUnavailable(f"GET {self._shown(path)} was cut: got {received} of {expected} bytes", remote=self.url)
        )

    def _too_large(self, path: str, limit: int) -> RemoteError:
        return RemoteUnusable(f"GET {self._shown(path)}: larger than {limit} bytes; it was not read", remote=self.url)

    def _error(self, message: str) -> RemoteError:
        return RemoteError(message, remote=self.url)

    def _shown(self, path: str) -> str:
        """The path as a message shows it: the URL's path, which carries no credential."""
        return urlsplit(self._address(path)).path

    # Writing: PUT, creating parent collections where the server wants them.

    def _put(self, path: str, send: Callable[[], httpx.Response | _Again]) -> None:
        """PUTs, and where the server says the parent is missing, makes it (MKCOL) and PUTs again.

        A WebDAV server answers 409 for a missing parent (some answer 404 or 403). Collections known
        to exist are remembered, so a thousand uploads cost one MKCOL per new key, not three; a 409
        despite the memo (someone removed a folder) forgets it and makes the parents again.
        """
        parents = _parents(path)
        response = self._with_retries("PUT", path, send)
        if not response.is_success and parents and self._is_parent_missing(response.status_code, parents):
            if self._is_known(parents):
                self._forget(parents)  # the memo was wrong: someone removed a folder
            self._make_collections(parents)
            response = self._with_retries("PUT", path, send)
        if not response.is_success:
            raise self._failure(response, "PUT", path)
        self._remember(parents)

    def _is_parent_missing(self, status: int, parents: list[str]) -> bool:
        if status == 409:
            return True
        return status in (403, 404) and not self._is_known(parents)

    def _make_collections(self, parents: list[str]) -> None:
        """MKCOLs each parent not known to exist, top down, one level at a time."""
        for collection in parents:
            if self._is_known([collection]):
                continue
            mkcol = functools.partial(self._send, "MKCOL", collection, collection=True)
            response = self._with_retries("MKCOL", collection, mkcol)
            if response.status_code == 409 and collection == parents[0]:
                if not self._base_made:  # another thread may have made it since this answer was sent
                    self._make_base()  # a new remote on a fresh server: its own folders come first
                response = self._with_retries("MKCOL", collection, mkcol)
            # 405: it exists already (RFC 4918); 301: the server points at its slashed name, so it exists.
            if response.is_success or response.status_code in (301, 405):
                self._remember([collection])
            elif response.status_code == 409:
                raise self._error(f"MKCOL {self._shown(collection)}: the folder above it is not on the remote (409)")
            else:
                raise self._failure(response, "MKCOL", collection)

    def _make_base(self) -> None:
        """MKCOLs the base URL's own folders, from the server's root down (405: there already).

        One thread at a time: parallel MKCOLs of one folder race inside some servers (wsgidav
        answers 500), and the first thread's success serves the others.
        """
        with self._base_lock:
            if not self._base_made:
                self._make_base_folders()

    def _make_base_folders(self) -> None:
        parts = urlsplit(self._base)
        segments = [segment for segment in parts.path.split("/") if segment]
        for depth in range(1, len(segments) + 1):
            path = "/" + "/".join(segments[:depth]) + "/"
            try:
                response = self._client.request("MKCOL", f"{parts.scheme}://{parts.netloc}{path}")
            except httpx.HTTPError as error:
                raise RemoteUnavailable(f"MKCOL {path}: {type(error).__name__}", remote=self.url) from error
            if not (response.is_success or response.status_code in (301, 405)):
                raise self._error(f"MKCOL {path} answered {response.status_code} {response.reason_phrase}")
        self._base_made = True

    def _is_known(self, collections: list[str]) -> bool:
        with self._lock:
            return all(collection in self._collections for collection in collections)

    def _remember(self, collections: list[str]) -> None:
        with self._lock:
            self._collections.update(collections)

    def _forget(self, collections: list[str]) -> None:
        with self._lock:
            self._collections.difference_update(collections)


def checked_base(base_url: str) -> str:
    """The base URL with one trailing slash, or a SettingsError saying what to change."""
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as error:
        raise SettingsError(f"the remote URL is not a URL: {error}") from None
    if "@" in parts.netloc:
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
        raise SettingsError(
            f"the remote URL carries credentials; use {shown}",
            hint=f"put them in {TOKEN}, or {USER} and {PASSWORD}, in the environment",
        )
    if parts.query or parts.fragment or base_url.endswith(("?", "#")):
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"  # a query may carry a token: never shown
        raise SettingsError(f"the remote URL {shown} has a query or fragment; give the folder's URL alone")
    if not host:
        raise SettingsError(f"the remote URL {base_url} names no host")
    scheme = parts.scheme.lower()
    if scheme == "http" and not _is_loopback(host):
        raise SettingsError(
            f"the remote URL {base_url} is plain http to another machine",
            hint="use https; plain http is allowed only to 127.0.0.1, ::1 or localhost",
        )
    if scheme not in ("http", "https"):
        raise SettingsError(f"the remote URL {base_url} is not http(s)")
    return base_url.rstrip("/") + "/"


def _auth_from(env: Mapping[str, str]) -> tuple[bool, httpx.Auth | None]:
    token = env.get(TOKEN, "")
    if token:
        return True, _BearerAuth(Secret(token))
    user, password = env.get(USER, ""), env.get(PASSWORD, "")
    if user and password:
        return True, httpx.BasicAuth(user, password)
    if user or password:
        missing = PASSWORD if user else USER
        raise SettingsError(f"{missing} is not set", hint=f"{USER} and {PASSWORD} go together")
    return False, None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parents(path: str) -> list[str]:
    """`v1/objects/K/video.mp4` → [`v1`, `v1/objects`, `v1/objects/K`]."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: depth + 1]) for depth in range(len(parts))]


def _chunks(handle: IO[bytes]) -> Iterable[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def _received(response: httpx.Response, size: int) -> int:
    """The body's length as Content-Length counts it: as sent, before any Content-Encoding is undone
    (a server may encode despite our Accept-Encoding: identity)."""
    if response.headers.get("content-encoding", "identity").lower() == "identity":
        return size
    return response.num_bytes_downloaded


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
