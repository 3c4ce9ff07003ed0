"""Renders travel between clones through a remote cache (a shared folder here), as a team uses it.

The paid DashScope client talks to the emulator, so every create is counted: a clone that finds
its shots on the remote must pay for none of them.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for, run_cli
from tests.remote.peers import CANARY_PASSWORD, CANARY_USER, Peer
from tests.webdav_server import start_webdav

SHOTS = 8


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=8)) as running:
        yield running


def settings_text(remote: str | None, extra: str = "") -> str:
    text = "[renderspec]\npoll_interval = 0.05\n"
    if remote is not None:
        text += f'\n[renderspec.remote]\nurl = "{remote}"\n{extra}'
    return text


def clone(source: Path, target: Path, remote: str | None, extra: str = "") -> Path:
    """What `git clone` gives a teammate: the specs, the settings and the lock; no cache, no renders."""
    shutil.copytree(source / "specs", target / "specs")
    shutil.copy2(source / "renderspec.lock", target / "renderspec.lock")
    (target / "renderspec.toml").write_text(settings_text(remote, extra))
    return target


def states(project: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    run = run_cli("plan", "--json", *args, cwd=project, env=env)
    assert run.code == 0, run.err
    return {shot["id"]: shot["state"] for shot in json.loads(run.out)["shots"]}


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


CANARY_AWS_SECRET = "canary-aws-4f2e9d"


@pytest.fixture(params=["folder", "webdav", "s3"])
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Peer]:
    """The remote cache of the team tests: a shared folder, a real WebDAV server with Basic auth, moto's S3 server."""
    if request.param == "folder":
        root = tmp_path / "remote"
        root.mkdir()
        yield Peer("folder", str(root), {}, root=root)
        return
    if request.param == "s3":
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": CANARY_AWS_SECRET, "AWS_ENDPOINT_URL": endpoint}
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key=CANARY_AWS_SECRET,
        )
        bucket = f"team-{uuid.uuid4().hex[:10]}"
        client.create_bucket(Bucket=bucket)
        yield Peer("s3", f"s3://{bucket}/ad-campaign", env, s3=client, bucket=bucket, prefix="ad-campaign")
        return
    root = tmp_path / "dav"
    server = start_webdav(root, users={CANARY_USER: CANARY_PASSWORD})
    try:
        credentials = {"RENDERSPEC_REMOTE_USER": CANARY_USER, "RENDERSPEC_REMOTE_PASSWORD": CANARY_PASSWORD}
        yield Peer("webdav", f"{server.url}/team/renders", credentials, root=root / "team" / "renders", server=server)
    finally:
        server.stop()


@pytest.fixture
def team(example_project: Path, peer: Peer, service: RunningEmulator) -> tuple[Path, Peer, dict[str, str]]:
    """Repository A, built with a remote; the remote; the environment of the paid client (with the remote's credentials)."""
    (example_project / "renderspec.toml").write_text(settings_text(peer.url))
    env = {**env_for(service), **peer.env}
    run = run_cli("build", cwd=example_project, env=env)
    assert run.code == 0, run.out + run.err
    assert len(creates(service)) == SHOTS
    return example_project, peer, env


def test_a_fresh_clone_fetches_every_shot_and_pays_for_none(
    team: tuple[Path, Peer, dict[str, str]], tmp_path: Path, service: RunningEmulator
) -> None:
    a, remote, env = team
    assert len(remote.metas()) == SHOTS  # each render was pushed
    b = clone(a, tmp_path / "b", remote.url)
    assert set(states(b, env).values()) == {"remote"}
    assert set(states(b, env, "--no-remote").values()) == {"missing"}
    assert run_cli("plan", "--check", cwd=b, env=env).code == 0
    assert run_cli("plan", "--check", "--no-remote", cwd=b, env=env).code == 1

    run = run_cli("build", cwd=b, env=env)
    assert run.code == 0, run.out + run.err
    assert "fetched 8" in run.out
    assert len(creates(service)) == SHOTS  # not one more create
    assert files_under(b / "renders") == files_under(a / "renders")
    assert (b / "renderspec.lock").read_text() == (a / "renderspec.lock").read_text()
    assert set(states(b, env, "--no-remote").values()) == {"cached"}

    # B edits one shot: exactly one create, shared at once; A pulls it.
    spec = b / "specs" / "product.toml"
    spec.write_text(spec.read_text().replace("turns slowly on a marble table", "spins on a glass table"))
    run = run_cli("build", cwd=b, env=env)
    assert run.code == 0 and "rendered 1, cached 7" in run.out, run.out + run.err
    assert len(creates(service)) == SHOTS + 1
    shutil.copy2(spec, a / "specs" / "product.toml")
    assert states(a, env)["bottle-hero"] == "remote"
    pulled = run_cli("pull", "--json", cwd=a, env=env)
    assert pulled.code == 0, pulled.err
    summary = json.loads(pulled.out)["summary"]
    assert (summary["fetched"], summary["cached"], summary["not_on_remote"]) == (1, 7, 0)
    assert files_under(a / "renders") == files_under(b / "renders")
    assert len(creates(service)) == SHOTS + 1


