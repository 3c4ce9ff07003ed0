"""What the cache holds is exactly what was paid for, and renders/ serves exactly that.

Objects are read-only, an edit in renders/ cannot reach them, `plan` notices a cache object of the
wrong size, `build` re-hashes an object before it materialises it, `verify` re-hashes everything,
and what killed builds leave half-written is swept away.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import run_cli


@pytest.fixture
def built(example_project: Path) -> Iterator[tuple[Path, dict[str, str], RunningEmulator]]:
    """The example project, built once against an emulator."""
    (example_project / "renderspec.toml").write_text("[renderspec]\npoll_interval = 0.05\n")
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=8)) as running:
        env = {"RENDERSPEC_PROVIDER": "dashscope", "RENDERSPEC_BASE_URL": running.url, "DASHSCOPE_API_KEY": "sk-x"}
        first = run_cli("build", cwd=example_project, env=env)
        assert first.code == 0, first.out + first.err
        yield example_project, env, running


def creates(running: RunningEmulator) -> int:
    return len(httpx.get(f"{running.url}/_emulator/tasks").json()["tasks"])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry_of(project: Path, env: dict[str, str], shot: str) -> tuple[Path, dict[str, Any]]:
    """The cache folder and record of a shot's current render."""
    lock = run_cli("plan", "--json", cwd=project, env=env).out
    key = next(item["key"] for item in json.loads(lock)["shots"] if item["id"] == shot)
    folder = project / "cache" / "objects" / key[:2] / key
    return folder, json.loads((folder / "meta.json").read_text())


def damage(path: Path, *, truncate: bool = False) -> None:
    os.chmod(path, 0o644)
    if truncate:
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    else:
        with open(path, "r+b") as handle:
            handle.seek(path.stat().st_size // 2)
            handle.write(b"\xff" * 64)


def plan_states(project: Path, env: dict[str, str]) -> dict[str, tuple[str, list[str]]]:
    document = json.loads(run_cli("plan", "--json", cwd=project, env=env).out)
    return {shot["id"]: (shot["state"], shot["reasons"]) for shot in document["shots"]}


def test_cache_objects_are_read_only_and_an_edit_in_renders_never_reaches_them(built: Any) -> None:
    project, env, running = built
    folder, meta = entry_of(project, env, "garden-walk")
    for name in ("video.mp4", "meta.json"):
        assert os.stat(folder / name).st_mode & 0o222 == 0, name
    render = project / "renders" / "garden-walk.mp4"
    with open(render, "r+b") as handle:  # an editor saving in place, or `ffmpeg -y` over the render
        handle.seek(1000)
        handle.write(b"edited in place")
    assert sha256(folder / "video.mp4") == meta["video_sha256"]
    again = run_cli("build", cwd=project, env=env)
    assert again.code == 0 and "nothing to render: 8 shots cached (restored 1 in renders/)" in again.out, again.out
    assert sha256(render) == meta["video_sha256"] and creates(running) == 8


def test_plan_notices_a_cache_object_of_the_wrong_size_and_build_renders_it_again(built: Any) -> None:
    project, env, running = built
    folder, _ = entry_of(project, env, "bottle-hero")
    damage(folder / "video.mp4", truncate=True)
    state, reasons = plan_states(project, env)["bottle-hero"]
    assert state == "stale" and reasons[0].startswith("the cached render is damaged")
    assert run_cli("plan", "--check", cwd=project, env=env).code == 1
    again = run_cli("build", cwd=project, env=env)
    assert again.code == 0 and "rendered 1, cached 7" in again.out, again.out + again.err
    _, meta = entry_of(project, env, "bottle-hero")
    assert sha256(project / "renders" / "bottle-hero.mp4") == meta["video_sha256"] and creates(running) == 9


def test_build_rehashes_an_object_before_it_materialises_it(built: Any) -> None:
    project, env, running = built
    folder, _ = entry_of(project, env, "turn-left")
    damage(folder / "video.mp4")  # same size: only a hash can tell
    (project / "renders" / "turn-left.mp4").unlink()
    again = run_cli("build", cwd=project, env=env)
    assert again.code == 0, again.out + again.err
    assert (
        "shot turn-left: the cached render is damaged (its video's bytes differ from its record (sha256))" in again.err
    )
    assert "rendered 1, cached 7" in again.out and creates(running) == 9
    _, meta = entry_of(project, env, "turn-left")
    assert sha256(project / "renders" / "turn-left.mp4") == meta["video_sha256"]
    assert len(list((project / "cache" / "damaged").iterdir())) == 1


def test_verify_rehashes_every_entry_and_moves_damaged_ones_aside(built: Any) -> None:
    project, env, _ = built
    flipped, _ = entry_of(project, env, "portrait-1x1")
    cut, _ = entry_of(project, env, "bottle-in-hand-2")
    damage(flipped / "video.mp4")
    damage(cut / "video.mp4", truncate=True)
    checked = run_cli("verify", cwd=project, env=env)
    assert checked.code == 1, checked.out + checked.err
    lines = checked.out.splitlines()
    assert any(
        "bytes differ from its record" in line and "shot portrait-1x1 will render again" in line for line in lines
    )
    assert any("bytes, its record says" in line and "shot bottle-in-hand-2 will render again" in line for line in lines)
    assert lines[-1].startswith("verify: 8 cache entries checked, 2 damaged")
    assert not flipped.exists() and not cut.exists()
    assert run_cli("verify", cwd=project, env=env).code == 0
    states = plan_states(project, env)
    assert {shot for shot, (state, _) in states.items() if state != "cached"} == {"portrait-1x1", "bottle-in-hand-2"}


def test_what_killed_builds_left_half_written_is_swept(built: Any) -> None:
    project, env, _ = built
    cache = project / "cache"
    debris = [
        cache / "journal" / f".{'a' * 64}.json.x1y2.tmp",
        cache / "objects" / ".stage-0123" / "video.mp4",
        cache / "objects" / ".downloads" / "half.mp4",
        project / "renders" / ".garden-walk.mp4.0abc.tmp",
    ]
    for path in debris:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    assert run_cli("build", cwd=project, env=env).code == 0
    assert [path for path in debris if path.exists()] == []
    again = cache / "journal" / f".{'b' * 64}.json.z.tmp"
    again.write_bytes(b"half")
    gc = run_cli("gc", cwd=project, env=env)
    assert "removed 1 leftover temporary file" in gc.out and not again.exists()
