"""Encoding a cut: the shots' renders in order as one continuous H.264/AAC mp4, with a slate for each
shot not rendered yet.

The picture is one size and frame rate throughout: a render of another size or ratio is scaled to
fit and centred on black (letterbox or pillarbox), and each entry plays from its `in` to its `out`.
The boundaries come from the running total of the entries' lengths, rounded to frames, so the cut
is as long as its entries within one frame and never drifts. The audio is one AAC track: each
render's sound resampled to one rate and layout, cut to exactly its entry's frames, and silence
where a render has none or for a slate.

Fast path: when every entry is a render whose video already is the cut's format (H.264 of the
same size, frame rate, time base, pixel format and codec parameters, at a constant frame rate,
untrimmed or trimmed on frame boundaries with `in` on a keyframe and no frame reordering), the
video packets are copied with rebased timestamps and nothing is decoded; only the audio (a
fraction of the work) is decoded and encoded again, so it stays continuous without the priming
gaps that copied AAC packets would leave at each boundary. Otherwise every frame is re-encoded.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from renderspec.core.cuts import frame_spans
from renderspec.fsutil import TEMP_SUFFIX, default_mode, fsync_dir, fsync_file

DEFAULT_FPS = Fraction(30)  # the emulator's previews; a cut of slates only has no render to take it from
DEFAULT_SIZE = (1280, 720)
SAMPLE_RATE = 48_000
AUDIO_FRAME = 1024  # AAC's frame: the encoder takes exactly this many samples a frame, but the last
# ultrafast: a cut is for watching the storyboard, made again on every change; crf 20 keeps it clean.
X264_OPTIONS = {"preset": "ultrafast", "crf": "20"}
BLACK = (16, 128, 128)  # Y, U, V of black in limited range (what H.264 players assume)
_SLATE_BACKGROUND = (24, 26, 34)


@dataclass(frozen=True, slots=True)
class Piece:
    """One entry of a cut as the encoder sees it: a render (or None: a slate) and its trims."""

    label: str
    video: Path | None
    start: float = 0.0
    end: float | None = None
    prompt: str = ""
    duration: float = 5.0
    """The shot's planned length: a slate is held this long (trimmed like a render)."""
    size: tuple[int, int] | None = None
    """The shot's planned size: the cut's size when this entry comes first and is a slate."""


@dataclass(frozen=True, slots=True)
class Span:
    """Where one entry landed in the cut: its first frame and frame count, and what of its render it shows."""

    label: str
    first_frame: int
    frames: int
    source_start: float
    source_seconds: float | None
    """The render's whole length (None for a slate)."""

    @property
    def is_slate(self) -> bool:
        return self.source_seconds is None


@dataclass(frozen=True, slots=True)
class CutVideo:
    """What `write_cut` made."""

    size: tuple[int, int]
    fps: Fraction
    spans: tuple[Span, ...]
    copied: bool
    """True when the video packets were copied (the fast path), False when every frame was encoded."""
    why_encoded: str | None = None

    @property
    def frames(self) -> int:
        return sum(span.frames for span in self.spans)

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps)


class _CannotCopy(Exception):
    """Why the fast path does not apply (its message is said to the user)."""


@dataclass(slots=True)
class _Source:
    """A render's video as its header and, for the fast path, its packets describe it."""

    path: Path
    width: int
    height: int
    codec: str
    pix_fmt: str | None
    fps: Fraction | None
    time_base: Fraction | None
    extradata: bytes | None
    seconds: float
    channels: int  # 0: no audio
    packets: list[tuple[int, int, bool]]  # each video packet's pts, dts and keyframe flag (read, not decoded)