def test_a_read_only_clone_writes_nothing_to_the_remote(
    team: tuple[Path, Peer, dict[str, str]], tmp_path: Path, service: RunningEmulator
) -> None:
    a, remote, env = team
    before = remote.files()
    b = clone(a, tmp_path / "b", remote.url, 'mode = "read"\n')
    spec = b / "specs" / "garden.toml"
    spec.write_text(spec.read_text().replace("saying hello to", "waving at"))
    run = run_cli("build", cwd=b, env=env)
    assert run.code == 0, run.out + run.err
    assert "rendered" in run.out and len(creates(service)) > SHOTS
    assert remote.files() == before
    push = run_cli("push", cwd=b, env=env)
    assert push.code == 2 and "read-only" in push.err
    # --remote-read-only does the same for a read-write setting
    c = clone(b, tmp_path / "c", remote.url)
    run = run_cli("build", "--remote-read-only", "--rerender-missing", cwd=c, env=env)
    assert run.code == 0, run.out + run.err
    assert remote.files() == before


@pytest.mark.parametrize("peer", ["folder", "s3"], indirect=True)
def test_a_damaged_remote_entry_is_reported_once_and_never_materialised(
    team: tuple[Path, Peer, dict[str, str]], tmp_path: Path, service: RunningEmulator
) -> None:
    a, remote, env = team
    lock = (a / "renderspec.lock").read_text()
    key = next(line.split('"')[1] for line in lock.splitlines() if line.startswith("key = "))
    name = f"v1/objects/{key}/video.mp4"
    data = bytearray(remote.files()[name])
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    remote.replace(name, bytes(data))
    b = clone(a, tmp_path / "b", remote.url)
    pulled = run_cli("pull", cwd=b, env=env)
    assert pulled.code == 1
    assert pulled.err.count(key) == 1 and "sha256" in pulled.err
    assert "pulled 7" in pulled.out
    damaged_shot = [shot for shot, state in states(b, env).items() if state != "cached"]
    assert len(damaged_shot) == 1
    assert not (b / "renders" / f"{damaged_shot[0]}.mp4").exists()
    assert not (b / "cache" / "objects" / key[:2] / key).exists()
    # It was paid for: the guard will not pay again without being told to.
    run = run_cli("build", cwd=b, env=env)
    assert run.code == 2 and damaged_shot[0] in run.err and "--rerender-missing" in run.err
    assert len(creates(service)) == SHOTS


@pytest.mark.parametrize("peer", ["folder"], indirect=True)
def test_the_spend_guard_refuses_to_pay_again_for_what_the_lock_says_was_paid(
    team: tuple[Path, Peer, dict[str, str]], tmp_path: Path, service: RunningEmulator
) -> None:
    a, _remote, env = team
    b = clone(a, tmp_path / "b", None)
    run = run_cli("build", cwd=b, env=env)
    assert run.code == 2, run.out + run.err
    assert "8 shots were already paid for" in run.err and "¥" in run.err and "--rerender-missing" in run.err
    assert len(creates(service)) == SHOTS
    assert not (b / "renders").exists()
    run = run_cli("build", "--rerender-missing", cwd=b, env=env)
    assert run.code == 0, run.out + run.err
    assert len(creates(service)) == 2 * SHOTS
    # The free local provider needs no guard (its keys differ anyway: nothing of the lock is `missing`).
    c = clone(a, tmp_path / "c", None)
    assert run_cli("build", "--provider", "local", cwd=c, env={}).code == 0


