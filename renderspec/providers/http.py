"""The one HTTP engine of every provider: retries, backoff, error translation, safe downloads.

Only this module (and the vendor modules through it) knows httpx; every failure leaves it as one
of renderspec's ProviderErrors, chained with `from`. A create request is billed, so it is sent
again only when the service definitely refused it (a 4xx, a 429 with the service's throttling
code); any other answer, none, or one too large to read is an OutcomeUnknown. Answers are read
into memory only up to MAX_ANSWER bytes.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from renderspec.errors import OutcomeUnknown, ProviderError, Rejected, Unavailable
from renderspec.fsutil import default_mode
from renderspec.providers.base import Secret

log = logging.getLogger("renderspec.providers")
T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
NO_RETRY_CODES = ("Arrearage", "DataInspectionFailed", "InvalidApiKey", "AccessDenied")
# Errors raised before any byte of the request left: safe to resend even a create.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
MAX_RETRY_AFTER = 120.0
MAX_ANSWER = 4 * 2**20  # API answers are a few KB; anything near this is not an answer
_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class AnswerTooLarge(Exception):
    """An API answer passed MAX_ANSWER bytes while it streamed in."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a Retry-After answer wins when it is given."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        return rng.uniform(0, min(self.cap, self.base * 2**attempt))


def default_timeout() -> httpx.Timeout:
    return httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=30.0)


class HttpEngine:
    """Calls one service's API with its key; downloads results without it."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Secret,
        client: httpx.AsyncClient,
        retry: RetryPolicy | None = None,
        sleep: Sleep,
        rng: random.Random | None = None,
        allow_loopback_downloads: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._client = client
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._allow_loopback = allow_loopback_downloads

    def __repr__(self) -> str:
        return f"HttpEngine({self.base_url!r})"

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """A 2xx answer, after retrying what may be retried; raises a ProviderError otherwise.

        A call that is not idempotent (a create, which is billed) is never sent twice unless the
        service definitely refused it: any other answer, or none, is an OutcomeUnknown.
        """
        url = f"{self.base_url}{path}"
        sent_headers = {"Authorization": f"Bearer {self._key.reveal()}", **(headers or {})}

        async def once() -> httpx.Response:
            try:
                response = await self._request(method, url, json=json, params=params, headers=sent_headers)
            except NOT_SENT as error:
                raise Unavailable(f"cannot reach {_host(url)}: {type(error).__name__}") from error
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, AnswerTooLarge) as error:
                if not idempotent:
                    raise _unknown(
                        method, path, f"the connection failed after the request was sent ({_why(error)})"
                    ) from error
                if isinstance(error, AnswerTooLarge):
                    raise Rejected(f"{method} {path}: {error}") from error
                raise Unavailable(f"{type(error).__name__} talking to {_host(url)}") from error
            except httpx.HTTPError as error:
                raise Rejected(f"{method} {path}: {type(error).__name__}") from error
            if response.is_success:
                return response
            failure = _failure(response)
            log.debug("%s %s -> %d %s", method, path, response.status_code, failure.code)
            if not idempotent and not _is_refusal(response.status_code, failure.code):
                raise _unknown(method, path, f"it was answered {failure.message}") from failure
            raise failure

        return await self._with_retries(f"{method} {path}", once)

    async def _request(self, method: str, url: str, **options: Any) -> httpx.Response:
        """The whole answer, read into memory only up to MAX_ANSWER bytes (a service may misbehave)."""
        async with self._client.stream(method, url, **options) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER:
                    raise AnswerTooLarge(f"the answer is larger than {MAX_ANSWER // 2**20} MB; it was not read")
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING]
            return httpx.Response(response.status_code, headers=headers, content=bytes(body), request=response.request)

    async def upload_form(self, url: str, fields: Mapping[str, str], path: Path) -> None:
        """A browser-style form upload to a storage host (never with the API key)."""
        self._check_link(url)

        async def once() -> None:
            try:
                content = await anyio.to_thread.run_sync(path.read_bytes)
            except OSError as error:
                raise Rejected(f"cannot read {path.name} for upload: {error.strerror}") from error
            try:
                response = await self._request("POST", url, data=dict(fields), files={"file": (path.name, content)})
            except (httpx.HTTPError, AnswerTooLarge) as error:
                raise Unavailable(f"upload to {_host(url)} failed ({_why(error)})") from error
            if response.is_success or (response.status_code == 409 and "FileAlreadyExists" in response.text):
                return
            failure = _failure(response)
            if isinstance(failure, Rejected):
                raise Rejected(
                    f"upload of {path.name} refused: {response.status_code} {response.text[:200]}",
                    status=response.status_code,
                )
            raise failure

        await self._with_retries(f"upload of {path.name}", once)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def download(self, url: str, destination: Path) -> int:
        """Streams `url` to `destination` atomically, without the API key; retries cut transfers."""
        return await self._with_retries(f"download from {_host(url)}", lambda: self._download_once(url, destination))

    async def _with_retries(self, what: str, once: Callable[[], Awaitable[T]]) -> T:
        """Runs `once` until it succeeds, raises something other than Unavailable, or attempts run out.

        The one backoff of every call: exponential with full jitter, or the service's Retry-After.
        """
        last: Unavailable | None = None
        for attempt in range(self.retry.attempts):
            if last is not None:
                wait = self.retry.delay(attempt - 1, self._rng, last.retry_after)
                log.info(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    what,
                    last.message,
                    wait,
                    attempt + 1,
                    self.retry.attempts,
                )
                await self._sleep(wait)
            try:
                return await once()
            except Unavailable as error:
                last = error
        assert last is not None
        raise last

    async def _download_once(self, url: str, destination: Path) -> int:
        current = url
        for _ in range(6):
            self._check_link(current)
            try:
                async with self._client.stream("GET", current) as response:
                    if response.is_redirect:
                        current = urljoin(current, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        body = (await _head_of(response, 2000)).decode("utf-8", "replace")
                        kind = Unavailable if response.status_code in RETRY_STATUSES else Rejected
                        expired = "expired" in body.lower()
                        raise kind(
                            f"download answered {response.status_code}{' (the link has expired)' if expired else ''}",
                            status=response.status_code,
                            hint="query the task again for a fresh link" if expired else None,
                        )
                    expected = response.headers.get("content-length")
                    return await _write_stream(
                        response, destination, int(expected) if expected and expected.isdigit() else None
                    )
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                raise Unavailable(f"the download was cut ({type(error).__name__})") from error
        raise Rejected("too many redirects while downloading the result")

    def _check_link(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and self._allow_loopback and _is_loopback(parts.hostname or ""):
            return
        raise Rejected(f"refusing to download from {parts.scheme}://{parts.hostname}: result links must be https")


async def _head_of(response: httpx.Response, limit: int) -> bytes:
    """The first `limit` bytes of a body (an error page), without reading the rest."""
    head = bytearray()
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= limit:
            break
    return bytes(head[:limit])


async def _write_stream(response: httpx.Response, destination: Path, expected: int | None) -> int:
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), default_mode())
            async for chunk in response.aiter_bytes():
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        received = response.num_bytes_downloaded  # as sent, like Content-Length: before any gzip is undone
        if expected is not None and received != expected:
            raise Unavailable(f"the download was cut: got {received} of {expected} bytes")
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return size


def parse_json(response: httpx.Response) -> Any:
    """The answer's JSON; ValueError for anything that is not JSON, nested too deep included."""
    try:
        return response.json()
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_object(response: httpx.Response, *, who: str = "the service") -> dict[str, Any]:
    """A 2xx answer's JSON object; anything else is a bad answer, reported with what was sent back."""
    try:
        answer = parse_json(response)
    except ValueError:
        raise Rejected(f"{who} answered with something that is not usable JSON: {_excerpt(response.text)}") from None
    if not isinstance(answer, dict):
        raise Rejected(f"{who} answered with unexpected JSON: {_excerpt(response.text)}")
    return answer


