"""Preview videos (animatics): the shot's references composed over its duration, as real H.264/AAC mp4.

Each reference image (and a few frames of each reference video) gets an equal share of the
shot's time, letterboxed on the requested canvas with the prompt written across the bottom; the
voice clip, if any, is the audio track, silence otherwise. Identical consecutive frames are
encoded from one converted frame, so a 5 s 720P preview takes well under a second. The damaged
copies some of the emulator's faults serve are made here too.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

FPS = 30
SAMPLE_RATE = 48_000
AUDIO_FRAME = 1024


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    width: int
    height: int
    seconds: int
    prompt: str
    images: Sequence[Path] = field(default_factory=tuple)
    videos: Sequence[Path] = field(default_factory=tuple)
    first_frame: Path | None = None
    voice: Path | None = None
    label: str = "renderspec emulator preview"


def render_preview(request: PreviewRequest, destination: Path) -> None:
    """Writes the preview to `destination` (through a temporary name, so it appears whole)."""
    panels = _panels(request)
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.part")
    total_frames = request.seconds * FPS
    try:
        with av.open(str(temporary), "w", format="mp4") as container:
            video = container.add_stream(
                "libx264", rate=FPS, options={"preset": "ultrafast", "tune": "stillimage", "crf": "28"}
            )
            video.width, video.height, video.pix_fmt = request.width, request.height, "yuv420p"
            audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
            frames = [_video_frame(panel, request, index, len(panels)) for index, panel in enumerate(panels)]
            for number in range(total_frames):
                frame = frames[min(number * len(frames) // total_frames, len(frames) - 1)]
                frame.pts = number
                frame.time_base = Fraction(1, FPS)
                for packet in video.encode(frame):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
            _write_audio(container, audio, request)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _panels(request: PreviewRequest) -> list[Image.Image]:
    panels: list[Image.Image] = []
    if request.first_frame is not None:
        panels.append(_load_image(request.first_frame))
    panels.extend(_load_image(path) for path in request.images)
    for path in request.videos:
        panels.extend(_video_stills(path, count=2))
    if not panels:
        panels.append(Image.new("RGB", (16, 9), (20, 20, 28)))
    return panels


def _load_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.draft("RGB", (1920, 1920))  # JPEG: decode at reduced size when that is enough
        return ImageOps.exif_transpose(image).convert("RGB")


def _video_stills(path: Path, count: int) -> list[Image.Image]:
    stills: list[Image.Image] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            if index % 15 == 0:
                stills.append(frame.to_image())  # type: ignore[no-untyped-call]
            if len(stills) >= count:
                break
    return stills


def _video_frame(panel: Image.Image, request: PreviewRequest, index: int, count: int) -> av.VideoFrame:
    canvas = Image.new("RGB", (request.width, request.height), (16, 16, 22))
    fitted = ImageOps.contain(panel, (request.width, int(request.height * 0.8)))
    canvas.paste(fitted, ((request.width - fitted.width) // 2, (int(request.height * 0.8) - fitted.height) // 2))
    draw = ImageDraw.Draw(canvas)
    size = max(14, request.height // 36)
    font = ImageFont.load_default(size=size)
    chars = max(20, int(request.width / (size * 0.55)))
    lines = textwrap.wrap(request.prompt, width=chars)[:4]
    top = int(request.height * 0.8) + size // 2
    for number, line in enumerate(lines):
        draw.text((size, top + number * int(size * 1.25)), line, fill=(235, 235, 235), font=font)
    draw.text((size // 2, size // 2), f"{request.label}  {index + 1}/{count}", fill=(255, 200, 80), font=font)
    return av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24").reformat(format="yuv420p")


def _write_audio(container: av.container.OutputContainer, stream: av.AudioStream, request: PreviewRequest) -> None:
    samples = request.seconds * SAMPLE_RATE
    pcm = _voice_samples(request.voice, samples) if request.voice is not None else np.zeros(samples, dtype=np.float32)
    for start in range(0, samples, AUDIO_FRAME):
        chunk = pcm[start : start + AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _voice_samples(path: Path, samples: int) -> np.ndarray:
    """The clip as mono float samples at 48 kHz, cut or padded with silence to `samples`."""
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray()[0])
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray()[0])
    pcm = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)
    if len(pcm) >= samples:
        return pcm[:samples]
    return np.concatenate([pcm, np.zeros(samples - len(pcm), dtype=np.float32)])


def faststart_cut_short(source: Path, scratch: Path, fraction: float) -> bytes:
    """The render remuxed with its index (moov) first, as streaming hosts serve mp4, and cut off at
    the first video packet from `fraction` of its length on: a header that promises every frame
    over a body that holds only the first ones. Before the whole file was verified, this passed."""
    try:
        with (
            av.open(str(source)) as given,
            av.open(str(scratch), "w", format="mp4", options={"movflags": "faststart"}) as out,
        ):
            copies = {stream.index: out.add_stream_from_template(stream) for stream in given.streams}
            for packet in given.demux():
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copies[packet.stream_index]
                out.mux(packet)
        with av.open(str(scratch)) as remuxed:
            video = remuxed.streams.video[0]
            if video.duration and video.time_base:
                end = float(video.duration * video.time_base)
            else:
                end = (remuxed.duration or 0) / 1_000_000
            starts = [
                (float(packet.pts * packet.time_base), packet.pos)
                for packet in remuxed.demux(video)
                if packet.pts is not None
            ]
        keep = next((pos for seconds, pos in starts[1:] if seconds >= fraction * end), starts[-1][1])
        with open(scratch, "rb") as handle:
            return handle.read(keep)
    finally:
        scratch.unlink(missing_ok=True)
