"""The ledger holds: no create is paid twice or adopted wrongly, and no damaged video is kept or served.

Every test drives the real CLI against the emulator (through a gateway where a proxy matters) and
checks what a user would notice: how many tasks the service made, what the cache holds under
each key, what renders/ serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for, fast, run_cli
from tests.gateway import gateway

ONE_SHOT = (
    '[refs.mia]\nimage = "refs/mia.png"\n'
    '[[shots]]\nid = "walk"\nmedia = ["mia"]\nprompt = "{{ mia }} PROMPT"\nduration = 2\nSEED\n'
)


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=8)) as running:
        yield running


def one_shot(project: Path, prompt: str, seed: int | None = None, shot_id: str = "walk") -> None:
    text = ONE_SHOT.replace("PROMPT", prompt).replace("SEED", f"seed = {seed}" if seed is not None else "")
    (project / "specs" / "walk.toml").write_text(text.replace('id = "walk"', f'id = "{shot_id}"'))


def metas(project: Path) -> dict[str, dict[str, Any]]:
    return {
        path.parent.name: json.loads(path.read_text()) for path in (project / "cache" / "objects").rglob("meta.json")
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kill_when(project: Path, env: dict[str, str], ready: Callable[[], bool]) -> str:
    """Starts a build in a child process, kill -9s it once `ready()` holds, returns what it printed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "renderspec", "build", "--keep-going"],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    safety = time.monotonic() + 120  # a net against hanging forever, not a timing assumption
    while not ready():
        assert child.poll() is None, f"the build ended before it could be killed:\n{child.communicate()[0].decode()}"
        assert time.monotonic() < safety, "the build never reached the point to kill it"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    return str(child.communicate(timeout=60)[0].decode())


def unanswered_create(project: Path) -> bool:
    """A journal record of a create that was sent and has no task id yet."""
    for path in (project / "cache" / "journal").glob("*.json"):
        record = json.loads(path.read_text())
        if record.get("sent_at") and not record.get("task_id"):
            return True
    return False


# -- 1. a gateway's 502/504 is an unknown outcome, never a reason to send again ---------------------


@pytest.mark.parametrize("status", [502, 504, 500], ids=["bad-gateway", "gateway-timeout", "internal-error"])
def test_a_create_answered_with_a_gateway_error_is_found_not_sent_again(
    example_project: Path, service: RunningEmulator, status: int
) -> None:
    project = fast(example_project)
    with gateway(service.url) as proxy:
        proxy.create_status = status
        run = run_cli("build", "--keep-going", cwd=project, env=env_for(proxy.url))
    assert run.code == 0, run.out + run.err
    made = creates(service)
    assert proxy.creates_seen == 8 and len(made) == 8
    assert len({json.dumps(task["request"], sort_keys=True) for task in made}) == 8
    assert "found its task" in run.err
    for key, meta in metas(project).items():
        task = next(task for task in made if task["task_id"] == meta["task_id"])
        assert task["request"]["input"]["prompt"] == meta["payload"]["request"]["input"]["prompt"], key


# -- 2 and 3. a lost create adopts only a task that rendered what was sent, never a claimed one ---------


def test_a_superseded_task_is_never_cached_under_a_new_key(project: Path, service: RunningEmulator) -> None:
    fast(project)
    for version in ("v1", "v2"):
        one_shot(project, f"walks {version}")
        assert run_cli("build", cwd=project, env=env_for(service.url)).code == 0
    one_shot(project, "walks v3")
    with gateway(service.url) as proxy:
        proxy.hold_creates = True  # v3's create hangs before it reaches the service
        output = kill_when(project, env_for(proxy.url), lambda: unanswered_create(project) and proxy.creates_seen > 0)
    assert len(creates(service)) == 2, output
    again = run_cli("build", cwd=project, env=env_for(service.url))
    assert again.code == 0, again.out + again.err
    assert "the lost create never reached the service; it will be sent again" in again.out
    made = creates(service)
    assert [task["request"]["input"]["prompt"] for task in made] == [
        "image 1 walks v1",
        "image 1 walks v2",
        "image 1 walks v3",
    ]
    key = json.loads(run_cli("plan", "--json", cwd=project, env=env_for(service.url)).out)["shots"][0]["key"]
    assert metas(project)[key]["task_id"] == made[2]["task_id"]
    assert sha256(project / "renders" / "walk.mp4") == metas(project)[key]["video_sha256"]


