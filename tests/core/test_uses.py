"""Shared definitions: `uses = ["cast.toml"]` imports another file's [refs], [vars] and [defaults]."""

from __future__ import annotations

import dataclasses

from renderspec.core.expansion import MAX_USES_DEPTH, SpecRefused, expand
from renderspec.core.model import LocalFile, SourceFile

from .support import HEADER, IMAGE, STANDARD_FACTS, errors, messages, plan_text

CAST = HEADER  # mia (image and voice), dress (image), bottle (video), paths relative to specs/
WALK = '[[shots]]\nid = "walk"\nmedia = ["mia", "dress"]\nprompt = "{{ mia }} in {{ dress }}"\n'


def uses(*names: str) -> str:
    return "uses = [" + ", ".join(f'"{name}"' for name in names) + "]\n"


def test_a_file_uses_the_references_variables_and_defaults_of_another() -> None:
    look = '[vars]\nlight = "dusk"\n[defaults]\nduration = 7\nresolution = "1080P"\n'
    text = uses("cast.toml", "look.toml") + WALK.replace('in {{ dress }}"', 'in {{ dress }} at {{ light }}"')
    result = plan_text(text, shared={"specs/cast.toml": CAST, "specs/look.toml": look})
    assert messages(result) == []
    (walk,) = result.shots
    assert walk.request["input"]["prompt"] == "image 1 in image 2 at dusk"
    assert walk.request["parameters"]["duration"] == 7 and walk.request["parameters"]["resolution"] == "1080P"
    media = walk.request["input"]["media"]
    assert [item["url"] for item in media] == [LocalFile("specs/refs/mia.png"), LocalFile("specs/refs/dress.png")]
    assert media[0]["reference_voice"] == LocalFile("specs/refs/mia.wav")


def test_the_importing_files_own_definitions_win() -> None:
    look = '[vars]\nlight = "dusk"\n[defaults]\nduration = 7\nseed = 3\n'
    own = '[vars]\nlight = "noon"\n[defaults]\nduration = 4\n[refs.dress]\nimage = "refs/mia.png"\n'
    text = uses("cast.toml", "look.toml") + own + WALK.replace('"{{ mia }} in', '"{{ light }}: {{ mia }} in')
    result = plan_text(text, shared={"specs/cast.toml": CAST, "specs/look.toml": look})
    assert messages(result) == []
    (walk,) = result.shots
    assert walk.request["input"]["prompt"] == "noon: image 1 in image 2"
    assert (walk.request["parameters"]["duration"], walk.request["parameters"]["seed"]) == (4, 3)
    assert walk.request["input"]["media"][1]["url"] == LocalFile("specs/refs/mia.png")


def test_paths_in_a_used_file_are_relative_to_that_file() -> None:
    cast = '[refs.mia]\nimage = "faces/mia.png"\n[defaults]\nfirst_frame = "frames/start.png"\n'
    text = uses("shared/cast.toml") + '[[shots]]\nid = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'
    facts = {
        "specs/shared/faces/mia.png": IMAGE,
        "specs/shared/frames/start.png": STANDARD_FACTS["specs/refs/start.png"],
    }
    result = plan_text(text, shared={"specs/shared/cast.toml": cast}, facts=facts)
    assert messages(result) == []
    urls = [item["url"] for item in result.shots[0].request["input"]["media"]]
    assert urls == [LocalFile("specs/shared/faces/mia.png"), LocalFile("specs/shared/frames/start.png")]


def test_moving_a_reference_into_a_shared_file_changes_no_key() -> None:
    alone = plan_text(HEADER + WALK)
    facts = dict(STANDARD_FACTS)
    for name in ("mia.png", "mia.wav", "dress.png", "bottle.mp4"):
        facts[f"specs/people/{name}"] = facts[f"specs/refs/{name}"]
    cast = HEADER.replace('"refs/', '"')  # the same bytes, at other paths, written in another file
    shared = plan_text(uses("people/cast.toml") + WALK, shared={"specs/people/cast.toml": cast}, facts=facts)
    assert messages(alone) == messages(shared) == []
    assert shared.shots[0].key == alone.shots[0].key
    assert shared.shots[0].request != alone.shots[0].request  # the paths differ; the key holds only bytes


