"""The executor's schedule and failure rules, with a fake clock that is also the sleeper.

A small in-memory provider stands in for the service here, so the exact polling schedule and the
deadlines can be asserted without waiting; the end-to-end behaviour is tested against the
emulator in test_build.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from renderspec.core.model import PlannedShot, ShotLabels
from renderspec.executor import BuildOptions, Executor
from renderspec.journal import Journal
from renderspec.outcomes import Outcome, ShotResult
from renderspec.providers.base import Submitted, TaskState, TaskStatus, TaskSummary
from renderspec.providers.dashscope import sent_facts
from renderspec.store import Entry, LocalStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await anyio.lowlevel.checkpoint()


class FakeService:
    """Tasks that finish after `polls` queries, ending in `final`."""

    name = "fake"
    kind = "fake"
    poll_interval = 10.0

    def __init__(self, polls: int = 3, final: TaskState = TaskState.SUCCEEDED) -> None:
        self.polls = polls
        self.final = final
        self.created: list[Mapping[str, Any]] = []
        self.labels: list[ShotLabels | None] = []
        self.queries: dict[str, int] = {}

    async def upload(self, path: Path, sha256: str, model: str) -> str:
        return f"https://files.example/{sha256}"

    async def create(self, body: Mapping[str, Any], *, labels: ShotLabels | None = None) -> Submitted:
        self.created.append(body)
        self.labels.append(labels)
        return Submitted(task_id=f"task-{len(self.created)}", request_id="r")

    async def query(self, task_id: str) -> TaskStatus:
        count = self.queries[task_id] = self.queries.get(task_id, 0) + 1
        state = self.final if count >= self.polls else TaskState.RUNNING
        return TaskStatus(
            task_id=task_id,
            state=state,
            raw_status=state.value,
            video_url="https://results.example/v.mp4",
            code="Boom" if state is TaskState.FAILED else None,
        )

    async def cancel(self, task_id: str) -> None:
        raise NotImplementedError

    async def recent_tasks(self, model: str, since_epoch: float, until_epoch: float) -> list[TaskSummary] | None:
        return []

    def request_facts(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return sent_facts(body)

    async def download(self, url: str, destination: Path) -> int:
        destination.write_bytes(b"video")
        return 5

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class Commits:
    def __init__(self) -> None:
        self.shots: list[str] = []

    def commit(self, shot: PlannedShot, entry: Entry, task_id: str | None) -> str:
        self.shots.append(shot.id)
        return f"renders/{shot.id}.mp4"


class Quiet:
    def stage(self, shot_id: str, stage: str) -> None:
        pass

    def done(self, result: ShotResult) -> None:
        pass

    def close(self) -> None:
        pass


def shot(number: int) -> PlannedShot:
    request = {"model": "wan2.7-r2v", "input": {"prompt": f"p{number}", "media": []}, "parameters": {"duration": 5}}
    return PlannedShot(
        id=f"s{number}", spec="specs/a.toml", index=number, key=f"{number:064d}", request=request, payload={"request": request},
        expected_size=(1280, 720), model="wan2.7-r2v", duration=5, resolution="720P", ratio="16:9", digests={},
        input_video_seconds=0.0, cost=3.0, currency="CNY",
    )  # fmt: skip


class Ledger:
    """The executor's two disk collaborators, as a test reads them."""

    def __init__(self, root: Path) -> None:
        self.store, self.journal = LocalStore(root), Journal(root / "journal")

    def has(self, key: str) -> bool:
        return self.store.has(key)

    def records(self) -> dict[str, Any]:
        return {key: record.as_json() for key, record in self.journal.records().items()}


def executor(tmp_path: Path, service: FakeService, clock: FakeTime, **options: Any) -> tuple[Executor, Ledger, Commits]:
    ledger, commits = Ledger(tmp_path / "cache"), Commits()
    settings = dataclasses.replace(BuildOptions(poll_interval=10.0, timeout=60.0, submit_interval=0.0), **options)
    made = Executor(
        provider=service, store=ledger.store, journal=ledger.journal, files_root=tmp_path, outputs=commits,
        events=Quiet(), options=settings, verify=lambda path, size, seconds, tolerance: None, clock=clock,
        sleep=clock.sleep,
    )  # fmt: skip
    return made, ledger, commits


async def test_polls_on_the_configured_interval_until_the_task_ends(tmp_path: Path) -> None:
    clock, service = FakeTime(), FakeService(polls=4)
    run, cache, commits = executor(tmp_path, service, clock)
    (result,) = await run.run([shot(1)], {})
    assert result.outcome is Outcome.RENDERED and commits.shots == ["s1"]
    assert clock.sleeps == [10.0, 10.0, 10.0]
    assert cache.has(shot(1).key) and cache.records() == {}


async def test_a_task_past_its_deadline_fails_the_shot_but_stays_journaled(tmp_path: Path) -> None:
    clock, service = FakeTime(), FakeService(polls=10_000)
    run, cache, _ = executor(tmp_path, service, clock, timeout=60.0)
    (result,) = await run.run([shot(1)], {})
    assert result.outcome is Outcome.FAILED and "still not finished after 1 min" in (result.message or "")
    assert "no new charge" in (result.message or "")
    assert clock.sleeps == [10.0] * 6
    assert cache.records()[shot(1).key]["task_id"] == "task-1"
    again, _, _ = executor(tmp_path, FakeService(polls=1), clock)
    (resumed,) = await again.run([shot(1)], cache.journal.records())
    assert resumed.outcome is Outcome.RENDERED and resumed.task_id == "task-1"


async def test_creates_are_spaced_by_the_submit_interval(tmp_path: Path) -> None:
    clock, service = FakeTime(), FakeService(polls=1)
    run, _, _ = executor(tmp_path, service, clock, submit_interval=0.5, jobs=3)
    results = await run.run([shot(1), shot(2), shot(3)], {})
    assert [r.outcome for r in results] == [Outcome.RENDERED] * 3
    assert clock.sleeps.count(0.5) == 2 and len(service.created) == 3


async def test_without_keep_going_a_failure_stops_new_submissions(tmp_path: Path) -> None:
    clock, service = FakeTime(), FakeService(polls=1, final=TaskState.FAILED)
    run, cache, _ = executor(tmp_path, service, clock, jobs=1)
    results = await run.run([shot(1), shot(2), shot(3)], {})
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.SKIPPED, Outcome.SKIPPED]
    assert results[0].code == "Boom" and len(service.created) == 1
    assert cache.records() == {}  # failed tasks are not billed: the next build may submit again


async def test_with_keep_going_every_shot_is_tried(tmp_path: Path) -> None:
    clock, service = FakeTime(), FakeService(polls=1, final=TaskState.FAILED)
    run, _, _ = executor(tmp_path, service, clock, jobs=1, keep_going=True)
    results = await run.run([shot(1), shot(2), shot(3)], {})
    assert [r.outcome for r in results] == [Outcome.FAILED] * 3 and len(service.created) == 3


async def test_a_disk_error_fails_the_shot_and_keeps_the_paid_task_journaled(tmp_path: Path) -> None:
    clock, service = FakeTime(), FakeService(polls=1)
    run, cache, _ = executor(tmp_path, service, clock)

    async def full_disk(url: str, destination: Path) -> int:
        raise OSError(28, "No space left on device", str(destination))

    service.download = full_disk  # type: ignore[method-assign]
    (result,) = await run.run([shot(1)], {})
    assert result.outcome is Outcome.FAILED and "No space left on device" in (result.message or "")
    assert cache.records()[shot(1).key]["task_id"] == "task-1"
