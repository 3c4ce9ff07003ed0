"""Adversarial tests of issue 10's features (uses, per-shot voices, takes and picks, continuity), from the outside."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from tests.conftest import creates, env_for, fast, run_cli


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.05, concurrency=4)) as running:
        yield running


def _plan(project: Path, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    run = run_cli("plan", "--json", *args, cwd=project, env=env)
    assert run.code in (0, 1), run.out + run.err
    return list(json.loads(run.out)["shots"])


def _lock_tables(project: Path) -> dict[str, dict[str, Any]]:
    import tomllib

    return dict(tomllib.loads((project / "renderspec.lock").read_text())["shots"])


# --- takes: a shot's own id is claimed by its pick --------------------------------------------------------------


def test_a_shot_with_takes_and_another_shot_of_the_same_id_are_a_duplicate_id(project: Path) -> None:
    """`hero` with takes writes renders/hero.mp4 and [shots.hero] (its pick): a second shot `hero` may not."""
    (project / "specs" / "a.toml").write_text(
        """
[refs.mia]
image = "refs/mia.png"

[[shots]]
id = "hero"
media = ["mia"]
prompt = "{{ mia }} smiles"
takes = 2

[[shots]]
id = "hero"
media = ["mia"]
prompt = "{{ mia }} frowns"
"""
    )
    check = run_cli("check", cwd=project)
    assert check.code == 1, check.out
    assert "specs/a.toml:6: shot hero: id: 'hero' is used by 2 shots" in check.out
    assert "specs/a.toml:12: shot hero: id: 'hero' is used by 2 shots" in check.out
    assert "Traceback" not in check.out + check.err


def test_a_shot_with_takes_clashes_with_a_shot_of_its_id_in_a_file_not_named(project: Path) -> None:
    """`check FILE` (the pre-commit hook) still sees the other file's `hero`."""
    (project / "specs" / "a.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n\n[[shots]]\nid = "hero"\nmedia = ["mia"]\nprompt = "{{ mia }}"\ntakes = 2\n'
    )
    (project / "specs" / "b.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n\n[[shots]]\nid = "hero"\nmedia = ["mia"]\nprompt = "{{ mia }} b"\n'
    )
    check = run_cli("check", "specs/b.toml", cwd=project)
    assert check.code == 1, check.out
    assert "specs/b.toml:5: shot hero: id: 'hero' is used by 2 shots (specs/b.toml:5, specs/a.toml:5)" in check.out


# --- takes: lost creates that differ only in their seed ------------------------------------------------------------


def test_lost_creates_of_takes_never_adopt_one_task_twice_or_another_takes_task(project: Path) -> None:
    """Every create's connection is cut after the service made the task. The takes differ only in
    their seed, which the service does not report: no take may be given a task made with another
    take's seed (its cache entry would hold the wrong render forever), nor two takes one task.
    They are left to a person (README: "Two lost creates that differ only there are left to a
    person"), and `--adopt` then collects every paid task without paying again."""
    fast(project)
    (project / "specs" / "a.toml").write_text(
        """
[refs.mia]
image = "refs/mia.png"

[[shots]]
id = "hero"
media = ["mia"]
prompt = "{{ mia }} smiles"
duration = 2
seed = 1
takes = 3
"""
    )
    seeds = {shot["id"]: shot["request"]["parameters"]["seed"] for shot in _plan(project)}
    with start_in_thread(EmulatorOptions(latency=1.0, concurrency=4, drop_rate=1.0, seed=3)) as service:
        env = env_for(service)
        first = run_cli("build", "--keep-going", cwd=project, env=env)
        made = {task["task_id"]: task["request"]["parameters"]["seed"] for task in creates(service)}
        assert len(made) == 3
        lock = _lock_tables(project) if (project / "renderspec.lock").exists() else {}
        takes = {shot: table["task_id"] for shot, table in lock.items() if shot.startswith("hero.take")}
        assert len(set(takes.values())) == len(takes), f"one task adopted by several takes: {takes}"
        for shot, task_id in takes.items():
            assert made[task_id] == seeds[shot], f"{shot} (seed {seeds[shot]}) got the task of seed {made[task_id]}"
        assert first.code == 1 and "cannot be told" in first.out, first.out + first.err
        by_seed = {seed: task_id for task_id, seed in made.items()}
        adopt = [f"--adopt={shot}={by_seed[seed]}" for shot, seed in seeds.items() if shot not in takes]
        second = run_cli("build", *adopt, cwd=project, env=env)
        assert second.code == 0, second.out + second.err
        assert len(creates(service)) == 3  # nothing paid twice
    for shot, table in _lock_tables(project).items():
        if shot.startswith("hero.take"):
            assert made[table["task_id"]] == seeds[shot]


# --- continuity and shards ---------------------------------------------------------------------------------------


