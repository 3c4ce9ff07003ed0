"""One contract, every provider: create, poll, download and verify against the emulator over HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from renderspec.errors import OutcomeUnknown, Rejected, Unavailable
from renderspec.media import verify_render
from renderspec.providers.base import TaskState
from renderspec.providers.dashscope import DashScopeProvider

from .support import (
    KEY,
    OPEN,
    ManualClock,
    RecordingSleep,
    body,
    close_all,
    emulator,
    emulator_tasks,
    engine,
    provider,
    upload_all,
    wait_for_final,
)

pytestmark = pytest.mark.anyio
FLAVOURS = ["dashscope", "apiyi"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
async def close_providers() -> AsyncIterator[None]:
    yield
    await close_all()


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_render_round_trip(flavour: str, tmp_path: Path) -> None:
    with emulator() as running:
        client = provider(flavour, running.url)
        links = await upload_all(client)
        assert links["mia.png"].startswith("oss://" if flavour == "dashscope" else "data:image/png;base64,")
        submitted = await client.create(body(links, duration=3))
        status = await wait_for_final(client, submitted.task_id)
        assert status.state is TaskState.SUCCEEDED, (status.code, status.message)
        assert status.video_url
        if flavour == "dashscope":
            assert status.usage["output_video_duration"] == 3
            assert status.usage["input_video_duration"] == pytest.approx(2.0, abs=0.1)
            assert status.usage["duration"] == pytest.approx(5.0, abs=0.1)
            assert status.usage["SR"] == 720 and status.usage["ratio"] == "16:9"
            assert {"submit_time", "scheduled_time", "end_time"} <= set(status.times)
        size = await client.download(status.video_url, tmp_path / "out.mp4")
        assert size == (tmp_path / "out.mp4").stat().st_size
        facts = verify_render(tmp_path / "out.mp4", size=(1280, 720), seconds=3, seconds_tolerance=0.05)
        assert facts.codec == "h264" and facts.has_audio
        assert len(emulator_tasks(running)) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_wrong_key_is_rejected_and_never_echoed(flavour: str) -> None:
    with emulator(key="the-right-key") as running:
        client = provider(flavour, running.url, key=KEY)
        with pytest.raises(Rejected) as caught:
            await client.create(
                body({"mia.png": "https://x/a.png", "mia.wav": "https://x/a.wav", "bottle.mp4": "https://x/b.mp4"})
            )
        assert caught.value.code == "InvalidApiKey" and caught.value.status == 401
        assert KEY not in str(caught.value) and KEY not in repr(client.engine)  # type: ignore[attr-defined]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_bad_body_is_rejected_with_the_service_message(flavour: str) -> None:
    with emulator() as running:
        client = provider(flavour, running.url)
        bad = body({"mia.png": "https://x/a.png", "mia.wav": "https://x/a.wav", "bottle.mp4": "https://x/b.mp4"})
        bad["parameters"]["duration"] = "5"
        with pytest.raises(Rejected) as caught:
            await client.create(bad)
        assert caught.value.code == "InvalidParameter" and "cannot unmarshal string" in caught.value.message
        assert emulator_tasks(running) == []


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_failed_tasks_carry_the_service_code_and_message(flavour: str) -> None:
    with emulator(fail_rate=1.0, seed=1) as running:
        client = provider(flavour, running.url)
        links = await upload_all(client)
        status = await wait_for_final(client, (await client.create(body(links))).task_id)
        assert status.state is TaskState.FAILED
        assert status.code in ("InternalError.Algo", "DataInspectionFailed") and status.message


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_unknown_task_ids_answer_unknown(flavour: str) -> None:
    with emulator() as running:
        client = provider(flavour, running.url)
        assert (await client.query("no-such-task")).state is TaskState.UNKNOWN


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_429_storm_is_ridden_out_with_one_create(flavour: str) -> None:
    sleep = RecordingSleep()
    with emulator(throttle=0.6, seed=1) as running:
        client = provider(flavour, running.url, sleep=sleep, attempts=20)
        links = await upload_all(client)
        ids = [(await client.create(body(links))).task_id for _ in range(4)]
        assert [task["task_id"] for task in emulator_tasks(running)] == ids
        assert sleep.delays and all(delay == 1.0 for delay in sleep.delays)  # Retry-After honoured


async def test_server_errors_on_queries_are_retried() -> None:
    with emulator(error_rate=0.4, seed=11) as running:
        client = provider("dashscope", running.url, attempts=25)
        links = await upload_all(client)
        status = await wait_for_final(client, (await client.create(body(links))).task_id)
        assert status.state is TaskState.SUCCEEDED


async def test_persistent_server_errors_surface_as_unavailable() -> None:
    with emulator(error_rate=1.0) as running:
        client = provider("dashscope", running.url, attempts=3)
        with pytest.raises(Unavailable) as caught:
            await client.query("anything")
        assert caught.value.status == 500 and caught.value.code == "InternalError"


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_dropped_create_is_an_unknown_outcome_and_never_resent(flavour: str) -> None:
    with emulator(drop_rate=1.0) as running:
        client = provider(flavour, running.url)
        links = await upload_all(client)
        with pytest.raises(OutcomeUnknown):
            await client.create(body(links))
        tasks = emulator_tasks(running)
        assert len(tasks) == 1
        recent = await client.recent_tasks("wan2.7-r2v", 0, time.time() + 60)
        if flavour == "dashscope":
            assert recent is not None and [task.task_id for task in recent] == [tasks[0]["task_id"]]
        else:
            assert recent is None  # APIYI has no task list: the executor must stop and ask


async def test_a_create_that_times_out_after_sending_is_an_unknown_outcome() -> None:
    with emulator(stall_rate=1.0, stall_seconds=3) as running:
        client = provider("dashscope", running.url, read_timeout=0.5)
        links = await upload_all(client)
        with pytest.raises(OutcomeUnknown) as caught:
            await client.create(body(links))
        assert "may or may not have accepted it" in caught.value.message
        assert len(emulator_tasks(running)) == 1


async def test_cut_downloads_are_retried_and_verified(tmp_path: Path) -> None:
    with emulator(truncate_rate=0.5, seed=2) as running:
        client = provider("dashscope", running.url)
        links = await upload_all(client)
        status = await wait_for_final(client, (await client.create(body(links))).task_id)
        assert status.video_url
        for attempt in range(4):
            await client.download(status.video_url, tmp_path / f"v{attempt}.mp4")
            verify_render(tmp_path / f"v{attempt}.mp4", size=(1280, 720), seconds=2)


async def test_always_cut_downloads_fail_and_leave_no_partial_file(tmp_path: Path) -> None:
    with emulator(truncate_rate=1.0) as running:
        client = provider("dashscope", running.url, attempts=3)
        links = await upload_all(client)
        status = await wait_for_final(client, (await client.create(body(links))).task_id)
        assert status.video_url
        with pytest.raises(Unavailable, match="cut"):
            await client.download(status.video_url, tmp_path / "v.mp4")
        assert list(tmp_path.iterdir()) == []


async def test_result_links_expire_and_a_fresh_query_gives_a_working_one(tmp_path: Path) -> None:
    clock = ManualClock()
    with emulator(url_ttl=60, latency=0, clock=clock) as running:  # no latency: done once rendered
        client = provider("dashscope", running.url, attempts=2)
        links = await upload_all(client)
        task_id = (await client.create(body(links))).task_id
        done = await wait_for_final(client, task_id)
        old = done.video_url
        assert old, (done.state, done.code, done.message)
        clock.advance(59)
        assert await client.download(old, tmp_path / "v.mp4") > 0
        clock.advance(2)
        with pytest.raises(Rejected, match="expired") as caught:
            await client.download(old, tmp_path / "v.mp4")
        assert caught.value.hint and "fresh link" in caught.value.hint
        fresh = (await client.query(task_id)).video_url
        assert fresh and fresh != old
        assert await client.download(fresh, tmp_path / "v.mp4") > 0


async def test_result_links_refuse_an_authorization_header() -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        links = await upload_all(client)
        url = (await wait_for_final(client, (await client.create(body(links))).task_id)).video_url
        assert url
        assert httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}).status_code == 403
        assert httpx.get(url).status_code == 200


async def test_uploads_are_cached_by_file_hash_and_model() -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        first = await upload_all(client)
        assert await upload_all(client) == first
        other_model = await upload_all(client, model="wan2.7-r2v-2026-06-12")
        assert other_model["mia.png"] != first["mia.png"]


async def test_an_unreachable_media_link_fails_the_task_as_the_service_would() -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        links = await upload_all(client)
        links["mia.png"] = "http://127.0.0.1:9/missing.png"
        status = await wait_for_final(client, (await client.create(body(links))).task_id)
        assert status.state is TaskState.FAILED and status.code == "InvalidImageUrl"


async def test_cancel_works_only_while_pending() -> None:
    with emulator(concurrency=1, hold=True) as running:  # the first task holds the only slot
        client = provider("dashscope", running.url)
        links = await upload_all(client)
        running_task = (await client.create(body(links))).task_id
        queued_task = (await client.create(body(links))).task_id
        await client.cancel(queued_task)
        assert (await client.query(queued_task)).state is TaskState.CANCELED
        with pytest.raises(Rejected) as caught:
            await client.cancel(running_task)
        assert caught.value.code == "UnsupportedOperation"


async def test_oss_links_need_the_resolve_header() -> None:
    with emulator() as running:
        client = provider("dashscope", running.url)
        links = await upload_all(client)
        answer = httpx.post(
            f"{running.url}/api/v1/services/aigc/video-generation/video-synthesis",
            json=body(links),
            headers={"Authorization": "Bearer k", "X-DashScope-Async": "enable"},
        ).json()
        status = await wait_for_final(client, answer["output"]["task_id"])
        assert (
            status.state is TaskState.FAILED
            and status.code == "InvalidParameter"
            and "OssResourceResolve" in (status.message or "")
        )


async def test_downloads_refuse_plain_http_off_loopback(tmp_path: Path) -> None:
    client = DashScopeProvider(engine("https://dashscope.example"), poll_interval=1)
    OPEN.append(client)
    with pytest.raises(Rejected, match="must be https"):
        await client.download("http://example.com/video.mp4", tmp_path / "v.mp4")


async def test_the_key_never_appears_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with emulator(throttle=0.5, error_rate=0.3, seed=3, key="other") as running:
        client = provider("dashscope", running.url, attempts=30)
        for call in (
            client.query("x"),
            client.create({"model": "wan2.7-r2v"}),
            client.upload(Path(__file__), "f" * 64, "wan2.7-r2v"),
        ):
            try:
                await call
            except Exception as error:  # noqa: BLE001 - collecting every message
                texts += [str(error), repr(error), str(error.__cause__)]
        texts += [repr(client), repr(client.engine)]  # type: ignore[attr-defined]
    assert texts and caplog.text
    assert all(KEY not in text for text in [*texts, caplog.text])


async def test_unknown_statuses_and_fields_are_tolerated_and_reported() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"request_id": "r", "output": {"task_id": "t", "task_status": "SUSPENDED", "novel": 1}, "usage": {}},
        )

    client = DashScopeProvider(engine("https://dashscope.example"), poll_interval=1)
    OPEN.append(client)
    client.engine._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))  # type: ignore[attr-defined]
    status = await client.query("t")
    assert status.state is TaskState.OTHER and status.raw_status == "SUSPENDED" and status.unknown_fields == ("novel",)
