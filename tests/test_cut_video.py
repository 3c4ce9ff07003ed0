"""The cut encoder: lengths, the frame at each boundary, letterboxing, slates, continuous audio, both paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFont

from renderspec.cutting import Piece, slate_image, wrap, write_cut

from .cutmedia import BLUE, GREEN, RED, YELLOW, frame_at, near, pixel, sound, video_facts, write_shot

FPS = 30
FRAME = 1 / FPS


def boundaries(spans: tuple[object, ...]) -> list[float]:
    return [span.first_frame / FPS for span in spans]  # type: ignore[attr-defined]


def test_shots_in_one_format_are_copied_and_each_boundary_shows_the_right_shot(tmp_path: Path) -> None:
    shots = [
        write_shot(tmp_path / "a.mp4", RED, seconds=1.0),
        write_shot(tmp_path / "b.mp4", GREEN, seconds=2.0, tone=None),
        write_shot(tmp_path / "c.mp4", BLUE, seconds=1.5, tone=880.0),
    ]
    cut = tmp_path / "cuts" / "master.mp4"
    made = write_cut([Piece(path.stem, path) for path in shots], cut)
    assert made.copied, made.why_encoded
    assert made.size == (320, 240) and made.fps == FPS
    seconds, frames, audio_seconds = video_facts(cut)
    assert abs(seconds - 4.5) <= FRAME and frames == 135
    assert abs(audio_seconds - 4.5) <= FRAME
    starts = boundaries(made.spans)
    assert starts == [0.0, 1.0, 3.0]
    for start, colour, before in zip(starts, [RED, GREEN, BLUE], [None, RED, GREEN], strict=True):
        assert near(pixel(cut, start), colour), (start, pixel(cut, start))
        if before is not None:
            assert near(pixel(cut, start - FRAME), before)
    assert near(pixel(cut, 4.5), BLUE)  # the last frame


def test_audio_runs_through_the_whole_cut_with_silence_where_a_shot_has_none(tmp_path: Path) -> None:
    shots = [
        write_shot(tmp_path / "a.mp4", RED, seconds=1.0, tone=440.0),
        write_shot(tmp_path / "b.mp4", GREEN, seconds=1.0, tone=None),
        write_shot(tmp_path / "c.mp4", BLUE, seconds=1.0, tone=660.0),
    ]
    cut = tmp_path / "master.mp4"
    write_cut([Piece(path.stem, path) for path in shots] + [Piece("late", None, duration=1.0)], cut)
    pcm, rate = sound(cut)
    assert rate == 48_000 and abs(len(pcm) / rate - 4.0) <= FRAME

    def loudness(start: float, end: float) -> float:
        part = pcm[int((start + 0.05) * rate) : int((end - 0.05) * rate)]
        return float(np.sqrt(np.mean(part**2)))

    assert loudness(0, 1) > 0.1 and loudness(2, 3) > 0.1  # the tones, where they were
    assert loudness(1, 2) < 0.01 and loudness(3, 4) < 0.01  # silence for a shot without sound and for a slate


def test_trims_other_sizes_and_slates_are_encoded_frame_for_frame(tmp_path: Path) -> None:
    wide = write_shot(tmp_path / "wide.mp4", RED, seconds=2.0)
    tall = write_shot(tmp_path / "tall.mp4", GREEN, seconds=1.0, size=(180, 320))
    changing = write_shot(tmp_path / "changing.mp4", [(0.0, BLUE), (0.5, YELLOW), (1.5, RED)], seconds=2.0)
    pieces = [
        Piece("wide", wide, end=1.0),
        Piece("tall", tall),
        Piece("changing", changing, start=0.5, end=1.5),
        Piece("missing", None, prompt="a long prompt " * 20, duration=2.0),
    ]
    cut = tmp_path / "master.mp4"
    made = write_cut(pieces, cut)
    assert not made.copied and made.why_encoded is not None and "tall" in made.why_encoded
    seconds, frames, audio_seconds = video_facts(cut)
    assert abs(seconds - (1.0 + 1.0 + 1.0 + 2.0)) <= FRAME and frames == 150
    assert abs(audio_seconds - seconds) <= FRAME
    assert boundaries(made.spans) == [0.0, 1.0, 2.0, 3.0]
    assert near(pixel(cut, 1.0 - FRAME), RED)
    assert near(pixel(cut, 1.0), GREEN)
    assert near(pixel(cut, 2.0 - FRAME), GREEN)
    assert near(pixel(cut, 2.0), YELLOW)  # `in = 0.5`: the blue first half second is gone
    assert near(pixel(cut, 3.0 - FRAME), YELLOW)  # `out = 1.5`: the red last half second too
    slate = pixel(cut, 3.0, (0.98, 0.98))
    assert near(slate, (24, 26, 34), 12)
    assert near(pixel(cut, 5.0, (0.98, 0.98)), (24, 26, 34), 12)  # held to the end


def test_a_shot_of_another_ratio_is_pillarboxed_inside_the_picture(tmp_path: Path) -> None:
    wide = write_shot(tmp_path / "wide.mp4", RED, seconds=0.5, size=(320, 180))
    tall = write_shot(tmp_path / "tall.mp4", GREEN, seconds=0.5, size=(180, 320))
    cut = tmp_path / "master.mp4"
    write_cut([Piece("wide", wide), Piece("tall", tall)], cut)
    image = np.asarray(frame_at(cut, 0.6)).astype(int)
    assert image.shape == (180, 320, 3)
    lit = np.argwhere(image.sum(axis=2) > 60)  # everything not black
    (top, left), (bottom, right) = lit.min(axis=0), lit.max(axis=0)
    # 180x320 scaled into 320x180 is about 101x180, centred: bars left and right, none above or below
    assert top <= 1 and bottom >= 178
    assert 100 <= left <= 115 and 205 <= right <= 220
    assert near(tuple(image[90, 160]), GREEN) and image[90, 5].sum() < 40 and image[90, 315].sum() < 40


def test_a_cut_of_a_taller_size_letterboxes_wide_shots(tmp_path: Path) -> None:
    wide = write_shot(tmp_path / "wide.mp4", RED, seconds=0.5, size=(320, 180))
    cut = tmp_path / "master.mp4"
    made = write_cut([Piece("wide", wide)], cut, size=(240, 240))
    assert made.size == (240, 240) and not made.copied
    assert near(pixel(cut, 0.2), RED)
    assert sum(pixel(cut, 0.2, (0.5, 0.02))) < 40 and sum(pixel(cut, 0.2, (0.5, 0.98))) < 40


def test_a_shot_not_rendered_yet_is_a_slate_of_its_length(tmp_path: Path) -> None:
    shot = write_shot(tmp_path / "a.mp4", RED, seconds=1.0)
    cut = tmp_path / "master.mp4"
    made = write_cut(
        [Piece("a", shot), Piece("s02-walk", None, start=0.5, prompt="Mia walks", duration=3.0, size=(320, 240))], cut
    )
    seconds, _, _ = video_facts(cut)
    assert abs(seconds - 3.5) <= FRAME
    assert made.spans[1].is_slate and made.spans[1].frames == 75


def test_a_cut_of_slates_only_takes_the_first_shots_planned_size(tmp_path: Path) -> None:
    cut = tmp_path / "master.mp4"
    made = write_cut([Piece("a", None, duration=2.0, size=(640, 360)), Piece("b", None, duration=1.0)], cut)
    assert made.size == (640, 360) and abs(video_facts(cut)[0] - 3.0) <= FRAME


def test_trimming_the_end_of_a_shot_without_reordering_still_copies(tmp_path: Path) -> None:
    a = write_shot(tmp_path / "a.mp4", RED, seconds=1.0)
    b = write_shot(tmp_path / "b.mp4", [(0.0, GREEN), (0.5, BLUE)], seconds=1.0)
    cut = tmp_path / "master.mp4"
    made = write_cut([Piece("a", a, end=0.5), Piece("b", b)], cut)
    assert made.copied, made.why_encoded
    assert abs(video_facts(cut)[0] - 1.5) <= FRAME
    assert near(pixel(cut, 0.5 - FRAME), RED) and near(pixel(cut, 0.5), GREEN) and near(pixel(cut, 1.0), BLUE)


def test_a_start_between_keyframes_is_encoded_from_the_right_frame(tmp_path: Path) -> None:
    b = write_shot(tmp_path / "b.mp4", [(0.0, GREEN), (0.5, BLUE)], seconds=1.0)
    cut = tmp_path / "master.mp4"
    made = write_cut([Piece("b", b, start=0.5)], cut)
    assert not made.copied and "between keyframes" in (made.why_encoded or "")
    assert near(pixel(cut, 0.0), BLUE)


def test_the_check_runs_before_the_old_cut_is_replaced(tmp_path: Path) -> None:
    shot = write_shot(tmp_path / "a.mp4", RED, seconds=0.5)
    cut = tmp_path / "cuts" / "master.mp4"
    write_cut([Piece("a", shot)], cut)
    before = cut.read_bytes()

    def refuse(path: Path, _: object) -> None:
        raise ValueError("not good enough")

    with pytest.raises(ValueError, match="not good enough"):
        write_cut([Piece("a", shot), Piece("b", None, duration=1.0)], cut, check=refuse)
    assert cut.read_bytes() == before
    assert sorted(path.name for path in cut.parent.iterdir()) == ["master.mp4"]  # no temporary file left


def test_forcing_the_encode_gives_the_same_timeline(tmp_path: Path) -> None:
    shots = [write_shot(tmp_path / f"{n}.mp4", colour, seconds=0.5) for n, colour in enumerate([RED, GREEN])]
    copied = write_cut([Piece(p.stem, p) for p in shots], tmp_path / "copied.mp4")
    encoded = write_cut([Piece(p.stem, p) for p in shots], tmp_path / "encoded.mp4", allow_copy=False)
    assert copied.copied and not encoded.copied
    assert copied.spans == encoded.spans
    assert near(pixel(tmp_path / "encoded.mp4", 0.5), GREEN)


def test_slate_text_wraps_at_words_and_ends_with_an_ellipsis() -> None:
    font = ImageFont.load_default(size=12)
    lines = wrap("the quick brown fox jumps over the lazy dog " * 10, font, 120, 3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 120 for line in lines)
    assert all(not line.startswith(" ") for line in lines)
    words = " ".join(lines[:2]).split()
    assert words == ("the quick brown fox jumps over the lazy dog " * 10).split()[: len(words)]  # whole words only
    assert wrap("short", font, 120, 3) == ["short"]
    assert wrap("x" * 100, font, 60, 2)[-1].endswith("…")
    image = slate_image(Piece("s05-end", None, prompt="Mia looks back", duration=4.0), (320, 180))
    assert image.size == (320, 180)


def test_a_late_in_seeks_to_the_keyframe_before_it_and_shows_the_frame_at_in(tmp_path: Path) -> None:
    steps = [(0.0, RED), (2.9, GREEN), (3.0, BLUE)]  # a frame of green just before `in`, then blue
    shot = write_shot(tmp_path / "a.mp4", steps, seconds=4.0, options={"preset": "ultrafast", "g": "30"})
    cut = tmp_path / "master.mp4"
    made = write_cut([Piece("a", shot, start=3.0)], cut, size=(320, 240))
    assert not made.copied or made.spans[0].source_start == 3.0
    assert near(pixel(cut, 0.0), BLUE) and abs(video_facts(cut)[0] - 1.0) <= FRAME
    encoded = write_cut([Piece("a", shot, start=2.95)], tmp_path / "late.mp4")
    assert not encoded.copied and near(pixel(tmp_path / "late.mp4", 0.0), GREEN)
