"""Continuity: a shot that starts from another shot's last frame, or uses its render as a reference video."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for, fast, run_cli, write_png

CHAIN = """
[refs.mia]
image = "refs/mia.png"

[refs.walk_video]
video = { shot = "walk" }

[[shots]]
id = "walk"
media = ["mia"]
prompt = "{{ mia }} walks through the garden"
duration = 3

[[shots]]
id = "bench"
media = ["mia"]
first_frame = { shot = "walk", frame = "last" }
prompt = "{{ mia }} sits down on the bench"
duration = 2

[[shots]]
id = "echo"
media = ["mia", "walk_video"]
prompt = "{{ mia }} remembers {{ walk_video }}"
duration = 2
"""


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.05, concurrency=4)) as running:
        yield running


@pytest.fixture
def chain(project: Path) -> Path:
    fast(project)
    write_png(project / "specs" / "refs" / "mia.png", size=(640, 960))
    (project / "specs" / "story.toml").write_text(CHAIN)
    return project


def _plan(project: Path, env: dict[str, str]) -> dict[str, Any]:
    run = run_cli("plan", "--json", cwd=project, env=env)
    assert run.code in (0, 1), run.out + run.err
    return {shot["id"]: shot for shot in json.loads(run.out)["shots"]}


def _media(task: dict[str, Any], kind: str) -> list[str]:
    return [item["url"] for item in task["request"]["input"]["media"] if item["type"] == kind]


def _frames(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def test_plan_shows_dependents_waiting_with_their_cost(chain: Path, service: RunningEmulator) -> None:
    shots = _plan(chain, env_for(service))
    assert shots["walk"]["state"] == "new"
    for shot_id in ("bench", "echo"):
        assert shots[shot_id]["state"] == "waiting"
        assert shots[shot_id]["key"] is None
        assert shots[shot_id]["waiting_on"] == ["walk"]
        assert shots[shot_id]["cost"] > 0
        assert shots[shot_id]["reasons"] == ["waiting on walk (new shot)"]
    assert shots["echo"]["input_video_seconds"] == 3  # the upstream's length is paid as input video
    text = run_cli("plan", cwd=chain, env=env_for(service)).out
    assert "waiting  bench" in text and "(waiting)" in text and "1 waiting" not in text and "2 waiting" in text


def test_build_orders_the_chain_and_sends_the_upstream_last_frame(chain: Path, service: RunningEmulator) -> None:
    env = env_for(service)
    build = run_cli("build", cwd=chain, env=env)
    assert build.code == 0, build.out + build.err
    tasks = creates(service)
    assert len(tasks) == 3
    by_prompt = {task["request"]["input"]["prompt"]: task for task in tasks}
    bench = next(task for prompt, task in by_prompt.items() if "bench" in prompt)
    echo = next(task for prompt, task in by_prompt.items() if "remembers" in prompt)
    walk = next(task for prompt, task in by_prompt.items() if "garden" in prompt)
    assert walk["submit_time"] <= bench["submit_time"] and walk["submit_time"] <= echo["submit_time"]

    [frame_url] = _media(bench, "first_frame")
    upload = service.emulator.uploads.get(frame_url.removeprefix("oss://"), now=0)
    assert upload is not None
    sent = Image.open(io.BytesIO(upload.path.read_bytes()))
    assert sent.format == "PNG"
    last = _frames(chain / "renders" / "walk.mp4")[-1]
    assert sent.size == last.size
    assert sent.convert("RGB").tobytes() == last.convert("RGB").tobytes()  # pixel-equal

    [video_url] = _media(echo, "reference_video")
    video = service.emulator.uploads.get(video_url.removeprefix("oss://"), now=0)
    assert video is not None and video.path.read_bytes() == (chain / "renders" / "walk.mp4").read_bytes()

    lock = (chain / "renderspec.lock").read_text()
    assert "[shots.bench]" in lock and "[shots.echo]" in lock
    shots = _plan(chain, env)
    assert {shot["state"] for shot in shots.values()} == {"cached"}
    assert shots["bench"]["upstream"] == ["walk"] and shots["bench"]["waiting_on"] == []
    again = run_cli("build", cwd=chain, env=env)
    assert again.code == 0 and "nothing to render: 3 shots cached" in again.out
    assert len(creates(service)) == 3


def test_editing_the_upstream_renders_it_and_every_dependent(chain: Path, service: RunningEmulator) -> None:
    env = env_for(service)
    assert run_cli("build", cwd=chain, env=env).code == 0
    spec = chain / "specs" / "story.toml"
    spec.write_text(spec.read_text().replace("walks through the garden", "runs through the garden"))
    shots = _plan(chain, env)
    assert shots["walk"]["state"] == "stale" and shots["walk"]["reasons"] == ["prompt changed"]
    assert shots["bench"]["state"] == "waiting"
    assert shots["bench"]["reasons"] == ["waiting on walk (prompt changed)"]
    explain = run_cli("explain", "bench", cwd=chain, env=env)
    assert "waiting on walk (prompt changed): it renders again once that render exists" in explain.out
    assert "the last frame of shot walk (first frame): " in explain.out and "→ not rendered yet" in explain.out
    build = run_cli("build", cwd=chain, env=env)
    assert build.code == 0, build.out + build.err
    assert "rendered 3" in build.out
    assert len(creates(service)) == 6


def test_building_one_dependent_builds_its_upstream_first(chain: Path, service: RunningEmulator) -> None:
    env = env_for(service)
    build = run_cli("build", "--shot", "bench", cwd=chain, env=env)
    assert build.code == 0, build.out + build.err
    assert sorted(path.name for path in (chain / "renders").glob("*.mp4")) == ["bench.mp4", "walk.mp4"]
    assert len(creates(service)) == 2


def test_a_failed_upstream_skips_its_dependents_with_the_reason(chain: Path) -> None:
    with start_in_thread(EmulatorOptions(latency=0.05, fail_rate=1.0, seed=1)) as service:
        build = run_cli("build", "--keep-going", cwd=chain, env=env_for(service))
        assert build.code == 1
        assert "shot bench: skipped: it uses the render of walk, which failed" in build.out
        assert "shot echo: skipped: it uses the render of walk, which failed" in build.out
        assert len(creates(service)) == 1


def test_cycles_and_unknown_shots_are_located_errors(project: Path) -> None:
    (project / "specs" / "loop.toml").write_text(
        """
