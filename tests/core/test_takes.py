"""Takes and picks: `takes = 3` renders a shot three times with other seeds; `pick` marks the one to show."""

from __future__ import annotations

import pytest

from renderspec.core.expansion import MAX_TAKES, SEED_MODULUS, expand, take_seed
from renderspec.core.limits import Limits
from renderspec.core.model import ShotDraft, SourceFile

from .support import errors, messages, plan_text, shot

WALK = 'id = "walk"\nmedia = ["mia"]\nprompt = "{{ mia }} walks"'


def drafts(text: str, *, ids_only: bool = False) -> list[ShotDraft]:
    expansion = expand([SourceFile("specs/s0.toml", text)], {}.get, ids_only=ids_only)
    assert [problem.format() for problem in expansion.problems] == []
    return expansion.drafts


def test_takes_make_one_draft_per_take_with_ids_and_numbers() -> None:
    result = drafts(shot(WALK + "\ntakes = 3"))
    assert [(d.id, d.take, d.take_of, d.picked) for d in result] == [
        ("walk.take1", 1, "walk", True),
        ("walk.take2", 2, "walk", False),
        ("walk.take3", 3, "walk", False),
    ]


def test_one_take_is_the_shot_itself() -> None:
    for text in (shot(WALK), shot(WALK + "\ntakes = 1"), shot(WALK + "\ntakes = 1\npick = 1")):
        (draft,) = drafts(text)
        assert (draft.id, draft.take, draft.take_of, draft.picked) == ("walk", None, None, True)


def test_take_one_is_the_shot_as_written_so_adding_takes_renders_nothing_again() -> None:
    for seed in ("", "\nseed = 7"):
        alone = plan_text(shot(WALK + seed))
        taken = plan_text(shot(WALK + seed + "\ntakes = 4"))
        assert errors(taken) == []
        assert taken.shots[0].request == alone.shots[0].request
        assert taken.shots[0].key == alone.shots[0].key
        assert len({planned.key for planned in taken.shots}) == 4


def test_seeds_count_up_from_the_shots_seed_and_wrap() -> None:
    seeds = [d.parameters.get("seed") for d in drafts(shot(WALK + "\nseed = 7\ntakes = 3"))]
    assert seeds == [7, 8, 9]
    top = SEED_MODULUS - 1
    seeds = [d.parameters.get("seed") for d in drafts(shot(WALK + f"\nseed = {top}\ntakes = 3"))]
    assert seeds == [top, 0, 1]


def test_without_a_seed_later_takes_get_seeds_from_the_shot_id() -> None:
    result = drafts(shot(WALK + "\ntakes = 3"))
    assert "seed" not in result[0].parameters  # as written: the service chooses
    assert [d.parameters["seed"] for d in result[1:]] == [take_seed("walk", 2, None), take_seed("walk", 3, None)]
    assert take_seed("walk", 2, None) == 1_502_064_939  # sha256 of the id: the same on every machine
    other = drafts(shot(WALK.replace('"walk"', '"run"') + "\ntakes = 3"))
    assert other[1].parameters["seed"] != result[1].parameters["seed"]


def test_changing_the_pick_changes_no_request() -> None:
    first = plan_text(shot(WALK + "\ntakes = 3"))
    second = plan_text(shot(WALK + "\ntakes = 3\npick = 2"))
    assert errors(second) == []
    assert [s.key for s in first.shots] == [s.key for s in second.shots]
    assert [d.picked for d in second.expansion.drafts] == [False, True, False]


def test_takes_as_a_default_and_with_a_matrix() -> None:
    text = "[defaults]\ntakes = 2\n" + shot(
        'id = "turn-{{ side }}"\nmatrix = { side = ["left", "right"] }\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'
        "pick = \"{{ 2 if side == 'right' else 1 }}\""
    )
    text += '[[shots]]\nid = "still"\nmedia = ["mia"]\nprompt = "{{ mia }}"\ntakes = 1\n'
    result = drafts(text)
    assert [(d.id, d.take_of, d.picked) for d in result] == [
        ("turn-left.take1", "turn-left", True),
        ("turn-left.take2", "turn-left", False),
        ("turn-right.take1", "turn-right", False),
        ("turn-right.take2", "turn-right", True),
        ("still", None, True),
    ]
    assert [d.id for d in drafts(text, ids_only=True)] == [d.id for d in result]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        pytest.param(
            "takes = 0",
            f"specs/s0.toml:14: shot walk: takes: 0 is out of range; a shot may have 1–{MAX_TAKES} takes "
            "(each take is a paid render)",
            id="no takes",
        ),
        pytest.param(
            "takes = 11",
            f"specs/s0.toml:14: shot walk: takes: 11 is out of range; a shot may have 1–{MAX_TAKES} takes "
            "(each take is a paid render)",
            id="too many",
        ),
        pytest.param(
            'takes = "3"',
            "specs/s0.toml:14: shot walk: takes: must be an integer, got the string '3'; write it without quotes",
            id="quoted",
        ),
        pytest.param(
            "takes = true", "specs/s0.toml:14: shot walk: takes: must be an integer, got boolean true", id="boolean"
        ),
        pytest.param(
            "takes = 3\npick = 4",
            "specs/s0.toml:15: shot walk: pick: 4 is not one of the shot's takes; pick one of 1–3",
            id="pick past the takes",
        ),
        pytest.param(
            "pick = 2",
            "specs/s0.toml:14: shot walk: pick: 2 is not one of the shot's takes; pick one of 1–1 "
            "(set takes = N to make several)",
            id="pick without takes",
        ),
        pytest.param(
            'takes = "{{ 2 * 9 }}"',
            f"specs/s0.toml:14: shot walk: takes: 18 is out of range; a shot may have 1–{MAX_TAKES} takes "
            "(each take is a paid render)",
            id="templated",
        ),
    ],
)
def test_bad_takes_and_picks_are_errors_at_their_line(setting: str, expected: str) -> None:
    result = plan_text(shot(WALK + "\n" + setting))
    assert errors(result) == [expected]
    assert result.shots == []


def test_takes_in_defaults_are_reported_once_and_pick_is_no_default() -> None:
    text = "[defaults]\ntakes = 12\npick = 1\n" + shot(WALK) + shot(WALK.replace("walk", "run"), header="")
    assert errors(plan_text(text)) == [
        "specs/s0.toml:2: defaults.takes: 12 is out of range; a shot may have 1–10 takes (each take is a paid render)",
        "specs/s0.toml:3: defaults.pick: picks one shot's take: set it on the shot (takes may be a default)",
    ]


def test_takes_count_towards_the_projects_shots() -> None:
    text = shot(WALK + "\ntakes = 3") + shot(WALK.replace("walk", "run") + "\ntakes = 3", header="")
    result = plan_text(text, limits=Limits(max_shots=5))
    assert [d.id for d in result.expansion.drafts] == ["walk.take1", "walk.take2", "walk.take3"]
    assert messages(result)[0].startswith("specs/s0.toml:16: shot run: takes the project past 5 shots")
    assert result.expansion.stopped


def test_a_take_id_taken_by_another_shot_is_a_duplicate() -> None:
    text = shot(WALK + "\ntakes = 2") + shot(WALK.replace('"walk"', '"walk.take2"'), header="")
    assert any("'walk.take2' is used by 2 shots" in line for line in errors(plan_text(text)))
