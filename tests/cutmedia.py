"""Media for the cut tests: shots of solid colours (optionally changing over time) with a tone or no sound,
and ways to read a cut's pixels and sound back."""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from renderspec.media import extract_frame

Colour = tuple[int, int, int]
RED, GREEN, BLUE, YELLOW, WHITE = (220, 30, 30), (30, 200, 60), (40, 60, 220), (230, 220, 40), (240, 240, 240)


def write_shot(
    path: Path,
    colours: Colour | Sequence[tuple[float, Colour]],
    *,
    seconds: float = 1.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 30,
    tone: float | None = 440.0,
    options: dict[str, str] | None = None,
) -> Path:
    """An H.264/AAC mp4 like the emulator's previews (ultrafast, no B-frames, mono 48 kHz AAC).

    `colours` is one colour, or (from-second, colour) steps; `tone` a sine's frequency, or None for no audio track.
    """
    steps = [(0.0, colours)] if isinstance(colours[0], int) else list(colours)  # type: ignore[list-item]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options=options or {"preset": "ultrafast", "crf": "23"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=48_000, layout="mono") if tone is not None else None
        frames = {}
        for number in range(round(seconds * fps)):
            moment = number / fps
            colour = [c for start, c in steps if start <= moment + 1e-9][-1]
            if colour not in frames:
                frames[colour] = av.VideoFrame.from_ndarray(
                    np.full((size[1], size[0], 3), colour, dtype=np.uint8), format="rgb24"
                ).reformat(format="yuv420p")
            frame = frames[colour]
            frame.pts = number
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            samples = round(seconds * 48_000)
            wave = (0.3 * np.sin(2 * np.pi * tone * np.arange(samples) / 48_000)).astype(np.float32)  # type: ignore[operator]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    wave[start : start + 1024].reshape(1, -1), format="fltp", layout="mono"
                )
                chunk.sample_rate = 48_000
                chunk.pts = start
                chunk.time_base = Fraction(1, 48_000)
                for packet in audio.encode(chunk):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


def frame_at(path: Path, seconds: float) -> Image.Image:
    return Image.open(io.BytesIO(extract_frame(path, seconds))).convert("RGB")


def pixel(path: Path, seconds: float, where: tuple[float, float] = (0.5, 0.5)) -> Colour:
    image = frame_at(path, seconds)
    got = image.getpixel((int(where[0] * (image.width - 1)), int(where[1] * (image.height - 1))))
    assert isinstance(got, tuple)
    return (int(got[0]), int(got[1]), int(got[2]))


def near(got: Colour, expected: Colour, tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(got, expected, strict=True))


def sound(path: Path) -> tuple[np.ndarray, int]:
    """The file's audio as mono float samples, and its rate."""
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        for frame in container.decode(stream):
            chunks.append(frame.to_ndarray().mean(axis=0))
    return np.concatenate(chunks), rate


def video_facts(path: Path) -> tuple[float, int, float]:
    """The video stream's length in seconds, its frame count, and the audio stream's length in seconds."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert video.duration is not None and video.time_base is not None
        assert audio.duration is not None and audio.time_base is not None
        return float(video.duration * video.time_base), video.frames, float(audio.duration * audio.time_base)
