"""`renderspec lock merge` as git's merge driver: real `git merge`s of built branches that plain git
cannot merge, the per-shot three-way merge as a property, and the driver's contract (exit status,
what OURS holds afterwards, unreadable input).
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderspec.lockmerge import merged_entries
from renderspec.manifest import LockEntry, render_lock
from tests.conftest import run_cli, write_png
from tests.test_lock_merge import build, edit_prompt, entries, entry, git, ok, storyboard


def configure_driver(root: Path) -> None:
    """What the README asks of a storyboard repository, with this checkout's renderspec as the driver."""
    (root / ".gitattributes").write_text("renderspec.lock merge=renderspec\n")
    driver = f"{shlex.quote(sys.executable)} -m renderspec lock merge %O %A %B"
    ok(git(root, "config", "merge.renderspec.driver", driver))


def based(project: Path) -> tuple[Path, dict[str, LockEntry]]:
    """The five-shot storyboard built and committed on `main`."""
    root = storyboard(project)
    ok(git(root, "init", "-q", "-b", "main"))
    build(root, rendered=5)
    ok(git(root, "add", "-A"))
    ok(git(root, "commit", "-q", "-m", "base"))
    return root, entries(root)


def commit_build(root: Path, branch: str, rendered: int, start: str = "main") -> dict[str, LockEntry]:
    run = run_cli("build", "--provider", "local", cwd=root)
    assert run.code == 0 and f"rendered {rendered}," in run.out, run.out + run.err
    ok(git(root, "add", "-A"))
    ok(git(root, "commit", "-q", "-m", f"render on {branch}"))
    return entries(root)


def conflicts_without_the_driver(root: Path) -> None:
    """Plain git (no driver configured yet) cannot merge these locks: the case the driver exists for."""
    plain = git(root, "merge", "--no-edit", "theirs")
    assert plain.returncode != 0 and "CONFLICT (content): Merge conflict in renderspec.lock" in plain.stdout, (
        plain.stdout + plain.stderr
    )
    ok(git(root, "merge", "--abort"))


def add_shot_file(root: Path, name: str) -> None:
    (root / "specs" / f"{name}.toml").write_text(
        f'[refs.mia]\nimage = "refs/mia.png"\n\n[[shots]]\nid = "new-{name}"\nmedia = ["mia"]\n'
        f'prompt = "{{{{ mia }}}} waves from the {name} side"\nduration = 2\n'
    )


def test_branches_that_add_shots_side_by_side_merge_with_the_driver(project: Path) -> None:
    root, base = based(project)
    ok(git(root, "checkout", "-q", "-b", "ours"))
    add_shot_file(root, "ours")
    ours = commit_build(root, "ours", rendered=1)
    ok(git(root, "checkout", "-q", "-b", "theirs", "main"))
    add_shot_file(root, "theirs")
    theirs = commit_build(root, "theirs", rendered=1)
    ok(git(root, "checkout", "-q", "ours"))
    conflicts_without_the_driver(root)

    configure_driver(root)
    merged = git(root, "merge", "--no-edit", "theirs")
    assert merged.returncode == 0 and "CONFLICT" not in merged.stdout, merged.stdout + merged.stderr
    assert entries(root) == base | {"new-ours": ours["new-ours"], "new-theirs": theirs["new-theirs"]}
    text = (root / "renderspec.lock").read_text()
    check = run_cli("plan", "--check", "--provider", "local", cwd=root)
    assert check.code == 0, check.out + check.err
    run = run_cli("build", "--provider", "local", cwd=root)
    assert run.code == 0 and "nothing to render: 7 shots cached" in run.out, run.out + run.err
    assert (root / "renderspec.lock").read_text() == text  # what a build of the merged specs writes


def test_a_shot_rendered_again_on_one_side_and_edited_on_the_other_takes_the_edited_sides_entry(
    project: Path,
) -> None:
    root, base = based(project)
    ok(git(root, "checkout", "-q", "-b", "ours"))
    shutil.rmtree(root / "cache" / "objects" / base["s02"].key[:2] / base["s02"].key)  # lost: rendered again
    ours = commit_build(root, "ours", rendered=1)
    assert ours["s02"].key == base["s02"].key and ours["s02"].task_id != base["s02"].task_id
    ok(git(root, "checkout", "-q", "-b", "theirs", "main"))
    edit_prompt(root, "s02")
    theirs = commit_build(root, "theirs", rendered=1)
    ok(git(root, "checkout", "-q", "ours"))
    conflicts_without_the_driver(root)

    configure_driver(root)
    merged = git(root, "merge", "--no-edit", "theirs")
    assert merged.returncode == 0 and "CONFLICT" not in merged.stdout, merged.stdout + merged.stderr
    assert entries(root)["s02"] == theirs["s02"]  # the merged spec carries theirs' prompt: its key
    check = run_cli("plan", "--check", "--provider", "local", cwd=root)
    assert check.code == 0, check.out + check.err


