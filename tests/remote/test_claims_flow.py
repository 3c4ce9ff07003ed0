"""Two machines never pay for one shot: concurrent builds of clones share a remote with claims.

Real processes, a real shared folder as the remote, the paid DashScope client against one emulator
that counts every create. Held tasks stay RUNNING until the test releases them, so the order of
events is set by the test, not by the machine's speed.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for
from tests.test_build import SAFETY_NET, _spawn_build, _stop, _wait_for_creates

SHOTS = 8


def settings(remote: Path | str, lease: float = 300.0) -> str:
    return f'[renderspec]\npoll_interval = 0.05\n\n[renderspec.remote]\nurl = "{remote}"\nlease = {lease}\n'


def clone(source: Path, target: Path, text: str) -> Path:
    shutil.copytree(source / "specs", target / "specs")
    (target / "renderspec.toml").write_text(text)
    return target


def claims(remote: Path) -> list[dict[str, object]]:
    """The live claims on the folder remote (each key's newest generation)."""
    found = []
    for folder in (remote / "v1" / "claims").glob("*.json.d"):
        generations = [path for path in folder.iterdir() if path.name.split(".")[0].isdigit()]
        newest = max(generations, key=lambda path: int(path.name.split(".")[0]), default=None)
        if newest is not None and newest.suffix == ".json" and newest.stat().st_size:
            found.append(json.loads(newest.read_text()))
    return found


def wait_until(condition: object, what: str) -> None:
    """Waits for a condition the test cannot be told about by an event (files another process writes)."""
    deadline = time.monotonic() + SAFETY_NET  # a net only: healthy runs end as soon as it holds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def release(running: RunningEmulator) -> None:
    httpx.post(f"{running.url}/_emulator/release").raise_for_status()


def s3_claims(client: Any, bucket: str) -> list[dict[str, object]]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix="team/v1/claims/").get("Contents", [])
    return [json.loads(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()) for item in listed]


def shared_remote(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, dict[str, str], Callable[[], list[dict[str, object]]]]:
    """The remote's URL, the environment to reach it, and a way to read its live claims."""
    if kind == "folder":
        remote = tmp_path / "remote"
        remote.mkdir()
        return str(remote), {}, lambda: claims(remote)
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    extra = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": endpoint}
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"claims-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/team", extra, lambda: s3_claims(client, bucket)


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_two_clones_building_at_once_pay_once_per_shot(
    example_project: Path, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    url, extra, live = shared_remote(kind, tmp_path, request)
    a = clone(example_project, tmp_path / "a", settings(url))
    b = clone(example_project, tmp_path / "b", settings(url))
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=16, hold=True)) as running:
        env = {**env_for(running), **extra}
        first, second = _spawn_build(a, env), _spawn_build(b, env)
        _wait_for_creates(running, first, SHOTS // 2)  # both have started claiming and paying
        wait_until(lambda: len(live()) == SHOTS, "a claim on every shot")
        release(running)
        for child in (first, second):
            assert child.process.wait(timeout=SAFETY_NET) == 0, child.output()
        made = creates(running)
    assert len(made) == SHOTS, first.output() + second.output()
    assert len({json.dumps(task["request"], sort_keys=True) for task in made}) == SHOTS
    renders = {path.name: path.read_bytes() for path in (a / "renders").glob("*.mp4")}
    assert len(renders) == SHOTS
    assert renders == {path.name: path.read_bytes() for path in (b / "renders").glob("*.mp4")}
    assert live() == []  # every claim released
    assert "waiting for" in first.output() + second.output()


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_a_killed_builds_claims_are_taken_over_and_its_tasks_collected(
    example_project: Path, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    url, extra, live = shared_remote(kind, tmp_path, request)
    a = clone(example_project, tmp_path / "a", settings(url, lease=1.0))
    b = clone(example_project, tmp_path / "b", settings(url, lease=1.0))
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=16, hold=True)) as running:
        env = {**env_for(running), **extra}
        killed = _spawn_build(a, env)
        _wait_for_creates(running, killed, SHOTS)
        wait_until(lambda: sum(1 for claim in live() if claim.get("task_id")) == SHOTS, "task ids in claims")
        assert _stop(killed, signal.SIGKILL) == -signal.SIGKILL
        release(running)
        taker = _spawn_build(b, env)
        assert taker.process.wait(timeout=SAFETY_NET) == 0, taker.output()
        made = creates(running)
    assert len(made) == SHOTS, killed.output() + taker.output()  # the taker paid for nothing
    assert "of an expired claim" in taker.output()
    assert len(list((b / "renders").glob("*.mp4"))) == SHOTS


def test_builds_with_few_slots_never_pay_for_what_another_finished_meanwhile(
    example_project: Path, tmp_path: Path
) -> None:
    """A shot waiting for a slot may find its claim free again because another build rendered,
    shared and released it meanwhile: it is fetched, not paid for a second time."""
    import os
    import subprocess
    import sys

    remote = tmp_path / "remote"
    remote.mkdir()
    clones = [clone(example_project, tmp_path / name, settings(remote)) for name in ("a", "b", "c")]
    with start_in_thread(EmulatorOptions(latency=0.2, concurrency=16)) as running:
        env = {**os.environ, **env_for(running)}
        builds = [
            subprocess.Popen(
                [sys.executable, "-m", "renderspec", "build", "-j", "1"],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for project in clones
        ]
        outputs = [build.communicate(timeout=SAFETY_NET)[0] for build in builds]
        assert all(build.returncode == 0 for build in builds), outputs
        assert len(creates(running)) == SHOTS, outputs
    renders = [{path.name: path.read_bytes() for path in (project / "renders").glob("*.mp4")} for project in clones]
    assert len(renders[0]) == SHOTS and renders[0] == renders[1] == renders[2]
