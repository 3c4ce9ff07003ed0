"""The HTTP/WebDAV backend against a real WebDAV server (wsgidav), and against injected transports
for what a well-behaved server will not do on cue: 503s, cut bodies, redirects."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from renderspec.errors import RemoteDenied, RemoteError, RemoteMissing, RemoteUnavailable, SettingsError
from renderspec.providers.http import RetryPolicy
from renderspec.remote.webdav import HttpBackend
from tests.webdav_server import WebdavServer, start_webdav

KEY = "ab" * 32
VIDEO = f"v1/objects/{KEY}/video.mp4"
META = f"v1/objects/{KEY}/meta.json"
BODY = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: more than one chunk
TOKEN_CANARY = "tok-CANARY-7f3a9c1e"
PASSWORD_CANARY = "pw-CANARY-b81d44e0"
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.01)


def key(n: int) -> str:
    return f"{n:064x}"


class Sleeps(list[float]):
    """The injected sleeper: records each delay, waits for none."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[WebdavServer]:
    server = start_webdav(tmp_path / "dav")
    yield server
    server.stop()


@pytest.fixture
def dav_auth(tmp_path: Path) -> Iterator[WebdavServer]:
    server = start_webdav(tmp_path / "dav-auth", users={"alice": PASSWORD_CANARY})
    yield server
    server.stop()


