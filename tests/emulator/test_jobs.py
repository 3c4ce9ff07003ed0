"""The emulator's task state machine under a fake clock."""

from __future__ import annotations

import threading

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


def test_a_holding_board_keeps_finished_work_running_until_released() -> None:
    clock, started = FakeClock(), []
    jobs = JobBoard(clock=clock, start_work=started.append, latency=1, concurrency=3, hold=True)
    a, b = (jobs.create({}, flavour="native", oss_resolve=False, doomed=None) for _ in range(2))
    for job in (a, b):
        jobs.finish_work(job)
    clock.now += 3600
    jobs.tick()
    assert (a.state, b.state) == (State.RUNNING, State.RUNNING)
    assert jobs.release(a.id) == [a]
    assert (a.state, b.state) == (State.SUCCEEDED, State.RUNNING) and a.ended == clock.now
    assert jobs.release(a.id) == []  # no longer held
    assert jobs.release("missing") is None
    assert jobs.release() == [b] and b.state is State.SUCCEEDED


def test_a_released_task_still_waits_for_its_work_and_latency() -> None:
    clock, started = FakeClock(), []
    jobs = JobBoard(clock=clock, start_work=started.append, latency=10, concurrency=1, hold=True)
    job = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    assert jobs.release() == [job] and job.state is State.RUNNING
    jobs.finish_work(job)
    clock.now += 9.9
    jobs.tick()
    assert job.state is State.RUNNING
    clock.now += 0.1
    jobs.tick()
    assert job.state is State.SUCCEEDED


def test_releasing_everything_ends_the_hold_for_new_tasks() -> None:
    clock, started = FakeClock(), []
    jobs = JobBoard(clock=clock, start_work=started.append, latency=0, concurrency=2, hold=True)
    held = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    jobs.finish_work(held)
    assert held.state is State.RUNNING
    assert jobs.release() == [held] and held.state is State.SUCCEEDED
    later = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    jobs.finish_work(later)
    assert later.state is State.SUCCEEDED and jobs.release() == []


def test_waiting_for_a_condition_wakes_when_another_thread_changes_the_board() -> None:
    clock, started = FakeClock(), []
    jobs = board(clock, started, latency=0, concurrency=1)
    job = jobs.create({}, flavour="native", oss_resolve=False, doomed=None)
    assert jobs.wait_for(lambda all_jobs: all_jobs[0].state is State.SUCCEEDED, timeout=0) is False
    worker = threading.Thread(target=jobs.finish_work, args=(job,))
    worker.start()
    assert jobs.wait_for(lambda all_jobs: all_jobs[0].state is State.SUCCEEDED, timeout=60)
    worker.join()
