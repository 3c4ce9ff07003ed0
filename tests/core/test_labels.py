"""The labels a preview burns in: planned beside the request, never part of it or of its key."""

from __future__ import annotations

from renderspec.core.model import ShotLabels

from .support import plan_text, shot


def test_a_shot_is_labelled_with_its_citations_names_and_matrix_values() -> None:
    result = plan_text(
        shot(
            'id = "turn-{{ side }}"\nmatrix = { side = ["left", "right"], n = [2], on = [true] }\n'
            'media = ["mia", "bottle", "dress"]\nfirst_frame = "refs/start.png"\n'
            'prompt = "{{ mia }} holds {{ bottle }} in {{ dress }}"'
        )
    )
    assert [shot.labels for shot in result.shots] == [
        ShotLabels(
            shot=f"turn-{side}",
            refs=(("image 1", "mia"), ("video 1", "bottle"), ("image 2", "dress"), ("first frame", "start.png")),
            matrix=(("side", side), ("n", "2"), ("on", "true")),
        )
        for side in ("left", "right")
    ]
    assert result.shots[0].request["input"]["prompt"] == "image 1 holds video 1 in image 2"


def test_a_take_is_labelled_as_its_shot_and_its_number() -> None:
    result = plan_text(shot('id = "walk"\nmedia = ["mia"]\nprompt = "{{ mia }} walks"\ntakes = 2'))
    assert [(shot.id, shot.labels) for shot in result.shots] == [
        ("walk.take1", ShotLabels(shot="walk", take=1, refs=(("image 1", "mia"),))),
        ("walk.take2", ShotLabels(shot="walk", take=2, refs=(("image 1", "mia"),))),
    ]


def test_labels_are_not_the_request_so_they_never_change_a_key() -> None:
    """The same request under another shot id and reference name: same key, other labels."""
    header = '[refs.{name}]\nimage = "refs/mia.png"\n'
    (mia,) = plan_text(
        shot('id = "walk"\nmedia = ["mia"]\nprompt = "{{ mia }} walks"', header.format(name="mia"))
    ).shots
    (ava,) = plan_text(
        shot('id = "stroll"\nmedia = ["ava"]\nprompt = "{{ ava }} walks"', header.format(name="ava"))
    ).shots
    assert mia.request == ava.request and mia.key == ava.key
    assert (mia.labels, ava.labels) == (
        ShotLabels(shot="walk", refs=(("image 1", "mia"),)),
        ShotLabels(shot="stroll", refs=(("image 1", "ava"),)),
    )
