"""Everything renderspec reads is untrusted input: specs and files from a pull request, a lock from
git, journal records left by a crash, answers from a service or a proxy. Each bad input gets one
clear line (exit 2 for the project, settings or environment; a failed shot, exit 1, for a bad
answer), never the internal-error exit 3, and nothing outside the project is read or touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from renderspec.emulator.app import EmulatorOptions
from renderspec.emulator.server import RunningEmulator, start_in_thread
from renderspec.errors import StorageError
from renderspec.fsutil import write_atomic
from tests.conftest import Run, creates, env_for, run_cli, write_png
from tests.gateway import gateway

SPEC = (
    '[refs.mia]\nimage = "IMAGE"\n[[shots]]\nid = "walk"\nmedia = ["mia"]\nprompt = "{{ mia }} walks"\nduration = 2\n'
)


@pytest.fixture
def service() -> Iterator[RunningEmulator]:
    with start_in_thread(EmulatorOptions(latency=0.1, concurrency=4)) as running:
        yield running


def walk(project: Path, image: str = "refs/mia.png") -> Path:
    (project / "renderspec.toml").write_text("[renderspec]\npoll_interval = 0.05\n")
    (project / "specs" / "walk.toml").write_text(SPEC.replace("IMAGE", image))
    return project


def one_line_error(run: Run, code: int) -> str:
    """The run failed the way a user expects: one error line, the given exit code, no internal error."""
    assert run.code == code, run.out + run.err
    assert "internal error" not in run.err and "Traceback" not in run.err, run.err
    return run.err


def tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# -- 7. keys read from disk are never paths -------------------------------------------------------


def test_journal_keys_that_are_paths_touch_nothing_outside_the_project(
    project: Path, service: RunningEmulator, tmp_path: Path
) -> None:
    walk(project)
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (outside / "x" / "keep.mp4").write_bytes(b"precious")
    journal = project / "cache" / "journal"
    journal.mkdir(parents=True)
    evil = {"key": "../../../../outside/x", "task_id": "t-1", "shot": "walk", "sent_at": 1.0}
    (journal / "evil.json").write_text(json.dumps(evil))
    (journal / f"{'a' * 64}.json").write_text(json.dumps({**evil, "key": "../../../outside/x"}))
    before = tree(outside)
    run = run_cli("build", cwd=project, env=env_for(service.url))
    assert run.code == 0, run.out + run.err
    assert tree(outside) == before
    assert run.err.count("ignoring the damaged journal record") == 2
    assert len(creates(service)) == 1


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ('version = 1\nshots = "x"\n', "renderspec.lock: shots: "),
        ("version = 1\ntasks = 5\n", "renderspec.lock: tasks: "),
        ("version = 1\n[shots]\nfoo = 1\n", "renderspec.lock: shots.foo: "),
        ('version = 1\n[shots.walk]\nspec = "s"\nkey = "../../x"\n', "renderspec.lock: shots.walk."),
        ("version = 1\n[shots.walk]\nspec = 1\n", "renderspec.lock: shots.walk."),
        ('version = "1"\n', "renderspec.lock has version '1'"),
        ("[[version]]\n", "renderspec.lock has version"),
    ],
    ids=[
        "shots-a-string",
        "tasks-a-number",
        "shot-not-a-table",
        "key-a-path",
        "wrong-types",
        "version-a-string",
        "version-an-array",
    ],
)
def test_a_damaged_lock_is_one_clear_error(project: Path, lock: str, message: str) -> None:
    walk(project)
    (project / "renderspec.lock").write_text(lock)
    for command in ("plan", "build"):
        err = one_line_error(run_cli(command, cwd=project, env={}), 2)
        assert message in err and "restore it from git" in err, err


@pytest.mark.parametrize(
    "record",
    [{"submitted_at": "abc", "task_id": "t-1"}, {"sent_at": "yesterday"}, [1, 2, 3], "text", {"task_id": "a/b\n"}],
    ids=["submitted-at-text", "sent-at-text", "a-list", "a-string", "task-id-a-path"],
)
def test_damaged_journal_records_are_reported_and_the_build_goes_on(
    project: Path, service: RunningEmulator, record: Any
) -> None:
    walk(project)
    journal = project / "cache" / "journal"
    journal.mkdir(parents=True)
    data = {"key": "c" * 64, "shot": "gone", **record} if isinstance(record, dict) else record
    (journal / f"{'c' * 64}.json").write_text(json.dumps(data))
    run = run_cli("build", cwd=project, env=env_for(service.url))
    assert run.code == 0 and "internal error" not in run.err, run.out + run.err
    assert "journal record" in run.err
    assert (project / "renders" / "walk.mp4").exists()


def test_a_damaged_journal_record_is_reported_even_when_nothing_renders(
    project: Path, service: RunningEmulator
) -> None:
    walk(project)
    assert run_cli("build", cwd=project, env=env_for(service.url)).code == 0
    (project / "cache" / "journal" / f"{'c' * 64}.json").write_text("[1, 2, 3]")
    run = run_cli("build", cwd=project, env=env_for(service.url))
    assert run.code == 0 and "nothing to render: 1 shot cached" in run.out, run.out + run.err
    assert "ignoring the damaged journal record" in run.err and "moved to" in run.err


def test_garbage_in_the_speed_memos_is_ignored_and_rebuilt(project: Path, service: RunningEmulator) -> None:
    walk(project)
    assert run_cli("build", cwd=project, env=env_for(service.url)).code == 0
    cache = project / "cache"
    (cache / "assets.json").write_text(
        json.dumps({"version": 1, "files": {"specs/refs/mia.png": [1, 2], "x": {"stat": 1}}})
    )
    (cache / "lock-memo.json").write_text(json.dumps({"digest": "x", "data": [1]}))
    (cache / "uploads.json").write_text(json.dumps({"a/b/c": ["link", "tomorrow"], "d": 5}))
    (cache / "renders.json").write_text("{" * 5000)
    run = run_cli("build", cwd=project, env=env_for(service.url))
    assert run.code == 0 and "nothing to render: 1 shot cached" in run.out, run.out + run.err


# -- 8. nothing outside the project is read ---------------------------------------------------------


def test_a_fragment_through_a_symlink_out_of_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2")
    (project / "specs" / "fragments").mkdir()
    (project / "specs" / "fragments" / "style.j2").symlink_to(secret)
    (project / "specs" / "walk.toml").write_text(
        SPEC.replace("IMAGE", "refs/mia.png").replace("walks", "walks. {% include 'fragments/style.j2' %}")
    )
    run = run_cli("check", cwd=project, env={})
    assert run.code == 1 and "hunter2" not in run.out + run.err
    assert "specs/walk.toml:6: shot walk: prompt: fragment 'fragments/style.j2' resolves outside the project" in run.out


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "symlink"])
def test_a_reference_outside_the_project_is_refused_unless_its_folder_is_allowed(
    project: Path, tmp_path: Path, service: RunningEmulator, how: str
) -> None:
    private = write_png(tmp_path / "private" / "id-card.png")
    image = {"absolute": str(private), "dot-dot": "../../private/id-card.png", "symlink": "refs/linked.png"}[how]
    (project / "specs" / "refs" / "linked.png").symlink_to(private)
    walk(project, image)
    run = run_cli("check", cwd=project, env={})
    assert run.code == 1, run.out
    assert "refs.mia.image:" in run.out and "is outside the project" in run.out and "allow_outside" in run.out
    assert run_cli("build", cwd=project, env=env_for(service.url)).code == 2 and creates(service) == []
    (project / "renderspec.toml").write_text(
        f'[renderspec]\npoll_interval = 0.05\nallow_outside = ["{tmp_path / "private"}"]\n'
    )
    assert run_cli("check", cwd=project, env={}).code == 0
    assert run_cli("build", cwd=project, env=env_for(service.url)).code == 0


# -- 9. clean removes only what renderspec made -----------------------------------------------------


def test_clean_removes_only_renders_renderspec_made(project: Path, service: RunningEmulator, tmp_path: Path) -> None:
    walk(project)
    shared = tmp_path / "shared-renders"
    shared.mkdir()
    (shared / "unrelated.mp4").write_bytes(b"someone else's film")
    (project / "renderspec.toml").write_text(f'[renderspec]\npoll_interval = 0.05\nrenders = "{shared}"\n')
    (project / "specs" / "run.toml").write_text(SPEC.replace("IMAGE", "refs/mia.png").replace('"walk"', '"run"'))
    assert run_cli("build", cwd=project, env=env_for(service.url)).code == 0
    with open(shared / "run.mp4", "r+b") as handle:  # the user's own edit, saved in place
        handle.write(b"mine now")
    cleaned = run_cli("clean", "--all", cwd=project, env={})
    assert cleaned.code == 0, cleaned.out + cleaned.err
    assert sorted(path.name for path in shared.iterdir()) == ["run.mp4", "unrelated.mp4"]
    assert (shared / "unrelated.mp4").read_bytes() == b"someone else's film"
    assert f"kept {shared}/run.mp4: it changed since renderspec wrote it" in cleaned.out


# -- 11. bad answers from the service fail the shot cleanly ----------------------------------------


def _on_query(change: Any) -> Any:
    def rewrite(request: Request, answer: httpx.Response) -> Response | None:
        if (
            request.method == "GET"
            and "/tasks/" in request.url.path
            and answer.json()["output"]["task_status"] == "SUCCEEDED"
        ):
            return change(answer.json())
        return None

    return rewrite


BAD_ANSWERS = {
    "nested-100000-deep": lambda answer: Response("[" * 100_000 + "]" * 100_000, media_type="application/json"),
    "video-url-a-number": lambda answer: Response(
        json.dumps({**answer, "output": {**answer["output"], "video_url": 7}})
    ),
    "video-url-a-list": lambda answer: Response(
        json.dumps({**answer, "output": {**answer["output"], "video_url": ["x"]}})
    ),
    "twenty-megabytes": lambda answer: StreamingResponse(_padded(answer), media_type="application/json"),
}


def _padded(answer: dict[str, Any]) -> Iterator[bytes]:
    """A valid answer with 20 MB of padding, streamed: only a cap on what is read refuses it."""
    whole = json.dumps({**answer, "padding": "PAD"}).encode()
    head, tail = whole.split(b"PAD")
    yield head
    for _ in range(20):
        yield b" " * 2**20
    yield tail


@pytest.mark.parametrize("bad", sorted(BAD_ANSWERS))
def test_a_bad_answer_fails_the_shot_and_the_paid_task_stays_journaled(
    project: Path, service: RunningEmulator, bad: str
) -> None:
    walk(project)
    with gateway(service.url) as proxy:
        proxy.rewrite = _on_query(BAD_ANSWERS[bad])
        run = run_cli("build", cwd=project, env=env_for(proxy.url))
    assert run.code == 1 and "internal error" not in run.err, run.out + run.err
    assert "specs/walk.toml:3: shot walk: failed: " in run.out
    if bad == "twenty-megabytes":
        assert "the answer is larger than 4 MB; it was not read" in run.out
    assert len(list((project / "cache" / "journal").glob("*.json"))) == 1
    again = run_cli("build", cwd=project, env=env_for(service.url))  # the honest service: collected, not paid again
    assert again.code == 0 and len(creates(service)) == 1, again.out + again.err


@pytest.mark.parametrize("task_id", ["a/../b", "line\nbreak", "", "x" * 300], ids=["slash", "newline", "empty", "huge"])
def test_a_create_answer_with_an_unusable_task_id_is_never_journaled(
    project: Path, service: RunningEmulator, task_id: str
) -> None:
    walk(project)

    def rewrite(request: Request, answer: httpx.Response) -> Response | None:
        if request.method == "POST":
            body = answer.json()
            return Response(json.dumps({**body, "output": {**body["output"], "task_id": task_id}}))
        return None

    with gateway(service.url) as proxy:
        proxy.rewrite = rewrite
        run = run_cli("build", cwd=project, env=env_for(proxy.url))
    assert run.code == 0, run.out + run.err  # the unknown outcome is resolved: the task it made is found
    assert len(creates(service)) == 1 and "found its task" in run.err
    lock = (project / "renderspec.lock").read_text()
    assert creates(service)[0]["task_id"] in lock


# -- 12, 13. the environment -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sk-clé", "sk-\x01x", "sk-a\nb"], ids=["non-ascii", "control", "newline"])
def test_an_api_key_that_cannot_travel_in_a_header_is_named(project: Path, key: str) -> None:
    walk(project)
    err = one_line_error(run_cli("build", cwd=project, env=env_for("http://127.0.0.1:9", key)), 2)
    assert "DASHSCOPE_API_KEY holds a character that cannot be sent in an HTTP header" in err
    assert key not in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(project: Path, service: RunningEmulator) -> None:
    walk(project)
    (project / "cache").mkdir()
    (project / "cache" / "lock").symlink_to("/dev/full")
    err = one_line_error(run_cli("build", cwd=project, env=env_for(service.url)), 2)
    assert f"renderspec: error: no space left on device while writing {project}/cache/lock" in err
    assert creates(service) == []


def test_an_atomic_write_that_fails_keeps_the_old_content_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "renderspec.lock"
    target.write_bytes(b"old")
    import tempfile

    real = tempfile.mkstemp

    def on_a_full_disk(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(tempfile, "mkstemp", on_a_full_disk)
    with pytest.raises(StorageError, match=f"no space left on device while writing {target}"):
        write_atomic(target, b"new content")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["renderspec.lock"]


def test_a_shared_spec_file_through_a_symlink_out_of_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.toml"
    secret.write_text('[vars]\ntoken = "hunter2"\n')
    (project / "specs" / "shared").mkdir()
    (project / "specs" / "shared" / "cast.toml").symlink_to(secret)
    (project / "specs" / "walk.toml").write_text(
        'uses = ["shared/cast.toml"]\n' + SPEC.replace("IMAGE", "refs/mia.png").replace("walks", "walks {{ token }}")
    )
    run = run_cli("check", "specs/walk.toml", cwd=project, env={})
    assert run.code == 1 and "hunter2" not in run.out + run.err
    assert run.out.splitlines()[0] == (
        "specs/walk.toml:1: uses: 'shared/cast.toml' (specs/shared/cast.toml) resolves outside the project "
        "(through a symlink); keep shared spec files in the project"
    )
