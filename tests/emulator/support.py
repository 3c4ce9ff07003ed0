"""Talking to an emulator started in this process: a small valid create, its status, its work."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from renderspec.emulator.app import CREATE_PATH
from renderspec.emulator.server import RunningEmulator
from tests.conftest import REPO

HEADERS = {"Authorization": "Bearer sk-emulator-test", "X-DashScope-Async": "enable"}
IMAGE = "data:image/png;base64," + base64.b64encode((REPO / "specs" / "refs" / "mia.png").read_bytes()).decode()
BODY = {
    "model": "wan2.7-r2v",
    "input": {"prompt": "image 1 waves", "media": [{"type": "reference_image", "url": IMAGE}]},
    "parameters": {"resolution": "720P", "duration": 2},
}


def post_create(running: RunningEmulator) -> httpx.Response:
    return httpx.post(f"{running.url}{CREATE_PATH}", json=BODY, headers=HEADERS)


def create(running: RunningEmulator) -> str:
    answer = post_create(running)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["output"]["task_id"])


def status(running: RunningEmulator, task_id: str) -> dict[str, Any]:
    output: dict[str, Any] = httpx.get(f"{running.url}/api/v1/tasks/{task_id}", headers=HEADERS).json()["output"]
    return output


def wait_for_work(running: RunningEmulator, *task_ids: str) -> None:
    """Blocks until the emulator has rendered these tasks, so only a hold can keep them RUNNING."""
    rendered = running.emulator.board.wait_for(
        lambda jobs: {job.id for job in jobs if job.work_done} >= set(task_ids), timeout=60
    )
    assert rendered, "the emulator never finished rendering"  # a safety net, not a timing assertion
