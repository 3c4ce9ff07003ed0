"""A hostile or unlucky teammate against the remote cache: poisoned entries, odd files, bad settings, lost servers.

Most tests use a shared folder and the free local provider (quick, and the tier's verification is
the same for every backend); the spend guard's tests use the paid DashScope client against the
emulator, counting creates. Every test asserts what a user would notice: exit codes, one clear
line per problem, nothing unverified in renders/ or the cache, no secret anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for, run_cli, write_png

SAFETY_NET = 60.0  # a net only: a test that hangs fails here instead of hanging the suite

SPEC = """
[defaults]
resolution = "720P"
duration = 2
seed = 1

[refs.mia]
image = "refs/mia.png"

[[shots]]
id = "one"
media = ["mia"]
prompt = "{{ mia }} waves."

[[shots]]
id = "twin"
media = ["mia"]
prompt = "{{ mia }} waves."

[[shots]]
id = "other"
media = ["mia"]
prompt = "{{ mia }} smiles."
duration = 3
"""
LOCAL = {"RENDERSPEC_PROVIDER": "local"}


def settings_text(remote: str | None, extra: str = "") -> str:
    text = "[renderspec]\npoll_interval = 0.05\n"
    if remote is not None:
        text += f'\n[renderspec.remote]\nurl = "{remote}"\n{extra}'
    return text


def make_project(root: Path, remote: str | None, extra: str = "") -> Path:
    """Three shots: `one` and `twin` ask for the very same render (one key), `other` is longer."""
    write_png(root / "specs" / "refs" / "mia.png")
    (root / "specs" / "s.toml").write_text(SPEC)
    (root / "renderspec.toml").write_text(settings_text(remote, extra))
    return root


def clone(source: Path, target: Path, remote: str | None, extra: str = "") -> Path:
    """What `git clone` gives a teammate: specs, settings and the lock; no cache, no renders."""
    shutil.copytree(source / "specs", target / "specs")
    if (source / "renderspec.lock").exists():
        shutil.copy2(source / "renderspec.lock", target / "renderspec.lock")
    (target / "renderspec.toml").write_text(settings_text(remote, extra))
    return target


def plan_of(project: Path, env: dict[str, str], *args: str) -> dict[str, dict[str, object]]:
    run = run_cli("plan", "--json", *args, cwd=project, env=env)
    assert run.code == 0, run.err
    return {shot["id"]: shot for shot in json.loads(run.out)["shots"]}


def keys_of(project: Path, env: dict[str, str]) -> dict[str, str]:
    return {shot_id: str(shot["key"]) for shot_id, shot in plan_of(project, env, "--no-remote").items()}


def cached_keys(project: Path) -> set[str]:
    objects = project / "cache" / "objects"
    return {path.parent.name for path in objects.glob("??/*/meta.json")} if objects.exists() else set()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Repository A, built once with the local provider and shared through a folder."""
    base = tmp_path_factory.mktemp("built")
    remote = base / "remote"
    remote.mkdir()
    a = make_project(base / "a", str(remote))
    run = run_cli("build", cwd=a, env=LOCAL)
    assert run.code == 0, run.out + run.err
    return a, remote


