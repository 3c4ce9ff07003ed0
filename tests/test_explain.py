"""`renderspec explain` and `plan --why`, from the outside: a project built through the local emulator, then edited.

The project has one fragment included by three shots and a fourth shot without it, so a test can
see that an edited fragment is named for exactly the shots it changed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fast, run_cli, write_png, write_wav

SPEC = """\
[vars]
light = "soft window light"

[refs.mia]
image = "refs/mia.png"
voice = "refs/mia.wav"

[refs.dress]
image = "refs/dress.png"

[[shots]]
id = "walk-{{ side }}"
matrix = { side = ["left", "right"] }
media = ["mia"]
prompt = "{{ mia }} walks to the {{ side }}. {% include 'fragments/look.j2' %}"

[[shots]]
id = "gown"
media = ["mia", "dress"]
prompt = \"\"\"
{{ mia }} wears the gown from {{ dress }}.
{% include "fragments/look.j2" %}\"\"\"
duration = 5

[[shots]]
id = "still"
media = ["dress"]
prompt = "A still life of {{ dress }} on a chair."
"""
FRAGMENT = "Warm film grain, {{ light }}, shallow focus.\n"
LOOK = "specs/fragments/look.j2"
FRAGMENT_SHOTS = ("walk-left", "walk-right", "gown")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project rendered once through the local provider (free, offline); tests edit copies of it."""
    root = tmp_path_factory.mktemp("built") / "project"
    (root / "specs" / "fragments").mkdir(parents=True)
    (root / "specs" / "looks.toml").write_text(SPEC)
    (root / LOOK).write_text(FRAGMENT)
    write_png(root / "specs" / "refs" / "mia.png")
    write_png(root / "specs" / "refs" / "dress.png", colour=(10, 20, 200))
    write_wav(root / "specs" / "refs" / "mia.wav")
    fast(root)
    run = run_cli("build", "--provider", "local", cwd=root)
    assert run.code == 0, run.out + run.err
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "project", symlinks=True))


def edit(project: Path, path: str, old: str, new: str) -> None:
    file = project / path
    text = file.read_text()
    assert old in text, (old, text)
    file.write_text(text.replace(old, new))


def line_of(project: Path, path: str, needle: str) -> int:
    lines = (project / path).read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


def explain(project: Path, *argv: str) -> Any:
    run = run_cli("explain", "--provider", "local", *argv, cwd=project)
    assert run.code == 0, run.out + run.err
    return run


