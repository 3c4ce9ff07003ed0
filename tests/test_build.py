"""`renderspec build` end to end against an emulator: never pay twice, never lose a paid render."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.executor import LOST_CREATES
from renderspec.media import verify_render
from tests.conftest import creates, env_for, fast, run_cli, write_png

SHOTS = 8


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.2, concurrency=4)) as running:
        yield running


def test_first_build_renders_everything_and_the_second_renders_nothing(
    example_project: Path, service: RunningEmulator
) -> None:
    project = fast(example_project)
    first = run_cli("build", cwd=project, env=env_for(service))
    assert first.code == 0, first.out + first.err
    assert "rendered 8, cached 0, failed 0" in first.out and "videos are in renders/" in first.out
    assert len(creates(service)) == SHOTS
    stats = httpx.get(f"{service.url}/_emulator/stats").json()["requests"]
    assert stats["upload"] == 2 * 6  # policy + form once per distinct file, though shots start together
    for mp4 in (project / "renders").glob("*.mp4"):
        verify_render(
            mp4, size=None, seconds=float(verify_render(mp4, size=None, seconds=0, seconds_tolerance=99).seconds)
        )
    assert sorted(p.name for p in (project / "renders").glob("*.mp4")) == sorted(
        f"{name}.mp4"
        for name in [
            "garden-walk",
            "turn-left",
            "turn-right",
            "portrait-9x16",
            "portrait-1x1",
            "bottle-hero",
            "bottle-in-hand-1",
            "bottle-in-hand-2",
        ]
    )
    lock_before = (project / "renderspec.lock").read_text()
    second = run_cli("build", cwd=project, env=env_for(service))
    assert second.code == 0 and "nothing to render: 8 shots cached" in second.out
    assert len(creates(service)) == SHOTS
    assert (project / "renderspec.lock").read_text() == lock_before
    assert run_cli("plan", "--check", cwd=project, env=env_for(service)).code == 0


def test_edits_render_exactly_what_changed(example_project: Path, service: RunningEmulator) -> None:
    project = fast(example_project)
    env = env_for(service)
    assert run_cli("build", cwd=project, env=env).code == 0
    spec = project / "specs" / "product.toml"
    spec.write_text(spec.read_text().replace("turns slowly on a marble table", "spins on a glass table"))
    plan = json.loads(run_cli("plan", "--json", cwd=project, env=env).out)
    stale = [(s["id"], s["reasons"]) for s in plan["shots"] if s["state"] != "cached"]
    assert stale == [("bottle-hero", ["prompt changed"])]
    assert run_cli("plan", "--check", cwd=project, env=env).code == 1
    assert run_cli("build", cwd=project, env=env).code == 0
    assert len(creates(service)) == SHOTS + 1

    os.utime(project / "specs" / "refs" / "mia.png", (time.time() + 5, time.time() + 5))
    assert run_cli("build", cwd=project, env=env).code == 0
    assert len(creates(service)) == SHOTS + 1

    write_png(project / "specs" / "refs" / "dress.png", size=(512, 512), colour=(120, 10, 40))
    plan = json.loads(run_cli("plan", "--json", cwd=project, env=env).out)
    stale = {s["id"]: s["reasons"] for s in plan["shots"] if s["state"] != "cached"}
    assert set(stale) == {"garden-walk", "turn-left", "turn-right"}
    assert stale["garden-walk"] == ["reference changed: specs/refs/dress.png"]
    run = run_cli("build", cwd=project, env=env)
    assert run.code == 0 and "rendered 3, cached 5" in run.out
    assert len(creates(service)) == SHOTS + 4


def test_reference_used_by_two_shots_renders_exactly_two(project: Path, service: RunningEmulator) -> None:
    fast(project)
    (project / "specs" / "two.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n[refs.dress]\nimage = "refs/dress.png"\n'
        '[[shots]]\nid = "a"\nmedia = ["mia"]\nprompt = "{{ mia }} waves"\nduration = 2\n'
        '[[shots]]\nid = "b"\nmedia = ["mia"]\nprompt = "{{ mia }} bows"\nduration = 2\n'
        '[[shots]]\nid = "c"\nmedia = ["dress"]\nprompt = "{{ dress }} on a hanger"\nduration = 2\n'
    )
    env = env_for(service)
    assert run_cli("build", cwd=project, env=env).code == 0
    write_png(project / "specs" / "refs" / "mia.png", colour=(1, 200, 3))
    assert run_cli("build", cwd=project, env=env).code == 0
    assert len(creates(service)) == 3 + 2


def test_a_bad_day_at_the_service_still_renders_every_shot_once(example_project: Path) -> None:
    options = EmulatorOptions(
        latency=0.2,
        concurrency=4,
        throttle=0.33,
        error_rate=0.1,
        drop_rate=0.25,
        truncate_rate=0.2,
        seed=42,
        retry_after=0.05,
        # The client tries each call 6 times, and a shot whose create answer is lost LOST_CREATES (3)
        # times fails; without a cap below both, which shot meets a long streak of the seeded faults
        # depends on how concurrent requests interleave, and now and then one gives up.
        max_faults_in_a_row=LOST_CREATES - 1,
    )
    with start_in_thread(options) as running:
        project = fast(example_project)
        run = run_cli("build", "--keep-going", cwd=project, env=env_for(running))
        assert run.code == 0, run.out + run.err
        tasks = creates(running)
        assert len(tasks) == SHOTS
        assert len({json.dumps(task["request"], sort_keys=True) for task in tasks}) == SHOTS


def test_failed_tasks_are_named_and_only_they_are_retried(example_project: Path) -> None:
    project = fast(example_project)
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=4, fail_rate=1.0, seed=1)) as failing:
        run = run_cli("build", cwd=project, env={**env_for(failing), "CI": "true"})
        assert run.code == 1
        failed_lines = [
            line for line in run.out.splitlines() if line.startswith("specs/") and ": failed: the task failed:" in line
        ]
        assert len(failed_lines) == SHOTS
        assert any(
            line.startswith("specs/garden.toml:27: shot garden-walk: failed: the task failed: ")
            for line in failed_lines
        )
        assert not (project / "renders").exists() or not list((project / "renders").glob("*.mp4"))
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=4)) as healthy:
        assert run_cli("build", "--shot", "garden-walk", cwd=project, env=env_for(healthy)).code == 0
        assert len(creates(healthy)) == 1
        assert run_cli("build", cwd=project, env=env_for(healthy)).code == 0
        assert len(creates(healthy)) == SHOTS


def test_without_keep_going_the_first_failure_stops_new_submissions(project: Path) -> None:
    fast(project)
    (project / "specs" / "many.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n[[shots]]\nid = "s-{{ n }}"\nmatrix = { n = [1, 2, 3, 4, 5, 6] }\nmedia = ["mia"]\nprompt = "{{ mia }} {{ n }}"\nduration = 2\n'
    )
    with start_in_thread(EmulatorOptions(latency=0.3, concurrency=1, fail_rate=1.0)) as running:
        run = run_cli("build", "-j", "1", cwd=project, env=env_for(running))
        assert run.code == 1
        assert "skipped" in run.out and "--keep-going" in run.out
        assert len(creates(running)) < 6


def test_json_summary_is_one_document(example_project: Path, service: RunningEmulator) -> None:
    run = run_cli("build", "--json", cwd=fast(example_project), env=env_for(service))
    document = json.loads(run.out)
    assert document["summary"]["rendered"] == SHOTS and document["summary"]["currency"] == "CNY"
    walk = next(shot for shot in document["shots"] if shot["id"] == "garden-walk")
    assert (
        walk["state"] == "rendered"
        and walk["output"] == "renders/garden-walk.mp4"
        and walk["task_id"]
        and walk["cost"] == 4.8
    )
    assert "garden-walk: rendered" in run.err


def test_dry_run_submits_nothing(example_project: Path, service: RunningEmulator) -> None:
    run = run_cli("build", "--dry-run", cwd=fast(example_project), env=env_for(service))
    assert run.code == 0 and "8 shots: 8 new" in run.out
    as_json = run_cli("build", "--dry-run", "--json", cwd=example_project, env=env_for(service))
    assert json.loads(as_json.out)["summary"]["to_render"] == SHOTS
    assert creates(service) == []


def test_unknown_shot_ids_are_usage_errors(example_project: Path, service: RunningEmulator) -> None:
    run = run_cli("build", "--shot", "nope", cwd=fast(example_project), env=env_for(service))
    assert run.code == 2 and "no shot with id nope" in run.err


def test_a_missing_key_is_a_clear_error(example_project: Path) -> None:
    run = run_cli("build", "--provider", "dashscope", cwd=example_project, env={})
    assert run.code == 2 and "DASHSCOPE_API_KEY" in run.err


def test_gc_and_clean_drop_what_no_spec_needs(example_project: Path, service: RunningEmulator) -> None:
    project = fast(example_project)
    env = env_for(service)
    assert run_cli("build", cwd=project, env=env).code == 0
    spec = project / "specs" / "product.toml"
    text = spec.read_text()
    spec.write_text(text[: text.index('[[shots]]\nid = "bottle-in-hand')])
    assert run_cli("build", cwd=project, env=env).code == 0
    lock = (project / "renderspec.lock").read_text()
    assert "bottle-in-hand-1" not in lock and "bottle-hero" in lock
    dry = run_cli("gc", "--dry-run", cwd=project, env=env)
    assert "would drop 2 unused cache entries" in dry.out
    assert "dropped 2 unused cache entries; kept 6" in run_cli("gc", cwd=project, env=env).out
    cleaned = run_cli("clean", cwd=project, env=env)
    assert "removed 2 renders" in cleaned.out and "renders/bottle-in-hand-1.mp4" in cleaned.out
    assert len(list((project / "renders").glob("*.mp4"))) == 6
    assert run_cli("clean", "--all", cwd=project, env=env).code == 0
    assert list((project / "renders").glob("*.mp4")) == []
    restore = run_cli("build", cwd=project, env=env)
    assert "nothing to render: 6 shots cached (restored 6 in renders/)" in restore.out
    assert len(list((project / "renders").glob("*.mp4"))) == 6


def test_the_local_provider_renders_the_example_with_no_key(example_project: Path) -> None:
    first = run_cli("build", cwd=example_project, env={})
    assert first.code == 0, first.out + first.err
    assert "the emulator charged nothing" in first.out
    second = run_cli("build", cwd=example_project, env={})
    assert "nothing to render: 8 shots cached" in second.out


# Only a net under waits that end when something happens: a healthy run never comes near it.
SAFETY_NET = 120.0


@dataclass
class Child:
    """A `renderspec build` in a process of its own, its output going to a file (a pipe could fill)."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _spawn_build(project: Path, env: dict[str, str]) -> Child:
    log = project.parent / f"build-{len(list(project.parent.glob('build-*.log')))}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "renderspec", "build", "--keep-going", "-j", "8"],
            cwd=project,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Child(process, log)