@pytest.fixture
def backends() -> Iterator[Callable[..., HttpBackend]]:
    made: list[HttpBackend] = []

    def make(url: str, env: dict[str, str] | None = None, **options: object) -> HttpBackend:
        backend = HttpBackend(url, env=env or {}, sleep=options.pop("sleep", Sleeps()), **options)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def answering(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    return httpx.MockTransport(record), sent


# Against the real server.


def test_round_trip_through_a_webdav_server(
    dav: WebdavServer, backends: Callable[..., HttpBackend], tmp_path: Path
) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(BODY)
    remote = backends(dav.url + "/cache/")
    (dav.root / "cache").mkdir()

    remote.upload(VIDEO, source)
    remote.write(META, b'{"key": "%s"}' % KEY.encode())

    assert (dav.root / "cache" / VIDEO).read_bytes() == BODY
    assert remote.read(META) == b'{"key": "%s"}' % KEY.encode()
    target = tmp_path / "staged.mp4"
    assert remote.download(VIDEO, target) == len(BODY)
    assert target.read_bytes() == BODY
    assert remote.exists([VIDEO, META, f"v1/objects/{key(1)}/meta.json"]) == {VIDEO, META}
    assert remote.exists([]) == set()

    remote.delete(META)
    remote.delete(META)  # already gone: fine
    assert remote.exists([META, VIDEO]) == {VIDEO}
    with pytest.raises(RemoteMissing, match=r"^GET /cache/v1/objects/(ab)+/meta\.json: not on the remote \(404\)$"):
        remote.read(META)
    with pytest.raises(RemoteMissing):
        remote.download(META, tmp_path / "missing.json")
    assert not (tmp_path / "missing.json").exists()

    assert dav.methods("MKCOL") == ["/cache/v1/", "/cache/v1/objects/", f"/cache/v1/objects/{KEY}/"]
    puts = [seen for seen in dav.log if seen.method == "PUT"]
    assert puts[0].headers["Content-Length"] == str(len(BODY))  # streamed, with its length
    assert all(seen.headers["Accept-Encoding"] == "identity" for seen in dav.log if seen.method == "GET")
    assert remote.requests == len(dav.log)


def test_mkcol_is_sent_once_per_collection(
    dav: WebdavServer, backends: Callable[..., HttpBackend], tmp_path: Path
) -> None:
    remote = backends(dav.url)
    for n in range(6):
        remote.write(f"v1/objects/{key(n)}/video.mp4", b"video")
        remote.write(f"v1/objects/{key(n)}/meta.json", b"{}")

    assert sorted(dav.methods("MKCOL")) == sorted(
        ["/v1/", "/v1/objects/"] + [f"/v1/objects/{key(n)}/" for n in range(6)]
    )
    # a new key costs one refused PUT, one MKCOL and the PUT again; its second file one PUT
    assert len(dav.methods("PUT")) == 6 * 3

    # A fresh process against a remote that has the folders: MKCOL's 405 means "already there".
    dav.log.clear()
    again = backends(dav.url)
    again.write(f"v1/objects/{key(9)}/meta.json", b"{}")
    again.write(f"v1/objects/{key(10)}/meta.json", b"{}")
    assert dav.methods("MKCOL") == ["/v1/", "/v1/objects/", f"/v1/objects/{key(9)}/", f"/v1/objects/{key(10)}/"]


def test_a_collection_removed_behind_the_memo_is_made_again(
    dav: WebdavServer, backends: Callable[..., HttpBackend]
) -> None:
    remote = backends(dav.url)
    remote.write(META, b"{}")
    remote.delete(META)
    (dav.root / "v1" / "objects" / KEY).rmdir()
    remote.write(META, b"{}")
    assert (dav.root / META).read_bytes() == b"{}"


def test_basic_auth_with_the_right_credentials(dav_auth: WebdavServer, backends: Callable[..., HttpBackend]) -> None:
    remote = backends(dav_auth.url, {"RENDERSPEC_REMOTE_USER": "alice", "RENDERSPEC_REMOTE_PASSWORD": PASSWORD_CANARY})
    remote.write(META, b"{}")
    assert remote.read(META) == b"{}"
    assert remote.exists([META]) == {META}
    assert all(seen.headers["Authorization"].startswith("Basic ") for seen in dav_auth.log)


def test_wrong_credentials_are_denied_without_showing_them(
    dav_auth: WebdavServer, backends: Callable[..., HttpBackend]
) -> None:
    remote = backends(
        dav_auth.url, {"RENDERSPEC_REMOTE_USER": "alice", "RENDERSPEC_REMOTE_PASSWORD": "wrong-" + PASSWORD_CANARY}
    )
    with pytest.raises(RemoteDenied, match=r"^PUT /v1/objects/(ab)+/meta\.json was refused \(401\)") as caught:
        remote.write(META, b"{}")
    assert "RENDERSPEC_REMOTE_PASSWORD" in str(caught.value)
    assert PASSWORD_CANARY not in f"{caught.value} {caught.value!r} {caught.value.remote} {remote!r}"

    anonymous = backends(dav_auth.url)
    with pytest.raises(RemoteDenied) as caught:
        anonymous.exists([META])
    assert caught.value.hint == (
        "set RENDERSPEC_REMOTE_TOKEN, or RENDERSPEC_REMOTE_USER and RENDERSPEC_REMOTE_PASSWORD, in the environment"
    )


def test_a_token_is_sent_as_bearer(dav: WebdavServer, backends: Callable[..., HttpBackend]) -> None:
    env = {
        "RENDERSPEC_REMOTE_TOKEN": TOKEN_CANARY,
        "RENDERSPEC_REMOTE_USER": "alice",
        "RENDERSPEC_REMOTE_PASSWORD": "x",
    }
    remote = backends(dav.url, env)
    remote.exists([META])
    assert [seen.headers.get("Authorization") for seen in dav.log] == [f"Bearer {TOKEN_CANARY}"]
    assert TOKEN_CANARY not in repr(remote) + remote.url


# URL rules.


@pytest.mark.parametrize(
    "url",
    [
        "https://dav.example.com/cache",
        "http://127.0.0.1:8080/",
        "http://127.1.2.3/x",
        "http://localhost/",
        "http://[::1]:9/",
    ],
)
def test_https_anywhere_http_only_on_loopback(url: str, backends: Callable[..., HttpBackend]) -> None:
    assert backends(url).url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://dav.example.com/cache", "plain http to another machine"),
        ("http://10.0.0.1/", "plain http to another machine"),
        ("ftp://dav.example.com/", r"is not http\(s\)"),
        ("https://dav.example.com/cache?x=1", "has a query or fragment"),
        ("https://dav.example.com/cache#top", "has a query or fragment"),
        ("https:///cache", "names no host"),
    ],
)
def test_unsafe_or_odd_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        HttpBackend(url, env={})


@pytest.mark.parametrize(
    "url", [f"https://alice:{PASSWORD_CANARY}@dav.example.com/cache", "https://alice@dav.example.com/cache"]
)
def test_a_url_with_credentials_is_refused_pointing_at_the_environment(url: str) -> None:
    with pytest.raises(SettingsError) as caught:
        HttpBackend(url, env={})
    assert str(caught.value) == (
        "the remote URL carries credentials; use https://dav.example.com/cache "
        "(put them in RENDERSPEC_REMOTE_TOKEN, or RENDERSPEC_REMOTE_USER and RENDERSPEC_REMOTE_PASSWORD, in the environment)"
    )