def test_a_shot_whose_request_changed_differently_on_both_sides_is_a_conflict_named_by_the_driver(
    project: Path,
) -> None:
    root, base = based(project)
    ok(git(root, "checkout", "-q", "-b", "ours"))
    edit_prompt(root, "s02")
    ours = commit_build(root, "ours", rendered=1)
    ok(git(root, "checkout", "-q", "-b", "theirs", "main"))
    write_png(root / "specs" / "refs" / "mia.png", colour=(0, 160, 90))  # every shot's key changes
    theirs = commit_build(root, "theirs", rendered=5)
    ok(git(root, "checkout", "-q", "ours"))

    configure_driver(root)
    merged = git(root, "merge", "--no-edit", "theirs")
    assert merged.returncode != 0, merged.stdout + merged.stderr
    assert "CONFLICT (content): Merge conflict in renderspec.lock" in merged.stdout
    assert "renderspec.lock: shot s02: changed differently on both sides" in merged.stderr, merged.stderr
    assert "Traceback" not in merged.stderr
    assert git(root, "diff", "--name-only", "--diff-filter=U").stdout.split() == ["renderspec.lock"]  # specs merged
    lock = entries(root)  # a valid lock: the clean part merged, ours' entry for the conflict
    assert lock["s02"] == ours["s02"]
    assert {shot: lock[shot] for shot in lock if shot != "s02"} == {
        shot: theirs[shot] for shot in theirs if shot != "s02"
    }

    build(root, rendered=1)  # the way out the driver names: the merged specs' s02 (new prompt and image)
    ok(git(root, "add", "renderspec.lock"))
    ok(git(root, "commit", "-q", "--no-edit"))
    assert entries(root)["s02"].key not in (ours["s02"].key, theirs["s02"].key, base["s02"].key)
    check = run_cli("plan", "--check", "--provider", "local", cwd=root)
    assert check.code == 0, check.out + check.err


# -- the driver's contract, without git ------------------------------------------------------------


def write_locks(folder: Path, *sides: dict[str, LockEntry] | str) -> list[str]:
    names = []
    for name, side in zip(("base", "ours", "theirs"), sides, strict=True):
        (folder / name).write_text(side if isinstance(side, str) else render_lock(side))
        names.append(name)
    return names


def test_a_clean_merge_writes_the_merged_lock_into_ours_and_exits_0(tmp_path: Path) -> None:
    base = {"a": entry("a", "0"), "b": entry("b", "0")}
    ours, theirs = base | {"a": entry("a", "1")}, base | {"b": entry("b", "2"), "c": entry("c", "2")}
    run = run_cli("lock", "merge", *write_locks(tmp_path, base, ours, theirs), cwd=tmp_path)
    assert (run.code, run.out, run.err) == (0, "", "")
    assert (tmp_path / "ours").read_text() == render_lock({**base, "a": ours["a"], "b": theirs["b"], "c": theirs["c"]})


def test_shots_added_on_both_sides_with_no_common_lock_merge_from_an_empty_base(tmp_path: Path) -> None:
    """Git hands the driver an empty file for BASE when the lock was added on both branches."""
    run = run_cli(
        "lock", "merge", *write_locks(tmp_path, "", {"a": entry("a", "1")}, {"b": entry("b", "2")}), cwd=tmp_path
    )
    assert run.code == 0, run.err
    assert (tmp_path / "ours").read_text() == render_lock({"a": entry("a", "1"), "b": entry("b", "2")})


def test_a_conflict_exits_1_names_the_shot_and_leaves_a_readable_lock_with_ours_entry(tmp_path: Path) -> None:
    base = {"a": entry("a", "0"), "b": entry("b", "0")}
    ours, theirs = {**base, "a": entry("a", "1")}, {"a": entry("a", "2"), "b": entry("b", "2")}
    run = run_cli("lock", "merge", *write_locks(tmp_path, base, ours, theirs), cwd=tmp_path)
    assert run.code == 1
    lines = run.err.splitlines()
    assert lines[0] == (
        f"renderspec: renderspec.lock: shot a: changed differently on both sides "
        f"(base key {base['a'].key[:12]}, ours key {ours['a'].key[:12]}, theirs key {theirs['a'].key[:12]})"
    )
    assert "kept ours' side of a;" in lines[1] and "run `renderspec build`" in lines[1] and len(lines) == 2
    assert (tmp_path / "ours").read_text() == render_lock({"a": ours["a"], "b": theirs["b"]})