def test_a_task_only_the_cache_remembers_is_never_adopted(project: Path, service: RunningEmulator) -> None:
    """After a kill the lock may miss a committed shot's task id: the cache entry still claims it."""
    fast(project)
    one_shot(project, "walks", seed=1, shot_id="first")
    assert run_cli("build", cwd=project, env=env_for(service.url)).code == 0
    (first_task,) = [task["task_id"] for task in creates(service)]
    (project / "renderspec.lock").unlink()  # the lock save that a kill lost
    one_shot(project, "walks", seed=2, shot_id="second")  # the same prompt and length: only the seed differs
    with gateway(service.url) as proxy:
        proxy.hold_creates = True
        output = kill_when(project, env_for(proxy.url), lambda: unanswered_create(project) and proxy.creates_seen > 0)
    again = run_cli("build", cwd=project, env=env_for(service.url))
    assert again.code == 0, output + again.out + again.err
    made = creates(service)
    assert len(made) == 2 and made[1]["request"]["parameters"]["seed"] == 2
    key = json.loads(run_cli("plan", "--json", cwd=project, env=env_for(service.url)).out)["shots"][0]["key"]
    assert metas(project)[key]["task_id"] == made[1]["task_id"] != first_task


def test_apiyi_has_no_task_list_so_a_lost_create_stops_the_build_until_a_person_decides(
    project: Path, service: RunningEmulator
) -> None:
    fast(project)
    one_shot(project, "waves")
    env = {"RENDERSPEC_PROVIDER": "apiyi", "RENDERSPEC_BASE_URL": "", "APIYI_API_KEY": "sk-apiyi-test"}
    (project / "renderspec.toml").write_text(
        "[renderspec]\npoll_interval = 0.05\napiyi_data_uri_max_bytes = 10000000\n"
    )
    with gateway(service.url) as proxy:
        proxy.create_status = 504
        env["RENDERSPEC_BASE_URL"] = proxy.url
        first = run_cli("build", cwd=project, env=env)
        assert first.code == 1 and "--adopt SHOT=TASK_ID" in first.out, first.out + first.err
        stopped = run_cli("build", cwd=project, env=env)
        assert stopped.code == 2 and "shot walk" in stopped.err and "cannot list tasks" in stopped.err
        (task,) = creates(service)
        adopted = run_cli("build", "--adopt", f"walk={task['task_id']}", cwd=project, env=env)
    assert adopted.code == 0, adopted.out + adopted.err
    assert len(creates(service)) == 1
    (meta,) = metas(project).values()
    assert meta["task_id"] == task["task_id"]
    (sent,) = meta["request_sent"]["input"]["media"]  # the record keeps no megabytes of base64
    assert sent["url"].startswith("data:image/png;base64,<") and "characters, sha256 " in sent["url"]
    assert task["request"]["input"]["media"][0]["url"][22:40] not in json.dumps(meta)


def test_the_record_of_what_was_sent_keeps_no_link_signatures() -> None:
    from renderspec.executor import as_recorded

    signed = "https://bucket.example/refs/mia.png?X-Amz-Credential=AKIA123&X-Amz-Signature=deadbeef"
    body = {
        "model": "m",
        "input": {
            "prompt": "p",
            "media": [{"type": "reference_image", "url": signed, "reference_voice": "oss://k/v.wav"}],
        },
    }
    (item,) = as_recorded(body)["input"]["media"]
    assert item == {
        "type": "reference_image",
        "url": "https://bucket.example/refs/mia.png",
        "reference_voice": "oss://k/v.wav",
    }