[refs.mia]
image = "refs/mia.png"

[[shots]]
id = "a"
media = ["mia"]
first_frame = { shot = "b" }
prompt = "{{ mia }} a"

[[shots]]
id = "b"
media = ["mia"]
first_frame = { shot = "a" }
prompt = "{{ mia }} b"

[[shots]]
id = "c"
media = ["mia"]
first_frame = { shot = "c" }
prompt = "{{ mia }} c"

[[shots]]
id = "d"
media = ["mia"]
first_frame = { shot = "wlak" }
prompt = "{{ mia }} d"

[[shots]]
id = "walk"
media = ["mia"]
prompt = "{{ mia }} walks"
"""
    )
    check = run_cli("check", cwd=project)
    assert check.code == 1
    assert check.out.splitlines()[:4] == [
        "specs/loop.toml:8: shot a: first_frame: is part of a cycle (a → b → a): "
        "a shot can only use the renders of shots that do not use its own",
        "specs/loop.toml:14: shot b: first_frame: is part of a cycle (a → b → a): "
        "a shot can only use the renders of shots that do not use its own",
        "specs/loop.toml:20: shot c: first_frame: uses its own render: "
        "a shot can only use the renders of shots that do not use its own",
        "specs/loop.toml:26: shot d: first_frame: names shot wlak, which is not in the project (did you mean walk?)",
    ]


def test_a_frame_past_the_upstream_end_is_an_error(project: Path) -> None:
    (project / "specs" / "late.toml").write_text(
        """
[refs.mia]
image = "refs/mia.png"

[[shots]]
id = "walk"
media = ["mia"]
prompt = "{{ mia }} walks"
duration = 3

[[shots]]
id = "after"
media = ["mia"]
first_frame = { shot = "walk", frame = 4.5 }
prompt = "{{ mia }} stops"
"""
    )
    check = run_cli("check", cwd=project)
    assert check.code == 1
    assert (
        "specs/late.toml:14: shot after: first_frame: asks for the frame at 4.5 s of shot walk, which is 3 s long"
        in check.out
    )


def test_a_teammate_without_the_lock_fetches_the_whole_chain(chain: Path, tmp_path: Path) -> None:
    """The upstream comes from the remote before the build, so its dependent is keyed only then, and fetched too."""
    share = tmp_path / "share"
    share.mkdir()  # a mounted share: renderspec never creates one in its place
    remote = f'\n[renderspec.remote]\nurl = "{share}"\n'
    (chain / "renderspec.toml").write_text((chain / "renderspec.toml").read_text() + remote)
    with start_in_thread(EmulatorOptions(latency=0.05)) as service:
        assert run_cli("build", cwd=chain, env=env_for(service)).code == 0
        paid = len(creates(service))
        teammate = tmp_path / "teammate"
        shutil.copytree(chain / "specs", teammate / "specs")
        shutil.copy(chain / "renderspec.toml", teammate / "renderspec.toml")  # no lock, no cache, no renders
        shots = _plan(teammate, env_for(service))
        assert shots["walk"]["state"] == "remote" and shots["bench"]["state"] == "waiting"
        build = run_cli("build", cwd=teammate, env=env_for(service))
        assert build.code == 0, build.out + build.err
        assert len(creates(service)) == paid  # nothing paid again
        for shot_id in ("walk", "bench", "echo"):
            assert (teammate / "renders" / f"{shot_id}.mp4").read_bytes() == (
                chain / "renders" / f"{shot_id}.mp4"
            ).read_bytes()