def _wait_for_creates(running: RunningEmulator, child: Child, count: int) -> None:
    """Blocks until the emulator has taken `count` creates from the child, which must still be running."""
    running.emulator.board.wait_for(
        lambda jobs: len(jobs) >= count or child.process.poll() is not None, timeout=SAFETY_NET
    )
    seen = len(creates(running))
    assert seen >= count and child.process.poll() is None, (
        f"wanted the build running after {count} creates; saw {seen}, exit {child.process.returncode}:\n"
        + child.output()
    )


def _stop(child: Child, how: signal.Signals) -> int:
    """Sends `how` and waits for the child to end; returns its exit status."""
    child.process.send_signal(how)
    try:
        return child.process.wait(timeout=SAFETY_NET)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
        raise AssertionError(f"the build did not end after {how.name}:\n{child.output()}") from None


def _release(running: RunningEmulator) -> None:
    """Lets every held task end, and tasks created from now on run without being held."""
    httpx.post(f"{running.url}/_emulator/release").raise_for_status()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=lambda how: how.name)
def test_a_killed_build_resumes_without_paying_again(example_project: Path, how: signal.Signals) -> None:
    project = fast(example_project)
    # Held tasks stay RUNNING, so the build cannot finish before the signal comes, however slow the machine.
    with start_in_thread(EmulatorOptions(latency=0.2, concurrency=8, hold=True)) as running:
        env = env_for(running)
        child = _spawn_build(project, env)
        _wait_for_creates(running, child, 4)
        code = _stop(child, how)
        output = child.output()
        if how == signal.SIGINT:
            assert code == 130 and "run `renderspec build` again to collect them" in output, f"exit {code}:\n{output}"
        else:
            assert code == -signal.SIGKILL, f"exit {code}:\n{output}"
        _release(running)
        again = run_cli("build", cwd=project, env=env)
        assert again.code == 0, output + again.out + again.err
        assert len(creates(running)) == SHOTS, output + again.out + again.err
        assert len(list((project / "renders").glob("*.mp4"))) == SHOTS, output + again.out + again.err