@pytest.fixture
def shared(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of repository A and of its remote folder, for one test to tamper with."""
    a, remote = tmp_path / "a", tmp_path / "remote"
    shutil.copytree(built[0], a, symlinks=True)
    shutil.copytree(built[1], remote)
    (a / "renderspec.toml").write_text(settings_text(str(remote)))
    return a, remote


def entry(remote: Path, key: str) -> Path:
    return remote / "v1" / "objects" / key


def rewrite_meta(remote: Path, name: str, **changes: object) -> None:
    path = entry(remote, name) / "meta.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def flip_a_byte(video: Path) -> None:
    """Same size, other bytes: what a failing disk or a careless teammate leaves."""
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF
    video.write_bytes(bytes(data))


# -- shots that share a key ------------------------------------------------------------------


def test_shots_sharing_a_key_are_each_materialised_when_fetched(shared: tuple[Path, Path], tmp_path: Path) -> None:
    a, remote = shared
    b = clone(a, tmp_path / "b", str(remote))
    built = run_cli("build", "--json", cwd=b, env=LOCAL)
    assert built.code == 0, built.err
    document = json.loads(built.out)
    assert [shot["id"] for shot in document["shots"]] == ["one", "twin", "other"]
    assert sorted(path.name for path in (b / "renders").iterdir()) == ["one.mp4", "other.mp4", "twin.mp4"]
    assert (b / "renders" / "one.mp4").read_bytes() == (a / "renders" / "one.mp4").read_bytes()
    c = clone(a, tmp_path / "c", str(remote))
    pulled = run_cli("pull", "--json", cwd=c, env=LOCAL)
    assert pulled.code == 0, pulled.err
    assert [shot["id"] for shot in json.loads(pulled.out)["shots"]] == ["one", "twin", "other"]
    assert sorted(path.name for path in (c / "renders").iterdir()) == ["one.mp4", "other.mp4", "twin.mp4"]


def test_shots_sharing_a_refused_key_keep_their_own_ids(shared: tuple[Path, Path], tmp_path: Path) -> None:
    a, remote = shared
    keys = keys_of(a, LOCAL)
    flip_a_byte(entry(remote, keys["one"]) / "video.mp4")
    b = clone(a, tmp_path / "b", str(remote))
    pulled = run_cli("pull", cwd=b, env=LOCAL)
    assert pulled.code == 1 and "(one, twin)" in pulled.out, pulled.out + pulled.err
    built = run_cli("build", "--json", cwd=b, env=LOCAL)
    assert built.code == 0, built.err
    assert [shot["id"] for shot in json.loads(built.out)["shots"]] == ["one", "twin", "other"]
    assert sorted(path.name for path in (b / "renders").iterdir()) == ["one.mp4", "other.mp4", "twin.mp4"]
    assert built.err.count(keys["one"]) == 1, built.err


def test_shots_sharing_a_damaged_local_entry_keep_their_own_ids(shared: tuple[Path, Path]) -> None:
    a, _remote = shared
    keys = keys_of(a, LOCAL)
    video = a / "cache" / "objects" / keys["one"][:2] / keys["one"] / "video.mp4"
    video.chmod(0o644)
    flip_a_byte(video)
    (a / "renders" / "one.mp4").unlink()  # so the cached copy is read, and found damaged
    built = run_cli("build", "--json", "--no-remote", cwd=a, env=LOCAL)
    assert built.code == 0, built.err
    assert [shot["id"] for shot in json.loads(built.out)["shots"]] == ["one", "twin", "other"]
    assert sorted(path.name for path in (a / "renders").iterdir()) == ["one.mp4", "other.mp4", "twin.mp4"]


# -- poisoned entries ------------------------------------------------------------------------


def poison_not_json(remote: Path, key: str, other: str) -> None:
    (entry(remote, key) / "meta.json").write_text("{not json")


def poison_huge(remote: Path, key: str, other: str) -> None:
    meta = json.loads((entry(remote, key) / "meta.json").read_text())
    meta["padding"] = "x" * (5 * 2**20)
    (entry(remote, key) / "meta.json").write_text(json.dumps(meta))


def poison_deep(remote: Path, key: str, other: str) -> None:
    (entry(remote, key) / "meta.json").write_text("[" * 200_000 + "]" * 200_000)


def poison_other_key(remote: Path, key: str, other: str) -> None:
    rewrite_meta(remote, key, key=other)


def poison_format(remote: Path, key: str, other: str) -> None:
    rewrite_meta(remote, key, format=2)


def poison_long_format(remote: Path, key: str, other: str) -> None:
    rewrite_meta(remote, key, format="\x1b[2J" + "A" * 100_000)


def poison_signature_type(remote: Path, key: str, other: str) -> None:
    rewrite_meta(remote, key, signature={"not": "a string"})


def poison_other_video(remote: Path, key: str, other: str) -> None:
    """The request hashes to the key, the record matches the video: but it is `other`'s (3 s) video."""
    theirs = json.loads((entry(remote, other) / "meta.json").read_text())
    shutil.copy2(entry(remote, other) / "video.mp4", entry(remote, key) / "video.mp4")
    rewrite_meta(remote, key, video_size=theirs["video_size"], video_sha256=theirs["video_sha256"])


def poison_same_size(remote: Path, key: str, other: str) -> None:
    flip_a_byte(entry(remote, key) / "video.mp4")


def poison_not_mp4(remote: Path, key: str, other: str) -> None:
    data = b"GIF89a" + os.urandom(3000)
    (entry(remote, key) / "video.mp4").write_bytes(data)
    rewrite_meta(remote, key, video_size=len(data), video_sha256=hashlib.sha256(data).hexdigest())


def poison_payload(remote: Path, key: str, other: str) -> None:
    meta = json.loads((entry(remote, key) / "meta.json").read_text())
    meta["payload"]["request"]["input"]["prompt"] = "something else"
    (entry(remote, key) / "meta.json").write_text(json.dumps(meta))


def poison_video_dir(remote: Path, key: str, other: str) -> None:
    (entry(remote, key) / "video.mp4").unlink()
    (entry(remote, key) / "video.mp4").mkdir()


def poison_video_symlink_outside(remote: Path, key: str, other: str) -> None:
    outside = remote.parent / "elsewhere.mp4"
    shutil.copy2(entry(remote, other) / "video.mp4", outside)
    (entry(remote, key) / "video.mp4").unlink()
    (entry(remote, key) / "video.mp4").symlink_to(outside)


POISONS = {
    "not-json": (poison_not_json, "not JSON"),
    "huge-meta": (poison_huge, "larger than"),
    "deeply-nested": (poison_deep, "not JSON"),
    "names-another-key": (poison_other_key, "another key"),
    "format-2": (poison_format, "format 2"),
    "long-format": (poison_long_format, "format"),
    "signature-not-a-string": (poison_signature_type, None),  # no signing key here: the field is ignored
    "another-shots-video": (poison_other_video, "not what the shot asks for"),
    "same-size-other-bytes": (poison_same_size, "sha256"),
    "not-an-mp4": (poison_not_mp4, "not what the shot asks for"),
    "payload-edited": (poison_payload, "does not hash"),
    "video-is-a-folder": (poison_video_dir, None),
    "video-symlinked-outside": (poison_video_symlink_outside, "bytes"),
}


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poisoned_entry_is_refused_once_and_the_rest_still_travel(
    shared: tuple[Path, Path], tmp_path: Path, poison: str
) -> None:
    a, remote = shared
    keys = keys_of(a, LOCAL)
    damage, why = POISONS[poison]
    damage(remote, keys["one"], keys["other"])
    b = clone(a, tmp_path / "b", str(remote))

    pulled = run_cli("pull", cwd=b, env=LOCAL)
    assert "Traceback" not in pulled.err and "internal error" not in pulled.err, pulled.err
    if why is None and poison == "signature-not-a-string":
        assert pulled.code == 0, pulled.err
        return
    assert pulled.code == 1, pulled.out + pulled.err
    # One bad entry is that entry's problem: the remote stays usable for every other key.
    assert "cannot use the remote cache" not in pulled.err, pulled.err
    assert "pulled 1" in pulled.out, pulled.out
    assert (b / "renders" / "other.mp4").exists()
    # Reported once, though two shots share the key; and in one short line.
    assert len([line for line in pulled.err.splitlines() if keys["one"] in line]) == 1, pulled.err
    if why is not None:
        assert why in pulled.err, pulled.err
    assert all(len(line) < 500 for line in pulled.err.splitlines()), pulled.err[:600]
    assert "\x1b" not in pulled.err
    # Never materialised, never cached.
    assert not (b / "renders" / "one.mp4").exists() and not (b / "renders" / "twin.mp4").exists()
    assert keys["one"] not in cached_keys(b)
    assert not list((b / "cache" / "objects" / ".downloads").glob("*"))


def test_a_video_that_is_a_fifo_does_not_hang_a_pull(shared: tuple[Path, Path], tmp_path: Path) -> None:
    a, remote = shared
    keys = keys_of(a, LOCAL)
    fifo = entry(remote, keys["one"]) / "video.mp4"
    fifo.unlink()
    os.mkfifo(fifo)
    b = clone(a, tmp_path / "b", str(remote))
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(run_cli("pull", cwd=b, env=LOCAL)), daemon=True)
    worker.start()
    worker.join(SAFETY_NET)
    if worker.is_alive():  # it hangs on the FIFO: give it an end so the thread finishes, then fail
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(descriptor)
        worker.join(SAFETY_NET)
        pytest.fail("pull hung reading a FIFO on the remote")
    (pulled,) = result
    assert pulled.code == 1, pulled.out + pulled.err  # type: ignore[attr-defined]
    assert keys["one"] in pulled.err and "pulled 1" in pulled.out  # type: ignore[attr-defined]
    assert not (b / "renders" / "one.mp4").exists()


