"""Previews an editor can use: what is written where, wrapped between words, and a picture that moves."""

from __future__ import annotations

import itertools
import string
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from renderspec.emulator import preview
from renderspec.emulator.preview import (
    BAND,
    ELLIPSIS,
    FPS,
    MATTE,
    Caption,
    Layout,
    PreviewRequest,
    layout,
    render_preview,
    timecode,
    with_names,
    wrap,
)
from renderspec.media import probe
from tests.conftest import REPO

REFS = REPO / "specs" / "refs"
TURN = Caption(
    shot="turn-left",
    refs=(("image 1", "mia"), ("image 2", "dress"), ("first frame", "start.png")),
    matrix=(("side", "left"),),
)
SIZES = [(1280, 720), (720, 1280), (960, 960)]
LONG_PROMPT = (
    "image 1 in the gown from image 2 turns to the left and smiles. Soft golden sunset light, shallow depth of "
    "field, 35 mm film look, gentle camera movement; the garden glows behind her while a breeze lifts the hem of "
    "the gown and petals drift through the frame, slow and dreamlike, cinematic colour grading. " * 3
)


def request(width: int = 1280, height: int = 720, **fields: object) -> PreviewRequest:
    values: dict[str, object] = {"seconds": 2, "prompt": "image 1 in the gown from image 2 turns to the left."}
    values.update(fields)
    return PreviewRequest(width=width, height=height, **values)  # type: ignore[arg-type]


def strings(plan: Layout) -> list[str]:
    return [text.text for text in plan.texts]


# -- the text ---------------------------------------------------------------------------------


def test_timecode_counts_frames_at_the_previews_rate() -> None:
    assert timecode(0) == "00:00:00:00"
    assert timecode(29) == "00:00:00:29"
    assert timecode(30) == "00:00:01:00"
    assert timecode(FPS * 3661 + 5) == "01:01:01:05"
    assert timecode(47, fps=24) == "00:00:01:23"


def test_the_header_names_the_shot_its_take_and_its_matrix_values_and_the_prompt_names_its_references() -> None:
    plan = layout(request(caption=TURN), ["first frame", "image 1", "image 2"])
    assert strings(plan) == [
        "turn-left · take 1",
        "side = left",
        "image 1 · mia in the gown from image 2 · dress turns to the left.",
    ]
    assert [text.text for text in plan.on_screen] == [
        "first frame · start.png  1/3",
        "image 1 · mia  2/3",
        "image 2 · dress  3/3",
    ]
    take = layout(request(caption=Caption(shot="bottle-hero", take=2)), ["video 1"])
    assert strings(take)[0] == "bottle-hero · take 2"


def test_matrix_variants_say_what_varies() -> None:
    left = layout(request(caption=TURN), ["image 1"])
    right = layout(request(caption=Caption(shot="turn-right", matrix=(("side", "right"),))), ["image 1"])
    two = layout(request(caption=Caption(shot="p", matrix=(("ratio", "9:16"), ("light", "dusk")))), ["image 1"])
    assert strings(left)[1] == "side = left"
    assert strings(right)[1] == "side = right"
    assert strings(two)[1] == "ratio = 9:16   light = dusk"


def test_without_the_header_the_text_is_the_request_as_sent() -> None:
    plan = layout(request(), ["image 1", "image 2"])
    assert strings(plan) == ["renderspec emulator preview", "image 1 in the gown from image 2 turns to the left."]
    assert [text.text for text in plan.on_screen] == ["image 1  1/2", "image 2  2/2"]


def test_citations_get_their_names_however_they_are_written() -> None:
    caption = Caption(shot="s", refs=(("image 1", "mia"), ("video 1", "bottle")))
    assert with_names("Image 1 holds video 1; 图1 and 视频 1.", caption) == (
        "Image 1 · mia holds video 1 · bottle; 图1 · mia and 视频 1 · bottle."
    )
    # an unnamed citation, or one that only starts like a named one, is left as written
    assert with_names("image 10 and image 2, imagery 1", caption) == "image 10 and image 2, imagery 1"


# -- wrapping -----------------------------------------------------------------------------------

WORD = st.text(alphabet=string.ascii_letters + string.digits + ".,;'-", min_size=1, max_size=14)
SPACE = st.sampled_from([" ", "  ", "\n", " \t "])


@st.composite
def prompts(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORD, max_size=60))
    return "".join(word + draw(SPACE) for word in words)


