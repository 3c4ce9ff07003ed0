"""Probing real files by their headers: kind, format, pixels and length."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderspec.core.rules import FileKind
from renderspec.media import probe
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