def test_uses_may_be_transitive_and_a_name_reached_twice_is_one_definition() -> None:
    people = '[refs.mia]\nimage = "refs/mia.png"\n'
    cast = uses("people.toml") + '[refs.dress]\nimage = "refs/dress.png"\n'
    look = uses("people.toml") + '[vars]\nlight = "dusk"\n'
    text = uses("cast.toml", "look.toml") + WALK.replace('"walk"', '"walk-{{ light }}"')
    result = plan_text(text, shared={"specs/people.toml": people, "specs/cast.toml": cast, "specs/look.toml": look})
    assert messages(result) == []
    assert result.shots[0].id == "walk-dusk"


def test_two_used_files_defining_one_name_is_an_error_naming_both() -> None:
    cast = '\n[refs.mia]\nimage = "refs/mia.png"\n[vars]\nlight = "dusk"\n'
    crew = '[refs.mia]\nimage = "refs/dress.png"\n[defaults]\nseed = 1\n'
    look = '[vars]\n\nlight = "noon"\n[defaults]\nseed = 2\n'
    shared = {"specs/cast.toml": cast, "specs/crew.toml": crew, "specs/look.toml": look}
    text = "# the scene\n" + uses("cast.toml", "crew.toml", "look.toml") + HEADER.replace("[refs.mia]", "[refs.ava]")
    text += '[[shots]]\nid = "a"\nmedia = ["dress"]\nprompt = "{{ dress }} {{ light }}"\n'
    assert errors(plan_text(text, shared=shared)) == [
        "specs/s0.toml:2: uses: reference 'mia' is defined in both specs/cast.toml:2 and specs/crew.toml:1; "
        "keep one, or define it in this file to choose",
        "specs/s0.toml:2: uses: variable 'light' is defined in both specs/cast.toml:5 and specs/look.toml:3; "
        "keep one, or define it in this file to choose",
        "specs/s0.toml:2: uses: default 'seed' is defined in both specs/crew.toml:4 and specs/look.toml:5; "
        "keep one, or define it in this file to choose",
    ]
    chosen = text.replace(
        "[[shots]]", '[vars]\nlight = "x"\n[defaults]\nseed = 5\n[refs.mia]\nimage = "refs/mia.png"\n[[shots]]'
    )
    assert errors(plan_text(chosen, shared=shared)) == []  # this file's own definitions choose


def test_a_reference_and_a_variable_of_one_name_from_two_files_is_an_error() -> None:
    shared = {
        "specs/cast.toml": '[refs.light]\nimage = "refs/mia.png"\n',
        "specs/look.toml": '[vars]\nlight = "dusk"\n',
    }
    text = uses("cast.toml", "look.toml") + '[[shots]]\nid = "a"\nmedia = []\nprompt = "{{ light }}"\n'
    assert errors(plan_text(text, shared=shared))[0] == (
        "specs/s0.toml:1: uses: 'light' is both a reference (specs/cast.toml:1) and a variable (specs/look.toml:2); "
        "rename one"
    )
    own = uses("cast.toml") + '[vars]\nlight = "dusk"\n[[shots]]\nid = "a"\nmedia = []\nprompt = "{{ light }}"\n'
    assert errors(plan_text(own, shared=shared))[0] == (
        "specs/s0.toml:3: vars.light: 'light' is both a variable here and a reference (defined at specs/cast.toml:1); "
        "rename one"
    )
    mine = uses("look.toml") + '[refs.light]\nimage = "refs/mia.png"\n'
    assert errors(plan_text(mine, shared=shared)) == [
        "specs/s0.toml:2: refs.light: 'light' is both a reference and a variable (specs/look.toml:2); rename one"
    ]