def test_a_user_without_a_password_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match=r"^RENDERSPEC_REMOTE_PASSWORD is not set"):
        HttpBackend("https://dav.example.com/", env={"RENDERSPEC_REMOTE_USER": "alice"})


# What a real server will not do on cue.


def test_a_503_then_a_200_succeeds_after_one_backoff(backends: Callable[..., HttpBackend]) -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, content=b"{}")])
    transport, sent = answering(lambda request: next(answers))
    sleeps = Sleeps()
    remote = backends("https://dav.example.com/", transport=transport, retry=FAST, sleep=sleeps)
    assert remote.read(META) == b"{}"
    assert len(sent) == remote.requests == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.01


def test_retry_after_is_honoured(backends: Callable[..., HttpBackend]) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(201)])
    transport, _ = answering(lambda request: next(answers))
    sleeps = Sleeps()
    backends("https://dav.example.com/", transport=transport, retry=FAST, sleep=sleeps).write(META, b"{}")
    assert sleeps == [7.0]


@pytest.mark.parametrize("operation", ["read", "exists", "write", "delete", "download"])
def test_always_503_is_unavailable_after_exactly_the_policy_attempts(
    operation: str, backends: Callable[..., HttpBackend], tmp_path: Path
) -> None:
    transport, sent = answering(lambda request: httpx.Response(503))
    sleeps = Sleeps()
    remote = backends("https://dav.example.com/", transport=transport, retry=FAST, sleep=sleeps)
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: remote.read(META),
        "exists": lambda: remote.exists([META]),
        "write": lambda: remote.write(META, b"{}"),
        "delete": lambda: remote.delete(META),
        "download": lambda: remote.download(VIDEO, tmp_path / "video.mp4"),
    }
    with pytest.raises(RemoteUnavailable, match=r"answered 503 Service Unavailable$"):
        calls[operation]()
    assert len(sent) == remote.requests == FAST.attempts
    assert len(sleeps) == FAST.attempts - 1
    assert list(tmp_path.iterdir()) == []


def test_network_errors_are_retried_then_unavailable_chained(backends: Callable[..., HttpBackend]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transport, sent = answering(refuse)
    remote = backends("https://dav.example.com/", transport=transport, retry=FAST)
    with pytest.raises(
        RemoteUnavailable, match=r"^HEAD /v1/objects/(ab)+/meta\.json failed \(ConnectError\)$"
    ) as caught:
        remote.exists([META])
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sent) == FAST.attempts


def test_a_body_shorter_than_its_content_length_leaves_no_file(
    backends: Callable[..., HttpBackend], tmp_path: Path
) -> None:
    def short(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(len(BODY))}, stream=httpx.ByteStream(BODY[:1000]))

    transport, sent = answering(short)
    remote = backends("https://dav.example.com/", transport=transport, retry=FAST)
    target = tmp_path / "staged.mp4"
    with pytest.raises(RemoteUnavailable, match=f"was cut: got 1000 of {len(BODY)} bytes$"):
        remote.download(VIDEO, target)
    assert len(sent) == FAST.attempts
    assert not target.exists()
    with pytest.raises(RemoteUnavailable, match="was cut"):
        remote.read(VIDEO, limit=len(BODY))


def test_a_cut_download_that_succeeds_on_retry_is_whole(backends: Callable[..., HttpBackend], tmp_path: Path) -> None:
    answers = iter(
        [
            httpx.Response(200, headers={"Content-Length": str(len(BODY))}, stream=httpx.ByteStream(BODY[:10])),
            httpx.Response(200, content=BODY),
        ]
    )
    transport, _ = answering(lambda request: next(answers))
    target = tmp_path / "staged.mp4"
    assert backends("https://dav.example.com/", transport=transport, retry=FAST).download(VIDEO, target) == len(BODY)
    assert target.read_bytes() == BODY


def test_an_object_larger_than_the_limit_is_not_read(dav: WebdavServer, backends: Callable[..., HttpBackend]) -> None:
    remote = backends(dav.url)
    remote.write(META, b"x" * 100)
    with pytest.raises(RemoteError, match="larger than 99 bytes"):
        remote.read(META, limit=99)
    assert remote.read(META, limit=100) == b"x" * 100