def check_wrapped(text: str, lines: list[str], width: float, max_lines: int, measure: preview.Measure) -> None:
    """Lines fit; words are whole, in order, and only a word wider than a line is ever cut; an
    ellipsis ends the last line exactly when words are missing."""
    assert len(lines) <= max_lines
    assert all(measure(line) <= width for line in lines), lines
    words = text.split()
    truncated = bool(lines) and lines[-1].endswith(ELLIPSIS)
    tokens = [token for line in lines for token in line.split()]
    if truncated:
        tokens[-1] = tokens[-1].removesuffix(ELLIPSIS)
        if not tokens[-1]:
            tokens.pop()
    position, complete = 0, True
    for word in words:
        if position == len(tokens):
            complete = False
            break
        if measure(word) <= width:  # fits on a line: never cut, even by the ellipsis
            assert tokens[position] == word, (word, lines)
            position += 1
            continue
        rebuilt = ""  # wider than any line: its pieces come one after another
        while position < len(tokens) and len(rebuilt) < len(word):
            rebuilt += tokens[position]
            position += 1
        assert word.startswith(rebuilt), (word, lines)
        if rebuilt != word:
            assert position == len(tokens), (word, lines)
            complete = False
    assert position == len(tokens), "every token comes from the text, in order"
    assert truncated == (not complete), (truncated, lines)


@settings(max_examples=400)
@given(text=prompts(), width=st.integers(1, 60), max_lines=st.integers(1, 6))
def test_wrapping_never_cuts_a_word_and_says_where_it_stopped(text: str, width: int, max_lines: int) -> None:
    check_wrapped(text, wrap(text, width, max_lines, len), width, max_lines, len)


@settings(max_examples=60, deadline=None)
@given(text=prompts(), width=st.integers(60, 700), max_lines=st.integers(1, 8))
def test_wrapping_in_the_previews_font(text: str, width: int, max_lines: int) -> None:
    measure = preview._font(20).getlength
    check_wrapped(text, wrap(text, width, max_lines, measure), width, max_lines, measure)


def test_a_long_9x16_prompt_ends_with_an_ellipsis_after_a_whole_word() -> None:
    plan = layout(request(720, 1280, prompt=LONG_PROMPT, caption=TURN), ["image 1"])
    prompt = [text for text in plan.texts if text.box.y >= plan.footer.y]
    assert len(prompt) == 7
    assert prompt[-1].text.endswith(ELLIPSIS)
    words = with_names(LONG_PROMPT, TURN).split()
    shown = " ".join(text.text for text in prompt).removesuffix(ELLIPSIS).split()
    assert shown == words[: len(shown)]
    assert all(text.box.right <= plan.width - plan.font_size for text in prompt)


# -- the layout ---------------------------------------------------------------------------------


def is_even(box: preview.Box) -> bool:
    return all(value % 2 == 0 for value in (box.x, box.y, box.width, box.height))


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_text_sits_in_bands_that_never_overlap_the_picture(width: int, height: int) -> None:
    caption = Caption(
        shot="a-shot-with-a-very-long-identifier-" * 4,
        take=3,
        refs=(("image 1", "mia"), ("first frame", "a-first-frame-with-a-long-name.png")),
        matrix=tuple((f"variable{n}", "a long value " * 3) for n in range(4)),
    )
    plan = layout(request(width, height, prompt=LONG_PROMPT, caption=caption), ["first frame", "image 1"])
    header, picture, footer = plan.header, plan.picture, plan.footer
    assert (header.y, header.bottom, picture.bottom, footer.bottom) == (0, picture.y, footer.y, height)
    assert header.width == picture.width == footer.width == width
    assert not header.overlaps(picture) and not footer.overlaps(picture) and not header.overlaps(footer)
    assert picture.height >= height * 0.6  # the picture keeps most of the frame
    assert all(map(is_even, (header, picture, footer, plan.timecode)))
    assert header.contains(plan.timecode)
    texts = [*plan.texts, *plan.on_screen]
    for text in texts:
        assert header.contains(text.box) or footer.contains(text.box), text
        assert not text.box.overlaps(picture)
        assert text.box.x >= plan.font_size and text.box.right <= width - plan.font_size, text  # margins
        assert not text.box.overlaps(plan.timecode), text
    for number, first in enumerate(texts):  # the header's texts sit side by side, never on each other
        for second in texts[number + 1 :]:
            if not (first in plan.on_screen and second in plan.on_screen):  # one picture's caption at a time
                assert not first.box.overlaps(second.box), (first, second)
    for size in [(1280, 720), (720, 1280), (960, 960), (480, 640), (4000, 500)]:
        fitted = plan.fitted(size)
        assert picture.contains(fitted) and is_even(fitted)
        assert fitted.width == picture.width or fitted.height == picture.height or size == (4000, 500)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_nothing_is_drawn_on_the_picture_area(width: int, height: int) -> None:
    """The still layer as drawn: the text really stays in its bands, and the picture area is bare."""
    plan = layout(request(width, height, prompt=LONG_PROMPT, caption=TURN), ["first frame", "image 1"])
    drawn = np.asarray(preview._bands(plan, 0, preview._font(plan.font_size)))
    area = plan.picture
    assert (drawn[area.y : area.bottom, area.x : area.right] == MATTE).all()
    for band in (plan.header, plan.footer):
        pixels = drawn[band.y : band.bottom, band.x : band.right]
        assert (pixels != BAND).any(axis=-1).mean() > 0.01  # it has text


