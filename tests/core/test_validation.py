"""Validation accepts exactly the documented ranges of wan2.7-r2v, boundaries included."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderspec.core.model import FileFacts
from renderspec.core.rules import FileKind

from .support import IMAGE, STANDARD_FACTS, VIDEO, errors, plan_text, shot

BASE = 'id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'


def accepted(body: str, facts: dict[str, FileFacts | None] | None = None) -> bool:
    return not errors(plan_text(shot(body), facts=facts))


@given(st.integers(min_value=-5, max_value=25))
def test_duration_without_video_is_2_to_15(duration: int) -> None:
    assert accepted(BASE + f"duration = {duration}") == (2 <= duration <= 15)


@given(st.integers(min_value=-5, max_value=25))
def test_duration_with_a_reference_video_is_2_to_10(duration: int) -> None:
    body = f'id = "a"\nmedia = ["bottle"]\nprompt = "{{{{ bottle }}}}"\nduration = {duration}'
    assert accepted(body) == (2 <= duration <= 10)


def test_duration_message_says_why_with_a_video() -> None:
    body = 'id = "a"\nmedia = ["bottle"]\nprompt = "{{ bottle }}"\nduration = 12'
    assert errors(plan_text(shot(body))) == [
        "specs/s0.toml:14: shot a: duration: 12 s is too long with a reference video; allowed 2–10 s when any reference is a video"
    ]


@given(st.integers(min_value=-3, max_value=3) | st.integers(min_value=2_147_483_640, max_value=2_147_483_655))
def test_seed_range(seed: int) -> None:
    assert accepted(BASE + f"seed = {seed}") == (0 <= seed <= 2_147_483_647)


@pytest.mark.parametrize(
    ("length", "ok"),
    [
        pytest.param(4999, True, id="under the limit"),
        pytest.param(5000, True, id="at the limit"),
        pytest.param(5001, False, id="over the limit"),
    ],
)
def test_prompt_length_limit(length: int, ok: bool) -> None:
    prompt = "{{ mia }}" + "x" * (length - len("image 1"))
    assert accepted(f'id = "a"\nmedia = ["mia"]\nprompt = "{prompt}"') == ok


@pytest.mark.parametrize(
    ("length", "ok"), [pytest.param(500, True, id="at the limit"), pytest.param(501, False, id="over the limit")]
)
def test_negative_prompt_length_limit(length: int, ok: bool) -> None:
    assert accepted(BASE + f'negative_prompt = "{"n" * length}"') == ok


def test_empty_prompt_is_an_error() -> None:
    assert "prompt: is empty" in errors(plan_text(shot('id = "a"\nmedia = ["mia"]\nprompt = "  "')))[0]


@given(st.integers(min_value=0, max_value=7))
def test_one_to_five_references(count: int) -> None:
    header = "".join(f'[refs.r{i}]\nimage = "refs/r{i}.png"\n' for i in range(7))
    facts = {f"specs/refs/r{i}.png": dataclasses.replace(IMAGE, sha256=str(i) * 64) for i in range(7)}
    names = [f"r{i}" for i in range(count)]
    prompt = " ".join("{{ %s }}" % name for name in names) or "nothing"
    body = f'id = "a"\nmedia = [{", ".join(repr(n).replace(chr(39), chr(34)) for n in names)}]\nprompt = "{prompt}"'
    assert (not errors(plan_text(shot(body, header), facts=facts))) == (1 <= count <= 5)


@pytest.mark.parametrize("resolution", ["720P", "1080P"])
def test_documented_resolutions(resolution: str) -> None:
    assert accepted(BASE + f'resolution = "{resolution}"')


@pytest.mark.parametrize(
    "resolution",
    [
        pytest.param("720p", id="lowercase 720p"),
        pytest.param("480P", id="480P"),
        pytest.param("4K", id="4K"),
        pytest.param("", id="empty"),
    ],
)
def test_other_resolutions_are_refused_listing_the_allowed(resolution: str) -> None:
    lines = errors(plan_text(shot(BASE + f'resolution = "{resolution}"')))
    assert len(lines) == 1 and "720P, 1080P" in lines[0]


@given(st.sampled_from(["16:9", "9:16", "1:1", "4:3", "3:4"]) | st.text(max_size=6))
def test_ratios(ratio: str) -> None:
    if '"' in ratio or "\\" in ratio or any(ord(c) < 32 or ord(c) == 127 for c in ratio) or "{" in ratio:
        return
    assert accepted(BASE + f'ratio = "{ratio}"') == (ratio in ("16:9", "9:16", "1:1", "4:3", "3:4"))


def test_ratio_is_left_out_with_a_first_frame_and_warned_when_set_on_the_shot() -> None:
    result = plan_text(shot(BASE + 'first_frame = "refs/start.png"\nratio = "1:1"'))
    assert errors(result) == []
    assert "ratio" not in result.shots[0].request["parameters"]
    assert result.shots[0].request["input"]["media"][-1]["type"] == "first_frame"
    assert [p.field for p in result.warnings] == ["ratio"]


def test_booleans_must_be_booleans() -> None:
    lines = errors(plan_text(shot(BASE + "watermark = 1")))
    assert lines == ["specs/s0.toml:14: shot a: watermark: must be true or false, got number 1"]


def _facts(path: str, **changes: object) -> dict[str, FileFacts | None]:
    facts = dict(STANDARD_FACTS)
    base = facts[path]
    assert base is not None
    facts[path] = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    return facts


@pytest.mark.parametrize(
    ("changes", "ok", "words"),
    [
        pytest.param({"width": 240, "height": 240}, True, "", id="smallest side"),
        pytest.param(
            {"width": 239, "height": 480}, False, "239x480 px; each side must be 240–8000 px", id="a side too small"
        ),
        pytest.param({"width": 8000, "height": 1000}, True, "", id="largest side"),
        pytest.param({"width": 8001, "height": 1001}, False, "each side must be 240–8000 px", id="a side too large"),
        pytest.param({"width": 2400, "height": 299}, False, "aspect 8.0:1", id="too wide"),
        pytest.param({"size": 20 * 1024 * 1024}, True, "", id="largest file"),
        pytest.param({"size": 20 * 1024 * 1024 + 1}, False, "allowed at most 20 MB", id="file too large"),
        pytest.param({"format": "gif"}, False, "is GIF; allowed image formats: JPEG, PNG, BMP, WEBP", id="GIF"),
        pytest.param(
            {"kind": FileKind.AUDIO, "format": "wav"}, False, "is an audio (WAV), not an image", id="audio, not image"
        ),
    ],
)
def test_reference_image_limits(changes: dict[str, object], ok: bool, words: str) -> None:
    result = plan_text(shot(BASE), facts=_facts("specs/refs/mia.png", **changes))
    lines = errors(result)
    assert (not lines) == ok
    if not ok:
        assert lines[0].startswith("specs/s0.toml:3: refs.mia.image: specs/refs/mia.png")
        assert words in lines[0]
        assert result.shots == []


@pytest.mark.parametrize(
    ("seconds", "ok"),
    [
        pytest.param(0.99, False, id="too short"),
        pytest.param(1.0, True, id="shortest"),
        pytest.param(10.0, True, id="longest"),
        pytest.param(10.01, False, id="too long"),
    ],
)
def test_voice_length_is_1_to_10_seconds(seconds: float, ok: bool) -> None:
    assert accepted(BASE, _facts("specs/refs/mia.wav", seconds=seconds)) == ok


def test_voice_must_be_wav_or_mp3() -> None:
    lines = errors(plan_text(shot(BASE), facts=_facts("specs/refs/mia.wav", format="ogg")))
    assert lines == ["specs/s0.toml:4: refs.mia.voice: specs/refs/mia.wav is OGG; allowed audio formats: WAV, MP3"]


@pytest.mark.parametrize(
    ("seconds", "ok"),
    [
        pytest.param(0.5, False, id="too short"),
        pytest.param(1.0, True, id="shortest"),
        pytest.param(30.0, True, id="longest"),
        pytest.param(30.5, False, id="too long"),
    ],
)
def test_reference_video_length_is_1_to_30_seconds(seconds: float, ok: bool) -> None:
    body = 'id = "a"\nmedia = ["bottle"]\nprompt = "{{ bottle }}"'
    assert accepted(body, _facts("specs/refs/bottle.mp4", seconds=seconds)) == ok


def test_missing_file_is_reported_once_where_the_reference_is_defined() -> None:
    facts = dict(STANDARD_FACTS)
    facts["specs/refs/mia.png"] = None
    text = shot(BASE) + shot('id = "b"\nmedia = ["mia"]\nprompt = "{{ mia }}"', header="")
    assert errors(plan_text(text, facts=facts)) == [
        "specs/s0.toml:3: refs.mia.image: file not found: specs/refs/mia.png (paths are relative to the spec file's folder)"
    ]


def test_first_frame_must_be_an_image() -> None:
    facts = dict(STANDARD_FACTS)
    facts["specs/refs/start.png"] = dataclasses.replace(VIDEO, sha256="f" * 64)
    lines = errors(plan_text(shot(BASE + 'first_frame = "refs/start.png"'), facts=facts))
    assert lines == ["specs/s0.toml:14: shot a: first_frame: specs/refs/start.png is a video (MP4), not an image"]


def test_unpinned_url_is_a_warning_and_pinned_url_is_quiet() -> None:
    header = (
        '[refs.web]\nimage = "https://example.com/a.png"\n[refs.pinned]\nimage = "https://example.com/b.png"\nsha256 = "'
        + "ab" * 32
        + '"\n'
    )
    result = plan_text(shot('id = "a"\nmedia = ["web", "pinned"]\nprompt = "{{ web }} {{ pinned }}"', header))
    assert errors(result) == []
    assert len(result.warnings) == 1 and "https://example.com/a.png is not pinned" in result.warnings[0].message


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("oss://bucket/x.png", id="oss"),
        pytest.param("data:image/png;base64,AAAA", id="data URI"),
        pytest.param("ftp://x/y.png", id="ftp"),
    ],
)
def test_unsupported_link_schemes_are_refused(link: str) -> None:
    header = f'[refs.web]\nimage = "{link}"\n'
    assert (
        "links are not supported"
        in errors(plan_text(shot('id = "a"\nmedia = ["web"]\nprompt = "{{ web }}"', header)))[0]
    )


def test_unknown_model_lists_known_models() -> None:
    lines = errors(plan_text(shot(BASE + 'model = "wan9-r2v"')))
    assert len(lines) == 1 and "'wan9-r2v' is not a model renderspec knows" in lines[0] and "wan2.7-r2v" in lines[0]


def test_rules_are_per_model_data_happyhorse_takes_images_only() -> None:
    body = 'id = "a"\nmedia = ["bottle"]\nprompt = "{{ bottle }}"\nmodel = "happyhorse-1.1-r2v"'
    lines = errors(plan_text(shot(body)))
    assert any("happyhorse-1.1-r2v accepts only images" in line for line in lines)


def test_the_valid_shot_carries_cost_from_output_and_reference_video_seconds() -> None:
    body = 'id = "a"\nmedia = ["bottle"]\nprompt = "{{ bottle }}"\nduration = 5\nresolution = "1080P"'
    result = plan_text(shot(body))
    assert result.shots[0].cost == pytest.approx((5 + VIDEO.seconds) * 1.0)  # type: ignore[operator]
    assert result.shots[0].input_video_seconds == VIDEO.seconds