def write_cut(
    pieces: Sequence[Piece],
    destination: Path,
    *,
    size: tuple[int, int] | None = None,
    check: Callable[[Path, CutVideo], None] | None = None,
    allow_copy: bool = True,
) -> CutVideo:
    """Writes the cut to `destination` atomically (a temporary file beside it, fsynced, renamed).

    `size` is the cut's picture size (default: the first entry's). `check` runs on the finished
    temporary file before it replaces anything (to verify it); an exception leaves the old file.
    `allow_copy=False` forces the re-encode (for measuring it).
    """
    if not pieces:
        raise ValueError("a cut needs at least one piece")
    sources = {piece.video: _probe(piece.video) for piece in pieces if piece.video is not None}
    first = pieces[0]
    chosen = size or (
        (sources[first.video].width, sources[first.video].height) if first.video is not None else first.size
    )
    canvas = _even(chosen or DEFAULT_SIZE)
    fps = next((source.fps for source in sources.values() if source.fps), None) or DEFAULT_FPS
    channels = 2 if any(source.channels >= 2 for source in sources.values()) else 1
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        result: CutVideo | None = None
        why: str | None = "forced" if not allow_copy else None
        if allow_copy:
            try:
                plan = _copy_plan(pieces, sources, canvas, fps)
                result = _write_copied(plan, temporary, canvas, fps, channels)
            except _CannotCopy as reason:
                why = str(reason)
                temporary.unlink(missing_ok=True)
        if result is None:
            result = _write_encoded(pieces, sources, temporary, canvas, fps, channels, why)
        os.chmod(temporary, default_mode())
        fsync_file(temporary)
        if check is not None:
            check(temporary, result)
        os.replace(temporary, destination)
        fsync_dir(destination.parent)
        return result
    finally:
        temporary.unlink(missing_ok=True)


def _even(size: tuple[int, int]) -> tuple[int, int]:
    """H.264 in 4:2:0 needs even sides."""
    return max(2, size[0] - size[0] % 2), max(2, size[1] - size[1] % 2)


def _probe(path: Path) -> _Source:
    """The render's header, and the timing of its video packets (demuxed in the same pass, nothing decoded)."""
    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise av.error.InvalidDataError(0, "no video stream", os.fspath(path))
        video = container.streams.video[0]
        context = video.codec_context
        rate = video.guessed_rate or video.average_rate
        fps = Fraction(rate).limit_denominator(1001) if rate else None
        base = Fraction(video.time_base) if video.time_base else None
        if video.duration and base:
            seconds = float(video.duration * base)
        elif container.duration:
            seconds = container.duration / 1_000_000
        else:
            seconds = float(video.frames / fps) if video.frames and fps else 0.0
        audio = container.streams.audio[0] if container.streams.audio else None
        packets = [
            (packet.pts, packet.dts, packet.is_keyframe)
            for packet in container.demux(video)
            if packet.pts is not None and packet.dts is not None
        ]
        return _Source(
            path=path,
            width=context.width,
            height=context.height,
            codec=context.name,
            pix_fmt=context.pix_fmt,
            fps=fps,
            time_base=base,
            extradata=context.extradata,
            seconds=seconds,
            channels=audio.codec_context.channels if audio is not None else 0,
            packets=packets,
        )


# -- the fast path: copying video packets ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Copy:
    piece: Piece
    source: _Source
    first_pts: int  # the first kept packet's pts
    end_pts: int  # packets at or after this pts are dropped
    frames: int
    ticks: int  # time-base ticks per frame


def _copy_plan(
    pieces: Sequence[Piece], sources: Mapping[Path, _Source], size: tuple[int, int], fps: Fraction
) -> list[_Copy]:
    """What to copy from each render, or _CannotCopy saying which entry needs re-encoding and why."""
    plan: list[_Copy] = []
    reference: _Source | None = None
    for piece in pieces:
        if piece.video is None:
            raise _CannotCopy(f"{piece.label} is not rendered yet (a slate)")
        source = sources[piece.video]
        reference = reference or source
        mismatch = _format_mismatch(source, reference, size, fps)
        if mismatch:
            raise _CannotCopy(f"{piece.label} {mismatch}")
        plan.append(_packets_to_copy(piece, source, fps))
    return plan


