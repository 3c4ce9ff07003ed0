"""Claims on a shared folder, with an injected clock: who may pay for a shot, and when a claim can be taken over."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderspec.remote.claims import Claim, Claims, Holder, claim_path
from renderspec.remote.folder import FolderBackend

KEY = "cd" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def build(tmp_path: Path, clock: Clock, name: str, lease: float = 60.0) -> Claims:
    (tmp_path / "remote").mkdir(exist_ok=True)
    who = {"token": f"token-{name}", "host": name, "process": 1, "job": None}
    return Claims(FolderBackend(tmp_path / "remote"), lease=lease, clock=clock, who=who)


def test_one_build_claims_and_another_sees_who_holds_it(tmp_path: Path, clock: Clock) -> None:
    a, b = build(tmp_path, clock, "runner-a"), build(tmp_path, clock, "runner-b")
    mine = a.take(KEY)
    assert isinstance(mine, Claim) and mine.inherited_task is None
    theirs = b.take(KEY)
    assert isinstance(theirs, Holder) and theirs.host == "runner-a" and theirs.since == clock.now
    assert isinstance(a.take(KEY), Claim)  # asking again: still ours


def test_a_renewed_claim_stays_live_and_records_the_task(tmp_path: Path, clock: Clock) -> None:
    a, b = build(tmp_path, clock, "runner-a"), build(tmp_path, clock, "runner-b")
    claim = a.take(KEY)
    assert isinstance(claim, Claim)
    clock.now += 50
    renewed = a.renew(claim, "task-17")
    assert renewed is not None
    clock.now += 50  # past the first lease, inside the renewed one
    theirs = b.take(KEY)
    assert isinstance(theirs, Holder) and theirs.task_id == "task-17"


def test_an_expired_claim_is_taken_over_with_its_task(tmp_path: Path, clock: Clock) -> None:
    a, b = build(tmp_path, clock, "runner-a"), build(tmp_path, clock, "runner-b")
    claim = a.take(KEY)
    assert isinstance(claim, Claim)
    claim = a.renew(claim, "task-17")
    assert claim is not None
    clock.now += 61  # runner-a was killed: no renewal came
    taken = b.take(KEY)
    assert isinstance(taken, Claim) and taken.inherited_task == "task-17"  # collect it, do not pay again
    assert a.renew(claim) is None  # the old holder learns it lost the claim
    assert a.release(claim) is False
    assert isinstance(a.take(KEY), Holder)


def test_a_released_claim_frees_the_key(tmp_path: Path, clock: Clock) -> None:
    a, b = build(tmp_path, clock, "runner-a"), build(tmp_path, clock, "runner-b")
    claim = a.take(KEY)
    assert isinstance(claim, Claim) and a.release(claim)
    assert isinstance(b.take(KEY), Claim)


def test_garbage_in_a_claim_counts_as_expired(tmp_path: Path, clock: Clock) -> None:
    a = build(tmp_path, clock, "runner-a")
    a.backend.create(claim_path(KEY), b"not json")
    taken = a.take(KEY)
    assert isinstance(taken, Claim) and taken.inherited_task is None
