"""The emulator's task state machine under a fake clock."""

from __future__ import annotations

from renderspec.emulator.jobs import Job, JobBoard, State


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def board(clock: FakeClock, started: list[Job], **options: float) -> JobBoard:
    return JobBoard(clock=clock, start_work=started.append, **options)  # type: ignore[arg-type]


def test_tasks_run_at_most_concurrency_at_once_and_take_latency() -> None:
    clock, started = FakeClock(), []
    jobs = board(clock, started, latency=10, concurrency=2)
    a, b, c = (jobs.create({}, flavour="native", oss_resolve=False, doomed=None) for _ in range(3))
    assert [a.state, b.state, c.state] == [State.RUNNING, State.RUNNING, State.PENDING]
    for job in (a, b):
        jobs.finish_work(job)
    clock.now += 9.9
    jobs.tick()
    assert a.state is State.RUNNING
    clock.now += 0.1
    jobs.tick()
    assert (a.state, b.state, c.state) == (State.SUCCEEDED, State.SUCCEEDED, State.RUNNING)
    assert a.ended == 1010.0 and c.scheduled == 1010.0
    assert started == [a, b, c]


def test_a_task_waits_for_its_work_even_after_the_latency() -> None:
    clock, started = FakeClock(), []
    jobs = board(clock, started, latency=1, concurrency=1)
    job = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    clock.now += 5
    jobs.tick()
    assert job.state is State.RUNNING
    jobs.finish_work(job)
    assert job.state is State.SUCCEEDED


def test_failures_from_work_or_dice_end_failed() -> None:
    clock, started = FakeClock(), []
    jobs = board(clock, started, latency=0, concurrency=5)
    broken = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    doomed = jobs.create({}, flavour="native", oss_resolve=False, doomed=("InternalError.Algo", "boom"))
    jobs.finish_work(broken, error=("InvalidImageUrl", "cannot fetch"))
    jobs.finish_work(doomed)
    assert (broken.state, broken.failure) == (State.FAILED, ("InvalidImageUrl", "cannot fetch"))
    assert (doomed.state, doomed.failure) == (State.FAILED, ("InternalError.Algo", "boom"))


def test_only_pending_tasks_can_be_canceled() -> None:
    clock, started = FakeClock(), []
    jobs = board(clock, started, latency=10, concurrency=1)
    first = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    second = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    assert jobs.cancel(first.id) == (False, State.RUNNING)
    assert jobs.cancel(second.id) == (True, State.CANCELED)
    assert jobs.cancel("missing") == (False, State.UNKNOWN)
    jobs.finish_work(first)
    clock.now += 10
    jobs.tick()
    assert second.state is State.CANCELED and started == [first]


def test_tasks_are_purged_after_their_retention() -> None:
    clock, started = FakeClock(), []
    jobs = board(clock, started, latency=0, concurrency=1, retention=86_400)
    job = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    clock.now += 86_400
    assert jobs.get(job.id) is job
    clock.now += 1
    assert jobs.get(job.id) is None
