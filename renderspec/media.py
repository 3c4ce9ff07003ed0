"""Reading media with Pillow and PyAV: probing a file's kind, format, pixel size and length, and
verifying a downloaded render.

Probing reads only headers (Pillow opens lazily; PyAV reads the container header), so probing a
100 MB video costs about as much as probing a thumbnail. Verifying reads every packet but decodes
only the first frame and the last group of pictures.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any

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


# A whole stream's packets end where its header says it ends, give or take rounding and a last
# sample written with no duration. Losing less than this is still caught where the index lists
# every packet up front (a plain or faststart mp4), by counting them.
COVERAGE_TOLERANCE = 0.1


def verify_render(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None,
    seconds: float,
    size_tolerance: float = 0.0,
    seconds_tolerance: float = 0.5,
    decode_tail: bool = True,
) -> RenderFacts:
    """Checks a downloaded render plays to its end: an mp4 whose every packet is there and whose
    first and last frames decode, of the asked size and length.

    The header alone proves little: a faststart mp4 (index first) cut off in transit, with no
    Content-Length to notice it by, still has a whole header and a decodable first frame. So every
    packet is demuxed (cheap: nothing is decoded) to see that the video and audio reach the end
    their index promises, and the last group of pictures is decoded to see the tail is sound.
    That decode is the costly part (a long group of pictures decodes nearly every frame); a render
    fetched from the remote cache skips it (`decode_tail=False`): its bytes are, by sha256, the
    very bytes the machine that paid for it verified in full.
    """
    import av

    from renderspec.errors import InvalidOutput

    try:
        with av.open(os.fspath(path)) as container:
            if "mp4" not in container.format.name:
                raise InvalidOutput(f"the result is {container.format.name}, not an mp4")
            if not container.streams.video:
                raise InvalidOutput("the result has no video stream")
            stream = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            length = _seconds(container, stream) or 0.0
            scan = _scan_packets(container, stream)
            for each, kind in [(stream, "video"), (audio, "audio")]:
                if each is not None:
                    _check_coverage(scan, each, kind, length)
            if scan.first_frame is None:
                why = f" ({scan.first_frame_error})" if scan.first_frame_error else ""
                raise InvalidOutput(f"the result's video does not decode{why}")
            if decode_tail:
                _check_tail_decodes(container, stream, scan)
            covered = scan.covered(stream.index)
            width, height = scan.first_frame
            facts = RenderFacts(stream.codec_context.name, width, height, length, audio is not None)
    except (av.FFmpegError, OSError, StopIteration) as error:
        reason = getattr(error, "strerror", None) or _short(error)  # FFmpeg's text, without our temp path
        raise InvalidOutput(f"the result is not a playable video ({reason})") from error
    if size is not None:
        width, height = size
        if abs(facts.width - width) > width * size_tolerance or abs(facts.height - height) > height * size_tolerance:
            raise InvalidOutput(f"the result is {facts.width}x{facts.height} px, expected {width}x{height}")
    if abs(facts.seconds - seconds) > seconds_tolerance:
        raise InvalidOutput(f"the result is {facts.seconds:.2f} s long, expected {seconds:g} s")
    if abs(covered - seconds) > seconds_tolerance:
        raise InvalidOutput(f"the result's video is {covered:.2f} s long, expected {seconds:g} s")
    return facts


@dataclass(slots=True)
class _Scan:
    """What one pass over every packet found, per stream index."""

    counts: dict[int, int]  # packets read whole
    starts: dict[int, float]
    ends: dict[int, float]
    incomplete: dict[int, float]  # the time of a packet the demuxer read only part of
    last_keyframe: int | None = None  # in the video stream's time base
    last_video_pts: int | None = None
    first_frame: tuple[int, int] | None = None  # width and height
    first_frame_error: str | None = None
    error: str | None = None  # why demuxing stopped before the end, if it did

    def covered(self, index: int) -> float:
        """Seconds from the stream's start (or zero: audio priming starts early) to its last packet's end."""
        return max(0.0, self.ends.get(index, 0.0) - max(0.0, self.starts.get(index, 0.0)))


def _scan_packets(container: Any, video: Any) -> _Scan:
    """Demuxes every packet of every stream, decoding only until the first video frame comes out."""
    import av

    scan = _Scan(counts={}, starts={}, ends={}, incomplete={})
    bases: dict[
        int, float
    ] = {}  # seconds per tick, per stream: floats, as Fractions per packet cost more than the demuxing
    try:
        for packet in container.demux():
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:  # the demuxer's end-of-stream marker
                continue
            index = packet.stream_index
            base = bases.get(index)
            if base is None:
                base = bases[index] = float(packet.time_base)
            start = pts * base
            end = (pts + (packet.duration or 0)) * base
            scan.starts[index] = min(scan.starts.get(index, start), start)
            scan.ends[index] = max(scan.ends.get(index, end), end)
            if packet.is_corrupt:
                scan.incomplete.setdefault(index, start)
            else:
                scan.counts[index] = scan.counts.get(index, 0) + 1
            if index == video.index:
                scan.last_video_pts = pts if scan.last_video_pts is None else max(scan.last_video_pts, pts)
                if packet.is_keyframe:
                    scan.last_keyframe = pts
                if scan.first_frame is None and scan.first_frame_error is None:
                    _decode_first_frame(scan, video, packet)
    except av.FFmpegError as error:
        scan.error = getattr(error, "strerror", None) or _short(error)
    if scan.first_frame is None and scan.first_frame_error is None:
        _decode_first_frame(scan, video, None)  # a decoder with reordering delay holds its first frames back
    return scan


def _decode_first_frame(scan: _Scan, video: Any, packet: Any) -> None:
    import av

    try:
        frames = video.decode(packet)
    except av.FFmpegError as error:
        scan.first_frame_error = getattr(error, "strerror", None) or _short(error)
        return
    if frames:
        scan.first_frame = (frames[0].width, frames[0].height)


def _check_coverage(scan: _Scan, stream: Any, kind: str, container_seconds: float) -> None:
    """The stream's packets, all read whole, are every one its index lists and reach the end it declares."""
    from renderspec.errors import InvalidOutput

    declared = float(stream.duration * stream.time_base) if stream.duration else container_seconds
    covered = scan.covered(stream.index)
    got, promised = scan.counts.get(stream.index, 0), len(stream.index_entries)
    if stream.index in scan.incomplete:  # read only in part: the body ends inside it
        covered = min(covered, scan.incomplete[stream.index])
    if covered < declared - COVERAGE_TOLERANCE or got < promised or stream.index in scan.incomplete:
        details = [f"{got} of {promised} packets"] if promised else []
        details += [scan.error] if scan.error else []
        shown = f" ({'; '.join(details)})" if details else ""
        raise InvalidOutput(
            f"the result is cut short: its {kind} packets cover {covered:.2f} s of {_brief(declared)} s{shown}"
        )