def test_a_video_symlinked_to_an_endless_device_is_refused(shared: tuple[Path, Path], tmp_path: Path) -> None:
    a, remote = shared
    keys = keys_of(a, LOCAL)
    video = entry(remote, keys["one"]) / "video.mp4"
    video.unlink()
    video.symlink_to("/dev/zero")
    b = clone(a, tmp_path / "b", str(remote))
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(run_cli("pull", cwd=b, env=LOCAL)), daemon=True)
    worker.start()
    worker.join(SAFETY_NET)
    if worker.is_alive():  # copying /dev/zero: replace the link so the copy's next open... it never ends; stop here
        shutil.rmtree(b / "cache", ignore_errors=True)
        pytest.fail("pull kept copying /dev/zero from the remote")
    (pulled,) = result
    assert pulled.code == 1, pulled.out + pulled.err  # type: ignore[attr-defined]
    assert "pulled 1" in pulled.out  # type: ignore[attr-defined]


# -- money -----------------------------------------------------------------------------------


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.05, concurrency=8)) as running:
        yield running


def test_shots_sharing_a_key_are_paid_for_once(tmp_path: Path, service: RunningEmulator) -> None:
    a = make_project(tmp_path / "a", None)
    run = run_cli("build", cwd=a, env=env_for(service))
    assert run.code == 0, run.out + run.err
    assert len(creates(service)) == 2  # `one` and `twin` are one request
    assert sorted(path.name for path in (a / "renders").iterdir()) == ["one.mp4", "other.mp4", "twin.mp4"]


