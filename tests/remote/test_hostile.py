"""A hostile or unlucky teammate against the remote cache: poisoned entries, odd files, bad settings, lost servers.

Most tests use a shared folder and the free local provider (quick, and the tier's verification is
the same for every backend); the spend guard's tests use the paid DashScope client against the
emulator, counting creates. Every test asserts what a user would notice: exit codes, one clear
line per problem, nothing unverified in renders/ or the cache, no secret anywhere.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_png

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


def rewrite_meta(remote: Path, name: str, **changes: object) -> dict[str, object]:
    path = entry(remote, name) / "meta.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))
    return meta


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