def test_a_missing_file_an_escape_and_a_bad_entry_are_errors_at_the_uses_line() -> None:
    text = '# scene\nuses = [\n  "nope.toml",\n  "../../etc/passwd",\n  "/etc/passwd",\n  7,\n  "nope.toml",\n]\n'
    assert errors(plan_text(text)) == [
        "specs/s0.toml:2: uses: 'nope.toml' not found (looked for specs/nope.toml; paths are relative to this file)",
        "specs/s0.toml:2: uses: '../../etc/passwd' is outside the project; keep shared spec files in the project",
        "specs/s0.toml:2: uses: '/etc/passwd' is outside the project; keep shared spec files in the project",
        "specs/s0.toml:2: uses: uses[3] must be a spec file's path relative to this file, got number 7",
        "specs/s0.toml:2: uses: 'nope.toml' is listed twice in uses",
    ]
    assert errors(plan_text('uses = "cast.toml"\n')) == [
        'specs/s0.toml:1: uses: must be an array of spec files, e.g. uses = ["cast.toml", "look.toml"]'
    ]


def test_a_refused_file_says_why_at_the_uses_line() -> None:
    def refuse(path: str) -> str | None:
        raise SpecRefused("resolves outside the project (through a symlink); keep shared spec files in the project")

    expansion = expand([SourceFile("specs/a.toml", uses("cast.toml"))], {}.get, specs=refuse)
    assert [problem.format() for problem in expansion.problems] == [
        "specs/a.toml:1: uses: 'cast.toml' (specs/cast.toml) resolves outside the project (through a symlink); "
        "keep shared spec files in the project"
    ]


def test_a_cycle_of_uses_is_an_error_where_it_closes() -> None:
    shared = {"specs/b.toml": uses("c.toml") + "[vars]\nb = 1\n", "specs/c.toml": "\n" + uses("s0.toml", "b.toml")}
    text = uses("b.toml") + '[vars]\na = 1\n[[shots]]\nid = "x{{ a }}{{ b }}"\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'
    result = plan_text(text + HEADER, shared=shared)
    assert errors(result) == [
        "specs/c.toml:2: uses: 's0.toml' uses this file in turn (specs/s0.toml → specs/b.toml → specs/c.toml → "
        "specs/s0.toml); spec files may not use each other in a cycle: move what both need into a third file",
        "specs/c.toml:2: uses: 'b.toml' uses this file in turn (specs/b.toml → specs/c.toml → specs/b.toml); "
        "spec files may not use each other in a cycle: move what both need into a third file",
    ]
    assert [shot.id for shot in result.shots] == ["x11"]
    assert errors(plan_text(uses("s0.toml"))) == [
        "specs/s0.toml:1: uses: 's0.toml' is this file itself; a file's own definitions need no uses"
    ]


def test_uses_written_under_a_table_is_pointed_out() -> None:
    lines = messages(plan_text('[vars]\nlight = "dusk"\nuses = ["cast.toml"]\n[defaults]\nuses = ["look.toml"]\n'))
    assert lines == [
        "specs/s0.toml:3: vars.uses: warning: is a variable here; to use other spec files, write uses = [...] at "
        "the top of the file, before any [table]",
        "specs/s0.toml:5: defaults.uses: to use other spec files, write uses = [...] at the top of the file, "
        "before any [table]",
    ]


def test_a_bad_file_in_a_shared_file_is_reported_there_once() -> None:
    users = [uses("cast.toml") + WALK.replace('"walk"', f'"walk-{n}"') for n in range(5)]
    facts = dict(STANDARD_FACTS)
    facts["specs/refs/dress.png"] = dataclasses.replace(IMAGE, width=100)
    result = plan_text(*users, shared={"specs/cast.toml": CAST}, facts=facts)
    assert errors(result) == [
        "specs/cast.toml:6: refs.dress.image: specs/refs/dress.png is 100x640 px; each side must be 240–8000 px"
    ]
    assert result.shots == []


def test_a_file_of_definitions_only_is_not_a_storyboard_and_is_checked_once() -> None:
    facts = dict(STANDARD_FACTS)
    del facts["specs/refs/bottle.mp4"]
    result = plan_text(CAST, uses("s0.toml") + WALK, facts=facts)  # s0 is both scanned and used
    assert messages(result) == [
        "specs/s0.toml:8: refs.bottle.video: file not found: specs/refs/bottle.mp4 (paths are relative to the spec file's folder)"
    ]
    assert [shot.id for shot in result.shots] == ["walk"]
    assert [spec for spec, _ in result.expansion.references] == ["specs/s0.toml"] * 3


