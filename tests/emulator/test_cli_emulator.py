"""`renderspec emulator` started as a user would, answering the documented requests."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests.conftest import REPO

# Only a net under waits that end when something happens: a healthy run never comes near it.
SAFETY_NET = 120.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "emulator.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "renderspec", "emulator", "--port", "0", "--latency", "0.3", "--key", "sk-doc"],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:"), first + log.read_text()
        yield first.removeprefix("listening on ")
    finally:
        process.terminate()
        process.wait(timeout=SAFETY_NET)
        assert process.stdout is not None
        process.stdout.close()
        print(f"the emulator's log (shown when a test fails):\n{log.read_text()}")


def data_uri(path: Path, kind: str) -> str:
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def test_the_documented_create_query_and_download(served: str, tmp_path: Path) -> None:
    refs = REPO / "specs" / "refs"
    headers = {"Authorization": "Bearer sk-doc", "Content-Type": "application/json", "X-DashScope-Async": "enable"}
    request = {
        "model": "wan2.7-r2v",
        "input": {
            "prompt": "Image 1 walks through the garden of image 2 and says hello.",
            "negative_prompt": "blurry",
            "media": [
                {
                    "type": "reference_image",
                    "url": data_uri(refs / "mia.png", "image/png"),
                    "reference_voice": data_uri(refs / "mia.wav", "audio/wav"),
                },
                {"type": "reference_image", "url": data_uri(refs / "garden.jpg", "image/jpeg")},
            ],
        },
        "parameters": {
            "resolution": "720P",
            "ratio": "16:9",
            "duration": 5,
            "prompt_extend": False,
            "watermark": False,
            "seed": 12345,
        },
    }
    created = httpx.post(
        f"{served}/api/v1/services/aigc/video-generation/video-synthesis", json=request, headers=headers
    )
    assert created.status_code == 200
    answer = created.json()
    assert set(answer) == {"request_id", "output"} and answer["output"]["task_status"] == "PENDING"
    task_id = answer["output"]["task_id"]
    deadline = time.monotonic() + SAFETY_NET
    while True:
        query = httpx.get(f"{served}/api/v1/tasks/{task_id}", headers={"Authorization": "Bearer sk-doc"}).json()
        if query["output"]["task_status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    output = query["output"]
    assert output["task_status"] == "SUCCEEDED", output
    assert {"task_id", "submit_time", "scheduled_time", "end_time", "orig_prompt", "video_url"} <= set(output)
    assert query["usage"] == {
        "duration": 5.0,
        "input_video_duration": 0.0,
        "output_video_duration": 5,
        "video_count": 1,
        "SR": 720,
        "ratio": "16:9",
    }
    apiyi = httpx.get(f"{served}/v1/tasks/{task_id}", headers={"Authorization": "Bearer sk-doc"}).json()
    assert apiyi["status"] == "completed" and apiyi["progress"] == 100 and apiyi["result_url"]
    video = tmp_path / "video.mp4"
    video.write_bytes(httpx.get(output["video_url"]).content)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height) == (
            "h264",
            1280,
            720,
        )
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.duration / 1_000_000 == pytest.approx(5.0, abs=0.05)
        assert float(stream.average_rate) == pytest.approx(30.0)


def test_the_apiyi_create_path_and_the_sync_call_error(served: str) -> None:
    headers = {"Authorization": "Bearer sk-doc"}
    request = {
        "model": "wan2.7-r2v",
        "input": {"prompt": "x", "media": [{"type": "reference_image", "url": "https://x/y.png"}]},
    }
    sync = httpx.post(
        f"{served}/wan/api/v1/services/aigc/video-generation/video-synthesis", json=request, headers=headers
    )
    assert sync.status_code == 403 and sync.json()["message"] == "current user api does not support synchronous calls"
    wrong_key = httpx.post(
        f"{served}/wan/api/v1/services/aigc/video-generation/video-synthesis",
        json=request,
        headers={"Authorization": "Bearer nope", "X-DashScope-Async": "enable"},
    )
    assert wrong_key.status_code == 401 and wrong_key.json()["code"] == "InvalidApiKey"
    ok = httpx.post(
        f"{served}/wan/api/v1/services/aigc/video-generation/video-synthesis",
        json=request,
        headers={**headers, "X-DashScope-Async": "enable"},
    )
    assert ok.status_code == 200 and ok.json()["output"]["task_status"] == "PENDING"
    listed = httpx.get(f"{served}/api/v1/tasks", headers=headers, params={"model_name": "wan2.7-r2v"}).json()
    assert listed["output"]["total"] == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_answers_the_documented_curl_request(served: str) -> None:
    body = json.dumps(
        {
            "model": "wan2.7-r2v",
            "input": {
                "prompt": "Image 1 waves at the camera.",
                "media": [{"type": "reference_image", "url": "https://example.com/person.png"}],
            },
            "parameters": {"resolution": "720P", "duration": 5, "prompt_extend": False},
        }
    )
    command = [
        "curl", "-sS", "--location", f"{served}/api/v1/services/aigc/video-generation/video-synthesis",
        "-H", "X-DashScope-Async: enable", "-H", "Authorization: Bearer sk-doc", "-H", "Content-Type: application/json",
        "-d", body,
    ]  # fmt: skip
    created = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert created["output"]["task_status"] == "PENDING" and created["request_id"]
    query = [
        "curl",
        "-sS",
        f"{served}/api/v1/tasks/{created['output']['task_id']}",
        "-H",
        "Authorization: Bearer sk-doc",
    ]
    status = json.loads(subprocess.run(query, capture_output=True, text=True, check=True).stdout)
    assert status["output"]["task_id"] == created["output"]["task_id"]
    assert status["output"]["task_status"] in ("PENDING", "RUNNING", "FAILED")  # the image URL is off this machine
