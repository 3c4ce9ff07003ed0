"""`renderspec init`: a new storyboard that is valid from the start, and never written over an old one."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema

from renderspec.schema import settings_schema, spec_schema
from renderspec.settings import load_settings
from tests.conftest import REPO, run_cli

FILES = {
    "renderspec.toml",
    "specs/cast.toml",
    "specs/shots.toml",
    "specs/refs/ava.png",
    "specs/refs/ben.png",
    ".renderspec/renderspec-spec.schema.json",
    ".renderspec/renderspec-settings.schema.json",
    ".taplo.toml",
    ".gitignore",
    ".gitattributes",
}


def _tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_init_writes_a_project_and_says_what_to_run_next(tmp_path: Path) -> None:
    run = run_cli("init", "film", cwd=tmp_path)
    assert run.code == 0, run.err
    root = tmp_path / "film"
    assert set(_tree(root)) == FILES
    assert [line.removeprefix("  wrote ") for line in run.out.splitlines()[1:11]] == [
        "renderspec.toml",
        "specs/cast.toml",
        "specs/shots.toml",
        "specs/refs/ava.png",
        "specs/refs/ben.png",
        ".renderspec/renderspec-spec.schema.json",
        ".renderspec/renderspec-settings.schema.json",
        ".taplo.toml",
        ".gitignore",
        ".gitattributes",
    ]
    steps = run.out.split("next:\n", 1)[1].splitlines()
    assert [step.split("#")[0].strip() for step in steps[:3]] == [
        "cd film",
        "renderspec plan",
        "renderspec build --provider local",
    ]
    for name in ("renderspec.toml", "specs/cast.toml", "specs/shots.toml", ".taplo.toml"):
        tomllib.loads((root / name).read_text())
    assert tomllib.loads((root / "specs/shots.toml").read_text())["uses"] == ["cast.toml"]
    assert load_settings(root, {}).project.specs == ["specs"]  # the real validator accepts the settings
    jsonschema.Draft7Validator(settings_schema()).validate(tomllib.loads((root / "renderspec.toml").read_text()))
    assert json.loads((root / ".renderspec/renderspec-spec.schema.json").read_text()) == spec_schema()


def test_the_cast_passes_check_with_its_drawn_reference_images(tmp_path: Path) -> None:
    """`check` of the cast alone probes ava.png and ben.png against the model's real image rules."""
    assert run_cli("init", cwd=tmp_path).code == 0
    run = run_cli("check", "specs/cast.toml", cwd=tmp_path)
    assert run.code == 0, run.out
    assert "0 errors, 0 warnings" in run.out
    cast = tomllib.loads((tmp_path / "specs/cast.toml").read_text())
    assert cast["refs"] and cast["vars"] and "shots" not in cast
    jsonschema.Draft7Validator(spec_schema()).validate(cast)


def test_init_in_the_current_folder_needs_no_cd(tmp_path: Path) -> None:
    run = run_cli("init", cwd=tmp_path)
    assert run.code == 0, run.err
    assert run.out.startswith("started a storyboard in this folder:\n")
    assert "cd " not in run.out
    assert set(_tree(tmp_path)) == FILES


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "shots.toml").write_text("# mine\n")
    (tmp_path / "renderspec.toml").write_text("[renderspec]\n")
    before = _tree(tmp_path)
    run = run_cli("init", cwd=tmp_path)
    assert run.code == 2
    assert run.err == (
        "renderspec: error: this folder already has renderspec.toml, specs/shots.toml; nothing was written"
        " (start in an empty folder, or move those aside)\n"
    )
    assert run.out == ""
    assert _tree(tmp_path) == before
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["renderspec.toml", "shots.toml", "specs"]


def test_init_refuses_a_file_in_the_way_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "film").mkdir()
    (tmp_path / "film" / "specs").write_text("not a folder")
    run = run_cli("init", "film", cwd=tmp_path)
    assert run.code == 2 and "film already has specs/cast.toml, specs/shots.toml" in run.err
    assert [path.name for path in (tmp_path / "film").iterdir()] == ["specs"]
    (tmp_path / "notes.txt").write_text("x")
    run = run_cli("init", "notes.txt", cwd=tmp_path)
    assert run.code == 2 and "notes.txt is a file, not a folder" in run.err


def test_init_adds_its_lines_to_an_existing_gitignore_and_keeps_the_users_taplo_file(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.pyc\n/cache/")
    (tmp_path / ".gitattributes").write_text("renderspec.lock merge=renderspec\n")
    (tmp_path / ".taplo.toml").write_text("[formatting]\nalign_entries = true\n")
    run = run_cli("init", cwd=tmp_path)
    assert run.code == 0, run.err
    ignored = (tmp_path / ".gitignore").read_text().splitlines()
    assert ignored[:2] == ["*.pyc", "/cache/"] and ignored.count("/cache/") == 1 and "/renders/" in ignored
    assert (tmp_path / ".gitattributes").read_text() == "renderspec.lock merge=renderspec\n"
    assert (tmp_path / ".taplo.toml").read_text() == "[formatting]\nalign_entries = true\n"
    assert "  added to .gitignore" in run.out and "added to .gitattributes" not in run.out
    assert ".taplo.toml exists and was left as it is; for editor support add:" in run.out


def test_the_merge_driver_lines_match_the_readme(tmp_path: Path) -> None:
    assert run_cli("init", cwd=tmp_path).code == 0
    readme = (REPO / "README.md").read_text()
    attributes = (tmp_path / ".gitattributes").read_text()
    assert "echo 'renderspec.lock merge=renderspec' >> .gitattributes" in readme
    assert "renderspec.lock merge=renderspec" in attributes.splitlines()
    command = 'git config merge.renderspec.driver "renderspec lock merge %O %A %B"'
    assert command in readme and command in attributes


def test_the_scaffold_validates_against_its_own_schema(tmp_path: Path) -> None:
    assert run_cli("init", cwd=tmp_path).code == 0
    schema = json.loads((tmp_path / ".renderspec/renderspec-spec.schema.json").read_text())
    for name in ("specs/cast.toml", "specs/shots.toml"):
        jsonschema.Draft7Validator(schema).validate(tomllib.loads((tmp_path / name).read_text()))


def test_a_new_project_plans_and_renders_offline(tmp_path: Path) -> None:
    assert run_cli("init", "film", cwd=tmp_path).code == 0
    root = tmp_path / "film"
    check = run_cli("check", cwd=root)
    assert check.code == 0 and "0 errors, 0 warnings" in check.out, check.out
    plan = run_cli("plan", "--json", cwd=root)
    assert plan.code == 0, plan.err
    assert [shot["id"] for shot in json.loads(plan.out)["shots"]] == ["opening"]
    build = run_cli("build", "--provider", "local", cwd=root)
    assert build.code == 0, build.out + build.err
    assert (root / "renders" / "opening.mp4").stat().st_size > 0
    assert run_cli("plan", "--check", cwd=root).code == 0  # built: nothing left to render
