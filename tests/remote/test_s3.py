"""The S3 backend against moto's S3 server on loopback, and against a scripted server for the answers moto never gives."""

from __future__ import annotations

import hashlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from renderspec.errors import (
    RemoteDenied,
    RemoteError,
    RemoteMissing,
    RemoteUnavailable,
    RemoteUnusable,
    RenderspecError,
)
from renderspec.providers.http import RetryPolicy
from renderspec.remote.s3 import S3Backend, listing_prefixes, receive

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
CANARY = "canary-Zx9Qv7Lm2Pw4Rt6Yb8Nc0Kd"
ONCE = RetryPolicy(attempts=1)


def key(number: int) -> str:
    return hashlib.sha256(str(number).encode()).hexdigest()


def meta(number: int) -> str:
    return f"v1/objects/{key(number)}/meta.json"


def video(number: int) -> str:
    return f"v1/objects/{key(number)}/video.mp4"


@pytest.fixture(scope="module")
def endpoint(s3_endpoint: str) -> str:
    return s3_endpoint


def new_backend(endpoint: str, *, prefix: str = "team/board", env: dict[str, str] | None = None) -> S3Backend:
    """A backend on a fresh bucket of its own (moto's server keeps every bucket for the module)."""
    backend = S3Backend(f"renders-{uuid.uuid4().hex[:12]}", prefix, env=env or ENV, endpoint=endpoint, retry=ONCE)
    backend._client.create_bucket(Bucket=backend.bucket)
    backend.requests = 0
    return backend


@pytest.fixture
def backend(endpoint: str) -> Iterator[S3Backend]:
    backend = new_backend(endpoint)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def populated(endpoint: str) -> Iterator[S3Backend]:
    """300 entries: 0-199 whole, 200-249 a video without its meta, 250-299 only a meta; 300-399 never written."""
    backend = new_backend(endpoint)
    paths = [video(n) for n in range(250)] + [meta(n) for n in range(200)] + [meta(n) for n in range(250, 300)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda path: backend.write(path, b"x"), paths))
    yield backend
    backend.close()


def test_url_names_bucket_and_prefix_without_slashes(endpoint: str) -> None:
    assert S3Backend("b", "/team/board/", env=ENV, endpoint=endpoint).url == "s3://b/team/board"
    assert S3Backend("b", "", env=ENV, endpoint=endpoint).url == "s3://b"


@pytest.mark.parametrize("prefix", ["team/board", ""])
def test_a_round_trip_of_every_operation(endpoint: str, tmp_path: Path, prefix: str) -> None:
    backend = new_backend(endpoint, prefix=prefix)
    source = tmp_path / "render.mp4"
    source.write_bytes(b"\x00video" * 300_000)  # ~2 MB: the download takes several chunks
    backend.upload(video(1), source)
    backend.write(meta(1), b'{"key": 1}')

    assert backend.read(meta(1)) == b'{"key": 1}'
    target = tmp_path / "staged.mp4"
    assert backend.download(video(1), target) == source.stat().st_size
    assert target.read_bytes() == source.read_bytes()
    assert backend.exists([meta(1), video(1), meta(2)]) == {meta(1), video(1)}
    stored = {item["Key"] for item in backend._client.list_objects_v2(Bucket=backend.bucket)["Contents"]}
    assert stored == {f"{prefix}/{meta(1)}" if prefix else meta(1), f"{prefix}/{video(1)}" if prefix else video(1)}

    backend.delete(meta(1))
    backend.delete(meta(1))  # absent is not an error
    with pytest.raises(RemoteMissing, match=r"meta\.json"):
        backend.read(meta(1))
    with pytest.raises(RemoteMissing):
        backend.download(meta(1), tmp_path / "never.json")
    assert backend.exists([meta(1), video(1)]) == {video(1)}
    backend.close()


def test_exists_of_nothing_asks_nothing(backend: S3Backend) -> None:
    assert backend.exists([]) == set()
    assert backend.requests == 0


def test_exists_of_a_few_paths_heads_each_and_tells_a_video_without_its_meta(populated: S3Backend) -> None:
    asked = [meta(0), video(0), meta(210), video(210), meta(260), video(260), meta(350), video(350)]
    before = populated.requests
    assert populated.exists(asked) == {meta(0), video(0), video(210), meta(260)}
    assert populated.requests - before == len(asked)


def test_exists_of_many_paths_lists_at_most_one_page_per_hex_digit(populated: S3Backend) -> None:
    asked = [meta(n) for n in range(400)] + [video(n) for n in range(400)]
    before = populated.requests
    found = populated.exists(asked)
    assert found == {meta(n) for n in range(200)} | {meta(n) for n in range(250, 300)} | {video(n) for n in range(250)}
    assert populated.requests - before == 16  # 550 objects: one listing per first hex digit of the key