def _format_mismatch(source: _Source, reference: _Source, size: tuple[int, int], fps: Fraction) -> str | None:
    if source.codec != "h264":
        return f"is {source.codec}, not H.264"
    if (source.width, source.height) != size:
        return f"is {source.width}x{source.height}, the cut {size[0]}x{size[1]}"
    if source.pix_fmt != "yuv420p":
        return f"has pixel format {source.pix_fmt}, not yuv420p"
    if source.fps != fps:
        return f"runs at {float(source.fps or 0):g} fps, the cut at {float(fps):g}"
    if source.time_base != reference.time_base or source.extradata != reference.extradata:
        return "was encoded with other parameters than the first shot"
    return None


def _packets_to_copy(piece: Piece, source: _Source, fps: Fraction) -> _Copy:
    """Scans the render's packets (nothing decoded): constant frame rate, keyframe where the entry starts."""
    assert source.time_base is not None
    ticks_exact = 1 / (fps * source.time_base)
    if ticks_exact.denominator != 1:
        raise _CannotCopy(f"{piece.label}'s time base does not hold whole frames")
    ticks = int(ticks_exact)
    packets = source.packets
    if not packets:
        raise _CannotCopy(f"{piece.label} has no video packets")
    ordered = sorted(pts for pts, _, _ in packets)
    if any(later - earlier != ticks for earlier, later in itertools.pairwise(ordered)):
        raise _CannotCopy(f"{piece.label} does not have a constant frame rate")
    reordered = any(pts != dts for pts, dts, _ in packets)
    keyframes = {pts for pts, _, key in packets if key}
    origin = ordered[0]
    first = _frame_index(piece.start, fps, piece.label, "in")
    last = len(ordered) if piece.end is None else min(len(ordered), _frame_index(piece.end, fps, piece.label, "out"))
    if (first or last < len(ordered)) and reordered:
        raise _CannotCopy(f"{piece.label} is trimmed and its frames are reordered (B-frames)")
    first_pts = origin + first * ticks
    if first_pts not in keyframes:
        raise _CannotCopy(f"{piece.label} starts (in = {piece.start:g} s) between keyframes")
    if last <= first:
        raise _CannotCopy(f"{piece.label} is shorter than its `in`")
    return _Copy(piece, source, first_pts, origin + last * ticks, last - first, ticks)


def _frame_index(seconds: float, fps: Fraction, label: str, name: str) -> int:
    exact = seconds * float(fps)
    if abs(exact - round(exact)) > 1e-6:
        raise _CannotCopy(f"{label}'s {name} = {seconds:g} s is not on a frame boundary")
    return round(exact)