def test_the_spend_guard_at_its_edges(tmp_path: Path, service: RunningEmulator) -> None:
    a = make_project(tmp_path / "a", None)
    env = env_for(service)
    assert run_cli("build", cwd=a, env=env).code == 0
    paid = len(creates(service))
    b = clone(a, tmp_path / "b", None)
    spec = b / "specs" / "s.toml"
    spec.write_text(spec.read_text() + '\n[[shots]]\nid = "fresh"\nmedia = ["mia"]\nprompt = "{{ mia }} nods."\n')

    # --shot naming only a shot that is not missing: nothing to refuse.
    run = run_cli("build", "--shot", "fresh", cwd=b, env=env)
    assert run.code == 0, run.out + run.err
    assert len(creates(service)) == paid + 1
    # --dry-run shows the missing shots and pays for nothing.
    run = run_cli("build", "--dry-run", cwd=b, env=env)
    assert run.code == 0 and "missing" in run.out, run.out + run.err
    # --json: one JSON document on stdout, the refusal on stderr, exit 2.
    run = run_cli("build", "--json", cwd=b, env=env)
    assert run.code == 2 and "--rerender-missing" in run.err
    document = json.loads(run.out)
    assert document["summary"] == {"missing": 3, "refused": True}
    # The APIYI proxy is paid too (and runs the same model: the same keys).
    run = run_cli("build", "--provider", "apiyi", cwd=b, env={"APIYI_API_KEY": "sk-canary-apiyi"})
    assert run.code == 2 and "--rerender-missing" in run.err, run.out + run.err
    assert "sk-canary-apiyi" not in run.out + run.err
    assert len(creates(service)) == paid + 1


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "env", "said"),
    [
        ('url = "r"\nmode = "write"\n', {}, "renderspec.remote.mode"),
        ('url = "r"\n', {"RENDERSPEC_REMOTE_MODE": "rw"}, "RENDERSPEC_REMOTE_MODE"),
        ('url = "r"\ncolour = "blue"\n', {}, "renderspec.remote.colour"),
        ('url = "file://nas/renders"\n', {}, "names a host"),
        ('url = "s3://"\n', {}, "names no bucket"),
        ('url = "http://cache.example.com/r"\n', {}, "plain http"),
        ('url = "https://ann:canary-pw@cache.example.com/r"\n', {}, "credentials"),
        ('url = "https://ann:canary-pw#1@cache.example.com/r"\n', {}, "cannot be read as a URL"),
        ('url = "https://ann:canary-pw/1@cache.example.com/r"\n', {}, "cannot be read as a URL"),
        ('url = "s3://KEY:canary-pw/1@bucket/r"\n', {}, "cannot be read as a URL"),
        ('url = "https://[::1/r"\n', {}, "cannot be read as a URL"),
        ('url = "https://cache.example.com/r?sig=canary-pw"\n', {}, "query"),
    ],
)
def test_bad_remote_settings_are_one_clear_line(project: Path, toml: str, env: dict[str, str], said: str) -> None:
    (project / "renderspec.toml").write_text(f"[renderspec]\n[renderspec.remote]\n{toml}")
    for argv in (["plan"], ["build", "--provider", "local"], ["pull"], ["push"]):
        run = run_cli(*argv, cwd=project, env=env)
        assert run.code == 2, (argv, run.out + run.err)
        assert said in run.err and "Traceback" not in run.err and "internal error" not in run.err, run.err
        assert "canary-pw" not in run.out + run.err
    assert not (project / "renders").exists()