def test_a_redirect_is_not_followed(backends: Callable[..., HttpBackend]) -> None:
    def moved(request: httpx.Request) -> httpx.Response:
        if request.url.host != "dav.example.com":
            return httpx.Response(200, content=b"{}")
        return httpx.Response(302, headers={"Location": "https://elsewhere.example.net/steal"})

    transport, sent = answering(moved)
    remote = backends("https://dav.example.com/", {"RENDERSPEC_REMOTE_TOKEN": TOKEN_CANARY}, transport=transport)
    with pytest.raises(RemoteError, match=r"answered 302 \(a redirect\), which renderspec does not follow"):
        remote.read(META)
    with pytest.raises(RemoteError, match="a redirect"):
        remote.exists([META])
    assert {request.url.host for request in sent} == {"dav.example.com"}


def test_a_put_refused_for_a_missing_parent_makes_it(backends: Callable[..., HttpBackend]) -> None:
    """Servers that answer 403 or 404 (not WebDAV's 409) for a PUT below a missing folder."""
    made: set[str] = set()

    def server(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "MKCOL":
            made.add(path.rstrip("/"))
            return httpx.Response(201)
        return httpx.Response(201 if path.rpartition("/")[0] in made else 403)

    transport, sent = answering(server)
    remote = backends("https://dav.example.com/", transport=transport)
    remote.write(META, b"{}")
    assert [(request.method, request.url.path) for request in sent] == [
        ("PUT", f"/{META}"),
        ("MKCOL", "/v1/"),
        ("MKCOL", "/v1/objects/"),
        ("MKCOL", f"/v1/objects/{KEY}/"),
        ("PUT", f"/{META}"),
    ]
    # Now that the folders are known, a 403 is a refusal, not a missing folder.
    made.clear()
    with pytest.raises(RemoteDenied):
        remote.write(META, b"{}")


def test_secrets_appear_in_no_error_or_log_line(
    dav_auth: WebdavServer, backends: Callable[..., HttpBackend], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    def collect(action: Callable[[], object]) -> None:
        with pytest.raises(RemoteError) as caught:
            action()
        error = caught.value
        texts.extend([str(error), repr(error), error.remote, str(error.hint), str(error.__cause__)])

    denied = backends(
        dav_auth.url, {"RENDERSPEC_REMOTE_USER": "alice", "RENDERSPEC_REMOTE_PASSWORD": PASSWORD_CANARY + "x"}
    )
    collect(lambda: denied.read(META))
    collect(lambda: denied.write(META, b"{}"))
    collect(lambda: denied.exists([META]))

    for answer in (503, 401, 400, 302):
        transport, _ = answering(lambda request, answer=answer: httpx.Response(answer, text=f"echo {request.headers}"))
        for env in (
            {"RENDERSPEC_REMOTE_TOKEN": TOKEN_CANARY},
            {"RENDERSPEC_REMOTE_USER": "u", "RENDERSPEC_REMOTE_PASSWORD": PASSWORD_CANARY},
        ):
            remote = backends("https://dav.example.com/", env, transport=transport, retry=FAST)
            texts.append(repr(remote))
            collect(lambda remote=remote: remote.read(META))
            collect(lambda remote=remote: remote.download(VIDEO, tmp_path / "v.mp4"))
    for url in (f"https://alice:{PASSWORD_CANARY}@dav.example.com/", f"http://alice:{PASSWORD_CANARY}@example.com/"):
        with pytest.raises(SettingsError) as refused:
            HttpBackend(url, env={})
        texts.append(str(refused.value))

    everything = "\n".join(texts + [record.getMessage() for record in caplog.records])
    assert PASSWORD_CANARY not in everything
    assert TOKEN_CANARY not in everything
    for user in ("alice", "u"):
        for password in (PASSWORD_CANARY, PASSWORD_CANARY + "x"):
            assert base64.b64encode(f"{user}:{password}".encode()).decode() not in everything


def test_exists_asks_many_paths_concurrently(dav: WebdavServer, backends: Callable[..., HttpBackend]) -> None:
    remote = backends(dav.url)
    for n in range(0, 40, 3):
        remote.write(f"v1/objects/{key(n)}/meta.json", b"{}")
    paths = [f"v1/objects/{key(n)}/meta.json" for n in range(40)]
    before = remote.requests
    assert remote.exists(paths) == {f"v1/objects/{key(n)}/meta.json" for n in range(0, 40, 3)}
    assert remote.requests - before == 40