def _diamonds(project: Path) -> None:
    """r0..r5 are independent; m_i starts from r_i's last frame and uses a still of r_(i+1): linked pairs."""
    fast(project)
    lines = ['[refs.mia]\nimage = "refs/mia.png"\n\n[defaults]\nduration = 2\n']
    lines += [f'[refs.still{i}]\nimage = {{ shot = "r{i}" }}\n' for i in range(6)]
    lines += [f'[[shots]]\nid = "r{i}"\nmedia = ["mia"]\nprompt = "{{{{ mia }}}} root {i}"\n' for i in range(6)]
    lines += [
        f'[[shots]]\nid = "m{i}"\nmedia = ["mia", "still{i + 1}"]\nfirst_frame = {{ shot = "r{i}" }}\n'
        f'prompt = "{{{{ mia }}}} m {{{{ still{i + 1} }}}}"\n'
        for i in range(5)
    ]
    (project / "specs" / "d.toml").write_text("\n".join(lines))


def test_every_shard_of_a_storyboard_with_diamonds_builds_what_it_owns(project: Path, service: RunningEmulator) -> None:
    """A shot with two upstreams must land in a shard that renders both: every shard exits 0 and the
    shards together render every shot once."""
    _diamonds(project)
    env = env_for(service)
    for index in (1, 2, 3):
        build = run_cli("build", "--shard", f"{index}/3", cwd=project, env=env)
        assert build.code == 0, build.out + build.err
        assert "which this build did not make" not in build.out
    assert sorted(path.stem for path in (project / "renders").glob("*.mp4")) == sorted(
        [f"r{i}" for i in range(6)] + [f"m{i}" for i in range(5)]
    )
    assert len(creates(service)) == 11


# --- spec files: a symlink loop ----------------------------------------------------------------------------------


def test_a_symlink_loop_among_the_spec_files_is_a_located_error_not_an_internal_error(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n\n[[shots]]\nid = "one"\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'
    )
    (project / "specs" / "loop.toml").symlink_to("loop.toml")
    for command in (("check",), ("plan",), ("plan", "--json")):
        run = run_cli(*command, cwd=project)
        assert run.code in (1, 2), (command, run.code, run.out, run.err)
        assert "internal error" not in run.err and "Traceback" not in run.err
        assert "specs/loop.toml" in run.out + run.err


# --- per-shot voices ---------------------------------------------------------------------------------------------


def test_an_unpinned_voice_url_asks_for_voice_sha256(project: Path) -> None:
    """Following the hint must silence the warning: a voice is pinned by voice_sha256, not sha256."""
    (project / "specs" / "a.toml").write_text(
        """
[refs.mia]
image = "refs/mia.png"
voice = "https://example.com/mia.wav"

[refs.dress]
image = "refs/dress.png"

[[shots]]
id = "one"
media = ["mia", { ref = "dress", voice = "https://example.com/line2.wav" }]
prompt = "{{ mia }} {{ dress }}"
"""
    )
    check = run_cli("check", cwd=project)
    assert check.code == 0, check.out
    warnings = [line for line in check.out.splitlines() if "is not pinned" in line]
    assert len(warnings) == 2, check.out
    for line in warnings:
        assert 'add voice_sha256 = "<hex digest>"' in line, line


# --- plurals ----------------------------------------------------------------------------------------------------


def test_one_take_selected_is_one_take(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n\n[[shots]]\nid = "hero"\nmedia = ["mia"]\nprompt = "{{ mia }}"\ntakes = 3\n'
    )
    text = run_cli("plan", "--shot", "hero.take2", cwd=project).out
    assert "hero: 1 takes" not in text and "hero: 1 take" in text, text


# --- continuity: a build killed while a dependent runs, its upstream edited before the next build -----------------

CHAIN = """
[refs.mia]
image = "refs/mia.png"

[defaults]
duration = 2

[[shots]]
id = "a"
media = ["mia"]
prompt = "{{ mia }} walks"

[[shots]]
id = "b"
media = ["mia"]
first_frame = { shot = "a" }
prompt = "{{ mia }} sits"
"""


def test_a_killed_dependents_paid_task_is_collected_by_the_next_build_after_its_upstream_changed(
    project: Path,
) -> None:
    """b's task was paid and journaled when the build was killed; then a was edited, so b waits at
    the start of the next build and its new key differs. That build must still collect b's paid
    task into the cache (README: "a task of a shot that was edited meanwhile is still collected"),
    not leave it journaled for some later build, by which time the service may have dropped it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    fast(project)
    spec = project / "specs" / "chain.toml"
    spec.write_text(CHAIN)
    journal = project / "cache" / "journal"
    with start_in_thread(EmulatorOptions(latency=2.0, concurrency=4)) as service:
        env = env_for(service)
        log = project.parent / "killed.log"
        with log.open("wb") as sink:
            child = subprocess.Popen(
                [sys.executable, "-m", "renderspec", "build"],
                cwd=project,
                env={**os.environ, **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until b's create is answered and journaled
            records = [json.loads(path.read_text()) for path in journal.glob("*.json")] if journal.is_dir() else []
            if any(record.get("shot") == "b" and record.get("task_id") for record in records):
                break
            assert child.poll() is None, log.read_text()
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        spec.write_text(CHAIN.replace("walks", "runs"))
        build = run_cli("build", cwd=project, env=env)
        assert build.code == 0, build.out + build.err
        prompts = sorted(task["request"]["input"]["prompt"] for task in creates(service))
        assert prompts == ["image 1 runs", "image 1 sits", "image 1 sits", "image 1 walks"]  # nothing paid twice
        assert list(journal.glob("*.json")) == [], "b's paid task of the earlier version is still only journaled"
        assert "collected task" in build.out
