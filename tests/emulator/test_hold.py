"""An emulator that holds tasks RUNNING until a test releases them over HTTP (`/_emulator/release`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread

from .support import create, status, wait_for_work


@pytest.fixture
def holding() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0, concurrency=4, hold=True)) as running:
        yield running


def release(running: RunningEmulator, task_id: str | None = None) -> httpx.Response:
    return httpx.post(f"{running.url}/_emulator/release" + (f"/{task_id}" if task_id else ""))


def test_held_tasks_stay_running_until_released_one_by_one_or_all(holding: RunningEmulator) -> None:
    first, second = create(holding), create(holding)
    wait_for_work(holding, first, second)
    assert [status(holding, task)["task_status"] for task in (first, second)] == ["RUNNING", "RUNNING"]
    tasks = httpx.get(f"{holding.url}/_emulator/tasks").json()["tasks"]
    assert [(task["task_id"], task["held"]) for task in tasks] == [(first, True), (second, True)]

    assert release(holding, first).json() == {"released": [first]}
    released = status(holding, first)
    assert released["task_status"] == "SUCCEEDED" and released["video_url"]
    assert status(holding, second)["task_status"] == "RUNNING"
    assert release(holding, first).json() == {"released": []}  # no longer held
    unknown = release(holding, "no-such-task")
    assert unknown.status_code == 404 and "no-such-task" in unknown.json()["message"]

    assert release(holding).json() == {"released": [second]}
    assert status(holding, second)["task_status"] == "SUCCEEDED"


def test_after_releasing_everything_new_tasks_are_not_held(holding: RunningEmulator) -> None:
    assert release(holding).json() == {"released": []}
    task = create(holding)
    wait_for_work(holding, task)
    assert status(holding, task)["task_status"] == "SUCCEEDED"
    assert httpx.get(f"{holding.url}/_emulator/tasks").json()["tasks"][0]["held"] is False


def test_without_hold_tasks_end_on_their_own() -> None:
    with start_in_thread(EmulatorOptions(latency=0, concurrency=1)) as running:
        task = create(running)
        wait_for_work(running, task)
        assert status(running, task)["task_status"] == "SUCCEEDED"
