"""Verification end to end: a result cut off where nothing else could notice is downloaded again, never cached.

The emulator's `short_body_rate` fault serves the file of the issue: a faststart mp4 (index first)
whose body stops early, sent chunked with no Content-Length and ended cleanly, so the download
itself looks whole and only reading every packet tells.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.errors import InvalidOutput
from renderspec.media import verify_render
from tests.conftest import creates, env_for, fast, run_cli

SHOTS = 8
KEY = "sk-verification-test"


def downloads(running: RunningEmulator) -> int:
    return int(httpx.get(f"{running.url}/_emulator/stats").json()["requests"].get("download", 0))


def one_shot(project: Path) -> Path:
    fast(project)
    (project / "specs" / "one.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n[[shots]]\nid = "one"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nduration = 2\n'
    )
    return project


def cached_videos(project: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (meta.parent / "video.mp4", json.loads(meta.read_text()))
        for meta in (project / "cache" / "objects").rglob("meta.json")
    ]


FAULTS = {
    "short-body": ({"short_body_rate": 0.5, "seed": 3}, "the result is cut short: its video packets cover"),
    "corrupt-header": ({"corrupt_rate": 0.5, "seed": 4}, "the result is not a playable video (Invalid data found"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_damaged_downloads_are_fetched_again_and_every_shot_is_rendered_once(example_project: Path, fault: str) -> None:
    project = fast(example_project)
    faults, message = FAULTS[fault]
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=4, **faults)) as running:
        runs = [run_cli("build", "--keep-going", cwd=project, env=env_for(running))]
        assert f"failed verification: {message}" in runs[0].err
        while runs[-1].code != 0 and len(runs) < 6:  # a shot unlucky three times stays journaled, not cached
            runs.append(run_cli("build", "--keep-going", cwd=project, env=env_for(running)))
        assert runs[-1].code == 0, runs[-1].out + runs[-1].err
        assert len(creates(running)) == SHOTS
        assert downloads(running) > SHOTS
    cached = cached_videos(project)
    assert len(cached) == SHOTS
    for video, meta in cached:
        facts = verify_render(video, size=None, seconds=meta["video"]["seconds"])
        assert facts.seconds == meta["video"]["seconds"] and meta["video_size"] == video.stat().st_size


def test_always_short_bodies_fail_the_shot_and_stay_journaled(project: Path) -> None:
    one_shot(project)
    with start_in_thread(EmulatorOptions(latency=0.1, short_body_rate=1.0)) as running:
        run = run_cli("build", cwd=project, env=env_for(running))
        assert run.code == 1, run.out + run.err
        assert "shot one: failed: the result is cut short: its video packets cover" in run.out
        assert cached_videos(project) == []
        assert len(list((project / "cache" / "journal").glob("*.json"))) == 1  # paid: the next build downloads again
        creates_seen = creates(running)
        assert len(creates_seen) == 1
        assert downloads(running) == 3  # each download failed verification and was fetched again
        running.emulator.options.short_body_rate = 0.0  # the link serves the whole file again
        again = run_cli("build", cwd=project, env=env_for(running))
        assert again.code == 0, again.out + again.err
        assert len(creates(running)) == 1 and downloads(running) == 4  # collected, not paid for twice
    ((video, meta),) = cached_videos(project)
    verify_render(video, size=None, seconds=2)
    assert meta["task_id"] == creates_seen[0]["task_id"]


def test_the_fault_serves_a_faststart_mp4_whose_header_and_first_frame_look_whole(
    project: Path, tmp_path: Path
) -> None:
    """The file of the issue: only reading it to the end shows it stops early."""
    one_shot(project)
    with start_in_thread(EmulatorOptions(latency=0.1, short_body_rate=1.0, seed=5)) as running:
        assert run_cli("build", cwd=project, env=env_for(running)).code == 1
        (task,) = creates(running)
        status = httpx.get(
            f"{running.url}/api/v1/tasks/{task['task_id']}", headers={"Authorization": f"Bearer {KEY}"}
        ).json()
        response = httpx.get(status["output"]["video_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert "content-length" not in response.headers and response.headers["transfer-encoding"] == "chunked"
    data = response.content
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: the index first
    video = tmp_path / "short.mp4"
    video.write_bytes(data)
    with av.open(str(video)) as container:  # what the verification used to look at: all fine
        assert container.duration == pytest.approx(2_000_000, abs=50_000)
        assert next(container.decode(video=0)).width == 1280
    with pytest.raises(InvalidOutput, match=r"^the result is cut short: its video packets cover \d\.\d\d s of 2 s"):
        verify_render(video, size=(1280, 720), seconds=2)


def test_the_emulator_command_takes_the_fault_as_a_flag(project: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "renderspec", "emulator", "--port", "0", "--latency", "0.1", "--short-body-rate", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().removeprefix("listening on ")
        env = {"RENDERSPEC_PROVIDER": "dashscope", "RENDERSPEC_BASE_URL": url, "DASHSCOPE_API_KEY": KEY}
        run = run_cli("build", cwd=one_shot(project), env=env)
        assert run.code == 1 and "shot one: failed: the result is cut short" in run.out, run.out + run.err
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