def explain_json(project: Path, *argv: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(explain(project, "--json", *argv).out)
    return document


def blocks(text: str) -> dict[str, str]:
    """Each shot's block of `explain`'s text, by shot id (blocks are parted by blank lines)."""
    found = {}
    for block in text.split("\n\n"):
        heading = block.splitlines()[0]
        if ":" in heading and not heading.startswith("changes came from"):
            found[heading.split(":", 1)[0]] = block
    return found


def test_an_edited_fragment_shows_its_lines_and_is_named_for_each_shot_it_changed(project: Path) -> None:
    edit(project, LOOK, "Warm film grain", "Cold digital sheen")

    run = explain(project)

    shown = blocks(run.out)
    assert set(shown) == set(FRAGMENT_SHOTS)  # no SHOT: every shot that would render, and only those
    for shot in FRAGMENT_SHOTS:
        assert "    -Warm film grain, soft window light, shallow focus." in shown[shot]
        assert "    +Cold digital sheen, soft window light, shallow focus." in shown[shot]
        assert f"    {LOOK}:1, changed since the render" in shown[shot]
        assert "specs/looks.toml" not in shown[shot].split("came from:")[1]  # the spec file did not change
    assert f"  {LOOK}: walk-left, walk-right, gown" in run.out.split("changes came from:")[1].splitlines()

    document = explain_json(project)
    assert [shot["shot"] for shot in document["shots"]] == list(FRAGMENT_SHOTS)
    assert document["sources"] == {LOOK: list(FRAGMENT_SHOTS)}
    gown = document["shots"][2]
    assert gown["state"] == "stale"
    assert gown["previous_from"] == "local cache"
    assert gown["old_key"] != gown["new_key"]
    assert "-Warm film grain, soft window light, shallow focus." in gown["prompt_diff"]
    assert "+Cold digital sheen, soft window light, shallow focus." in gown["prompt_diff"]
    assert gown["prompt_diff"][:2] == ["--- prompt, previous render", "+++ prompt, now"]
    [look] = [source for source in gown["sources"] if source["path"] == LOOK]
    assert look["status"] == "changed"
    assert look["lines"] == [
        {"line": 1, "field": None, "text": "+Cold digital sheen, soft window light, shallow focus."}
    ]


def test_a_changed_shot_prompt_is_traced_to_its_line_in_the_spec(project: Path) -> None:
    edit(project, "specs/looks.toml", "wears the gown from", "twirls in the gown from")

    run = explain(project)

    assert set(blocks(run.out)) == {"gown"}
    assert "    -image 1 wears the gown from image 2." in run.out
    assert "    +image 1 twirls in the gown from image 2." in run.out
    line = line_of(project, "specs/looks.toml", "twirls in the gown")
    assert f"    specs/looks.toml:{line} (prompt), changed since the render" in run.out
    assert LOOK not in run.out  # the fragment's sentence did not change


def test_a_changed_variable_is_traced_to_where_it_is_set(project: Path) -> None:
    edit(project, "specs/looks.toml", 'light = "soft window light"', 'light = "hard noon light"')

    document = explain_json(project, "gown")

    [gown] = document["shots"]
    assert "+Warm film grain, hard noon light, shallow focus." in gown["prompt_diff"]
    origins = {(source["path"], line["line"], line["field"]) for source in gown["sources"] for line in source["lines"]}
    assert ("specs/looks.toml", line_of(project, "specs/looks.toml", "light ="), "light") in origins
    assert (LOOK, 1, None) in origins  # the literal text of the line is the fragment's


def test_a_parameter_edit_shows_old_and_new_values_and_where_it_is_set(project: Path) -> None:
    edit(project, "specs/looks.toml", "duration = 5", "duration = 8")

    run = explain(project, "gown")

    line = line_of(project, "specs/looks.toml", "duration = 8")
    assert f"    duration 5 → 8  (specs/looks.toml:{line})" in run.out
    assert "prompt:" not in run.out
    [gown] = explain_json(project, "gown")["shots"]
    assert gown["parameters"] == [{"name": "duration", "old": 5, "new": 8, "where": f"specs/looks.toml:{line}"}]


def test_a_reference_image_with_new_bytes_is_named_with_both_digests(project: Path) -> None:
    dress = project / "specs" / "refs" / "dress.png"
    old = hashlib.sha256(dress.read_bytes()).hexdigest()
    write_png(dress, colour=(200, 20, 10))
    new = hashlib.sha256(dress.read_bytes()).hexdigest()

    run = explain(project)

    shown = blocks(run.out)
    assert set(shown) == {"gown", "still"}
    assert f"    specs/refs/dress.png (image 2): {old[:12]} → {new[:12]}" in shown["gown"]
    assert f"    specs/refs/dress.png (image 1): {old[:12]} → {new[:12]}" in shown["still"]
    assert "    specs/refs/dress.png, its bytes changed since the render" in shown["gown"]
    assert "  specs/refs/dress.png: gown, still" in run.out
    [still] = explain_json(project, "still")["shots"]
    assert still["files"] == [
        {
            "role": "image 1",
            "path": "specs/refs/dress.png",
            "status": "changed",
            "old_sha256": old,
            "new_sha256": new,
            "where": f"specs/looks.toml:{line_of(project, 'specs/looks.toml', 'refs/dress.png')}",
        }
    ]


def test_a_new_voice_clip_is_named_as_the_voice_of_its_reference(project: Path) -> None:
    write_wav(project / "specs" / "refs" / "mia.wav", seconds=3.0)

    run = explain(project, "walk-left")

    assert "    specs/refs/mia.wav (voice of image 1): " in run.out


def test_a_glob_selects_and_unchanged_shots_say_so(project: Path) -> None:
    edit(project, "specs/looks.toml", "on a chair", "on a stool")

    run = explain(project, "walk-*")

    shown = blocks(run.out)
    assert set(shown) == {"walk-left", "walk-right"}
    assert "  unchanged: cached (key " in shown["walk-left"]
    assert "still" not in run.out


def test_an_unknown_shot_id_is_a_usage_error_with_a_suggestion(project: Path) -> None:
    run = run_cli("explain", "--provider", "local", "walk-lefft", cwd=project)

    assert run.code == 2
    assert "no shot with id walk-lefft (did you mean walk-left" in run.err
    assert run.out == ""


def test_a_new_shot_has_nothing_to_compare(project: Path) -> None:
    with (project / "specs" / "looks.toml").open("a") as spec:
        spec.write('\n[[shots]]\nid = "fresh"\nmedia = ["dress"]\nprompt = "{{ dress }} alone."\n')

    run = explain(project)

    table = line_of(project, "specs/looks.toml", '"fresh"') - 1
    assert blocks(run.out) == {"fresh": f"fresh: new (specs/looks.toml:{table})\n  new shot: nothing to compare\n"}


def test_nothing_to_render_says_so(project: Path) -> None:
    run = explain(project)
    assert run.out == "nothing would render: all 4 shots are cached or on the remote\n"


def test_plan_why_appends_the_explanation_of_each_shot_that_would_render(project: Path) -> None:
    edit(project, "specs/looks.toml", "on a chair", "on a stool")

    run = run_cli("plan", "--why", "--provider", "local", cwd=project)

    assert run.code == 0, run.err
    table, _, why = run.out.partition("\n\n")
    assert table.splitlines()[0].startswith("cached ")
    assert any(line.startswith("stale    still") and "prompt changed" in line for line in table.splitlines())
    assert set(blocks(why)) == {"still"}
    assert "    -A still life of image 1 on a chair." in why
    assert "    +A still life of image 1 on a stool." in why
    line = line_of(project, "specs/looks.toml", "on a stool")
    assert f"specs/looks.toml:{line} (prompt), changed since the render" in why

    document = json.loads(run_cli("plan", "--why", "--json", "--provider", "local", cwd=project).out)
    why_of = {shot["id"]: shot.get("why") for shot in document["shots"]}
    assert why_of["walk-left"] is None
    assert why_of["still"]["prompt_diff"][-2:] == [
        "-A still life of image 1 on a chair.",
        "+A still life of image 1 on a stool.",
    ]

    both = run_cli("plan", "--why", "--markdown", "--provider", "local", cwd=project)
    assert both.code == 2 and "--why" in both.err


def test_without_the_previous_render_in_any_cache_it_says_so_plainly(project: Path) -> None:
    old_key = explain_json(project, "gown")["shots"][0]["new_key"]
    edit(project, "specs/looks.toml", "duration = 5", "duration = 8")
    edit(project, LOOK, "Warm film grain", "Cold digital sheen")
    shutil.rmtree(project / "cache")

    run = explain(project, "gown")

    assert f"the previous render (key {old_key[:12]}…) is in no cache, so its prompt cannot be shown" in run.out
    assert "Warm film grain" not in run.out  # nothing invented
    assert "    duration 5 → 8  (the old value from the lock)" in run.out


def test_renders_recorded_before_sources_existed_are_traced_by_their_text(project: Path) -> None:
    for meta in (project / "cache" / "objects").glob("*/*/meta.json"):
        record = json.loads(meta.read_text())
        assert set(record["sources"]) >= {"specs/looks.toml"}
        del record["sources"]
        meta.chmod(0o644)
        meta.write_text(json.dumps(record))
    edit(project, LOOK, "Warm film grain", "Cold digital sheen")

    run = explain(project, "gown")

    assert f"    {LOOK}:1\n" in run.out  # where the line came from, without a claim about what changed
    assert "since the render" not in run.out.split("came from:")[1]
    assert run_cli("verify", cwd=project).code == 0


def test_the_previous_render_is_read_from_the_remote_when_this_cache_lacks_it(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    pushed = run_cli("push", "--provider", "local", "--remote", str(remote), cwd=project)
    assert pushed.code == 0, pushed.out + pushed.err
    shutil.rmtree(project / "cache")
    edit(project, LOOK, "Warm film grain", "Cold digital sheen")

    document = explain_json(project, "gown", "--remote", str(remote))

    [gown] = document["shots"]
    assert gown["previous_from"] == "remote cache"
    assert "-Warm film grain, soft window light, shallow focus." in gown["prompt_diff"]
    assert {"path": LOOK, "status": "changed"}.items() <= next(
        source for source in gown["sources"] if source["path"] == LOOK
    ).items()