def test_exists_of_many_paths_follows_every_page(populated: S3Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(populated, "page_size", 20)
    asked = [meta(n) for n in range(400)]
    before = populated.requests
    assert populated.exists(asked) == {meta(n) for n in range(200)} | {meta(n) for n in range(250, 300)}
    stored = {digit: 0 for digit in "0123456789abcdef"}  # objects under each listed prefix, videos included
    for n in range(300):
        stored[key(n)[0]] += (n < 250) + (n < 200 or n >= 250)
    assert populated.requests - before == sum(-(-count // 20) for count in stored.values())


def test_listing_prefixes_split_the_common_prefix_by_its_next_character() -> None:
    names = [f"p/v1/objects/{key(n)}/meta.json" for n in range(100)]
    assert listing_prefixes(names) == [f"p/v1/objects/{digit}" for digit in "0123456789abcdef"]
    assert listing_prefixes(["p/v1/a", "p/v1/ab", "p/v1/ac"]) == ["p/v1/a"]  # a name that is the prefix covers all
    assert listing_prefixes(["p/x1", "p/x2", "p/y"]) == ["p/x", "p/y"]


def test_read_refuses_an_object_over_the_limit(backend: S3Backend) -> None:
    backend.write("v1/objects/big/meta.json", b"m" * 100)
    with pytest.raises(RemoteError, match="100 bytes") as caught:
        backend.read("v1/objects/big/meta.json", limit=99)
    assert type(caught.value) is RemoteUnusable  # that entry is refused; the remote stays in use
    assert backend.read("v1/objects/big/meta.json", limit=100) == b"m" * 100


class ShortBody:
    """A body whose connection ended early without an error: what the chunk loop itself must notice."""

    def __init__(self, data: bytes) -> None:
        self.data, self.closed = data, False

    def read(self, amt: int | None = None, /) -> bytes:
        chunk, self.data = self.data[: amt or len(self.data)], self.data[amt or len(self.data) :]
        return chunk

    def close(self) -> None:
        self.closed = True


def test_a_short_body_is_refused_and_its_file_removed(tmp_path: Path) -> None:
    target = tmp_path / "staged.mp4"
    body = ShortBody(b"v" * 10)
    with pytest.raises(RemoteUnavailable, match="10 of 25 bytes"):
        receive(body, target, 25, "s3://b/v1/objects/k/video.mp4", "s3://b")
    assert not target.exists()
    assert body.closed
    assert receive(ShortBody(b"v" * 25), target, 25, "s3://b/k", "s3://b") == 25


class Scripted(BaseHTTPRequestHandler):
    """Answers every request with the server's `status`, `body` and `length` (a Content-Length that may lie)."""

    def do_GET(self) -> None:
        script: dict[str, object] = self.server.script  # type: ignore[attr-defined]
        body = bytes(script["body"])  # type: ignore[call-overload]
        self.send_response(int(script["status"]))  # type: ignore[call-overload]
        self.send_header("Content-Length", str(script.get("length", len(body))))
        self.send_header("Content-Type", "application/xml")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    do_HEAD = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Callable[..., S3Backend]]:
    """A backend whose server answers as told: statuses and bodies moto never sends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def make(
        status: int, body: bytes = b"", *, length: int | None = None, env: dict[str, str] | None = None
    ) -> S3Backend:
        server.script = {"status": status, "body": body} | ({"length": length} if length is not None else {})  # type: ignore[attr-defined]
        return S3Backend(
            "renders", "p", env=env or ENV, endpoint=f"http://127.0.0.1:{server.server_address[1]}", retry=ONCE
        )

    yield make
    server.shutdown()
    server.server_close()


def error_xml(code: str, message: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


def test_a_body_cut_short_by_the_server_is_refused(scripted: Callable[..., S3Backend], tmp_path: Path) -> None:
    backend = scripted(200, b"v" * 1000, length=5000)
    target = tmp_path / "staged.mp4"
    with pytest.raises(RemoteUnavailable):
        backend.download("v1/objects/k/video.mp4", target)
    assert not target.exists()
    with pytest.raises(RemoteUnavailable):
        backend.read("v1/objects/k/meta.json")


@pytest.mark.parametrize("code", ["AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"])
def test_refused_credentials_are_denied_with_a_hint_naming_the_variables(
    scripted: Callable[..., S3Backend], code: str
) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": CANARY, "AWS_SESSION_TOKEN": CANARY + "tok"}
    backend = scripted(403, error_xml(code, f"the server echoed {CANARY} back"), env=env)
    with pytest.raises(RemoteDenied) as caught:
        backend.read("v1/objects/k/meta.json")
    text = str(caught.value)
    assert "s3://renders/p/v1/objects/k/meta.json" in text
    assert "AWS_SECRET_ACCESS_KEY" in text and "AWS_PROFILE" in text
    assert CANARY not in text
    with pytest.raises(RemoteDenied):
        backend.exists(["v1/objects/k/meta.json"])  # a HEAD's 403 carries no code: the status decides


def test_server_errors_after_the_retries_are_unavailable(scripted: Callable[..., S3Backend]) -> None:
    backend = scripted(503, error_xml("SlowDown", f"slow down, {CANARY}"), env=ENV | {"AWS_SECRET_ACCESS_KEY": CANARY})
    with pytest.raises(RemoteUnavailable) as caught:
        backend.write("v1/objects/k/meta.json", b"{}")
    assert "SlowDown" in str(caught.value)
    assert CANARY not in str(caught.value)
    assert backend.requests == 1  # RetryPolicy(attempts=1): the first try is the only one


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_endpoint_is_unavailable(tmp_path: Path) -> None:
    env = ENV | {"AWS_SECRET_ACCESS_KEY": CANARY}
    backend = S3Backend("renders", "p", env=env, endpoint=f"http://127.0.0.1:{closed_port()}", retry=ONCE)
    calls: list[Callable[[], object]] = [
        lambda: backend.exists([meta(1)]),
        lambda: backend.exists([meta(n) for n in range(100)]),
        lambda: backend.read(meta(1)),
        lambda: backend.download(video(1), tmp_path / "v.mp4"),
        lambda: backend.write(meta(1), b"{}"),
        lambda: backend.delete(meta(1)),
    ]
    for call in calls:
        with pytest.raises(RemoteUnavailable) as caught:
            call()
        assert "s3://renders/p" in str(caught.value)
        assert CANARY not in str(caught.value)
        assert isinstance(caught.value.__cause__, Exception)


@pytest.mark.parametrize("many", [False, True])
def test_a_missing_bucket_is_named(endpoint: str, many: bool) -> None:
    backend = S3Backend("no-such-bucket", "p", env=ENV | {"AWS_SECRET_ACCESS_KEY": CANARY}, endpoint=endpoint)
    paths = [meta(n) for n in range(100 if many else 3)]
    with pytest.raises(RemoteError, match="bucket 'no-such-bucket' does not exist") as caught:
        backend.exists(paths)
    assert not isinstance(caught.value, RemoteMissing)
    assert CANARY not in str(caught.value)
    with pytest.raises(RemoteError, match="does not exist"):
        backend.read(meta(1))


def test_half_a_key_pair_is_denied_before_any_request(endpoint: str) -> None:
    with pytest.raises(RemoteDenied, match="AWS_SECRET_ACCESS_KEY is not") as caught:
        S3Backend("b", "", env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}, endpoint=endpoint)
    assert "AKIDEXAMPLE" not in str(caught.value)
    with pytest.raises(RemoteDenied, match="AWS_ACCESS_KEY_ID is not"):
        S3Backend("b", "", env={"AWS_SECRET_ACCESS_KEY": CANARY}, endpoint=endpoint)


def test_the_secret_never_shows_in_errors_or_repr(endpoint: str, tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": CANARY, "AWS_SESSION_TOKEN": CANARY + "-token"}
    backend = new_backend(endpoint, env=env)
    backend.write("v1/objects/big/meta.json", b"m" * 10)
    failures: list[Callable[[], object]] = [
        lambda: backend.read(meta(1)),
        lambda: backend.read("v1/objects/big/meta.json", limit=1),
        lambda: backend.download(video(1), tmp_path / "v.mp4"),
        lambda: backend.upload(video(1), tmp_path / "absent.mp4"),
    ]
    texts = [repr(backend), backend.url]
    for failure in failures:
        with pytest.raises(RenderspecError) as caught:
            failure()
        texts.append(str(caught.value))
    assert all(CANARY not in text for text in texts), texts


def test_an_unknown_profile_is_denied(endpoint: str) -> None:
    with pytest.raises(RemoteDenied, match="AWS_PROFILE"):
        S3Backend("b", "", env={"AWS_PROFILE": "renderspec-no-such-profile"}, endpoint=endpoint)


def test_endpoint_and_region_come_from_the_environment_mapping(populated: S3Backend, endpoint: str) -> None:
    env = ENV | {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "eu-west-1"}
    backend = S3Backend(populated.bucket, "team/board", env=env)
    assert backend._client.meta.region_name == "eu-west-1"
    assert backend.exists([meta(0), meta(210)]) == {meta(0)}
    backend.close()