@pytest.mark.parametrize("side", ["base", "ours", "theirs"])
@pytest.mark.parametrize(
    "text",
    ["version = 1\n[shots.a\n", "version = 9\n", 'version = 1\n[shots.a]\nkey = "x"\n'],
    ids=["toml", "version", "field"],
)
def test_a_lock_that_cannot_be_read_is_one_line_exit_2_and_ours_untouched(tmp_path: Path, side: str, text: str) -> None:
    sides: dict[str, dict[str, LockEntry] | str] = {
        name: {"a": entry("a", str(n))} for n, name in enumerate(("base", "ours", "theirs"))
    }
    sides["ours"] = "# as a user left it: any rewrite would drop this line\n" + render_lock({"a": entry("a", "1")})
    sides[side] = text
    names = write_locks(tmp_path, sides["base"], sides["ours"], sides["theirs"])
    before = (tmp_path / "ours").read_text()
    run = run_cli("lock", "merge", *names, cwd=tmp_path)
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and run.err.startswith(
        f"renderspec: error: lock merge: {side.upper()} ({tmp_path / side}): renderspec.lock"
    ), run.err
    assert "nothing was written" in run.err
    assert (tmp_path / "ours").read_text() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["base", "ours", "theirs"]  # no temporary left


def test_a_missing_lock_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_locks(tmp_path, {}, {}, {})
    run = run_cli("lock", "merge", "base", "ours", "nope", cwd=tmp_path)
    assert run.code == 2 and "lock merge: THEIRS" in run.err and "cannot be read" in run.err, run.err


# -- the per-shot three-way merge, as a property -----------------------------------------------------

KEYS = ("0", "1", "2")  # few keys, so that sides often share one


@st.composite
def lock_entries(draw: st.DrawFn, shot: str) -> LockEntry:
    """An entry from a small pool: same key with another video or task (a render again) happens often."""
    made = entry(shot, draw(st.sampled_from(KEYS)))
    return LockEntry(
        spec=made.spec,
        key=made.key,
        output=made.output,
        video_sha256=draw(st.sampled_from(["a" * 64, "b" * 64])),
        model=made.model,
        duration=made.duration,
        resolution=made.resolution,
        ratio=made.ratio,
        task_id=draw(st.sampled_from(["t1", "t2"])),
        video_size=made.video_size,
    )


Sides = tuple[dict[str, LockEntry], dict[str, LockEntry], dict[str, LockEntry]]


@st.composite
def three_locks(draw: st.DrawFn) -> Sides:
    base: dict[str, LockEntry] = {}
    ours: dict[str, LockEntry] = {}
    theirs: dict[str, LockEntry] = {}
    for shot in ("a", "b", "c", "d", "e", "f")[: draw(st.integers(1, 6))]:
        old = draw(st.none() | lock_entries(shot))
        mine = draw(st.sampled_from([old, None]) | lock_entries(shot))
        other = draw(st.sampled_from([old, mine, None]) | lock_entries(shot))
        for side, value in ((base, old), (ours, mine), (theirs, other)):
            if value is not None:
                side[shot] = value
    return base, ours, theirs


@settings(max_examples=300)
@given(three_locks())
def test_the_per_shot_merge_takes_one_sided_changes_and_detects_conflicts_exactly(sides: Sides) -> None:
    base, ours, theirs = sides
    merge = merged_entries(base, ours, theirs)
    conflicts = {conflict.shot for conflict in merge.conflicts}
    for shot in {*base, *ours, *theirs}:
        old, mine, other = base.get(shot), ours.get(shot), theirs.get(shot)
        kept = merge.entries.get(shot)
        keys = {
            name: entry.key if entry else None for name, entry in (("base", old), ("ours", mine), ("theirs", other))
        }
        if mine == other or other == old:  # the same change on both sides (or none), or ours' change alone
            assert kept == mine and shot not in conflicts
        elif mine == old:
            assert kept == other and shot not in conflicts
        else:  # both changed it differently
            request_changed_on_both = len({keys["base"], keys["ours"], keys["theirs"]}) == 3
            assert (shot in conflicts) == request_changed_on_both
            if keys["ours"] == keys["base"] != keys["theirs"]:
                assert kept == other  # ours only rendered the base's request again; theirs changed it
            else:
                assert kept == mine  # theirs only rendered it again, both rendered one request, or a conflict
    assert set(merge.entries) <= {*ours, *theirs}
    assert [conflict.shot for conflict in merge.conflicts] == sorted(conflicts)


@settings(max_examples=100)
@given(three_locks())
def test_the_per_shot_merge_is_symmetric_but_for_which_render_of_one_request_it_keeps(sides: Sides) -> None:
    base, ours, theirs = sides
    forward, backward = merged_entries(base, ours, theirs), merged_entries(base, theirs, ours)
    assert [c.shot for c in forward.conflicts] == [c.shot for c in backward.conflicts]
    conflicted = {c.shot for c in forward.conflicts}
    for shot in {*forward.entries, *backward.entries} - conflicted:
        one, other = forward.entries.get(shot), backward.entries.get(shot)
        assert one == other or (one is not None and other is not None and one.key == other.key)