def _kill_after_creates(project: Path, env: dict[str, str], running: RunningEmulator, count: int) -> str:
    """Kills a build once the emulator has seen `count` creates; returns what the build printed."""
    child = _spawn_build(project, env)
    _wait_for_creates(running, child, count)
    code = _stop(child, signal.SIGKILL)
    assert code == -signal.SIGKILL, f"exit {code}:\n{child.output()}"
    return child.output()


def test_a_paid_task_of_a_shot_edited_meanwhile_is_still_collected(example_project: Path) -> None:
    project = fast(example_project)
    spec = project / "specs" / "product.toml"
    original = spec.read_text()
    with start_in_thread(EmulatorOptions(latency=0.2, concurrency=8, hold=True)) as running:
        env = env_for(running)
        killed = _kill_after_creates(project, env, running, SHOTS)
        _release(running)
        spec.write_text(original.replace("turns slowly on a marble table", "spins on a glass table"))
        again = run_cli("build", cwd=project, env=env)
        assert again.code == 0, killed + again.out + again.err
        assert "bottle-hero: collected task" in again.out and "of an earlier version into the cache" in again.out, (
            killed + again.out + again.err
        )
        assert len(creates(running)) == SHOTS + 1, killed + again.out + again.err
        spec.write_text(original)
        reverted = run_cli("build", cwd=project, env=env)
        assert reverted.code == 0 and "nothing to render: 8 shots cached" in reverted.out, reverted.out + reverted.err
        assert len(creates(running)) == SHOTS + 1