def _excerpt(text: str) -> str:
    return repr(text[:120] + ("..." if len(text) > 120 else ""))


def _is_refusal(status: int, code: str | None) -> bool:
    """An answer that says the request was rejected, so nothing was made: a 4xx, but a 429 only
    with the service's throttling code (a gateway's bare 429 or 5xx says nothing about the upstream)."""
    if status == 429:
        return bool(code) and (str(code).startswith("Throttling") or "rate_limit" in str(code).lower())
    return 400 <= status < 500


def _unknown(method: str, path: str, what: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"{method} {path}: {what}; the service may or may not have accepted it",
        hint="renderspec looks for the task at the service before sending it again",
    )


def _why(error: BaseException) -> str:
    return str(error) if isinstance(error, AnswerTooLarge) else type(error).__name__


def _failure(response: httpx.Response) -> ProviderError:
    code, message, request_id = _error_fields(response)
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    retryable = status in RETRY_STATUSES or (code or "").startswith("Throttling")
    if any((code or "").startswith(prefix) for prefix in NO_RETRY_CODES):
        retryable = False
    kind = Unavailable if retryable else Rejected
    return kind(
        f"{status} {code or 'error'}: {message}",
        code=code,
        status=status,
        request_id=request_id,
        retry_after=retry_after,
    )


def _error_fields(response: httpx.Response) -> tuple[str | None, str, str | None]:
    try:
        body = parse_json(response)
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return None, text[:300] or response.reason_phrase, None
    if not isinstance(body, dict):
        return None, str(body)[:300], None
    error = body.get("error")
    if isinstance(error, dict):  # APIYI's OpenAI-style error envelope
        code = error.get("code") or error.get("type")
        return (
            text_field(code),
            text_field(error.get("message")) or response.reason_phrase,
            text_field(body.get("request_id")),
        )
    return (
        text_field(body.get("code")),
        text_field(body.get("message")) or response.reason_phrase,
        text_field(body.get("request_id")),
    )


def link_field(value: Any, *, who: str, task_id: str, name: str) -> str | None:
    """A result link from an answer: absent, or a string; anything else is a bad answer."""
    if value is None or isinstance(value, str):
        return value
    raise Rejected(f"{who}'s answer for task {task_id} has a {name} that is not a link: {str(value)[:80]}")


def text_field(value: Any, limit: int = 300) -> str | None:
    """A field of an answer as short text (answers are untrusted: numbers, lists, megabytes)."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)[:limit]


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
