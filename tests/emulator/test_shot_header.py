"""The emulator-only `X-Renderspec-Shot` header: read when it comes, harmless when it is bad or absent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest

from renderspec.emulator.app import CREATE_PATH, EmulatorOptions
from renderspec.emulator.preview import Caption
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.emulator.wire import CAPTION_MAX, SHOT_HEADER, parse_caption

from .support import BODY, HEADERS, status, wait_for_work

TURN = {"shot": "turn-left", "take": 2, "refs": {"image 1": "mia"}, "matrix": {"side": "left"}}


def test_the_header_is_read_as_the_shot_its_take_references_and_matrix_values() -> None:
    assert parse_caption(json.dumps(TURN)) == Caption(
        shot="turn-left", take=2, refs=(("image 1", "mia"),), matrix=(("side", "left"),)
    )
    numbers = parse_caption(json.dumps({"shot": "s", "matrix": {"n": 3, "on": True, "x": 1.5, "skip": [1]}}))
    assert numbers == Caption(shot="s", matrix=(("n", "3"), ("on", "true"), ("x", "1.5")))
    assert parse_caption(json.dumps({"shot": "s\nnext\tline"})) == Caption(shot="s next line")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "not json",
        "[1, 2]",
        json.dumps({"take": 1}),
        json.dumps({"shot": ""}),
        json.dumps({"shot": 7}),
        json.dumps({"shot": "x" * CAPTION_MAX}),
    ],
)
def test_a_missing_or_unreadable_header_is_ignored(value: str | None) -> None:
    assert parse_caption(value) is None


def test_odd_fields_are_dropped_not_fatal() -> None:
    caption = parse_caption(json.dumps({"shot": "s", "take": True, "refs": ["image 1"], "matrix": "side=left"}))
    assert caption == Caption(shot="s")
    assert parse_caption(json.dumps({"shot": "s", "take": 0})) == Caption(shot="s")


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0, concurrency=2)) as emulator:
        yield emulator


def created(running: RunningEmulator, shot: str | None) -> str:
    headers = dict(HEADERS) if shot is None else {**HEADERS, SHOT_HEADER: shot}
    answer = httpx.post(f"{running.url}{CREATE_PATH}", json=BODY, headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["output"]["task_id"])


def debug(running: RunningEmulator, task_id: str) -> dict[str, object]:
    tasks = httpx.get(f"{running.url}/_emulator/tasks").json()["tasks"]
    return next(task for task in tasks if task["task_id"] == task_id)


def video_sha(running: RunningEmulator, task_id: str) -> str:
    job = running.emulator.board.get(task_id)
    assert job is not None and job.video is not None
    return hashlib.sha256(job.video.read_bytes()).hexdigest()


def test_the_emulator_shows_what_it_read_and_which_headers_came(running: RunningEmulator) -> None:
    named, plain, broken = created(running, json.dumps(TURN)), created(running, None), created(running, "{oops")
    wait_for_work(running, named, plain, broken)
    assert debug(running, named)["caption"] == TURN
    assert "x-renderspec-shot" in debug(running, named)["headers"]  # type: ignore[operator]
    assert debug(running, plain)["caption"] is None
    assert "x-renderspec-shot" not in debug(running, plain)["headers"]  # type: ignore[operator]
    assert "authorization" in debug(running, plain)["headers"]  # type: ignore[operator]
    assert "Bearer" not in json.dumps(debug(running, plain)), "header names only: never the key"
    assert debug(running, broken)["caption"] is None
    for task in (named, plain, broken):  # with or without it, every task renders
        assert status(running, task)["task_status"] == "SUCCEEDED"


def test_the_caption_is_part_of_the_preview_so_shots_never_share_one_with_the_wrong_name(
    running: RunningEmulator,
) -> None:
    left, left_again = created(running, json.dumps(TURN)), created(running, json.dumps(TURN))
    right = created(running, json.dumps({**TURN, "shot": "turn-right", "matrix": {"side": "right"}}))
    plain = created(running, None)
    wait_for_work(running, left, left_again, right, plain)
    assert video_sha(running, left) == video_sha(running, left_again)  # the same shot: one encode
    assert len({video_sha(running, task) for task in (left, right, plain)}) == 3
