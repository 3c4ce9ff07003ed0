"""Takes and picks: several variants of one shot, one of them chosen as the shot's own render."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for, fast, run_cli

HERO = """
[refs.mia]
image = "refs/mia.png"

[[shots]]
id = "hero"
media = ["mia"]
prompt = "{{ mia }} smiles at the camera"
seed = 7
takes = 3
pick = 2

[[shots]]
id = "plain"
media = ["mia"]
prompt = "{{ mia }} waves"
"""


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.05, concurrency=4)) as running:
        yield running


@pytest.fixture
def hero(project: Path) -> Path:
    fast(project)
    (project / "specs" / "hero.toml").write_text(HERO)
    return project


def _plan(project: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    run = run_cli("plan", "--json", *args, cwd=project, env=env)
    assert run.code in (0, 1), run.out + run.err
    return list(json.loads(run.out)["shots"])


def test_plan_lists_each_take_with_its_number_and_the_pick(hero: Path) -> None:
    shots = _plan(hero)
    takes = [(s["id"], s.get("shot"), s.get("take"), s.get("pick")) for s in shots]
    assert takes == [
        ("hero.take1", "hero", 1, False),
        ("hero.take2", "hero", 2, True),
        ("hero.take3", "hero", 3, False),
        ("plain", None, None, None),
    ]
    assert [s["request"]["parameters"]["seed"] for s in shots[:3]] == [7, 8, 9]
    assert len({s["key"] for s in shots}) == 4
    text = run_cli("plan", cwd=hero).out
    lines = text.splitlines()
    header = next(index for index, line in enumerate(lines) if "hero: 3 takes" in line)
    assert "take 1" in lines[header + 1] and "take 2 (pick)" in lines[header + 2] and "take 3" in lines[header + 3]
    assert [s["id"] for s in _plan(hero, "--shot", "hero")] == ["hero.take1", "hero.take2", "hero.take3"]
    explained = run_cli("explain", "hero", "--json", cwd=hero)
    assert [shot["shot"] for shot in json.loads(explained.out)["shots"]] == ["hero.take1", "hero.take2", "hero.take3"]


def test_build_renders_every_take_and_the_pick_is_the_shot(hero: Path, service: RunningEmulator) -> None:
    env = env_for(service)
    build = run_cli("build", cwd=hero, env=env)
    assert build.code == 0, build.out + build.err
    assert sorted(task["request"]["parameters"].get("seed", -1) for task in creates(service))[1:] == [7, 8, 9]
    renders = hero / "renders"
    assert sorted(path.name for path in renders.glob("*.mp4")) == [
        "hero.mp4",
        "hero.take1.mp4",
        "hero.take2.mp4",
        "hero.take3.mp4",
        "plain.mp4",
    ]
    assert (renders / "hero.mp4").read_bytes() == (renders / "hero.take2.mp4").read_bytes()
    keys = {s["id"]: s["key"] for s in _plan(hero, env=env)}

    spec = hero / "specs" / "hero.toml"
    spec.write_text(spec.read_text().replace("pick = 2", "pick = 3"))
    assert {s["state"] for s in _plan(hero, env=env)} == {"cached"}  # a new pick renders nothing
    again = run_cli("build", cwd=hero, env=env)
    assert again.code == 0, again.out + again.err
    assert len(creates(service)) == 4
    assert (renders / "hero.mp4").read_bytes() == (renders / "hero.take3.mp4").read_bytes()
    lock = (hero / "renderspec.lock").read_text()
    hero_table = lock[lock.index("[shots.hero]") :].split("\n\n")[0]
    assert f'key = "{keys["hero.take3"]}"' in hero_table and 'output = "renders/hero.mp4"' in hero_table


def test_adding_takes_keeps_the_render_you_have_as_take_one(hero: Path, service: RunningEmulator) -> None:
    env = env_for(service)
    spec = hero / "specs" / "hero.toml"
    spec.write_text(HERO.replace("takes = 3\npick = 2\n", ""))
    assert run_cli("build", cwd=hero, env=env).code == 0
    before = (hero / "renders" / "hero.mp4").read_bytes()
    spec.write_text(HERO.replace("pick = 2\n", ""))
    states = {s["id"]: s["state"] for s in _plan(hero, env=env)}
    assert states == {"hero.take1": "cached", "hero.take2": "new", "hero.take3": "new", "plain": "cached"}
    assert run_cli("build", cwd=hero, env=env).code == 0
    assert len(creates(service)) == 4
    assert (hero / "renders" / "hero.mp4").read_bytes() == before == (hero / "renders" / "hero.take1.mp4").read_bytes()


def test_takes_without_a_seed_get_seeds_from_the_shot_id(hero: Path) -> None:
    spec = hero / "specs" / "hero.toml"
    spec.write_text(HERO.replace("seed = 7\n", ""))
    first = [s["request"]["parameters"].get("seed") for s in _plan(hero)[:3]]
    assert first[0] is None  # take 1 is the shot as written
    assert all(isinstance(seed, int) and 0 <= seed < 2**31 for seed in first[1:]) and first[1] != first[2]
    assert [s["request"]["parameters"].get("seed") for s in _plan(hero)[:3]] == first  # deterministic


def test_another_shot_using_a_shot_with_takes_uses_its_pick(hero: Path) -> None:
    spec = hero / "specs" / "hero.toml"
    spec.write_text(
        HERO
        + """
[[shots]]
id = "after"
media = ["mia"]
first_frame = { shot = "hero" }
prompt = "{{ mia }} turns away"
"""
    )
    after = next(s for s in _plan(hero) if s["id"] == "after")
    assert after["upstream"] == ["hero.take2"] and after["waiting_on"] == ["hero.take2"]
    spec.write_text(spec.read_text().replace("pick = 2", "pick = 3"))
    after = next(s for s in _plan(hero) if s["id"] == "after")
    assert after["upstream"] == ["hero.take3"]


def test_a_problem_of_a_shot_with_takes_is_said_once(hero: Path) -> None:
    spec = hero / "specs" / "hero.toml"
    spec.write_text(HERO.replace("seed = 7\n", "seed = 7\nduration = 20\n"))
    check = run_cli("check", cwd=hero)
    assert check.code == 1
    lines = [line for line in check.out.splitlines() if "duration" in line]
    assert lines == ["specs/hero.toml:10: shot hero: duration: 20 s is out of range; allowed 2–15 s"], check.out