def _brief(seconds: float) -> str:
    """8 for 8.0, 8.02 for 8.021354: a header's length as a person would say it."""
    return f"{seconds:.2f}".rstrip("0").rstrip(".")


def _check_tail_decodes(container: Any, video: Any, scan: _Scan) -> None:
    """Decodes from the last keyframe to the end, so a damaged last group of pictures is caught."""
    import av

    from renderspec.errors import InvalidOutput

    if scan.last_keyframe is None or scan.last_video_pts is None:
        raise InvalidOutput("the result's video has no keyframe")
    container.seek(scan.last_keyframe, stream=video, backward=True, any_frame=False)
    last: int | None = None
    try:
        for frame in container.decode(video):
            if frame.pts is not None:
                last = frame.pts if last is None else max(last, frame.pts)
    except av.FFmpegError as error:
        reason = getattr(error, "strerror", None) or _short(error)
        raise InvalidOutput(f"the result's last frames do not decode ({reason})") from error
    if last is None or last < scan.last_video_pts:
        shown = "none" if last is None else f"{float(last * video.time_base):.2f} s"
        end = float(scan.last_video_pts * video.time_base)
        raise InvalidOutput(f"the result's last frames do not decode (the last at {shown}, of {end:.2f} s)")


def extract_frame(path: str | os.PathLike[str], at: str | float) -> bytes:
    """One frame of a video as PNG bytes at the video's exact pixel size: "first", "last", or the
    frame showing at `at` seconds (the last one when `at` is past the end).

    The same video and `at` give the same pixels: a later shot's first frame is keyed by the
    upstream video's sha256 and `at`, never by these bytes.
    """
    import io

    import av

    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        if at == "first":
            target = 0.0
        elif at == "last":
            target = math.inf
        else:
            target = float(at)
        start = (stream.start_time or 0) * float(stream.time_base or 0)
        if target > 2.0 and stream.time_base:
            seconds = target if math.isfinite(target) else _seconds(container, stream) or 0.0
            with contextlib.suppress(av.FFmpegError):  # a stream that cannot seek is decoded from the start
                container.seek(max(0, int((start + seconds - 2.0) / stream.time_base)), stream=stream, backward=True)
        chosen: Any = None
        for frame in container.decode(stream):
            if chosen is not None and frame.time is not None and frame.time - start > target + 1e-6:
                break
            chosen = frame
        if chosen is None:
            raise ValueError(f"{os.fspath(path)} has no video frame")
        buffer = io.BytesIO()
        chosen.to_image().save(buffer, format="PNG", optimize=False)
        return buffer.getvalue()


def thumbnail_jpeg(source: bytes | str | os.PathLike[str], box: tuple[int, int], *, quality: int = 82) -> bytes:
    """An image (a file, or encoded bytes such as `extract_frame` gives) shrunk to fit `box`, as JPEG bytes.

    Turned upright by its EXIF orientation and flattened onto black (JPEG has no alpha), never enlarged.
    The same input gives the same bytes, so a review page written twice is the same page.
    """
    import io

    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
        image = ImageOps.exif_transpose(opened)
        image.thumbnail(box, Image.Resampling.LANCZOS)
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            flat = Image.new("RGB", image.size, (0, 0, 0))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        elif image.mode != "RGB":
            image = image.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        return buffer.getvalue()
