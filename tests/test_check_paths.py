"""`check FILE`: a file checked on its own (pre-commit passes only the changed ones) still may not
reuse a shot id of another spec file of the project; and the pre-commit hook that runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.conftest import REPO, run_cli

REF = '[refs.mia]\nimage = "refs/mia.png"\n'


def shot(shot_id: str, extra: str = "") -> str:
    return f'\n[[shots]]\nid = "{shot_id}"\nmedia = ["mia"]\nprompt = "{{{{ mia }}}} waves"\n{extra}'


def write(project: Path, name: str, text: str) -> None:
    (project / "specs" / name).parent.mkdir(parents=True, exist_ok=True)
    (project / "specs" / name).write_text(text)


def test_an_id_used_in_another_file_is_reported_with_both_places(project: Path) -> None:
    write(project, "a.toml", REF + shot("one") + shot("hero"))
    write(project, "b.toml", REF + shot("two") + shot("three") + shot("hero"))
    run = run_cli("check", "specs/a.toml", cwd=project)
    assert run.code == 1
    assert run.out.splitlines()[0] == (
        "specs/a.toml:10: shot hero: id: 'hero' is used by 2 shots (specs/a.toml:10, specs/b.toml:15); "
        "shot ids must be unique across the project"
    )
    assert run.out.splitlines()[1:] == ["invalid: 1 error, 0 warnings in 1 spec file"]
    whole = run_cli("check", cwd=project)  # the same finding as a check of the whole project
    assert whole.code == 1 and "(specs/a.toml:10, specs/b.toml:15)" in whole.out
    plan = run_cli("plan", "specs/a.toml", cwd=project)  # nor may a build of that file alone take the id
    assert plan.code == 2 and "'hero' is used by 2 shots" in plan.err


def test_ids_made_by_another_files_matrix_and_templates_count(project: Path) -> None:
    write(project, "a.toml", REF + shot("turn-left"))
    write(
        project,
        "sub/b.toml",
        '[vars]\nverb = "turn"\n[refs.mia]\nimage = "../refs/mia.png"\n'
        + shot("{{ verb }}-{{ side }}", 'matrix = { side = ["right", "left"] }\n'),
    )
    run = run_cli("check", "specs/a.toml", cwd=project)
    assert run.code == 1 and "'turn-left' is used by 2 shots (specs/a.toml:5, specs/sub/b.toml:7)" in run.out, run.out


def test_only_the_named_files_are_checked_otherwise(project: Path) -> None:
    """The other files are read for their ids only: their own problems belong to their own check."""
    write(project, "a.toml", REF + shot("one"))
    write(project, "broken.toml", "[[shots]\n")
    write(project, "undefined.toml", REF + shot("two", 'duration = "{{ nope }}"\n') + shot("one-{{ nope }}"))
    run = run_cli("check", "specs/a.toml", cwd=project)
    assert run.code == 0 and run.out == "ok: 1 shot in 1 spec file (0 errors, 0 warnings)\n", run.out
    assert run_cli("check", cwd=project).code == 1


def test_files_named_together_and_files_outside_the_specs_folder(project: Path) -> None:
    write(project, "a.toml", REF + shot("one"))
    write(project, "b.toml", REF + shot("one"))
    both = run_cli("check", "specs/a.toml", "specs/b.toml", cwd=project)
    assert both.code == 1 and both.out.count("'one' is used by 2 shots (specs/a.toml:5, specs/b.toml:5)") == 2
    (project / "drafts").mkdir()
    (project / "drafts" / "c.toml").write_text('[refs.mia]\nimage = "../specs/refs/mia.png"\n' + shot("one"))
    alone = run_cli("check", "drafts/c.toml", cwd=project)  # not one of the project's specs: checked on its own
    assert alone.code == 0, alone.out


def test_the_pre_commit_hook_runs_check_on_the_changed_spec_files() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "renderspec-check" and hook["entry"] == "renderspec check"
    assert hook["language"] == "python" and hook["pass_filenames"] is True
    files = re.compile(hook["files"])
    assert files.search("specs/garden.toml") and files.search("specs/scenes/one.toml")
    for other in ("renderspec.toml", "pyproject.toml", "specs/fragments/style.j2", "specs/refs/mia.png"):
        assert not files.search(other), other


def test_expanding_ids_only_gives_the_ids_of_a_full_expansion() -> None:
    from renderspec.core.expansion import expand
    from renderspec.loading import FragmentFiles, read_sources, spec_paths

    sources, _ = read_sources(spec_paths([], REPO, ["specs", "tests/data/specs"], REPO), REPO)
    full, ids = expand(sources, FragmentFiles(REPO)), expand(sources, FragmentFiles(REPO), ids_only=True)
    assert len(full.drafts) >= 16
    assert [(d.spec, d.index, d.id, "id" in d.failed) for d in ids.drafts] == [
        (d.spec, d.index, d.id, "id" in d.failed) for d in full.drafts
    ]


def test_a_shared_file_is_no_storyboard_and_ids_made_with_its_variables_are_compared(project: Path) -> None:
    write(project, "cast.toml", REF + '[vars]\nside = "left"\n')
    write(project, "a.toml", 'uses = ["cast.toml"]\n' + shot("walk-{{ side }}"))
    write(project, "scenes/b.toml", 'uses = ["../cast.toml"]\n' + shot("turn-{{ side }}"))
    whole = run_cli("check", cwd=project)
    assert (whole.code, whole.out) == (0, "ok: 2 shots in 3 spec files (0 errors, 0 warnings)\n")
    write(project, "scenes/b.toml", 'uses = ["../cast.toml"]\n' + shot("walk-{{ side }}"))
    alone = run_cli("check", "specs/a.toml", cwd=project)  # b's id is rendered with cast.toml's variables
    assert alone.code == 1
    assert "'walk-left' is used by 2 shots (specs/a.toml:4, specs/scenes/b.toml:4)" in alone.out


def test_a_shared_file_that_is_not_utf8_or_missing_is_reported_at_the_uses_line(project: Path) -> None:
    write(project, "a.toml", 'uses = ["cast.toml", "look.toml"]\n' + shot("walk"))
    (project / "specs" / "cast.toml").write_bytes(REF.encode() + b'[vars]\nx = "caf\xe9"\n')
    run = run_cli("check", "specs/a.toml", cwd=project)
    assert run.code == 1
    assert run.out.splitlines()[:2] == [
        "specs/a.toml:1: uses: 'cast.toml' (specs/cast.toml) is not UTF-8 text (byte 0xe9 at line 4, column 9); "
        "save the file as UTF-8",
        "specs/a.toml:1: uses: 'look.toml' not found (looked for specs/look.toml; paths are relative to this file)",
    ]
