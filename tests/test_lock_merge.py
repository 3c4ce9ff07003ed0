"""The lock merges: two branches that re-render different shots, even adjacent ones, merge in git
with no conflict, and the merged lock holds both branches' renders. Checked with real git on a
built project, and as a property of the lock's layout with `git merge-file` on generated locks.
Old locks that keep task ids in a separate `[tasks]` table are still read.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderspec.errors import WorkspaceError
from renderspec.manifest import LockEntry, Manifest
from tests.conftest import fast, run_cli

SHOTS = ("s01", "s02", "s03", "s04", "s05")


def git_env(home: Path) -> dict[str, str]:
    """Who commits, and no configuration of the developer's (global or system) that could change a merge."""
    return {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }


def git(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *argv], cwd=root, env=git_env(root.parent), capture_output=True, text=True)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def storyboard(project: Path) -> Path:
    """Five short shots in one spec file, each its own [[shots]] block."""
    blocks = "".join(
        f'\n[[shots]]\nid = "{shot}"\nmedia = ["mia"]\nprompt = "{{{{ mia }}}} strikes pose {shot}"\nduration = 2\n'
        for shot in SHOTS
    )
    (project / "specs" / "board.toml").write_text(f'[refs.mia]\nimage = "refs/mia.png"\n{blocks}')
    (project / ".gitignore").write_text("cache/\nrenders/\n")
    return fast(project)


def edit_prompt(project: Path, shot: str) -> None:
    spec = project / "specs" / "board.toml"
    text = spec.read_text()
    assert text.count(f"pose {shot}") == 1
    spec.write_text(text.replace(f"pose {shot}", f"pose {shot}, then smiles"))


def build(project: Path, rendered: int) -> None:
    run = run_cli("build", "--provider", "local", cwd=project)
    assert run.code == 0, run.out + run.err
    expected = f"rendered {rendered}," if rendered else f"nothing to render: {len(SHOTS)} shots cached"
    assert expected in run.out, run.out


def entries(project: Path) -> dict[str, LockEntry]:
    return Manifest.load(project).entries


@pytest.mark.parametrize(("ours", "theirs"), [("s02", "s03"), ("s01", "s05")], ids=["adjacent", "first-and-last"])
def test_two_branches_that_render_different_shots_merge_with_no_conflict(project: Path, ours: str, theirs: str) -> None:
    root = storyboard(project)
    ok(git(root, "init", "-q", "-b", "main"))
    build(root, rendered=len(SHOTS))
    ok(git(root, "add", "-A"))
    ok(git(root, "commit", "-q", "-m", "base"))
    base = entries(root)

    ok(git(root, "checkout", "-q", "-b", "ours"))
    edit_prompt(root, ours)
    build(root, rendered=1)
    ok(git(root, "commit", "-q", "-am", f"re-render {ours}"))
    after_ours = entries(root)

    ok(git(root, "checkout", "-q", "-b", "theirs", "main"))
    edit_prompt(root, theirs)
    build(root, rendered=1)  # the cache is shared by the branches (one working tree): only `theirs` is new
    ok(git(root, "commit", "-q", "-am", f"re-render {theirs}"))
    after_theirs = entries(root)

    ok(git(root, "checkout", "-q", "ours"))
    merged = git(root, "merge", "--no-edit", "theirs")
    assert merged.returncode == 0 and "CONFLICT" not in merged.stdout, merged.stdout + merged.stderr
    lock = entries(root)
    assert lock[ours] == after_ours[ours] and lock[ours].key != base[ours].key
    assert lock[theirs] == after_theirs[theirs] and lock[theirs].key != base[theirs].key
    assert {shot: lock[shot] for shot in SHOTS if shot not in (ours, theirs)} == {
        shot: base[shot] for shot in SHOTS if shot not in (ours, theirs)
    }
    text = (root / "renderspec.lock").read_text()
    check = run_cli("plan", "--check", "--provider", "local", cwd=root)
    assert check.code == 0, check.out + check.err
    build(root, rendered=0)  # the merged lock is exactly what a build of the merged specs writes
    assert (root / "renderspec.lock").read_text() == text


# -- the layout, as a property ---------------------------------------------------------------------

hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
task_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,24}", fullmatch=True)


