"""`--shot`: exact ids and globs select shots in plan order; a miss is one error with suggestions."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderspec.core.selection import select
from renderspec.errors import SettingsError

IDS = ["s01-dawn", "s02-walk", "s05-left", "s05-right", "turn-left", "turn-right"]


def test_globs_and_ids_select_in_plan_order() -> None:
    assert select(IDS, IDS, ["turn-right", "s05-*"]) == ["s05-left", "s05-right", "turn-right"]
    assert select(IDS, IDS, ["s0?-*"]) == IDS[:4]
    assert select(IDS, IDS, []) == IDS


def test_a_miss_names_the_pattern_and_suggests_close_ids() -> None:
    with pytest.raises(SettingsError) as caught:
        select(IDS, IDS, ["turn-lefft", "x9-*"])
    message = str(caught.value)
    assert "no shot with id turn-lefft (did you mean turn-left" in message
    assert "no shot id matches x9-*" in message


def test_an_id_with_brackets_is_reached_by_escaping_them_in_a_glob() -> None:
    assert select(["a[1]"], ["a[1]"], ["a[[]1]"]) == ["a[1]"]


@given(st.lists(st.from_regex(r"[a-z]{1,3}-[0-9]{1,2}", fullmatch=True), min_size=1, unique=True), st.data())
def test_selection_is_exactly_the_ids_a_pattern_matches(ids: list[str], data: st.DataObject) -> None:
    pattern = data.draw(st.sampled_from([ids[0], ids[0][:2] + "*", "*-" + ids[-1].split("-")[1]]))
    assert select(ids, ids, [pattern]) == [shot_id for shot_id in ids if fnmatch.fnmatchcase(shot_id, pattern)]
