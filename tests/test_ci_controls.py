"""`build --shard K/N` and `build --budget AMOUNT`: the controls a CI matrix and a main-branch job need.

End to end through the paid DashScope client path against the emulator (counting creates), plus
the pure shard selection under hypothesis and the executor's budget hook under a fake clock.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderspec.budget import Budget
from renderspec.core.model import PlannedShot
from renderspec.core.shards import Shard, shard_share
from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.executor import BuildOptions, Executor
from renderspec.journal import Journal
from renderspec.outcomes import Outcome
from renderspec.providers.base import TaskState
from tests.conftest import creates, env_for, fast, run_cli
from tests.test_executor import Commits, FakeService, FakeTime, Ledger, Quiet, shot

SHOTS = 8
ESTIMATE = "¥30.00"  # the example's eight shots: 44 s of 720P video


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=8)) as running:
        yield running


# -- shards ---------------------------------------------------------------------------------------


def test_three_shards_cover_every_shot_exactly_once_and_a_later_job_pulls_them_all(
    example_project: Path, service: RunningEmulator, tmp_path: Path
) -> None:
    fast(example_project)
    (tmp_path / "remote").mkdir()  # a shared folder all jobs mount (S3 in a real matrix)
    env = {**env_for(service), "RENDERSPEC_REMOTE": str(tmp_path / "remote"), "RENDERSPEC_REMOTE_REQUIRED": "1"}
    rendered: list[str] = []
    for index in (1, 2, 3):  # three CI jobs, each on a fresh clone, each pushing what it rendered
        job = shutil.copytree(example_project, tmp_path / f"job-{index}")
        before = len(creates(service))
        run = run_cli("build", "--shard", f"{index}/3", "--json", cwd=job, env=env)
        assert run.code == 0, run.out + run.err
        document = json.loads(run.out)
        mine = [shot["id"] for shot in document["shots"]]
        assert all(shot["state"] == "rendered" for shot in document["shots"])
        assert document["summary"]["other_shards"] == SHOTS - len(mine)
        assert len(creates(service)) - before == len(mine)
        rendered += mine
    assert len(rendered) == SHOTS and len(set(rendered)) == SHOTS
    assert len(creates(service)) == SHOTS

    later = shutil.copytree(example_project, tmp_path / "collector")
    pulled = run_cli("pull", cwd=later, env=env)
    assert pulled.code == 0, pulled.out + pulled.err
    assert len(list((later / "renders").glob("*.mp4"))) == SHOTS
    assert run_cli("plan", "--check", cwd=later, env=env).code == 0
    assert len(creates(service)) == SHOTS


def test_a_shard_says_how_many_shots_other_shards_own(example_project: Path, service: RunningEmulator) -> None:
    project = fast(example_project)
    shares = {index: json.loads(run_cli("build", "--dry-run", "--json", "--shard", f"{index}/3", cwd=project,
                                        env=env_for(service)).out)["shots"] for index in (1, 2, 3)}  # fmt: skip
    first = run_cli("build", "--shard", "1/3", cwd=project, env=env_for(service))
    others = SHOTS - len(shares[1])
    assert first.code == 0 and f"{others} shots belong to other shards (--shard 1/3)" in first.out, first.out
    again = run_cli("build", "--shard", "1/3", cwd=project, env=env_for(service))
    assert again.out.startswith(f"nothing to render: {len(shares[1])} shot")
    assert f"cached; {others} shots belong to other shards (--shard 1/3)" in again.out
    assert sorted(s["id"] for share in shares.values() for s in share) == sorted(
        s["id"] for s in json.loads(run_cli("plan", "--json", cwd=project, env=env_for(service)).out)["shots"]
    )
    assert len(creates(service)) == len(shares[1])


def _shot(key: str, number: int = 0) -> PlannedShot:
    return dataclasses.replace(shot(number), id=f"s{number}", key=key)


keys = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@given(
    st.lists(keys, min_size=1, max_size=30, unique=True),
    keys,
    st.integers(min_value=1, max_value=12),
    st.data(),
)
def test_a_shards_share_does_not_move_when_an_unrelated_shot_is_added(
    existing: list[str], added: str, count: int, data: st.DataObject
) -> None:
    shard = Shard(data.draw(st.integers(min_value=1, max_value=count)), count)
    shots = [_shot(key, number) for number, key in enumerate(existing)]
    before, _ = shard_share(shots, shard)
    position = data.draw(st.integers(min_value=0, max_value=len(shots)))
    after, _ = shard_share([*shots[:position], _shot(added, 99), *shots[position:]], shard)
    assert [s for s in after if s.id != "s99"] == before


@given(st.lists(keys, min_size=1, max_size=30), st.integers(min_value=1, max_value=12))
def test_every_shot_is_in_exactly_one_shard_and_one_key_in_one_shard(keys_: list[str], count: int) -> None:
    shots = [_shot(key, number) for number, key in enumerate(keys_)]  # repeated keys: identical requests
    owners: dict[str, set[int]] = {}
    for index in range(1, count + 1):
        mine, others = shard_share(shots, Shard(index, count))
        assert len(mine) + len(others) == len(shots)
        for each in mine:
            owners.setdefault(each.id, set()).add(index)
            assert all(Shard(index, count).owns(other.key) for other in shots if other.key == each.key)
    assert all(len(found) == 1 for found in owners.values()) and len(owners) == len(shots)


def test_the_shard_of_a_key_is_its_value_modulo_n() -> None:
    """Pinned, so any process (another runner, another PYTHONHASHSEED, a script in CI) agrees on it."""
    assert Shard(1, 3).owns("0" * 64) and Shard(3, 3).owns("0" * 63 + "5") and Shard(2, 2).owns("f" * 64)
    assert [Shard(k, 4).owns("ea9681f87723" + "0" * 52) for k in (1, 2, 3, 4)] == [True, False, False, False]


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "1/0", "3", "", "1/3/3", "-1/3", "1/100000"])
def test_a_bad_shard_is_a_one_line_usage_error(example_project: Path, service: RunningEmulator, text: str) -> None:
    run = run_cli("build", "--shard", text, cwd=fast(example_project), env=env_for(service))
    assert run.code == 2 and run.out == "" and len(run.err.strip().splitlines()) == 1, run.err
    assert "--shard" in run.err and "Traceback" not in run.err
    assert creates(service) == []


# -- budget: before the build ---------------------------------------------------------------------


def test_a_budget_below_the_estimate_makes_no_create(example_project: Path, service: RunningEmulator) -> None:
    project = fast(example_project)
    run = run_cli("build", "--budget", "10", cwd=project, env=env_for(service))
    assert run.code == 2, run.out + run.err
    (line,) = run.err.strip().splitlines()
    assert f"would cost about {ESTIMATE} (8 shots to render), over the budget of ¥10.00" in line
    assert "nothing was submitted" in line
    as_json = run_cli("build", "--budget", "10", "--json", cwd=project, env=env_for(service))
    assert as_json.code == 2 and json.loads(as_json.out)["summary"] == {
        "estimate": 30.0,
        "budget": 10.0,
        "currency": "CNY",
        "refused": True,
    }
    dry = run_cli("build", "--dry-run", "--budget", "10", cwd=project, env=env_for(service))
    assert dry.code == 2 and "over the budget of ¥10.00" in dry.err
    assert creates(service) == [] and not list((project / "cache" / "journal").glob("*.json"))


def test_a_budget_that_covers_the_estimate_builds_and_shows_what_is_left(
    example_project: Path, service: RunningEmulator
) -> None:
    run = run_cli("build", "--budget", "30", "-j", "1", cwd=fast(example_project), env=env_for(service))
    assert run.code == 0, run.out + run.err
    assert "budget left ¥25.20" in run.out  # after the first shot (garden-walk, ¥4.80)
    assert "budget left ¥0.00" in run.out and "spent about ¥30.00; budget ¥30.00" in run.out
    assert len(creates(service)) == SHOTS


def test_the_budget_setting_applies_and_the_flag_wins(example_project: Path, service: RunningEmulator) -> None:
    project = fast(example_project)
    (project / "renderspec.toml").write_text("[renderspec]\npoll_interval = 0.05\nbudget = 12.5\n")
    refused = run_cli("build", cwd=project, env=env_for(service))
    assert refused.code == 2 and f"{ESTIMATE} (8 shots to render), over the budget of ¥12.50" in refused.err
    assert creates(service) == []
    shard = run_cli("build", "--shard", "1/3", cwd=project, env=env_for(service))  # ¥7.20 of the ¥30.00
    assert shard.code == 0, shard.out + shard.err
    rest = run_cli("build", "--budget", "100", cwd=project, env=env_for(service))
    assert rest.code == 0, rest.out + rest.err
    assert len(creates(service)) == SHOTS


@pytest.mark.parametrize("setting", ["-1", '"ten"', "nan"])
def test_a_bad_budget_setting_is_one_line(example_project: Path, setting: str) -> None:
    (example_project / "renderspec.toml").write_text(f"[renderspec]\nbudget = {setting}\n")
    run = run_cli("build", "--provider", "local", cwd=example_project)
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1 and "renderspec.budget" in run.err, run.err


@pytest.mark.parametrize("text", ["x", "-1", "nan", "inf", "1e999", ""])
def test_a_bad_budget_is_a_one_line_usage_error(example_project: Path, text: str) -> None:
    run = run_cli("build", "--provider", "local", f"--budget={text}", cwd=example_project)
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1 and "--budget" in run.err, run.err


def test_an_unknown_cost_with_a_budget_is_refused_naming_the_shots(example_project: Path) -> None:
    # Prices given for 1080P only: the example's 720P shots have no known cost.
    (example_project / "renderspec.toml").write_text('[renderspec]\nprices = { "wan2.7-r2v" = { "1080P" = 1.0 } }\n')
    run = run_cli("build", "--provider", "local", "--budget", "1000", cwd=example_project)
    assert run.code == 2 and "the cost of 8 shots to render is unknown" in run.err and "garden-walk" in run.err
    assert not (example_project / "renders").exists()


def test_the_free_local_provider_applies_the_budget_too(example_project: Path) -> None:
    run = run_cli("build", "--provider", "local", "--budget", "1", cwd=example_project)
    assert run.code == 2 and "over the budget of ¥1.00" in run.err and not (example_project / "renders").exists()


# -- budget: while the build runs -----------------------------------------------------------------


def _executor(tmp_path: Path, service: FakeService, budget: Budget, *, jobs: int, keep_going: bool = False) -> Executor:
    ledger, clock = Ledger(tmp_path / "cache"), FakeTime()
    options = BuildOptions(jobs=jobs, keep_going=keep_going, poll_interval=10.0, timeout=600.0, submit_interval=0.0)
    return Executor(
        provider=service, store=ledger.store, journal=ledger.journal, files_root=tmp_path, outputs=Commits(),
        events=Quiet(), options=options, verify=lambda path, size, seconds, tolerance: None, clock=clock,
        sleep=clock.sleep, budget=budget,
    )  # fmt: skip


def test_the_build_stops_submitting_at_the_budget_and_lets_in_flight_tasks_finish(tmp_path: Path) -> None:
    service = FakeService(polls=3)
    budget = Budget(7.0, "CNY")  # each shot is estimated at ¥3.00: two fit
    executor = _executor(tmp_path, service, budget, jobs=5)  # all five reach the submit lock at once
    results = anyio.run(executor.run, [shot(n) for n in range(1, 6)], {})
    assert len(service.created) == 2 and 3.0 * len(service.created) <= budget.limit
    assert [r.outcome for r in results] == [Outcome.RENDERED] * 2 + [Outcome.SKIPPED] * 3
    assert "it would cost about ¥3.00 and the budget of ¥7.00 has ¥1.00 left" in (results[2].message or "")
    assert all("stopped submitting at its budget of ¥7.00" in (r.message or "") for r in results[3:])


def test_tasks_resumed_from_the_journal_count_against_the_budget_and_are_always_collected(tmp_path: Path) -> None:
    service = FakeService(polls=1)
    journal = Journal(tmp_path / "cache" / "journal")
    for number in (1, 2):
        journal.write(shot(number).key, shot=f"s{number}", task_id=f"paid-{number}", submitted_at=time.time())
    budget = Budget(4.0, "CNY")  # less than the two paid tasks: they are collected all the same
    executor = _executor(tmp_path, service, budget, jobs=1)
    results = anyio.run(executor.run, [shot(n) for n in (1, 2, 3)], journal.records())
    assert [r.outcome for r in results] == [Outcome.RENDERED, Outcome.RENDERED, Outcome.SKIPPED]
    assert [r.task_id for r in results[:2]] == ["paid-1", "paid-2"] and service.created == []


def test_a_failed_task_gives_its_share_of_the_budget_back(tmp_path: Path) -> None:
    service = FakeService(polls=1, final=TaskState.FAILED)
    budget = Budget(3.0, "CNY")  # one shot's worth: each failed task is not billed, so the next may go
    executor = _executor(tmp_path, service, budget, jobs=1, keep_going=True)
    results = anyio.run(executor.run, [shot(n) for n in (1, 2, 3)], {})
    assert [r.outcome for r in results] == [Outcome.FAILED] * 3 and len(service.created) == 3
    assert budget.committed == 0.0


def test_a_task_the_service_lost_is_sent_again_within_the_budget_and_the_rest_is_left(
    project: Path, service: RunningEmulator
) -> None:
    """End to end: the pre-check passes (3 shots, ¥3.60), but shot a's journaled task is unknown to
    the service: it still counts (it may have been billed), so its new create leaves no room for c."""
    fast(project)
    (project / "specs" / "three.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n[[shots]]\nid = "{{ n }}"\nmatrix = { n = ["a", "b", "c"] }\n'
        'media = ["mia"]\nprompt = "{{ mia }} {{ n }}"\nduration = 2\n'
    )
    env = env_for(service)
    plan = {s["id"]: s for s in json.loads(run_cli("plan", "--json", cwd=project, env=env).out)["shots"]}
    assert [plan[i]["cost"] for i in "abc"] == [1.2, 1.2, 1.2]
    Journal(project / "cache" / "journal").write(
        plan["a"]["key"], shot="a", provider="dashscope", model="wan2.7-r2v", task_id="vanished-1",
        sent_at=time.time(), submitted_at=time.time(),
    )  # fmt: skip
    run = run_cli("build", "-j", "1", "--budget", "3.6", cwd=project, env=env)
    assert run.code == 1, run.out + run.err
    assert "no longer knows task vanished-1" in run.err
    assert "shot c: skipped: not submitted: it would cost about ¥1.20 and the budget of ¥3.60 has ¥0.00 left" in run.out
    assert "rendered 2, cached 0, failed 0, skipped 1" in run.out
    assert len(creates(service)) == 2 and 1.2 * (len(creates(service)) + 1) <= 3.6 + 1e-9
    assert sorted(p.stem for p in (project / "renders").glob("*.mp4")) == ["a", "b"]