def test_tasks_the_service_no_longer_knows_are_submitted_again_in_the_same_build(example_project: Path) -> None:
    project = fast(example_project)
    with start_in_thread(EmulatorOptions(concurrency=8, hold=True)) as first:  # nothing it takes ever finishes
        killed = _kill_after_creates(project, env_for(first), first, 3)
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=8)) as second:
        run = run_cli("build", cwd=project, env=env_for(second))
        assert run.code == 0, killed + run.out + run.err
        assert "no longer knows task" in run.err, killed + run.out + run.err
        assert len(creates(second)) == SHOTS, killed + run.out + run.err


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://api.example.com", id="http to a public host"),
        pytest.param("ftp://127.0.0.1", id="ftp on loopback"),
        pytest.param("http://10.0.0.1:8787", id="http to a private address"),
    ],
)
def test_the_key_is_never_sent_over_plain_http_off_loopback(example_project: Path, url: str) -> None:
    run = run_cli(
        "build",
        cwd=example_project,
        env={"RENDERSPEC_PROVIDER": "dashscope", "RENDERSPEC_BASE_URL": url, "DASHSCOPE_API_KEY": "sk-x"},
    )
    assert run.code == 2 and "must be https://" in run.err and "sk-x" not in run.err


def test_always_corrupted_results_fail_the_shot_and_stay_journaled(project: Path) -> None:
    fast(project)
    (project / "specs" / "one.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n[[shots]]\nid = "one"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nduration = 2\n'
    )
    with start_in_thread(EmulatorOptions(latency=0.1, corrupt_rate=1.0)) as running:
        run = run_cli("build", cwd=project, env=env_for(running))
        assert run.code == 1 and "InvalidOutput" not in run.out.split("failed:")[0]
        assert "shot one: failed: the result is not a playable video" in run.out
        assert not list((project / "cache" / "objects").rglob("meta.json"))
        assert len(list((project / "cache" / "journal").glob("*.json"))) == 1  # paid: the next build downloads again
        assert len(creates(running)) == 1


def test_a_fake_key_appears_nowhere(example_project: Path, service: RunningEmulator) -> None:
    key = "sk-FAKE-9d2c41e7b3a8f6051"
    env = {**env_for(service), "DASHSCOPE_API_KEY": key}
    project = fast(example_project)
    runs = [
        run_cli("build", "--json", cwd=project, env=env),
        run_cli("plan", "--json", cwd=project, env=env),
        run_cli("build", cwd=project, env=env),
    ]
    assert runs[0].code == 0
    texts = [run.out + run.err for run in runs]
    for path in [project / "renderspec.lock", *(project / "cache").rglob("*"), *(project / "renders").rglob("*")]:
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert all(key not in text for text in texts)


def test_the_cache_records_the_request_as_sent(example_project: Path, service: RunningEmulator) -> None:
    assert run_cli("build", "--shot", "turn-left", cwd=fast(example_project), env=env_for(service)).code == 0
    (meta,) = [json.loads(path.read_text()) for path in (example_project / "cache" / "objects").rglob("meta.json")]
    sent = meta["request_sent"]
    assert sent["parameters"]["duration"] == 5 and "ratio" not in sent["parameters"]
    assert [item["type"] for item in sent["input"]["media"]] == ["reference_image", "reference_image", "first_frame"]
    assert all(item["url"].startswith("oss://") for item in sent["input"]["media"])
    assert meta["task_id"] == creates(service)[0]["task_id"] and meta["usage"]["output_video_duration"] == 5
    assert meta["video"]["width"] == 1280 and meta["video_sha256"]