def test_an_unreachable_remote_is_a_warning_unless_it_is_required(example_project: Path, tmp_path: Path) -> None:
    gone = tmp_path / "not-mounted"
    (example_project / "renderspec.toml").write_text(settings_text(str(gone), "required = true\n"))
    run = run_cli("plan", cwd=example_project, env={"RENDERSPEC_PROVIDER": "local"})
    assert run.code == 2 and "is required" in run.err
    run = run_cli("build", "--provider", "local", cwd=example_project, env={})
    assert run.code == 2 and "is required" in run.err and not (example_project / "renders").exists()
    (example_project / "renderspec.toml").write_text(settings_text(str(gone)))
    run = run_cli("build", "--provider", "local", cwd=example_project, env={})
    assert run.code == 0, run.out + run.err
    assert run.err.count("cannot use the remote cache") == 1 and str(gone) in run.err
    assert "8 new renders were not shared" in run.err and "renderspec push" in run.err
    assert not gone.exists()  # a share that is not mounted is never created in its place
    run = run_cli("check", cwd=example_project, env={})
    assert run.code == 0  # the URL is well formed; only using it failed
    (example_project / "renderspec.toml").write_text(settings_text("https://ann:pw@cache.example.com/x"))
    run = run_cli("check", cwd=example_project, env={})
    assert run.code == 2 and "credentials" in run.err and "pw@" not in run.err
    run = run_cli("plan", "--remote", "", cwd=example_project, env={})
    assert run.code == 2 and "--remote needs a URL" in run.err


def test_signed_entries_are_accepted_only_with_the_same_key(
    example_project: Path, tmp_path: Path, service: RunningEmulator
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    a = example_project
    (a / "renderspec.toml").write_text(settings_text(str(remote)))
    signed = {**env_for(service), "RENDERSPEC_REMOTE_SIGNING_KEY": "team-secret-1"}
    assert run_cli("build", cwd=a, env=signed).code == 0
    meta = json.loads(next((remote / "v1" / "objects").glob("*/meta.json")).read_text())
    assert meta["signature"].startswith("hmac-sha256:")
    assert "team-secret-1" not in files_under(remote).__repr__()

    same = clone(a, tmp_path / "same", str(remote))
    assert set(states(same, signed).values()) == {"remote"}
    assert run_cli("pull", cwd=same, env=signed).code == 0

    other = clone(a, tmp_path / "other", str(remote))
    wrong = {**signed, "RENDERSPEC_REMOTE_SIGNING_KEY": "someone-else"}
    run = run_cli("pull", cwd=other, env=wrong)
    assert run.code == 1 and run.err.count("signature does not match") == SHOTS
    assert not (other / "renders").exists()
    assert "someone-else" not in run.err + run.out

    # An unsigned entry (pushed by a writer without the key) is refused by a reader that has one.
    unsigned = clone(a, tmp_path / "unsigned", str(tmp_path / "remote2"))
    (tmp_path / "remote2").mkdir()
    assert run_cli("build", "--rerender-missing", cwd=unsigned, env=env_for(service)).code == 0
    reader = clone(unsigned, tmp_path / "reader", str(tmp_path / "remote2"))
    run = run_cli("pull", cwd=reader, env=signed)
    assert run.code == 1 and "not signed" in run.err


def test_remote_urls_with_credentials_are_refused(project: Path) -> None:
    run = run_cli("plan", "--remote", "https://ann:hunter2@cache.example.com/renders", cwd=project, env={})
    assert run.code == 2 and "credentials" in run.err and "hunter2" not in run.err
    run = run_cli("plan", "--remote", "gopher://cache.example.com/x", cwd=project, env={})
    assert run.code == 2 and "scheme" in run.err
    run = run_cli("pull", cwd=project, env={})
    assert run.code == 2 and "needs a remote cache" in run.err


def test_push_shares_what_an_offline_build_made(example_project: Path, peer: Peer, service: RunningEmulator) -> None:
    (example_project / "renderspec.toml").write_text(settings_text(peer.url))
    env = {**env_for(service), **peer.env}
    assert run_cli("build", "--no-remote", cwd=example_project, env=env).code == 0
    assert peer.files() == {}
    run = run_cli("push", "--json", cwd=example_project, env=env)
    assert run.code == 0, run.err
    assert json.loads(run.out)["summary"]["pushed"] == SHOTS
    again = run_cli("push", "--json", cwd=example_project, env=env)
    assert json.loads(again.out)["summary"] == {
        "pushed": 0,
        "already_there": SHOTS,
        "not_pushed": 0,
        "local_entries": SHOTS,
        "remote": peer.url,
    }


def test_a_killed_build_has_already_shared_every_render_it_committed(example_project: Path, tmp_path: Path) -> None:
    """Each render is pushed right after its commit: a CI job killed mid-build still shares what it paid for."""
    import signal
    import time

    import httpx

    from tests.test_build import SAFETY_NET, _spawn_build, _stop, _wait_for_creates

    remote = tmp_path / "remote"
    remote.mkdir()
    (example_project / "renderspec.toml").write_text(settings_text(str(remote)))
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=8, hold=True)) as running:
        env = env_for(running)
        child = _spawn_build(example_project, env)
        _wait_for_creates(running, child, SHOTS)
        first = creates(running)[0]["task_id"]
        httpx.post(f"{running.url}/_emulator/release/{first}").raise_for_status()
        metas = remote / "v1" / "objects"
        deadline = time.monotonic() + SAFETY_NET  # a net only: the wait ends when the entry appears
        while not list(metas.glob("*/meta.json")) and child.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _stop(child, signal.SIGKILL) == -signal.SIGKILL, child.output()
    shared = list(metas.glob("*/meta.json"))
    assert len(shared) == 1, child.output()
    assert json.loads(shared[0].read_text())["task_id"] == first
    b = clone(example_project, tmp_path / "b", str(remote)) if (example_project / "renderspec.lock").exists() else None
    if b is None:  # the kill came before the lock's first save: a fresh clone still finds the render by key
        b = tmp_path / "b"
        shutil.copytree(example_project / "specs", b / "specs")
        (b / "renderspec.toml").write_text(settings_text(str(remote)))
    assert list(states(b, {"RENDERSPEC_PROVIDER": "dashscope"}).values()).count("remote") == 1


