"""The emulator judges wire bodies itself, as the service would."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderspec.emulator.wire import WireError, parse_create


def body(**parameters: Any) -> dict[str, Any]:
    return {
        "model": "wan2.7-r2v",
        "input": {"prompt": "image 1 waves", "media": [{"type": "reference_image", "url": "https://x/a.png"}]},
        "parameters": parameters,
    }


def refusal(value: Any) -> str:
    with pytest.raises(WireError) as caught:
        parse_create(value)
    return caught.value.message


def test_service_defaults_apply_when_parameters_are_missing() -> None:
    parsed = parse_create(body())
    assert (parsed.resolution, parsed.ratio, parsed.duration) == ("1080P", "16:9", 5)


@given(st.integers(min_value=-3, max_value=20))
def test_duration_range_without_video(duration: int) -> None:
    if 2 <= duration <= 15:
        assert parse_create(body(duration=duration)).duration == duration
    else:
        assert "duration must be in [2, 15]" in refusal(body(duration=duration))


def test_duration_as_a_string_is_a_go_unmarshal_error() -> None:
    assert (
        refusal(body(duration="5"))
        == "json: cannot unmarshal string into Go struct field .parameters.duration of type int"
    )


def test_reference_video_caps_duration_at_10() -> None:
    request = body(duration=11)
    request["input"]["media"][0]["type"] = "reference_video"
    assert "[2, 10]" in refusal(request)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"model": "wan9"}, "Model not exist."),
        ({"model": None}, "Model can not be empty."),
        ({"input": {}}, "Field required: input"),
        ({"input": {"prompt": "x"}}, "Field required: input.media"),
        ({"input": {"prompt": "x" * 5001, "media": [{"type": "reference_image", "url": "u"}]}}, "[1, 5000]"),
        (
            {"input": {"prompt": "x", "media": [{"type": "reference_image", "url": "u"}] * 6}},
            "must be in [1, 5], got 6",
        ),
        ({"input": {"prompt": "x", "media": [{"type": "first_frame", "url": "u"}]}}, "must be in [1, 5], got 0"),
        (
            {
                "input": {
                    "prompt": "x",
                    "media": [
                        {"type": "first_frame", "url": "u", "reference_voice": "v"},
                        {"type": "reference_image", "url": "u"},
                    ],
                }
            },
            "reference_voice is only allowed",
        ),
        ({"input": {"prompt": "x", "media": [{"type": "picture", "url": "u"}]}}, "type should be one of"),
        ({"parameters": {"resolution": "720p"}}, "resolution '720p' is not supported"),
        ({"parameters": {"seed": -1}}, "seed must be in"),
        (
            {"parameters": {"watermark": "false"}},
            "cannot unmarshal string into Go struct field .parameters.watermark of type bool",
        ),
    ],
    ids=[
        "unknown model",
        "no model",
        "empty input",
        "no media",
        "prompt too long",
        "too many references",
        "only a first frame",
        "a voice on a first frame",
        "unknown media type",
        "lowercase resolution",
        "negative seed",
        "boolean as a string",
    ],
)
def test_bad_bodies_get_the_service_kind_of_message(change: dict[str, Any], words: str) -> None:
    assert words in refusal({**body(), **change})