def test_an_empty_url_and_a_relative_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", None)
    (project / "renderspec.toml").write_text('[renderspec]\n[renderspec.remote]\nurl = ""\n')
    assert run_cli("plan", cwd=project, env=LOCAL).code == 0
    run = run_cli("pull", cwd=project, env=LOCAL)
    assert run.code == 2 and "needs a remote cache" in run.err
    (project / "renderspec.toml").write_text('[renderspec]\n[renderspec.remote]\nurl = "../team-cache"\n')
    (project.parent / "team-cache").mkdir()
    run = run_cli("build", cwd=project / "specs", env=LOCAL)  # relative to the project, not the working folder
    assert run.code == 0, run.out + run.err
    assert list((project.parent / "team-cache" / "v1" / "objects").glob("*/meta.json"))
    run = run_cli("push", cwd=project, env={**LOCAL, "RENDERSPEC_REMOTE_MODE": "read"})
    assert run.code == 2 and "read-only" in run.err, run.out + run.err


# -- a server that refuses writes, or goes away ----------------------------------------------


class FakeDav:
    """A blob store on 127.0.0.1: `deny` answers 403 to writes; after `down_after` stored metas it answers 503."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.blobs: dict[str, bytes] = {}
        self.deny = False
        self.down = False
        self.down_after: int | None = None
        self.seen: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.seen.append(f"{self.command} {self.path} {dict(self.headers)}")
                if fake.down:
                    return self._answer(503, headers={"Retry-After": "0"})
                if self.command in ("PUT", "MKCOL", "DELETE") and fake.deny:
                    return self._answer(403)
                if self.command == "MKCOL":
                    return self._answer(201)
                if self.command == "PUT":
                    fake.blobs[self.path] = body
                    metas = sum(path.endswith("/meta.json") for path in fake.blobs)
                    fake.down = fake.down_after is not None and metas >= fake.down_after
                    return self._answer(201)
                if self.path in fake.blobs:
                    return self._answer(200, fake.blobs[self.path])
                return self._answer(404)

            do_GET = do_HEAD = do_PUT = do_MKCOL = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/team"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_dav() -> Iterator[FakeDav]:
    server = FakeDav()
    try:
        yield server
    finally:
        server.close()


CANARIES = {
    "RENDERSPEC_REMOTE_TOKEN": "canary-token-51e",
    "RENDERSPEC_REMOTE_SIGNING_KEY": "canary-signing-0c2",
    "AWS_ACCESS_KEY_ID": "AKIACANARY",
    "AWS_SECRET_ACCESS_KEY": "canary-aws-secret-9d",
    "AWS_SESSION_TOKEN": "canary-aws-session-3f",
}


def leaks(texts: list[str], *folders: Path) -> list[str]:
    places = list(texts)
    for folder in folders:
        places += [path.read_bytes().decode("latin-1") for path in folder.rglob("*") if path.is_file()]
    secrets = [value for name, value in CANARIES.items() if name != "AWS_ACCESS_KEY_ID"]
    return [secret for secret in secrets for text in places if secret in text]


def test_a_remote_that_refuses_writes_degrades_to_read_only_once(fake_dav: FakeDav, tmp_path: Path) -> None:
    fake_dav.deny = True
    a = make_project(tmp_path / "a", fake_dav.url)
    env = {**LOCAL, **CANARIES}
    run = run_cli("build", cwd=a, env=env)
    assert run.code == 0, run.out + run.err
    assert run.err.count("refused a write") == 1, run.err
    assert "2 new renders were not shared" in run.err, run.err
    assert sorted(path.name for path in (a / "renders").iterdir()) == ["one.mp4", "other.mp4", "twin.mp4"]
    push = run_cli("push", cwd=a, env=env)
    assert push.code == 1 and "refused" in push.err, push.out + push.err
    assert "Traceback" not in run.err + push.err
    assert leaks([run.out, run.err, push.out, push.err], a) == []


def test_a_remote_that_goes_away_mid_build_keeps_every_render(fake_dav: FakeDav, tmp_path: Path) -> None:
    fake_dav.down_after = 1  # the first render is shared, then the server answers 503
    a = make_project(tmp_path / "a", fake_dav.url)
    env = {**LOCAL, **CANARIES, "RENDERSPEC_JOBS": "1"}
    run = run_cli("build", "-j", "1", cwd=a, env=env)
    assert run.code == 0, run.out + run.err
    assert run.err.count("cannot use the remote cache") == 1, run.err
    assert "1 new render was not shared" in run.err, run.err
    assert sorted(path.name for path in (a / "renders").iterdir()) == ["one.mp4", "other.mp4", "twin.mp4"]
    fake_dav.down, fake_dav.down_after = False, None
    push = run_cli("push", "--json", cwd=a, env=env)
    assert push.code == 0, push.err
    assert json.loads(push.out)["summary"]["pushed"] == 1
    assert sum(path.endswith("/meta.json") for path in fake_dav.blobs) == 2
    assert leaks([run.out, run.err, push.out, push.err], a) == []


def test_secrets_stay_secret_on_every_error_path(fake_dav: FakeDav, tmp_path: Path) -> None:
    a = make_project(tmp_path / "a", fake_dav.url)
    env = {**LOCAL, **CANARIES}
    runs = []
    fake_dav.deny = True
    runs.append(run_cli("build", cwd=a, env=env))
    fake_dav.down = True
    runs += [run_cli(*argv, cwd=a, env=env) for argv in (["plan"], ["pull"], ["push"])]
    required = {**env, "RENDERSPEC_REMOTE_REQUIRED": "1"}
    runs += [run_cli(*argv, cwd=a, env=required) for argv in (["plan"], ["build"], ["pull"], ["push"])]
    s3 = {**env, "AWS_ENDPOINT_URL": fake_dav.url.rsplit("/", 1)[0]}
    fake_dav.down, fake_dav.deny = False, True
    runs += [run_cli(*argv, "--remote", "s3://bucket/x", cwd=a, env=s3) for argv in (["pull"], ["push"])]
    assert all("Traceback" not in run.err and "internal error" not in run.err for run in runs), [r.err for r in runs]
    assert leaks([text for run in runs for text in (run.out, run.err)], a) == []


def test_parallel_first_pushes_to_a_fresh_webdav_server_all_land() -> None:
    """Thread B's MKCOL meets the missing base; thread A makes the base meanwhile: B must still succeed.

    The interleaving is forced by the transport, so the race is shown every time, not now and then.
    """
    import httpx

    from renderspec.remote.webdav import HttpBackend

    made: set[str] = set()
    v1_asked = 0
    b_waiting, base_made = threading.Event(), threading.Event()
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal v1_asked
        path = request.url.path
        if request.method == "PUT":
            parent = path.rsplit("/", 1)[0] + "/"
            return httpx.Response(201 if parent in made else 409)
        assert request.method == "MKCOL", request.method
        parent = path.rstrip("/").rsplit("/", 1)[0] + "/"
        if path == "/team/renders/v1/":
            with lock:
                v1_asked += 1
                asked = v1_asked
            if asked == 1:  # B: the base is missing now; the answer arrives after A made it
                b_waiting.set()
                assert base_made.wait(SAFETY_NET)
                return httpx.Response(409)
        if parent != "/" and parent not in made:
            return httpx.Response(409)
        made.add(path)
        if path == "/team/renders/v1/":
            base_made.set()
        return httpx.Response(201)

    backend = HttpBackend("http://127.0.0.1:9/team/renders", env={}, transport=httpx.MockTransport(answer))
    errors: list[BaseException] = []

    def write(key: str) -> None:
        try:
            backend.write(f"v1/objects/{key}/meta.json", b"{}")
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            errors.append(error)

    b = threading.Thread(target=write, args=("b" * 64,))
    b.start()
    assert b_waiting.wait(SAFETY_NET)
    write("a" * 64)
    b.join(SAFETY_NET)
    backend.close()
    assert errors == []
