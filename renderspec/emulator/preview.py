"""Preview videos (animatics): the shot's references composed over its duration, as real H.264/AAC mp4.

Each reference image (and a few stills of each reference video) gets an equal share of the shot's
time. A frame has three parts that never overlap: a header band (who the shot is, a running
timecode, the matrix values, which reference is on screen), the picture area, where the current
picture is fitted whole and slowly pushed in (toward a point chosen per shot, so matrix variants
also move apart), and a footer band with the prompt, wrapped between words, its citations written
with their references' names (`image 1 · mia`). The shot id, take, names and matrix values are not
in the API request: they come from the emulator-only `X-Renderspec-Shot` header as a `Caption`, and
without it the text is the prompt as sent. The voice clip, if any, is the audio track, silence
otherwise.

Speed (a 5 s 720P preview well under a second): frames are composed in YUV 4:2:0. The bands of each
picture are converted once; per frame only the moving picture (a crop of a copy pre-scaled once,
scaled and converted by swscale in one pass, reused while the crop has not moved) and the
timecode's small patch are converted. The damaged copies some of the emulator's faults serve are
made here too.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from queue import Empty, Full, Queue

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

FPS = 30
SAMPLE_RATE = 48_000
AUDIO_FRAME = 1024
ELLIPSIS = "…"
DOT = " · "

# Neutral greys: their chroma is exactly 128, so nothing tints the bands.
BAND = (28, 28, 28)
MATTE = (0, 0, 0)  # the picture area around a fitted picture
TITLE = (255, 200, 80)
TIMECODE = (255, 255, 255)
DETAILS = (150, 210, 255)
ON_SCREEN = (200, 200, 200)
PROMPT = (235, 235, 235)

PUSH_PER_SECOND = 0.04  # a slow push-in: 4 % closer each second
PUSH_MOST = 0.15  # and never more than 15 % closer on one picture
# Where a push-in heads, as fractions of the picture: the centre, the corners, the edges' middles.
ANCHORS = ((0.5, 0.5), (0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.0), (0.5, 1.0), (0.0, 0.5), (1.0, 0.5))

Measure = Callable[[str], float]


@dataclass(frozen=True, slots=True)
class Caption:
    """Who a preview is of: what the emulator-only `X-Renderspec-Shot` header says, never the API body.

    `refs` pairs a citation as the prompt writes it (`image 1`, `video 1`, `first frame`) with the
    name of its reference; `matrix` pairs the shot's matrix variables with their values.
    """

    shot: str
    take: int | None = None
    refs: tuple[tuple[str, str], ...] = ()
    matrix: tuple[tuple[str, str], ...] = ()

    def name_of(self, citation: str) -> str | None:
        wanted = " ".join(citation.lower().split())
        return next((name for cited, name in self.refs if cited.lower() == wanted), None)


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
    caption: Caption | None = None


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in frame pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def overlaps(self, other: Box) -> bool:
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom

    def contains(self, other: Box) -> bool:
        return self.x <= other.x and self.y <= other.y and other.right <= self.right and other.bottom <= self.bottom


@dataclass(frozen=True, slots=True)
class Text:
    """One line of text on the frame: where it goes (its box is as wide as the text measures) and its colour."""

    box: Box
    text: str
    colour: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything goes on a preview's frames, and what the fixed text says.

    The bands and the picture area tile the frame from top to bottom, so nothing written can
    cover the picture; every box is aligned to even pixels, as 4:2:0 chroma needs.
    """

    width: int
    height: int
    font_size: int
    line_height: int
    header: Box
    picture: Box
    footer: Box
    timecode: Box
    texts: tuple[Text, ...]
    """What every frame shows (the title, the matrix values, the prompt's lines)."""
    on_screen: tuple[Text, ...]
    """Per picture: which reference it is (`image 1 · mia  2/3`)."""

    def fitted(self, size: tuple[int, int]) -> Box:
        """Where a picture of `size` goes: whole, as large as the picture area allows, centred."""
        area = self.picture
        scale = min(area.width / max(1, size[0]), area.height / max(1, size[1]))
        width = min(area.width, max(2, _even(size[0] * scale)))
        height = min(area.height, max(2, _even(size[1] * scale)))
        x = area.x + _even((area.width - width) / 2, down=True)
        y = area.y + _even((area.height - height) / 2, down=True)
        return Box(x, y, width, height)


