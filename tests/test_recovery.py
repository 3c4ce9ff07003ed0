"""Lost creates are found at the service from what the journal says was sent, and only then."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from renderspec.journal import Journal
from renderspec.recovery import UnresolvedSubmissions, resolve_journal
from tests.providers.support import body, emulator, provider, upload_all, wait_for_final

pytestmark = pytest.mark.anyio
KEY, OTHER = "a" * 64, "b" * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _lost(journal: Journal, key: str, sent: dict[str, object], shot: str = "old") -> None:
    expect = {"shot": shot, "spec": "specs/a.toml", "model": "wan2.7-r2v", "duration": 2, "size": None}
    journal.write(key, shot=shot, sent_at=time.time(), expect=expect, sent=sent)


async def test_a_lost_create_of_a_shot_no_longer_planned_is_still_found(tmp_path: Path) -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        sent = body(await upload_all(client))
        task_id = (await client.create(sent)).task_id  # the answer "was lost": only the journal knows
        journal = Journal(tmp_path)
        _lost(journal, KEY, sent)
        notes = await resolve_journal(client, journal, set(), poll_interval=0.05, patience=30, settle=0)
        assert journal.records()[KEY].task_id == task_id
        assert notes == [f"shot old: found its task {task_id} at the service; collecting it instead of paying again"]
        await client.aclose()


async def test_the_only_unknown_task_is_not_adopted_when_it_rendered_something_else(tmp_path: Path) -> None:
    """Another project (or an earlier version of the shot) made a task in the window: never ours by elimination."""
    with emulator() as running:
        client = provider("dashscope", running.url)
        links = await upload_all(client)
        theirs = body(links, prompt="Image 1 dances in the rain.")
        await wait_for_final(client, (await client.create(theirs)).task_id)
        journal = Journal(tmp_path)
        _lost(journal, KEY, body(links, prompt="Image 1 reads a letter."))
        notes = await resolve_journal(client, journal, set(), poll_interval=0.05, patience=30, settle=0)
        assert KEY not in journal.records()  # never made: the build sends it
        assert notes == ["shot old: the lost create never reached the service; it will be sent again"]
        await client.aclose()


async def test_each_of_several_lost_creates_gets_the_task_that_ran_its_request(tmp_path: Path) -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        links = await upload_all(client)
        first, second = body(links, prompt="Image 1 waves."), body(links, prompt="Image 1 bows.")
        second_id = (await client.create(second)).task_id
        first_id = (await client.create(first)).task_id
        journal = Journal(tmp_path)
        _lost(journal, KEY, first, shot="one")
        _lost(journal, OTHER, second, shot="two")
        await resolve_journal(client, journal, set(), poll_interval=0.05, patience=30, settle=0)
        records = journal.records()
        assert (records[KEY].task_id, records[OTHER].task_id) == (first_id, second_id)
        await client.aclose()


async def test_a_task_someone_already_claims_is_never_adopted(tmp_path: Path) -> None:
    """The same request rendered before (its task id is in the lock or the cache) is not this create's task."""
    with emulator() as running:
        client = provider("dashscope", running.url)
        sent = body(await upload_all(client))
        earlier = (await client.create(sent)).task_id
        await wait_for_final(client, earlier)
        journal = Journal(tmp_path)
        _lost(journal, KEY, sent)
        await resolve_journal(client, journal, {earlier}, poll_interval=0.05, patience=30, settle=0)
        assert KEY not in journal.records()
        await client.aclose()


async def test_two_identical_tasks_the_earliest_is_adopted_and_the_other_recorded(tmp_path: Path) -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        sent = body(await upload_all(client))
        first = (await client.create(sent)).task_id
        second = (await client.create(sent)).task_id
        # Both finished: the resolver adopts as soon as the earliest match has, and records as duplicates
        # only the matches that have finished by then (a loaded machine may not have run the second yet).
        await wait_for_final(client, first)
        await wait_for_final(client, second)
        journal = Journal(tmp_path)
        _lost(journal, KEY, sent)
        await resolve_journal(client, journal, set(), poll_interval=0.05, patience=30, settle=0)
        record = journal.records()[KEY]
        assert (record.task_id, record.duplicates) == (first, (second,))
        await client.aclose()


async def test_a_task_that_matches_two_lost_creates_alike_is_left_to_a_person(tmp_path: Path) -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        sent = body(await upload_all(client))
        await client.create(sent)
        journal = Journal(tmp_path)
        _lost(journal, KEY, sent, shot="take-1")
        _lost(journal, OTHER, {**sent, "parameters": {**sent["parameters"], "seed": 99}}, shot="take-2")
        with pytest.raises(UnresolvedSubmissions, match="matches what was sent for it and for take-"):
            await resolve_journal(client, journal, set(), poll_interval=0.05, patience=30, settle=0)
        assert journal.records()[KEY].task_id is None and journal.records()[OTHER].task_id is None
        await client.aclose()


async def test_without_a_task_list_the_build_stops_and_asks(tmp_path: Path) -> None:
    with emulator() as running:
        client = provider("apiyi", running.url)
        journal = Journal(tmp_path)
        sent = {"model": "wan2.7-r2v", "input": {"prompt": "Image 1 waves.", "media": []}, "parameters": {}}
        _lost(journal, KEY, sent)
        with pytest.raises(UnresolvedSubmissions, match="cannot list tasks") as raised:
            await resolve_journal(client, journal, set(), poll_interval=0.05, patience=30, settle=0)
        assert "--adopt SHOT=TASK_ID" in str(raised.value)
        await client.aclose()