@pytest.mark.parametrize("peer", ["webdav", "s3"], indirect=True)
def test_credentials_never_appear_in_outputs_files_or_the_servers_log(
    example_project: Path, peer: Peer, service: RunningEmulator, tmp_path: Path
) -> None:
    import base64

    signing = "canary-signing-77ab"
    api_key = "sk-canary-dashscope-91"
    env = {**env_for(service, api_key), **peer.env, "RENDERSPEC_REMOTE_SIGNING_KEY": signing}
    (example_project / "renderspec.toml").write_text(settings_text(peer.url))
    b = tmp_path / "b"
    runs = [run_cli("build", cwd=example_project, env=env)]
    runs.append(run_cli("push", "--all", "--json", cwd=example_project, env=env))
    b = clone(example_project, b, peer.url)
    runs += [run_cli(*argv, cwd=b, env=env) for argv in (["plan"], ["plan", "--json"], ["pull", "--json"], ["build"])]
    wrong = {**env, "RENDERSPEC_REMOTE_SIGNING_KEY": "canary-other-signing"}
    runs.append(run_cli("pull", cwd=clone(example_project, tmp_path / "c", peer.url), env=wrong))
    assert all(run.code in (0, 1) for run in runs), [run.err for run in runs]

    secrets = [CANARY_PASSWORD, CANARY_AWS_SECRET, signing, "canary-other-signing", api_key]
    secrets.append(base64.b64encode(f"{CANARY_USER}:{CANARY_PASSWORD}".encode()).decode())
    places = {f"output {index}": run.out + run.err for index, run in enumerate(runs)}
    for project in (example_project, b, tmp_path / "c"):
        for path in project.rglob("*"):
            if path.is_file():
                places[str(path)] = path.read_bytes().decode("latin-1")
    for name, data in peer.files().items():
        places[f"remote {name}"] = data.decode("latin-1")
    if peer.server is not None:  # the WebDAV server's log: the credentials belong in Authorization, nowhere else
        for seen in peer.server.log:
            shown = {header: value for header, value in seen.headers.items() if header.lower() != "authorization"}
            places[f"server log {seen.method} {seen.path}"] = f"{seen.path} {shown}"
        assert any("authorization" in {h.lower() for h in seen.headers} for seen in peer.server.log)
    leaks = [(secret, where) for where, text in places.items() for secret in secrets if secret in text]
    assert leaks == []