def layout(request: PreviewRequest, on_screen: Sequence[str], measure: Measure | None = None) -> Layout:
    """The frame's layout for `request`, whose pictures are the citations `on_screen` in order.

    Font size follows the frame's short side; the footer gets more lines the taller the frame is
    (three at 16:9, four at 1:1, seven at 9:16), so a 9:16 prompt has room to be read.
    """
    width, height = request.width, request.height
    size = max(12, min(width, height) // 36)
    measure = measure or _font(size).getlength
    line = round(size * 1.3)
    pad = _even(size / 2)
    margin = size
    prompt_lines = min(8, max(3, round(4 * height / width)))
    header = Box(0, 0, width, _even(2 * pad + 2 * line, down=False))
    footer_height = _even(2 * pad + prompt_lines * line, down=False)
    footer = Box(0, height - footer_height, width, footer_height)
    picture = Box(0, header.bottom, width, max(2, footer.y - header.bottom))
    text_width = width - 2 * margin

    clock = timecode(0, FPS).translate(str.maketrans("0123456789", "8888888888"))
    clock_width = _even(measure(clock) + 2, down=False)
    timecode_box = Box(_even(width - margin - clock_width), pad, clock_width, _even(line))

    caption = request.caption
    title = _title(caption, request.label)
    details = "   ".join(f"{name} = {value}" for name, value in caption.matrix) if caption else ""
    texts = [_text(fit(title, timecode_box.x - 2 * margin, measure), margin, pad, line, measure, TITLE)]
    shown = [
        fit(_on_screen(citation, caption, index, len(on_screen)), text_width / 2, measure)
        for index, citation in enumerate(on_screen)
    ]
    widest = max((measure(text) for text in shown), default=0.0)
    if details:
        details_width = text_width - widest - margin
        texts.append(_text(fit(details, details_width, measure), margin, pad + line, line, measure, DETAILS))
    prompt = with_names(request.prompt, caption) if caption else request.prompt
    for number, text in enumerate(wrap(prompt, text_width, prompt_lines, measure)):
        texts.append(_text(text, margin, footer.y + pad + number * line, line, measure, PROMPT))
    placed = tuple(
        _text(text, width - margin - int(measure(text) + 0.999), pad + line, line, measure, ON_SCREEN) for text in shown
    )
    return Layout(
        width=width,
        height=height,
        font_size=size,
        line_height=line,
        header=header,
        picture=picture,
        footer=footer,
        timecode=timecode_box,
        texts=tuple(texts),
        on_screen=placed,
    )


def timecode(frame: int, fps: int = FPS) -> str:
    """`HH:MM:SS:FF` of a frame number (non-drop-frame), as an editor's timeline shows it."""
    seconds, frames = divmod(frame, fps)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"


_CITATION = re.compile(r"\b(image|video)\s*(\d+)\b|(图|视频)\s*(\d+)", re.IGNORECASE)


def with_names(prompt: str, caption: Caption) -> str:
    """The prompt with each citation followed by its reference's name: `image 1` → `image 1 · mia`."""

    def named(match: re.Match[str]) -> str:
        word = (match.group(1) or {"图": "image", "视频": "video"}[match.group(3)]).lower()
        name = caption.name_of(f"{word} {match.group(2) or match.group(4)}")
        return f"{match.group(0)}{DOT}{name}" if name else match.group(0)

    return _CITATION.sub(named, prompt)


def wrap(text: str, width: float, max_lines: int, measure: Measure) -> list[str]:
    """`text` in at most `max_lines` lines no wider than `width`, broken between words.

    Where the text must stop, the last line ends with an ellipsis after the last whole word that
    fits. The only word ever cut is one wider than a whole line (a long shot id, a URL): in pieces,
    one per line, since it could be shown no other way.
    """
    if max_lines <= 0:
        return []
    lines: list[list[_Token]] = []
    for line in _lines(text.split(), width, measure):
        if len(lines) == max_lines:
            return [*map(_joined, lines[:-1]), _with_ellipsis(lines[-1], width, measure)]
        lines.append(line)
    return [_joined(line) for line in lines]


def fit(text: str, width: float, measure: Measure) -> str:
    """`text` on one line no wider than `width`: whole (its spacing kept), or cut after a word with an ellipsis."""
    line = _BREAKS.sub(" ", text).strip()
    if measure(line) <= width:
        return line
    lines = wrap(line, width, 1, measure)
    return lines[0] if lines else ""


_BREAKS = re.compile(r"[^\S ]+")  # whitespace other than spaces: tabs, line breaks


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    is_piece: bool = False  # of a word wider than a whole line, which alone may be cut


def _joined(tokens: Sequence[_Token]) -> str:
    return " ".join(token.text for token in tokens)


def _lines(words: Sequence[str], width: float, measure: Measure) -> Iterator[list[_Token]]:
    current: list[_Token] = []
    for word in words:
        if measure(_joined([*current, _Token(word)])) <= width:
            current.append(_Token(word))
            continue
        if current:
            yield current
        current = [_Token(word)]
        if measure(word) > width:
            while measure(word) > width and len(word) > 1:
                piece = _longest_prefix(word, width, measure)
                yield [_Token(piece, is_piece=True)]
                word = word[len(piece) :]
            current = [_Token(word, is_piece=True)]
    if current:
        yield current


def _with_ellipsis(tokens: list[_Token], width: float, measure: Measure) -> str:
    """The line with an ellipsis after it: whole words are dropped from its end until it fits, and
    only a piece of an over-long word is cut shorter."""
    tokens = list(tokens)
    while tokens and measure(_joined(tokens) + ELLIPSIS) > width:
        last = tokens.pop()
        if last.is_piece:
            room = width - measure(_joined([*tokens, _Token("")]) + ELLIPSIS)
            piece = _longest_prefix(last.text, room, measure, at_least=0)
            if piece:
                tokens.append(_Token(piece, is_piece=True))
                break
    return _joined(tokens) + ELLIPSIS


def _longest_prefix(text: str, width: float, measure: Measure, at_least: int = 1) -> str:
    low, high = at_least, len(text)  # the longest prefix that fits, found by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _title(caption: Caption | None, label: str) -> str:
    if caption is None:
        return label
    return f"{caption.shot}{DOT}take {caption.take or 1}"


def _on_screen(citation: str, caption: Caption | None, index: int, count: int) -> str:
    name = caption.name_of(citation) if caption else None
    return f"{citation}{DOT}{name}  {index + 1}/{count}" if name else f"{citation}  {index + 1}/{count}"


def _text(text: str, x: int, y: int, line: int, measure: Measure, colour: tuple[int, int, int]) -> Text:
    return Text(Box(x, y, int(measure(text) + 0.999), line), text, colour)


def _even(value: float, down: bool = True) -> int:
    whole = int(value) if down else int(-(-value // 1))
    return whole - whole % 2 if down else whole + whole % 2


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font (Latin, with `·` and `…`), shared by the emulator's render threads:
    Pillow's FreeType calls hold the GIL, so one face is never used by two at once."""
    return ImageFont.load_default(size=size)


# -- rendering ----------------------------------------------------------------------------------


def render_preview(request: PreviewRequest, destination: Path) -> None:
    """Writes the preview to `destination` (through a temporary name, so it appears whole)."""
    pictures = _pictures(request)
    plan = layout(request, [citation for citation, _ in pictures])
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.part")
    total_frames = request.seconds * FPS
    try:
        with av.open(str(temporary), "w", format="mp4") as container:
            video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "28"})
            video.width, video.height, video.pix_fmt = request.width, request.height, "yuv420p"
            audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
            for number, frame in enumerate(_ahead(_frames(request, plan, pictures, total_frames))):
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


_DONE = object()


def _ahead(frames: Iterator[av.VideoFrame], depth: int = 8) -> Iterator[av.VideoFrame]:
    """`frames`, made in a thread a few ahead of their use: swscale, numpy and x264 let go of the
    GIL while they work, so on two cores composing the next frames overlaps encoding this one."""
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.05)
                return True
            except Full:
                continue
        return False  # the encoder gave up: nobody will take it

    def produce() -> None:
        try:
            for frame in frames:
                if not offer(frame):
                    return
            offer(_DONE)
        except Exception as error:  # noqa: BLE001 - raised again by the consumer, in its own thread
            offer(error)

    worker = threading.Thread(target=produce, name="preview-frames", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = queue.get(timeout=0.5)
            except Empty:
                if worker.is_alive() or not queue.empty():
                    continue
                raise RuntimeError("the preview's frames stopped coming") from None
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            assert isinstance(item, av.VideoFrame)
            yield item
    finally:
        stop.set()
        worker.join()


class _Planes:
    """A yuv420p frame as one flat buffer, with views of its three planes."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        area = width * height
        self.flat = np.empty(area * 3 // 2, dtype=np.uint8)
        self.y = self.flat[:area].reshape(height, width)
        self.u = self.flat[area : area * 5 // 4].reshape(height // 2, width // 2)
        self.v = self.flat[area * 5 // 4 :].reshape(height // 2, width // 2)

    def paste(self, planes: Sequence[np.ndarray], at: Box) -> None:
        """Copies Y, U and V pixels into the box (even-aligned); Y alone leaves the colour as it was."""
        for pixels, target, step in zip(planes, (self.y, self.u, self.v), (1, 2, 2), strict=False):
            target[at.y // step : at.y // step + pixels.shape[0], at.x // step : at.x // step + pixels.shape[1]] = (
                pixels
            )

    def frame(self) -> av.VideoFrame:
        """A new frame holding the buffer as it is now (the encoder may keep a frame a while)."""
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, pixels in zip(frame.planes, (self.y, self.u, self.v), strict=True):
            _pixels(plane)[:] = pixels
        return frame


MOTION_STEP = 2  # frames per step of the push-in: 15 steps a second look smooth at this pace, for half the work


def _frames(
    request: PreviewRequest, plan: Layout, pictures: Sequence[tuple[str, Image.Image]], total: int
) -> Iterator[av.VideoFrame]:
    canvas = _Planes(request.width, request.height)
    font = _font(plan.font_size)
    clock = Image.new("L", (plan.timecode.width, plan.timecode.height), BAND[0])
    draw_clock = ImageDraw.Draw(clock)
    for index, (_, picture) in enumerate(pictures):
        first = index * total // len(pictures)
        count = (index + 1) * total // len(pictures) - first
        if count <= 0:
            continue
        place = plan.fitted(picture.size)
        canvas.paste(_yuv(_bands(plan, index, font)), Box(0, 0, plan.width, plan.height))
        push = 1 + min(PUSH_MOST, PUSH_PER_SECOND * count / FPS)
        scaled = picture.resize(
            (_even(place.width * push, down=False), _even(place.height * push, down=False)),
            Image.Resampling.BILINEAR,
            reducing_gap=2.0,
        )
        source = _yuv(scaled)
        anchor = _anchor(request.caption, index)
        for step in range(count):
            if step % MOTION_STEP == 0:
                crop = _crop(scaled.width, scaled.height, push, step / max(1, count - 1), anchor)
                canvas.paste(_scaled(source, crop, place), place)
            draw_clock.rectangle((0, 0, clock.width, clock.height), fill=BAND[0])
            draw_clock.text((0, 0), timecode(first + step), fill=TIMECODE[0], font=font)
            canvas.paste([_LUMA[np.asarray(clock)]], plan.timecode)  # grey on grey: luma alone, chroma stays neutral
            yield canvas.frame()


# Full-range grey to video-range luma (BT.601, as swscale converts the rest of the frame).
_LUMA = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)


def _pixels(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable view of a plane's pixels, without the padding at the end of each line."""
    pixels: np.ndarray = np.frombuffer(memoryview(plane), dtype=np.uint8)
    return pixels.reshape(plane.height, plane.line_size)[:, : plane.width]


def _yuv(image: Image.Image) -> list[np.ndarray]:
    """An RGB picture of even size as its Y, U and V planes (video range, as x264 expects)."""
    frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24").reformat(format="yuv420p")
    return [_pixels(plane).copy() for plane in frame.planes]


def _scaled(planes: Sequence[np.ndarray], crop: tuple[int, int, int, int], place: Box) -> list[np.ndarray]:
    """The `crop` (left, top, width, height) of a picture's planes, scaled by swscale to `place`.

    The chroma crop starts at the nearest even luma pixel: half a chroma pixel off, which no one
    sees, for crops that move a pixel at a time.
    """
    left, top, width, height = crop
    cut = av.VideoFrame(width, height, "yuv420p")
    for plane, pixels, step in zip(cut.planes, planes, (1, 2, 2), strict=True):
        _pixels(plane)[:] = pixels[top // step : top // step + plane.height, left // step : left // step + plane.width]
    moved = cut.reformat(width=place.width, height=place.height, interpolation="BILINEAR")
    return [_pixels(plane) for plane in moved.planes]


def _crop(
    width: int, height: int, push: float, progress: float, anchor: tuple[float, float]
) -> tuple[int, int, int, int]:
    """The part of a picture pre-scaled `push` times that shows at `progress` (0 to 1) of its time,
    as (left, top, width, height) in its pixels: all of it at first, then closing in linearly on
    `anchor`."""
    zoom = 1 + (push - 1) * progress
    crop_width = min(width, max(2, round(width / zoom)))
    crop_height = min(height, max(2, round(height / zoom)))
    left = round((width - crop_width) * anchor[0])
    top = round((height - crop_height) * anchor[1])
    return left, top, crop_width, crop_height


def _anchor(caption: Caption | None, index: int) -> tuple[float, float]:
    """Where the push-in on picture `index` heads: chosen by the shot, its take and matrix values,
    so variants of one shot drift apart; with no caption, by the picture's place alone."""
    seed = repr((caption.shot, caption.take, caption.matrix, index)) if caption else str(index)
    return ANCHORS[int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % len(ANCHORS)]


def _bands(plan: Layout, index: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> Image.Image:
    """The still parts of the frames that show picture `index`: bands, their text and the matte."""
    canvas = Image.new("RGB", (plan.width, plan.height), BAND)
    draw = ImageDraw.Draw(canvas)
    area = plan.picture
    draw.rectangle((area.x, area.y, area.right - 1, area.bottom - 1), fill=MATTE)
    for text in (*plan.texts, plan.on_screen[index]):
        draw.text((text.box.x, text.box.y), text.text, fill=text.colour, font=font)
    return canvas


def _pictures(request: PreviewRequest) -> list[tuple[str, Image.Image]]:
    """The pictures in the order they show, each with its citation (`first frame`, `image 1`, `video 1`)."""
    pictures: list[tuple[str, Image.Image]] = []
    if request.first_frame is not None:
        pictures.append(("first frame", _load_image(request.first_frame)))
    pictures.extend((f"image {number}", _load_image(path)) for number, path in enumerate(request.images, 1))
    for number, path in enumerate(request.videos, 1):
        pictures.extend((f"video {number}", still) for still in _video_stills(path, count=2))
    if not pictures:
        pictures.append(("no reference", Image.new("RGB", (16, 9), (20, 20, 28))))
    return pictures


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