@st.composite
def lock_entries(draw: st.DrawFn, shot: str) -> LockEntry:
    return LockEntry(
        spec=draw(st.sampled_from(["specs/a.toml", "specs/b.toml"])),
        key=draw(hex64),
        output=f"renders/{shot}.mp4",
        video_sha256=draw(hex64),
        video_size=draw(st.none() | st.integers(1, 10**9)),  # locks written before sizes were recorded lack it
        model="wan2.7-r2v",
        duration=draw(st.integers(2, 15)),
        resolution=draw(st.sampled_from(["720P", "1080P"])),
        ratio=draw(st.none() | st.sampled_from(["16:9", "9:16", "1:1"])),
        task_id=draw(st.none() | task_ids),
    )


@st.composite
def rerendered(draw: st.DrawFn, entry: LockEntry) -> LockEntry:
    """What a re-render writes: a new key, video and task; where the shot comes from stays."""
    return LockEntry(
        spec=entry.spec,
        key=draw(hex64),
        output=entry.output,
        video_sha256=draw(hex64),
        video_size=draw(st.integers(1, 10**9)),
        model=entry.model,
        duration=entry.duration,
        resolution=entry.resolution,
        ratio=entry.ratio,
        task_id=draw(task_ids),
    )


Branches = tuple[dict[str, LockEntry], dict[str, LockEntry], dict[str, LockEntry], frozenset[str]]


@st.composite
def two_branches(draw: st.DrawFn) -> Branches:
    """A base lock of 3 to 12 shots; two branches re-render disjoint, non-empty sets of its shots, and
    ours may also drop shots (taken out of the specs) that theirs leaves alone."""
    count = draw(st.integers(3, 12))
    shots = [f"s{number:02d}" for number in range(1, count + 1)]
    base = {shot: draw(lock_entries(shot)) for shot in shots}
    order = draw(st.permutations(shots))
    cut = draw(st.integers(1, count - 1))
    end = draw(st.integers(cut + 1, count))
    ours = {shot: draw(rerendered(base[shot])) for shot in order[:cut]}
    theirs = {shot: draw(rerendered(base[shot])) for shot in order[cut:end]}
    dropped = draw(st.frozensets(st.sampled_from(order[end:]))) if end < count else frozenset[str]()
    return base, ours, theirs, dropped


def lock_text(entries: dict[str, LockEntry]) -> str:
    manifest = Manifest(Path("unused"))
    for shot, entry in entries.items():
        manifest.set(shot, entry)
    return manifest.render()


def without(entries: dict[str, LockEntry], dropped: frozenset[str]) -> dict[str, LockEntry]:
    return {shot: entry for shot, entry in entries.items() if shot not in dropped}


def assert_merges_to_the_union(branches: Branches) -> None:
    """`git merge-file` of the three locks has no conflict and gives both branches' changes."""
    base, ours, theirs, dropped = branches
    union = without(base | ours | theirs, dropped)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, entries in (("base", base), ("ours", without(base | ours, dropped)), ("theirs", base | theirs)):
            (folder / name).write_text(lock_text(entries))
        merge = subprocess.run(
            ["git", "merge-file", "-p", "ours", "base", "theirs"],
            cwd=folder,
            env=git_env(folder),
            capture_output=True,
            text=True,
        )
        assert merge.returncode == 0, merge.stdout  # its exit status is the number of conflicts
        (folder / "renderspec.lock").write_text(merge.stdout)
        assert Manifest.load(folder).entries == union
    assert merge.stdout == lock_text(union)


@settings(max_examples=30)
@given(two_branches())
def test_locks_of_branches_that_render_different_shots_merge_cleanly(branches: Branches) -> None:
    assert_merges_to_the_union(branches)


def test_dropping_the_last_shot_merges_with_a_re_render_of_the_one_before() -> None:
    """The table's last line is stable (output): with the volatile fields last, this is a conflict,
    since the dropped table (which ends the file) takes the blank line after its neighbour along."""
    shots = ("s01", "s02", "s03", "s04")
    base = {shot: entry(shot, "0") for shot in shots}
    assert_merges_to_the_union((base, {"s01": entry("s01", "1")}, {"s03": entry("s03", "2")}, frozenset({"s04"})))