def _write_copied(
    plan: Sequence[_Copy], temporary: Path, size: tuple[int, int], fps: Fraction, channels: int
) -> CutVideo:
    spans: list[Span] = []
    with av.open(os.fspath(temporary), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        with av.open(os.fspath(plan[0].source.path)) as template:
            video = output.add_stream_from_template(template.streams.video[0])
        audio = _AudioTrack(output, channels)
        frame = 0
        last_dts: int | None = None
        for item in plan:
            shift = frame * item.ticks - item.first_pts
            span = Span(item.piece.label, frame, item.frames, item.piece.start, item.source.seconds)
            sound = _Sound(audio, item.piece.start, _samples(span, fps))
            with av.open(os.fspath(item.source.path)) as container:
                streams = [container.streams.video[0], *container.streams.audio[:1]]
                for packet in container.demux(*streams):
                    if packet.stream.type == "audio":
                        sound.decode(packet)
                        continue
                    if packet.pts is None or packet.dts is None or not item.first_pts <= packet.pts < item.end_pts:
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    if last_dts is not None and packet.dts <= last_dts:
                        raise _CannotCopy(f"{item.piece.label}'s timestamps overlap the shot before it")
                    last_dts = packet.dts
                    packet.stream = video
                    output.mux(packet)
            audio.add(sound.samples())
            spans.append(span)
            frame += item.frames
        audio.close()
    return CutVideo(size=size, fps=fps, spans=tuple(spans), copied=True)


# -- the general path: decoding, fitting and encoding every frame ---------------------------------


def _write_encoded(
    pieces: Sequence[Piece],
    sources: Mapping[Path, _Source],
    temporary: Path,
    size: tuple[int, int],
    fps: Fraction,
    channels: int,
    why: str | None,
) -> CutVideo:
    lengths = [_length(piece, sources[piece.video] if piece.video else None) for piece in pieces]
    spans = [
        Span(piece.label, first, frames, piece.start, sources[piece.video].seconds if piece.video else None)
        for piece, (first, frames) in zip(pieces, frame_spans(lengths, float(fps)), strict=True)
    ]
    with av.open(os.fspath(temporary), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        video = output.add_stream("libx264", rate=fps, options={**X264_OPTIONS, "g": str(max(1, round(2 * fps)))})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = _AudioTrack(output, channels)
        number = 0
        for piece, span in zip(pieces, spans, strict=True):
            frames = (
                _held(_slate_frame(piece, size), span.frames)
                if piece.video is None
                else _fitted(_frames_at(piece.video, piece.start, fps, span.frames), size)
            )
            for frame in frames:
                frame.pts = number
                frame.time_base = 1 / fps
                number += 1
                for packet in video.encode(frame):
                    output.mux(packet)
            audio.add(_pcm(piece.video, piece.start, _samples(span, fps), audio))
        for packet in video.encode():
            output.mux(packet)
        audio.close()
    return CutVideo(size=size, fps=fps, spans=tuple(spans), copied=False, why_encoded=why)


def _length(piece: Piece, source: _Source | None) -> float:
    """How long the entry plays: to its `out`, or to the end of its render (a slate: of its planned duration)."""
    if source is None:
        end = piece.end if piece.end is not None else piece.duration
    else:  # a render a little shorter than planned ends where it ends
        end = source.seconds if piece.end is None else min(piece.end, source.seconds)
    return max(0.0, end - piece.start)


def _held(frame: av.VideoFrame, count: int) -> Iterator[av.VideoFrame]:
    for _ in range(count):
        yield frame


def _frames_at(path: Path, start: float, fps: Fraction, count: int) -> Iterator[av.VideoFrame]:
    """`count` frames: the render's frame showing at `start`, `start + 1/fps`, ... (its last one held at its end)."""
    step = 1 / float(fps)
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = float(stream.time_base) if stream.time_base else 0.0
        origin = (stream.start_time or 0) * base
        if start > 2.0 and base:
            container.seek(int((origin + start - 1.0) / base), stream=stream, backward=True)
        decoded = iter(container.decode(stream))
        current: Any = None
        upcoming: Any = next(decoded, None)
        for index in range(count):
            moment = start + index * step + 1e-3  # a millisecond of slack for rounded timestamps
            while upcoming is not None and (current is None or _time(upcoming, origin) <= moment):
                current = upcoming
                upcoming = next(decoded, None)
            if current is None:
                raise av.error.InvalidDataError(0, "no video frame decodes", os.fspath(path))
            yield current


def _time(frame: Any, origin: float) -> float:
    return (frame.time if frame.time is not None else 0.0) - origin


def _fitted(frames: Iterator[av.VideoFrame], size: tuple[int, int]) -> Iterator[av.VideoFrame]:
    """Each frame at the cut's size in yuv420p: scaled to fit and centred on black when its shape differs."""
    last: tuple[Any, av.VideoFrame] | None = None
    for frame in frames:
        if last is not None and last[0] is frame:  # held or repeated: converted once
            yield last[1]
            continue
        if (frame.width, frame.height) == size:
            fitted = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
        else:
            fitted = letterboxed(frame, size)
        last = (frame, fitted)
        yield fitted


def letterboxed(frame: av.VideoFrame, size: tuple[int, int]) -> av.VideoFrame:
    """The frame scaled to fit inside `size` (its shape kept) and centred on black bars."""
    width, height = size
    scale = min(width / frame.width, height / frame.height)
    inner_w = min(width, max(2, round(frame.width * scale / 2) * 2))
    inner_h = min(height, max(2, round(frame.height * scale / 2) * 2))
    scaled = frame.reformat(width=inner_w, height=inner_h, format="yuv420p")
    flat = scaled.to_ndarray().ravel()
    luma = inner_w * inner_h
    chroma = (inner_w // 2) * (inner_h // 2)
    planes = [
        flat[:luma].reshape(inner_h, inner_w),
        flat[luma : luma + chroma].reshape(inner_h // 2, inner_w // 2),
        flat[luma + chroma : luma + 2 * chroma].reshape(inner_h // 2, inner_w // 2),
    ]
    left = (width - inner_w) // 4 * 2  # even, so the chroma planes line up
    top = (height - inner_h) // 4 * 2
    canvas = []
    for index, plane in enumerate(planes):
        shrink = 1 if index == 0 else 2
        full = np.full((height // shrink, width // shrink), BLACK[index], dtype=np.uint8)
        full[top // shrink : top // shrink + plane.shape[0], left // shrink : left // shrink + plane.shape[1]] = plane
        canvas.append(full.ravel())
    return av.VideoFrame.from_ndarray(np.concatenate(canvas).reshape(height * 3 // 2, width), format="yuv420p")


# -- slates ----------------------------------------------------------------------------------------


def _slate_frame(piece: Piece, size: tuple[int, int]) -> av.VideoFrame:
    image = slate_image(piece, size)
    return av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24").reformat(format="yuv420p")


def slate_image(piece: Piece, size: tuple[int, int]) -> Image.Image:
    """A card standing in for a shot not rendered yet: its id, its length and its prompt, wrapped at words."""
    width, height = size
    image = Image.new("RGB", size, _SLATE_BACKGROUND)
    draw = ImageDraw.Draw(image)
    unit = max(10, min(width, height) // 22)
    margin = unit * 2
    small = ImageFont.load_default(size=unit)
    large = ImageFont.load_default(size=unit * 2)
    top = margin
    draw.text((margin, top), "NOT RENDERED YET", fill=(255, 190, 70), font=small)
    top += unit * 2
    label_lines = wrap(piece.label, large, width - 2 * margin, 2)
    for line in label_lines:
        draw.text((margin, top), line, fill=(245, 245, 245), font=large)
        top += int(unit * 2.7)
    trims = [f"in {piece.start:g} s"] if piece.start else []
    trims += [f"out {piece.end:g} s"] if piece.end is not None else []
    length = (piece.end if piece.end is not None else piece.duration) - piece.start
    detail = f"{length:g} s" + (f" of {piece.duration:g} s ({', '.join(trims)})" if trims else "")
    draw.text((margin, top), detail, fill=(170, 175, 190), font=small)
    top += unit * 2
    spacing = int(unit * 1.3)
    room = max(0, (height - margin - top) // spacing)
    for line in wrap(piece.prompt, small, width - 2 * margin, room):
        draw.text((margin, top), line, fill=(220, 220, 220), font=small)
        top += spacing
    return image


def wrap(text: str, font: Any, width: float, lines: int) -> list[str]:
    """`text` in at most `lines` lines of at most `width` pixels, broken at spaces (a word too long
    for a line is broken inside), with an ellipsis where it had to stop."""
    if lines <= 0:
        return []
    words = text.split()
    result: list[str] = []
    current = ""
    index = 0
    while index < len(words):
        word = words[index]
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            index += 1
            continue
        if not current:  # one word wider than the line: as many characters as fit
            cut = max(1, max(n for n in range(1, len(word) + 1) if font.getlength(word[:n]) <= width or n == 1))
            current, words[index] = word[:cut], word[cut:]
        result.append(current)
        current = ""
        if len(result) == lines:
            break
    if current and len(result) < lines:
        result.append(current)
        current = ""
    if (index < len(words) or current) and result:
        last = result[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1].rstrip()
        result[-1] = last + "…"
    return result


# -- audio -----------------------------------------------------------------------------------------


def _samples(span: Span, fps: Fraction) -> int:
    """The entry's share of audio samples: from its first frame's time to the next entry's, rounded on the running total."""
    start = round(span.first_frame * SAMPLE_RATE / fps)
    end = round((span.first_frame + span.frames) * SAMPLE_RATE / fps)
    return int(end - start)


class _AudioTrack:
    """One AAC track fed entry by entry; samples left over between entries wait for the next (AAC takes whole frames)."""

    def __init__(self, output: Any, channels: int) -> None:
        self.output = output
        self.layout = "stereo" if channels >= 2 else "mono"
        self.channels = 2 if channels >= 2 else 1
        self.stream = output.add_stream("aac", rate=SAMPLE_RATE, layout=self.layout)
        self.pending = np.zeros((self.channels, 0), dtype=np.float32)
        self.written = 0

    def add(self, pcm: np.ndarray) -> None:
        """Appends the entry's samples (exactly its share): whole AAC frames are encoded, the rest waits."""
        self.pending = np.concatenate([self.pending, pcm], axis=1)
        whole = self.pending.shape[1] // AUDIO_FRAME * AUDIO_FRAME
        for offset in range(0, whole, AUDIO_FRAME):
            self._encode(self.pending[:, offset : offset + AUDIO_FRAME])
        self.pending = self.pending[:, whole:]

    def close(self) -> None:
        if self.pending.shape[1]:
            self._encode(self.pending)
        for packet in self.stream.encode(None):
            self.output.mux(packet)

    def _encode(self, chunk: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=self.layout)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.written
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self.written += chunk.shape[1]
        for packet in self.stream.encode(frame):
            self.output.mux(packet)


class _Sound:
    """One render's sound, decoded packet by packet, resampled to the cut's rate and layout, and
    cut to exactly the entry's share from its `in` (padded with silence when the render has less)."""

    def __init__(self, track: _AudioTrack, start: float, samples: int) -> None:
        self.skip = round(start * SAMPLE_RATE)
        self.wanted = self.skip + samples
        self.channels = track.channels
        self.resampler = av.AudioResampler(format="fltp", layout=track.layout, rate=SAMPLE_RATE)
        self.chunks: list[np.ndarray] = []
        self.have = 0

    @property
    def is_full(self) -> bool:
        return self.have >= self.wanted

    def decode(self, packet: Any) -> None:
        if self.is_full:
            return
        for frame in packet.decode():  # the end-of-stream packet flushes the decoder
            self.take(frame)
        if packet.pts is None:
            self.take(None)

    def take(self, frame: Any) -> None:
        for out in self.resampler.resample(frame):
            self.chunks.append(out.to_ndarray())
            self.have += self.chunks[-1].shape[1]

    def samples(self) -> np.ndarray:
        result = np.zeros((self.channels, self.wanted - self.skip), dtype=np.float32)
        if self.chunks:
            pcm = np.concatenate(self.chunks, axis=1)[:, self.skip : self.wanted]
            result[:, : pcm.shape[1]] = pcm
        return result


def _pcm(path: Path | None, start: float, samples: int, track: _AudioTrack) -> np.ndarray:
    """Exactly `samples` samples of the render's sound from `start` on (silence where it has none)."""
    sound = _Sound(track, start, samples)
    if path is not None and samples > 0:
        with av.open(os.fspath(path)) as container:
            if not container.streams.audio:  # demux() of no stream would read every stream
                return sound.samples()
            for packet in container.demux(container.streams.audio[0]):
                sound.decode(packet)
                if sound.is_full:
                    break
    return sound.samples()
