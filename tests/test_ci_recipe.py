"""The README's CI recipe, walked through in order with real git: a pull request, then main, then shards.

The paid DashScope client talks to the emulator (every create counted); a shared folder is the
team's remote cache.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for, run_cli

SHOTS = 8


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=8)) as running:
        yield running


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd.parent),
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def edit(project: Path, old: str, new: str) -> None:
    spec = next(path for path in (project / "specs").glob("*.toml") if old in path.read_text())
    spec.write_text(spec.read_text().replace(old, new))


def test_a_pull_request_then_main_then_a_sharded_build(
    example_project: Path, tmp_path: Path, service: RunningEmulator
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    origin = example_project
    (origin / "renderspec.toml").write_text(
        f'[renderspec]\npoll_interval = 0.05\n\n[renderspec.remote]\nurl = "{remote}"\n'
    )
    (origin / ".gitignore").write_text("cache/\nrenders/\n")
    paid = env_for(service)
    assert run_cli("build", cwd=origin, env=paid).code == 0
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "storyboard and its lock")
    git(origin, "config", "receive.denyCurrentBranch", "updateInstead")
    assert len(creates(service)) == SHOTS

    # The pull request: read-only, pays nothing, writes nothing to the remote.
    pr = tmp_path / "pr"
    git(tmp_path, "clone", "-q", str(origin), str(pr))
    git(pr, "checkout", "-q", "-b", "brighter-bottle")
    edit(pr, "turns slowly on a marble table", "spins on a glass table")
    git(pr, "commit", "-qam", "the bottle spins")
    read_only = {**paid, "RENDERSPEC_REMOTE_MODE": "read"}
    assert run_cli("check", cwd=pr, env=read_only).code == 0
    comment = run_cli("plan", "--markdown", cwd=pr, env=read_only)
    assert comment.code == 0
    assert "1 shot to render" in comment.out and "| bottle-hero | stale | prompt changed |" in comment.out
    assert "-The Aurora perfume bottle from video 1 turns slowly" in comment.out  # the old text: from the remote
    before = files(remote)
    assert run_cli("plan", "--check", "--remote-read-only", cwd=pr, env=read_only).code == 1
    assert files(remote) == before and len(creates(service)) == SHOTS
    git(pr, "push", "-q", "origin", "brighter-bottle")
    git(origin, "merge", "-q", "brighter-bottle")

    # Main: a fresh runner builds within the budget and commits the lock back.
    main = tmp_path / "main"
    git(tmp_path, "clone", "-q", str(origin), str(main))
    run = run_cli("build", "--budget", "50", cwd=main, env=paid)
    assert run.code == 0, run.out + run.err
    assert "rendered 1" in run.out and len(creates(service)) == SHOTS + 1
    assert git(main, "status", "--porcelain", "renderspec.lock").strip()  # the lock changed
    git(main, "commit", "-qm", "renderspec.lock: renders", "renderspec.lock")
    git(main, "push", "-q", "origin", "main")
    assert run_cli("plan", "--check", cwd=main, env=paid).code == 0

    # A sharded build of two more edits, then a job that pulls everything.
    edit(origin, "turns to the {{ side }}", "glances to the {{ side }}")
    git(origin, "commit", "-qam", "both angles change")
    for shard in (1, 2, 3):
        runner = tmp_path / f"shard-{shard}"
        git(tmp_path, "clone", "-q", str(origin), str(runner))
        run = run_cli("build", "--budget", "20", "--shard", f"{shard}/3", cwd=runner, env=paid)
        assert run.code == 0, run.out + run.err
    assert len(creates(service)) == SHOTS + 3  # turn-left and turn-right, once each
    gather = tmp_path / "gather"
    git(tmp_path, "clone", "-q", str(origin), str(gather))
    assert run_cli("pull", cwd=gather, env=paid).code == 0
    assert run_cli("plan", "--check", cwd=gather, env=paid).code == 0
    assert len(creates(service)) == SHOTS + 3
