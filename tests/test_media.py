"""Probing real files by their headers (kind, format, pixels, length), and verifying renders to their last packet."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderspec.core.rules import FileKind
from renderspec.errors import InvalidOutput
from renderspec.media import RenderFacts, probe, verify_render
from tests.conftest import REPO, write_mp4, write_png, write_wav


def test_png_and_jpeg_are_images_with_their_size(tmp_path: Path) -> None:
    found = probe(write_png(tmp_path / "a.png", size=(300, 500)))
    assert (found.kind, found.format, found.width, found.height) == (FileKind.IMAGE, "png", 300, 500)
    jpeg = probe(REPO / "specs" / "refs" / "garden.jpg")
    assert (jpeg.kind, jpeg.format) == (FileKind.IMAGE, "jpeg")


def test_format_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    path = write_png(tmp_path / "really-a-png.png").rename(tmp_path / "named-like-a.jpg")
    assert probe(path).format == "png"


def test_mp4_is_a_video_with_size_and_length(tmp_path: Path) -> None:
    found = probe(write_mp4(tmp_path / "clip.mp4", seconds=2, size=(320, 240), fps=12))
    assert (found.kind, found.format, found.width, found.height) == (FileKind.VIDEO, "mp4", 320, 240)
    assert found.seconds == pytest.approx(2.0, abs=0.15)


def test_wav_is_audio_with_its_length(tmp_path: Path) -> None:
    found = probe(write_wav(tmp_path / "v.wav", seconds=1.5))
    assert (found.kind, found.format) == (FileKind.AUDIO, "wav")
    assert found.seconds == pytest.approx(1.5, abs=0.01)


def test_garbage_is_no_kind_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"\x00garbage" * 10)
    found = probe(path)
    assert found.kind is None and found.error and "not an image, video or audio file" in found.error


# -- verifying a downloaded render ------------------------------------------------------------

FPS = 12
GOP = 6  # a keyframe every half second, so the last group of pictures is not the first


def write_faststart_mp4(
    path: Path, seconds: int = 2, size: tuple[int, int] = (320, 240), audio_seconds: int | None = None
) -> Path:
    """An H.264/AAC mp4 with its index (moov) before the media (mdat), as streaming services serve
    it: a body cut off after the index still opens, and its first frames still decode."""
    import av
    import numpy as np

    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS, options={"g": str(GOP), "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=48_000, layout="mono")
        for number in range(seconds * FPS):  # moving stripes: every frame costs bytes, as real footage does
            pixels = np.stack([(xs * 3 + number * 10) % 256, (ys * 5 + number * 7) % 256, (xs ^ ys) % 256], axis=-1)
            frame = av.VideoFrame.from_ndarray(pixels.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        samples = (seconds if audio_seconds is None else audio_seconds) * 48_000
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48_000)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = av.AudioFrame.from_ndarray(tone[start : start + 1024].reshape(1, -1), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 48_000, start, Fraction(1, 48_000)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())
    return path


@dataclass(frozen=True)
class Packet:
    stream: str
    seconds: float
    pos: int
    size: int
    is_keyframe: bool


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[Packet]]:
    """The bytes of a 2 s faststart mp4, and where each of its packets lies in them."""
    import av

    path = write_faststart_mp4(tmp_path_factory.mktemp("media") / "whole.mp4")
    with av.open(str(path)) as container:
        packets = [
            Packet(p.stream.type, float(p.pts * p.time_base), p.pos, p.size, p.is_keyframe)
            for p in container.demux()
            if p.pts is not None
        ]
    return path.read_bytes(), packets


def cut(data: bytes, keep: int, folder: Path) -> Path:
    path = folder / "cut.mp4"
    path.write_bytes(data[:keep])
    return path


def test_a_whole_faststart_mp4_passes(whole: tuple[bytes, list[Packet]], tmp_path: Path) -> None:
    data, _ = whole
    assert data.index(b"moov") < data.index(b"mdat")
    facts = verify_render(cut(data, len(data), tmp_path), size=(320, 240), seconds=2)
    assert facts == RenderFacts("h264", 320, 240, 2.0, has_audio=True)


def test_a_faststart_mp4_cut_off_is_rejected_with_how_much_is_there(
    whole: tuple[bytes, list[Packet]], tmp_path: Path
) -> None:
    data, packets = whole
    half = next(p for p in packets if p.stream == "video" and p.seconds >= 0.5)
    with pytest.raises(InvalidOutput) as caught:
        verify_render(cut(data, half.pos, tmp_path), size=(320, 240), seconds=2)
    assert str(caught.value) == "the result is cut short: its video packets cover 0.50 s of 2 s (6 of 24 packets)"


def test_a_cut_at_any_packet_or_one_byte_short_is_rejected(whole: tuple[bytes, list[Packet]], tmp_path: Path) -> None:
    """The cuts a time tolerance alone would miss: losing only the last frame, the last audio
    packet, or the last byte of the last packet."""
    data, packets = whole
    for keep in [*(packet.pos for packet in packets), len(data) - 1]:
        with pytest.raises(InvalidOutput, match="cut short"):
            verify_render(cut(data, keep, tmp_path), size=(320, 240), seconds=2)


@settings(max_examples=60)
@given(fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_a_faststart_mp4_cut_anywhere_is_rejected(
    whole: tuple[bytes, list[Packet]], tmp_path_factory: pytest.TempPathFactory, fraction: float
) -> None:
    data, packets = whole
    keep = int(len(data) * fraction)
    with pytest.raises(InvalidOutput) as caught:
        verify_render(cut(data, keep, tmp_path_factory.getbasetemp()), size=(320, 240), seconds=2)
    if keep >= min(p.pos for p in packets):  # the index is whole: the file opens, and some packets are missing
        assert str(caught.value).startswith("the result is cut short: ")


def test_a_damaged_last_group_of_pictures_is_rejected(whole: tuple[bytes, list[Packet]], tmp_path: Path) -> None:
    data, packets = whole
    last_key = [p for p in packets if p.stream == "video" and p.is_keyframe][-1]
    assert last_key.seconds == 1.5
    damaged = bytearray(data)
    damaged[last_key.pos : last_key.pos + last_key.size] = b"\xff" * last_key.size  # every byte still there
    with pytest.raises(InvalidOutput, match="the result's last frames do not decode"):
        verify_render(cut(bytes(damaged), len(damaged), tmp_path), size=(320, 240), seconds=2)


def test_a_video_shorter_than_its_sound_is_rejected(tmp_path: Path) -> None:
    """Every packet is there, but the header's length is the sound's: the picture stops early."""
    path = write_faststart_mp4(tmp_path / "short-video.mp4", seconds=1, audio_seconds=2)
    with pytest.raises(InvalidOutput, match=r"^the result's video is 1.00 s long, expected 2 s$"):
        verify_render(path, size=(320, 240), seconds=2)
