"""Injected faults with a cap on how many one request meets in a row (`max_faults_in_a_row`)."""

from __future__ import annotations

import httpx
import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.jobs import State
from renderspec.emulator.server import RunningEmulator, start_in_thread

from .support import HEADERS, create, post_create


def query_codes(running: RunningEmulator, task_id: str, times: int) -> list[int]:
    return [httpx.get(f"{running.url}/api/v1/tasks/{task_id}", headers=HEADERS).status_code for _ in range(times)]


def test_one_request_meets_at_most_the_cap_of_faults_in_a_row() -> None:
    with start_in_thread(EmulatorOptions(error_rate=1.0, max_faults_in_a_row=2)) as running:
        assert query_codes(running, "a", 6) == [500, 500, 200, 500, 500, 200]


def test_each_request_has_its_own_streak() -> None:
    with start_in_thread(EmulatorOptions(error_rate=1.0, max_faults_in_a_row=2)) as running:
        interleaved = [query_codes(running, task, 1)[0] for task in ("a", "b", "a", "b", "a", "b")]
        assert interleaved == [500, 500, 500, 500, 200, 200]


def test_server_errors_and_throttling_count_in_one_streak() -> None:
    with start_in_thread(EmulatorOptions(error_rate=1.0, throttle=1.0, max_faults_in_a_row=3)) as running:
        codes = [post_create(running).status_code for _ in range(8)]
        assert codes == [500, 500, 500, 200, 500, 500, 500, 200]  # never a 429 after three 500s


def test_downloads_are_cut_at_most_the_cap_in_a_row() -> None:
    with start_in_thread(EmulatorOptions(latency=0, truncate_rate=1.0, max_faults_in_a_row=2)) as running:
        task_id = create(running)
        assert running.emulator.board.wait_for(lambda jobs: jobs[0].state is State.SUCCEEDED, timeout=60)
        url = httpx.get(f"{running.url}/api/v1/tasks/{task_id}", headers=HEADERS).json()["output"]["video_url"]
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):  # the connection dies half-way
                httpx.get(url)
        whole = httpx.get(url)
        assert whole.status_code == 200 and len(whole.content) == int(whole.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url)


def test_without_a_cap_faults_are_as_the_dice_fall() -> None:
    with start_in_thread(EmulatorOptions(error_rate=1.0)) as running:
        assert query_codes(running, "a", 6) == [500] * 6
