"""Cuts as plain data: parsing `[cuts.NAME]` with located problems, checking entries against the plan, keys."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest

from renderspec.core.cuts import (
    Cut,
    CutEntry,
    CutShot,
    cut_key,
    cut_problems,
    frame_spans,
    parse_cuts,
    shots_by_name,
)
from renderspec.core.locations import Locator
from renderspec.core.model import PlannedShot

from .support import plan_text, shot

SHOTS = shot('id = "s01-dawn"\nmedia = ["mia"]\nprompt = "{{ mia }} wakes"\nduration = 5') + (
    '[[shots]]\nid = "s02-walk"\nmedia = ["mia"]\nprompt = "{{ mia }} walks"\nduration = 4\n'
    '[[shots]]\nid = "s03-bottle"\nmedia = ["mia"]\nprompt = "{{ mia }} drinks"\nduration = 6\n'
)


def parsed(text: str, path: str = "specs/cuts.toml") -> tuple[list[Cut], list[str]]:
    cuts, problems = parse_cuts(tomllib.loads(text), path, Locator(text))
    return cuts, [problem.format() for problem in problems]


def planned() -> list[PlannedShot]:
    """The three shots, the last one as two takes with the second picked (as the planner makes them)."""
    result = plan_text(SHOTS)
    assert [p.format() for p in result.errors] == []
    *firsts, bottle = result.shots
    takes = [
        replace(bottle, id=f"s03-bottle.take{n}", key=str(n) * 64, take=n, take_of="s03-bottle", picked=n == 2)
        for n in (1, 2)
    ]
    return [*firsts, *takes]


def test_a_cut_reads_ids_and_trimmed_entries_with_an_optional_size() -> None:
    cuts, problems = parsed(
        '[cuts.master]\nshots = ["s01", { shot = "s03", in = 0.5, out = 4 }, { shot = "s02", out = 2 }]\nsize = "1280x720"\n'
    )
    assert problems == []
    (cut,) = cuts
    assert cut.name == "master" and cut.size == (1280, 720) and cut.where == "specs/cuts.toml:1"
    assert [(e.shot, e.start, e.end) for e in cut.entries] == [
        ("s01", None, None),
        ("s03", 0.5, 4.0),
        ("s02", None, 2.0),
    ]
    assert cut.entries[1].trims == {"in": 0.5, "out": 4.0}


def test_no_cuts_table_is_no_cut_and_no_problem() -> None:
    assert parsed('[[shots]]\nid = "a"\nprompt = "x"\n') == ([], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[cuts.master]\nshots = ["a"]\nsise = "640x360"\n',
            "specs/cuts.toml:3: cuts.master.sise: unknown field 'sise'; did you mean 'size'? allowed: shots, size",
        ),
        (
            '[cuts.master]\nshots = [{ shot = "a", start = 1 }]\n',
            "specs/cuts.toml:2: cuts.master.shots[0].start: unknown field 'start'; allowed: shot, in, out",
        ),
        ('[cuts.master]\nshots = ["a"]\nsize = "1281x720"\n', "specs/cuts.toml:3: cuts.master.size: '1281x720' is not"),
        ('[cuts.master]\nshots = ["a"]\nsize = 720\n', "specs/cuts.toml:3: cuts.master.size: number 720 is not"),
        (
            '[cuts.master]\nshots = [{ shot = "a", in = 3, out = 2 }]\n',
            "specs/cuts.toml:2: cuts.master.shots[0].out: out = 2 s is not after in = 3 s",
        ),
        (
            '[cuts.master]\nshots = [{ shot = "a", out = 0 }]\n',
            "specs/cuts.toml:2: cuts.master.shots[0].out: out = 0 s is not after the shot's start",
        ),
        (
            '[cuts.master]\nshots = [{ shot = "a", in = -1 }]\n',
            "specs/cuts.toml:2: cuts.master.shots[0].in: in = -1 s is negative",
        ),
        (
            '[cuts.master]\nshots = [{ shot = "a", in = "1s" }]\n',
            "specs/cuts.toml:2: cuts.master.shots[0].in: must be a number of seconds, got string '1s'",
        ),
        (
            "[cuts.master]\nshots = [{ in = 1 }]\n",
            "specs/cuts.toml:2: cuts.master.shots[0].shot: must be the id of a shot",
        ),
        ("[cuts.master]\nshots = [3]\n", "specs/cuts.toml:2: cuts.master.shots[0]: must be a shot id or"),
        ("[cuts.master]\nshots = []\n", "specs/cuts.toml:2: cuts.master.shots: is empty"),
        ('[cuts.master]\nsize = "640x360"\n', "specs/cuts.toml:1: cuts.master.shots: is required"),
        ('cuts = ["a"]\n', "specs/cuts.toml:1: cuts: must be a table of named cuts"),
        ('[cuts."a b"]\nshots = ["a"]\n', "specs/cuts.toml:1: cuts.a b: 'a b' cannot name a cut"),
    ],
)
def test_bad_cuts_are_located_problems_and_make_no_cut(text: str, expected: str) -> None:
    cuts, problems = parsed("\n" * 0 + text)
    assert cuts == []
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_every_problem_of_a_file_is_reported_and_good_cuts_survive() -> None:
    cuts, problems = parsed(
        '[cuts.good]\nshots = ["a"]\n\n[cuts.bad]\nshots = [{ shot = "a", in = -1, out = "x" }]\nsize = "big"\n'
    )
    assert [cut.name for cut in cuts] == ["good"]
    assert len(problems) == 3
    assert all(problem.startswith(("specs/cuts.toml:5:", "specs/cuts.toml:6:")) for problem in problems)


def test_entries_are_checked_against_the_planned_shots_with_suggestions() -> None:
    cuts, _ = parsed(
        "[cuts.master]\nshots = [\n"
        '  "s01-dwan",\n'
        '  { shot = "s02-walk", in = 4 },\n'
        '  { shot = "s01-dawn", out = 5.5 },\n'
        '  { shot = "s02-walk", in = 1, out = 4 },\n'
        "]\n"
    )
    problems = [p.format() for p in cut_problems(cuts, planned())]
    assert problems == [
        "specs/cuts.toml:3: cuts.master.shots[0]: no shot has the id 's01-dwan'; did you mean 's01-dawn'?",
        "specs/cuts.toml:4: cuts.master.shots[1].in: in = 4 s is at or past the end of shot s02-walk (4 s long)",
        "specs/cuts.toml:5: cuts.master.shots[2].out: out = 5.5 s is past the end of shot s01-dawn (5 s long); "
        "leave `out` out to play it to its end",
    ]


def test_a_cut_declared_in_two_files_is_an_error() -> None:
    first, _ = parsed('[cuts.master]\nshots = ["s01-dawn"]\n', "specs/a.toml")
    second, _ = parsed('\n[cuts.master]\nshots = ["s02-walk"]\n', "specs/b.toml")
    (problem,) = cut_problems(first + second, planned())
    assert problem.format().startswith("specs/b.toml:2: cuts.master: the cut 'master' is declared twice")


def test_a_shot_with_takes_is_named_by_its_id_and_means_its_pick() -> None:
    named = shots_by_name(planned())
    assert named["s03-bottle"].id == "s03-bottle.take2"
    assert named["s03-bottle.take1"].id == "s03-bottle.take1"


def _cut(*entries: CutEntry, size: tuple[int, int] | None = None) -> Cut:
    return Cut(name="master", entries=entries, size=size, spec="specs/cuts.toml", line=1)


def test_the_key_changes_with_what_the_cut_shows_and_nothing_else() -> None:
    shots = shots_by_name(planned())
    dawn, walk = shots["s01-dawn"], shots["s02-walk"]
    entries = (CutEntry("s01-dawn"), CutEntry("s02-walk", start=0.5))
    base = [CutShot(entries[0], dawn, "a" * 64), CutShot(entries[1], walk, None)]
    key = cut_key(_cut(*entries), base)
    assert key == cut_key(_cut(*entries), list(base))
    # spec locations and task ids are not in the key: moving the cut to another file changes nothing
    assert key == cut_key(replace(_cut(*entries), spec="specs/other.toml", line=40), base)
    variants = [
        cut_key(_cut(*entries, size=(640, 360)), base),
        cut_key(_cut(*entries), [base[0], replace(base[1], video_sha256="b" * 64)]),  # the slate got rendered
        cut_key(_cut(*entries), [replace(base[0], video_sha256="c" * 64), base[1]]),  # re-rendered
        cut_key(_cut(*entries), [replace(base[0], entry=CutEntry("s01-dawn", end=4.0)), base[1]]),
        cut_key(_cut(*entries), [base[0], replace(base[1], shot=replace(walk, duration=5))]),  # slate text
        cut_key(_cut(*entries), [base[0], replace(base[1], shot=replace(walk, request=_prompt(walk, "x")))]),
        cut_key(_cut(*entries), [replace(base[0], shot=replace(dawn, key="d" * 64)), base[1]]),
        cut_key(_cut(*entries), list(reversed(base))),
    ]
    assert len({key, *variants}) == len(variants) + 1


def _prompt(shot: PlannedShot, prompt: str) -> dict[str, object]:
    return {**shot.request, "input": {**shot.request["input"], "prompt": prompt}}


def test_frame_spans_round_the_running_total_so_the_cut_is_never_a_frame_off() -> None:
    lengths = [1 / 3] * 30  # 10 frames each at 30 fps would be exact; at 24 fps each is 8 frames
    spans = frame_spans(lengths, 24)
    assert sum(frames for _, frames in spans) == 240
    assert all(spans[i][0] + spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    odd = frame_spans([0.51, 0.51, 0.51], 30)
    assert [frames for _, frames in odd] == [15, 16, 15]  # 0.51 s is 15.3 frames: the total, 46 frames, is 1.53 s
    assert frame_spans([0.0], 30) == [(0, 1)]  # every entry keeps a frame


def test_entries_naming_shots_of_files_not_planned_are_taken_as_they_are() -> None:
    cuts, _ = parsed('[cuts.master]\nshots = ["s01-dawn", { shot = "elsewhere", in = 99 }, "nowhere"]\n')
    problems = [p.format() for p in cut_problems(cuts, planned(), elsewhere={"elsewhere"})]
    assert problems == [
        "specs/cuts.toml:2: cuts.master.shots[2]: no shot has the id 'nowhere'; `renderspec plan` lists the shot ids"
    ]
