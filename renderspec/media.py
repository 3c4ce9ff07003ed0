"""Reading media headers with Pillow and PyAV: kind, format, pixel size, length.

Only headers are read (Pillow opens lazily; PyAV reads the container header), so probing a 100 MB
video costs about as much as probing a thumbnail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from renderspec.core.rules import FileKind

_PILLOW_FORMATS = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "BMP": "bmp",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tiff",
}


@dataclass(frozen=True, slots=True)
class Probe:
    kind: FileKind | None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    seconds: float | None = None
    error: str | None = None


def probe(path: str | os.PathLike[str]) -> Probe:
    """What the file is, judged by its bytes rather than its name."""
    image = _probe_image(path)
    if image is not None:
        return image
    return _probe_av(path)


def _probe_image(path: str | os.PathLike[str]) -> Probe | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            name = _PILLOW_FORMATS.get(image.format or "", (image.format or "unknown").lower())
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return Probe(kind=FileKind.IMAGE, format=name, width=width, height=height)


def _probe_av(path: str | os.PathLike[str]) -> Probe:
    import av

    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as container:
            names = set(container.format.name.split(","))
            video = next((s for s in container.streams.video), None)
            audio = next((s for s in container.streams.audio), None)
            seconds = _seconds(container, video or audio)
            if video is not None and video.codec_context.width:
                fmt = _container_name(names, os.fspath(path), container.metadata)
                return Probe(
                    kind=FileKind.VIDEO,
                    format=fmt,
                    width=video.codec_context.width,
                    height=video.codec_context.height,
                    seconds=seconds,
                )
            if audio is not None:
                fmt = "wav" if "wav" in names else "mp3" if "mp3" in names else sorted(names)[0]
                return Probe(kind=FileKind.AUDIO, format=fmt, seconds=seconds)
            return Probe(
                kind=None, error=f"not an image, video or audio file ({container.format.name} with no readable stream)"
            )
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as error:
        return Probe(kind=None, error=f"not an image, video or audio file ({_short(error)})")


def _seconds(container: object, stream: object) -> float | None:
    duration = getattr(container, "duration", None)
    if duration:
        return float(duration) / 1_000_000  # av.time_base
    if stream is not None and getattr(stream, "duration", None) and getattr(stream, "time_base", None):
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    return None


def _container_name(names: set[str], path: str, metadata: dict[str, str]) -> str:
    if "mp4" in names or "mov" in names:
        brand = metadata.get("major_brand", "").strip()
        if brand == "qt" or (not brand and path.lower().endswith(".mov")):
            return "mov"
        return "mp4"
    return sorted(names)[0]


def _short(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) < 160 else text[:157] + "..."


@dataclass(frozen=True, slots=True)
class RenderFacts:
    codec: str
    width: int
    height: int
    seconds: float
    has_audio: bool


def verify_render(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None,
    seconds: float,
    size_tolerance: float = 0.0,
    seconds_tolerance: float = 0.5,
) -> RenderFacts:
    """Checks a downloaded render plays: an mp4 whose first frame decodes, of the asked size and length."""
    import av

    from renderspec.errors import InvalidOutput

    try:
        with av.open(os.fspath(path)) as container:
            if "mp4" not in container.format.name:
                raise InvalidOutput(f"the result is {container.format.name}, not an mp4")
            if not container.streams.video:
                raise InvalidOutput("the result has no video stream")
            stream = container.streams.video[0]
            has_audio = bool(container.streams.audio)
            length = _seconds(container, stream) or 0.0
            frame = next(container.decode(stream), None)
            if frame is None:
                raise InvalidOutput("the result's video does not decode")
            facts = RenderFacts(stream.codec_context.name, frame.width, frame.height, length, has_audio)
    except (av.FFmpegError, OSError, StopIteration) as error:
        reason = getattr(error, "strerror", None) or _short(error)  # FFmpeg's text, without our temp path
        raise InvalidOutput(f"the result is not a playable video ({reason})") from error
    if size is not None:
        width, height = size
        if abs(facts.width - width) > width * size_tolerance or abs(facts.height - height) > height * size_tolerance:
            raise InvalidOutput(f"the result is {facts.width}x{facts.height} px, expected {width}x{height}")
    if abs(facts.seconds - seconds) > seconds_tolerance:
        raise InvalidOutput(f"the result is {facts.seconds:.2f} s long, expected {seconds:g} s")
    return facts