def test_each_file_is_read_and_parsed_once() -> None:
    reads: list[str] = []

    def read(path: str) -> str | None:
        reads.append(path)
        return {"specs/cast.toml": CAST, "specs/look.toml": uses("cast.toml") + '[vars]\nlight = "dusk"\n'}.get(path)

    sources = [
        SourceFile(f"specs/s{n}.toml", uses("look.toml", "cast.toml") + WALK.replace('"walk"', f'"w{n}"'))
        for n in range(4)
    ]
    sources.append(SourceFile("specs/look.toml", uses("cast.toml") + '[vars]\nlight = "dusk"\n'))
    expansion = expand(sources, {}.get, specs=read)
    assert expansion.problems == []
    assert reads == ["specs/cast.toml"]  # look.toml was handed in: scanned and used, it is read once
    assert len(expansion.references) == 3 and len(expansion.drafts) == 4


def test_an_unknown_media_name_lists_the_used_references_with_their_file() -> None:
    text = uses("cast.toml") + '[refs.ava]\nimage = "refs/mia.png"\n' + WALK.replace('"dress"]', '"dres"]')
    text = text.replace(" in {{ dress }}", "")
    assert errors(plan_text(text, shared={"specs/cast.toml": CAST})) == [
        "specs/s0.toml:6: shot walk: media: media[1] names 'dres', which is not a reference of this file or of the files it uses; "
        "known "
        "references: ava; from specs/cast.toml: bottle, dress, mia"
    ]


def test_a_default_from_a_used_file_is_reported_in_that_file_once() -> None:
    look = '# look\n[defaults]\nresolution = "480P"\nduration = "{{ nope }}"\n'
    users = [uses("look.toml") + HEADER + WALK.replace('"walk"', f'"w{n}"') for n in range(3)]
    assert errors(plan_text(*users, shared={"specs/look.toml": look})) == [
        "specs/look.toml:3: defaults.resolution: '480P' is not allowed; wan2.7-r2v takes 720P, 1080P (uppercase P)",
        *(  # a template is rendered in each shot's context, so its failure is each shot's
            f"specs/look.toml:4: shot w{n}: defaults.duration: undefined name in template: 'nope' is undefined; "
            "defined here: none"
            for n in range(3)
        ),
    ]


def test_variables_of_a_used_file_reach_a_fragment_included_by_the_using_shot() -> None:
    look = '[vars]\nlight = "golden"\n'
    text = (
        uses("look.toml")
        + HEADER
        + WALK.replace('in {{ dress }}"', "in {{ dress }}. {% include 'fragments/style.j2' %}\"")
    )
    result = plan_text(
        text, shared={"specs/look.toml": look}, fragments={"specs/fragments/style.j2": "{{ light }} light"}
    )
    assert messages(result) == []
    assert result.shots[0].request["input"]["prompt"] == "image 1 in image 2. golden light"


def test_a_broken_used_file_is_reported_there_and_the_user_goes_on() -> None:
    text = uses("cast.toml") + HEADER + WALK
    assert errors(plan_text(text, shared={"specs/cast.toml": '[refs.x\nimage = "a.png"\n'})) == [
        "specs/cast.toml:1: invalid TOML (column 8): Expected ']' at the end of a table declaration"
    ]


def test_a_chain_of_uses_deeper_than_the_limit_is_an_error_where_it_stops() -> None:
    shared = {f"specs/u{n}.toml": uses(f"u{n + 1}.toml") + f"[vars]\nv{n} = {n}\n" for n in range(MAX_USES_DEPTH + 2)}
    shared[f"specs/u{MAX_USES_DEPTH + 2}.toml"] = "[vars]\nlast = 1\n"
    lines = errors(plan_text(uses("u0.toml"), shared=shared))
    assert len(lines) == 1
    assert lines[0].startswith(
        f"specs/u{MAX_USES_DEPTH - 2}.toml:1: uses: 'u{MAX_USES_DEPTH - 1}.toml' would make a chain of "
        f"{MAX_USES_DEPTH + 1} files through uses (specs/s0.toml → specs/u0.toml → specs/u1.toml"
    )
    assert lines[0].endswith(f"at most {MAX_USES_DEPTH} may be chained")
