"""Lost creates are found at the service from what the journal says was sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderspec.cache import Cache
from renderspec.recovery import resolve_unknown
from tests.providers.support import body, emulator, provider, upload_all

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_lost_create_of_a_shot_no_longer_planned_is_still_found(tmp_path: Path) -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        sent = body(await upload_all(client))
        task_id = (await client.create(sent)).task_id  # the answer "was lost": only the journal knows
        cache = Cache(tmp_path)
        expect = {"shot": "old", "spec": "specs/a.toml", "model": "wan2.7-r2v", "duration": 2, "size": None}
        expect["payload"] = {"request": sent}
        cache.record("k" * 64, shot="old", sent_at=0.0, expect=expect)
        notes = await resolve_unknown(client, cache, {}, set(), poll_interval=0.05, patience=10)
        assert cache.journal()["k" * 64]["task_id"] == task_id
        assert notes == [f"shot old: found its task {task_id} at the service; collecting it instead of paying again"]
        await client.aclose()
