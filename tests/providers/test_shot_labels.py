"""Who a shot is reaches the local emulator's previews, and never a real service.

The labels travel planner → executor → provider.create(labels=...) → `X-Renderspec-Shot`, a header
only the local provider sends; the emulator records the names of the headers each create carried.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest

from renderspec.core.model import ShotLabels
from renderspec.emulator.preview import BAND, Caption, PreviewRequest, _bands, _font, layout
from renderspec.emulator.wire import CAPTION_MAX, SHOT_HEADER, parse_caption
from renderspec.outcomes import Outcome
from renderspec.providers.base import TaskState
from renderspec.providers.local import LocalProvider, shot_header
from tests.conftest import run_cli
from tests.test_executor import FakeService, FakeTime, executor, shot

from .support import body, close_all, emulator, emulator_tasks, engine, provider, upload_all, wait_for_final

LABELS = ShotLabels(
    shot="turn-left", take=2, refs=(("image 1", "mia"), ("video 1", "bottle")), matrix=(("side", "left"),)
)
HEADER = SHOT_HEADER.lower()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def close_providers() -> AsyncIterator[None]:
    yield
    await close_all()


def test_the_header_is_ascii_json_the_emulator_reads_back() -> None:
    labels = dataclasses.replace(LABELS, matrix=(("side", "gauche"), ("lieu", "café, 庭"), ("n", "2")))
    value = shot_header(labels)
    assert value.isascii() and "\n" not in value
    assert parse_caption(value) == Caption(shot=labels.shot, take=2, refs=labels.refs, matrix=labels.matrix)


def test_a_header_too_long_for_the_emulator_keeps_only_the_shot_and_take() -> None:
    many = dataclasses.replace(LABELS, matrix=tuple((f"v{n}", "庭" * 500) for n in range(30)))
    value = shot_header(many)
    assert len(value) <= CAPTION_MAX
    assert parse_caption(value) == Caption(shot="turn-left", take=2)


@pytest.mark.anyio
async def test_the_local_provider_tells_the_emulator_who_the_shot_is() -> None:
    with emulator() as running:
        local = LocalProvider(engine(running.url), running, poll_interval=0.05)
        try:
            links = await upload_all(local)
            labelled = await local.create(body(links), labels=LABELS)
            unlabelled = await local.create(body(links))
            assert (await wait_for_final(local, labelled.task_id)).state is TaskState.SUCCEEDED
            tasks = {task["task_id"]: task for task in emulator_tasks(running)}
        finally:
            await local.engine.aclose()  # the emulator is the fixture's to stop
    assert HEADER in tasks[labelled.task_id]["headers"]
    assert tasks[labelled.task_id]["caption"] == {
        "shot": "turn-left",
        "take": 2,
        "refs": {"image 1": "mia", "video 1": "bottle"},
        "matrix": {"side": "left"},
    }
    assert HEADER not in tasks[unlabelled.task_id]["headers"] and tasks[unlabelled.task_id]["caption"] is None


@pytest.mark.anyio
@pytest.mark.parametrize("flavour", ["dashscope", "apiyi"])
async def test_a_real_services_provider_never_sends_the_header(flavour: str, close_providers: None) -> None:
    with emulator() as running:
        client = provider(flavour, running.url)
        links = await upload_all(client)
        submitted = await client.create(body(links), labels=LABELS)
        assert (await wait_for_final(client, submitted.task_id)).state is TaskState.SUCCEEDED
        (task,) = emulator_tasks(running)
    assert task["headers"], "the emulator records every create's header names"
    assert HEADER not in task["headers"] and not any("renderspec" in name for name in task["headers"])
    assert task["caption"] is None
    assert "turn-left" not in json.dumps(task["request"]) and "mia" not in json.dumps(task["request"]["input"])


@pytest.mark.anyio
async def test_the_executor_hands_each_shot_its_labels(tmp_path: Path) -> None:
    clock, service = FakeTime(), FakeService(polls=1)
    run, _, _ = executor(tmp_path, service, clock)
    labelled = dataclasses.replace(shot(1), labels=LABELS)
    results = await run.run([labelled, shot(2)], {})
    assert [result.outcome for result in results] == [Outcome.RENDERED] * 2
    assert sorted(service.labels, key=str) == sorted([LABELS, None], key=str)


# -- end to end: a storyboard built with the local provider -------------------------------------

SPEC = """
[refs.mia]
image = "refs/mia.png"
[refs.dress]
image = "refs/dress.png"

[[shots]]
id = "turn-{{ side }}"
matrix = { side = ["left", "right"] }
media = ["mia", "dress"]
prompt = "{{ mia }} in {{ dress }} turns to the {{ side }}."
duration = 2
resolution = "720P"
ratio = "16:9"
"""


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24").astype(np.int16)


def header(side: str, caption: Caption | None) -> tuple[np.ndarray, np.ndarray]:
    """The header as the preview of `turn-<side>` would draw it with `caption`, and where its text
    is (the running timecode left out)."""
    wanted = PreviewRequest(
        width=1280, height=720, seconds=2, prompt=f"image 1 in image 2 turns to the {side}.", caption=caption
    )
    plan = layout(wanted, ["image 1", "image 2"])
    drawn = np.asarray(_bands(plan, 0, _font(plan.font_size))).astype(np.int16)
    text = (drawn != BAND).any(axis=-1)
    text[plan.header.bottom :] = False
    text[plan.timecode.y : plan.timecode.bottom, plan.timecode.x : plan.timecode.right] = False
    return drawn, text


def caption(side: str) -> Caption:
    return Caption(shot=f"turn-{side}", refs=(("image 1", "mia"), ("image 2", "dress")), matrix=(("side", side),))


def test_build_with_the_local_provider_burns_in_each_shots_own_name(project: Path) -> None:
    """No OCR: each render's header looks like its own labels drawn, not like the fallback's text
    or the other variant's (compared where either has text)."""
    (project / "specs" / "turn.toml").write_text(SPEC)
    (project / "renderspec.toml").write_text("[renderspec]\npoll_interval = 0.05\n")
    done = run_cli("build", "--provider", "local", cwd=project)
    assert done.code == 0, done.out + done.err
    for side, other in (("left", "right"), ("right", "left")):
        shown = first_frame(project / "renders" / f"turn-{side}.mp4")
        own, own_text = header(side, caption(side))
        for candidate in (header(side, None), header(side, caption(other))):
            drawn, text = candidate
            where = own_text | text
            mine, theirs = (float(np.abs(shown[where] - pixels[where]).mean()) for pixels in (own, drawn))
            assert mine < 20 and theirs > 3 * mine, (side, mine, theirs)  # text edges blur in H.264