# -- the video ----------------------------------------------------------------------------------


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def region(pixels: np.ndarray, box: preview.Box) -> np.ndarray:
    return pixels[box.y : box.bottom, box.x : box.right].astype(np.int16)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def turning(tmp_path_factory: pytest.TempPathFactory) -> tuple[PreviewRequest, Path, list[np.ndarray]]:
    wanted = PreviewRequest(
        width=1280,
        height=720,
        seconds=2,
        prompt="image 1 in the gown from image 2 turns to the left.",
        images=[REFS / "mia.png"],
        first_frame=REFS / "start.png",
        voice=REFS / "mia.wav",
        caption=TURN,
    )
    path = tmp_path_factory.mktemp("preview") / "turn-left.mp4"
    render_preview(wanted, path)
    return wanted, path, decoded(path)


def test_length_rate_and_size_are_the_requests(turning: tuple[PreviewRequest, Path, list[np.ndarray]]) -> None:
    _, path, frames = turning
    facts = probe(path)
    assert (facts.width, facts.height) == (1280, 720)
    assert facts.seconds == pytest.approx(2.0, abs=1 / FPS)
    assert len(frames) == 2 * FPS
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == FPS
        assert container.streams.audio[0].sample_rate == preview.SAMPLE_RATE


def test_the_first_frame_opens_the_preview_whole_in_the_picture_area(
    turning: tuple[PreviewRequest, Path, list[np.ndarray]],
) -> None:
    wanted, _, frames = turning
    plan = layout(wanted, ["first frame", "image 1"])
    with Image.open(REFS / "start.png") as start:
        place = plan.fitted(start.size)
        expected = np.asarray(start.convert("RGB").resize((place.width, place.height), Image.Resampling.BILINEAR))
    with Image.open(REFS / "mia.png") as other:
        unlike = np.asarray(other.convert("RGB").resize((place.width, place.height), Image.Resampling.BILINEAR))
    shown = region(frames[0], place)
    assert difference(shown, expected) < 4, "frame 0 is the first frame, scaled into the picture area"
    assert difference(shown, unlike) > 20
    matte = [region(frames[0], band) for band in _mattes(plan, place)]
    assert all(float(np.abs(pixels).mean()) < 4 for pixels in matte)  # black around the picture, not stretched


def _mattes(plan: Layout, place: preview.Box) -> list[preview.Box]:
    area = plan.picture
    return [
        preview.Box(area.x, area.y, place.x - area.x, area.height),
        preview.Box(place.right, area.y, area.right - place.right, area.height),
    ]


def test_the_picture_moves_and_the_timecode_runs(turning: tuple[PreviewRequest, Path, list[np.ndarray]]) -> None:
    wanted, _, frames = turning
    plan = layout(wanted, ["first frame", "image 1"])
    assert all(difference(a, b) > 0 for a, b in itertools.pairwise(frames)), "no two frames alike"
    with Image.open(REFS / "start.png") as start:
        place = plan.fitted(start.size)
    moved = difference(region(frames[0], place), region(frames[FPS - 2], place))
    assert moved > 2, "a push-in changes the picture within a picture's time"
    header_without_clock = [
        preview.Box(0, 0, plan.timecode.x, plan.header.height),
        preview.Box(0, plan.timecode.bottom, plan.width, plan.header.bottom - plan.timecode.bottom),
    ]
    for box in [*header_without_clock, plan.footer]:  # the bands keep still while the picture moves
        assert difference(region(frames[0], box), region(frames[FPS - 2], box)) < 1.5


@pytest.mark.parametrize("number", [0, 1, 29, 30, 59])
def test_each_frame_shows_its_own_timecode(turning: tuple[PreviewRequest, Path, list[np.ndarray]], number: int) -> None:
    """No OCR here: the clock on frame N looks like `timecode(N)` drawn, more than like any other."""
    wanted, _, frames = turning
    plan = layout(wanted, ["first frame", "image 1"])
    shown = region(frames[number], plan.timecode)

    def drawn(at: int) -> np.ndarray:
        clock = Image.new("RGB", (plan.timecode.width, plan.timecode.height), BAND)
        ImageDraw.Draw(clock).text((0, 0), timecode(at), fill=(255, 255, 255), font=preview._font(plan.font_size))
        return np.asarray(clock)

    candidates = range(max(0, number - 12), number + 13)
    assert min(candidates, key=lambda at: difference(shown, drawn(at))) == number


def test_variants_of_a_shot_move_differently() -> None:
    """Where a push-in heads follows the shot, take and matrix values: variants are told apart by motion too."""
    anchors = {preview._anchor(Caption(shot=f"turn-{side}", matrix=(("side", side),)), 0) for side in "abcdefgh"}
    assert len(anchors) > 1
    assert preview._anchor(TURN, 0) == preview._anchor(TURN, 0)  # and the same shot always moves the same way