def entry(shot: str, version: str) -> LockEntry:
    return LockEntry(
        spec="specs/a.toml",
        key=f"{shot}{version}".encode().hex().ljust(64, "a"),
        output=f"renders/{shot}.mp4",
        video_sha256=f"{shot}{version}".encode().hex().ljust(64, "b"),
        video_size=1000 + int(version),
        model="wan2.7-r2v",
        duration=5,
        resolution="720P",
        ratio="16:9",
        task_id=f"task-{shot}-{version}",
    )


# -- reading what older renderspecs wrote, and damage ------------------------------------------------

KEY_A, KEY_B, SHA = "a" * 64, "b" * 64, "c" * 64
OLD_LOCK = f"""# renderspec.lock: written by `renderspec build`; commit it. One entry per rendered shot.
version = 1

[shots.one]
spec = "specs/a.toml"
key = "{KEY_A}"
output = "renders/one.mp4"
video_sha256 = "{SHA}"
video_size = 10
model = "wan2.7-r2v"
duration = 5
resolution = "720P"
ratio = "16:9"

[shots.two]
spec = "specs/a.toml"
key = "{KEY_B}"
output = "renders/two.mp4"
video_sha256 = "{SHA}"
model = "wan2.7-r2v"
duration = 5
resolution = "720P"
task_id = "own-task"

[tasks]
one = "task-1"
two = "stale-task"
"""


def test_an_old_lock_with_a_tasks_table_still_gives_task_ids_and_is_rewritten_without_it(tmp_path: Path) -> None:
    (tmp_path / "renderspec.lock").write_text(OLD_LOCK)
    manifest = Manifest.load(tmp_path)
    assert manifest.entries["one"].task_id == "task-1"
    assert manifest.entries["two"].task_id == "own-task"  # an entry's own task id wins over [tasks]
    assert manifest.task_ids() == {"task-1", "own-task"}
    assert manifest.save()
    text = (tmp_path / "renderspec.lock").read_text()
    assert "[tasks]" not in text and text.startswith("# renderspec.lock") and "\nversion = 1\n" in text
    assert Manifest.load(tmp_path).entries == manifest.entries


def test_the_task_id_sits_in_the_middle_of_its_shot_table(tmp_path: Path) -> None:
    (tmp_path / "renderspec.lock").write_text(OLD_LOCK)
    manifest = Manifest.load(tmp_path)
    table = manifest.render().split("[shots.one]\n")[1].split("\n\n")[0].splitlines()
    assert [line.split(" = ")[0] for line in table] == [
        "spec",
        "model",
        "duration",
        "resolution",
        "ratio",
        "key",
        "video_sha256",
        "video_size",
        "task_id",
        "output",
    ]


def test_an_older_renderspec_reading_the_new_lock_ignores_the_task_id_in_a_shot_table() -> None:
    """Version 1 stays: the readers of version 1 ignore shot fields they do not know."""
    from renderspec.manifest import _Shot

    assert _Shot.model_config.get("extra") == "ignore"
    fields = {
        "spec": "specs/a.toml",
        "key": KEY_A,
        "output": "renders/one.mp4",
        "video_sha256": SHA,
        "model": "wan2.7-r2v",
        "duration": 5,
        "resolution": "720P",
        "a_field_of_a_newer_renderspec": [1, 2],
    }
    assert _Shot.model_validate(fields).task_id is None


@pytest.mark.parametrize(
    "task_id", ["a/b", "", "has space", 7, "x" * 200], ids=["path", "empty", "space", "int", "long"]
)
def test_a_malformed_task_id_in_a_shot_table_is_one_clear_error(tmp_path: Path, task_id: object) -> None:
    shown = f'"{task_id}"' if isinstance(task_id, str) else str(task_id)
    lock = OLD_LOCK.replace('task_id = "own-task"', f"task_id = {shown}").split("[tasks]")[0]
    (tmp_path / "renderspec.lock").write_text(lock)
    with pytest.raises(WorkspaceError) as raised:
        Manifest.load(tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("renderspec.lock: shots.two.task_id: "), message
    assert "restore it from git" in message


def test_a_malformed_task_id_stops_plan_with_one_line(project: Path) -> None:
    storyboard(project)
    (project / "renderspec.lock").write_text(OLD_LOCK.replace('"own-task"', '"../../etc"'))
    run = run_cli("plan", cwd=project)
    assert run.code == 2, run.out + run.err
    assert "renderspec.lock: shots.two.task_id: must be a task id" in run.err
    assert "Traceback" not in run.err and "internal error" not in run.err
