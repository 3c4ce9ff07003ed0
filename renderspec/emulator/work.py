"""What a RUNNING emulator task does: fetch its media, check them like the service, render the preview.

Links may be http(s) (loopback included), `oss://` keys of the emulator's own uploads (only with
the resolve header, and only for the model they were uploaded for), or `data:` URIs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

import httpx

from renderspec.core.rules import FileKind, FileRule, MediaType, output_size
from renderspec.emulator.preview import Caption, PreviewRequest, render_preview
from renderspec.emulator.wire import CreateRequest
from renderspec.fsutil import file_sha256
from renderspec.media import Probe, probe

FETCH_TIMEOUT = 20.0
PREVIEW_VERSION = 2  # how previews look: a change here leaves older memoised encodes unused


class WorkFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Upload:
    path: Path
    model: str
    expires: float


class Uploads:
    """Files received through the temporary-upload flow, by object key."""

    def __init__(self, folder: Path, ttl: float = 48 * 3600) -> None:
        self.folder = folder
        self.ttl = ttl
        self._items: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, model: str, now: float) -> None:
        path = self.folder / key.replace("/", "_")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        with self._lock:
            self._items[key] = Upload(path=path, model=model, expires=now + self.ttl)

    def get(self, key: str, now: float) -> Upload | None:
        with self._lock:
            item = self._items.get(key)
        return item if item is not None and item.expires > now else None

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items


def fetch(
    url: str, destination: Path, rule: FileRule, *, model: str, oss_resolve: bool, uploads: Uploads, now: float
) -> Path:
    """Stores what `url` names at `destination`, refusing more than the rule's size limit."""
    code = "InvalidImageUrl" if rule.kind is FileKind.IMAGE else "InvalidURL"
    if url.startswith("oss://"):
        if not oss_resolve:
            raise WorkFailure("InvalidParameter", f"oss:// urls need the X-DashScope-OssResourceResolve header: {url}")
        upload = uploads.get(url.removeprefix("oss://"), now)
        if upload is None:
            raise WorkFailure(code, f"The oss file does not exist or has expired: {url}")
        if upload.model != model:
            raise WorkFailure(code, f"The oss file was uploaded for model {upload.model}, not {model}: {url}")
        shutil.copyfile(upload.path, destination)
        return destination
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        try:
            data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            raise WorkFailure(code, "The data URI is not valid base64.") from None
        if len(data) > rule.max_bytes:
            raise WorkFailure("InvalidParameter", f"The file is larger than {rule.max_bytes // 2**20} MB.")
        destination.write_bytes(data)
        return destination
    if not url.startswith(("http://", "https://")):
        raise WorkFailure(code, f"The url scheme is not supported: {url[:40]}")
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise WorkFailure(code, f"Failed to download the file from url, status {response.status_code}: {url}")
            size = 0
            with open(destination, "wb") as handle:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > rule.max_bytes:
                        raise WorkFailure(
                            "InvalidParameter", f"The file is larger than {rule.max_bytes // 2**20} MB: {url}"
                        )
                    handle.write(chunk)
    except httpx.HTTPError as error:
        raise WorkFailure(code, f"Failed to download the file from url ({type(error).__name__}): {url}") from None
    return destination


def check(path: Path, rule: FileRule, role: str) -> Probe:
    """Judges a fetched file as the service would; returns what its headers said."""
    found = probe(path)
    if found.kind is not rule.kind or found.format not in rule.formats:
        allowed = "/".join(name.upper() for name in rule.formats)
        raise WorkFailure("InvalidParameter", f"The {role} format is not supported; supported: {allowed}.")
    if path.stat().st_size > rule.max_bytes:
        raise WorkFailure("InvalidParameter", f"The {role} is larger than {rule.max_bytes // 2**20} MB.")
    if rule.side is not None and found.width and found.height:
        low, high = rule.side
        if not (low <= found.width <= high and low <= found.height <= high):
            raise WorkFailure("InvalidParameter", f"The {role} width and height must be in [{low}, {high}].")
        if rule.max_aspect and max(found.width, found.height) / min(found.width, found.height) > rule.max_aspect:
            raise WorkFailure(
                "InvalidParameter",
                f"The {role} aspect ratio must be between 1:{rule.max_aspect:g} and {rule.max_aspect:g}:1.",
            )
    if rule.seconds is not None:
        low_s, high_s = rule.seconds
        if found.seconds is None or not low_s <= found.seconds <= high_s:
            raise WorkFailure("InvalidParameter", f"The {role} duration must be in [{low_s:g}, {high_s:g}] seconds.")
    return found


@dataclass(frozen=True, slots=True)
class Rendered:
    path: Path
    size: tuple[int, int]
    input_video_seconds: float


def run(
    request: CreateRequest,
    *,
    folder: Path,
    result: Path,
    oss_resolve: bool,
    uploads: Uploads,
    now: float,
    memo: Path | None = None,
    caption: Caption | None = None,
) -> Rendered:
    """Fetches, checks and renders one task; raises WorkFailure with the service's code.

    `now` is the emulator's clock at the start of the work: uploads expire by that clock, not the
    wall clock, so a test that moves the emulator's time moves their lifetimes with it. `caption`
    (from the emulator-only shot header) only changes what the preview writes on its frames.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rules = request.rules
    images: list[Path] = []
    videos: list[Path] = []
    first_frame: Path | None = None
    frame_size: tuple[int, int] | None = None
    voice: Path | None = None
    video_seconds = 0.0
    for index, item in enumerate(request.media):
        rule = rules.video if item.type is MediaType.REFERENCE_VIDEO else rules.image
        assert rule is not None
        role = {"reference_image": "image", "reference_video": "video", "first_frame": "first frame"}[item.type.value]
        path = fetch(
            item.url,
            folder / f"media-{index}",
            rule,
            model=request.model,
            oss_resolve=oss_resolve,
            uploads=uploads,
            now=now,
        )
        found = check(path, rule, role)
        if item.type is MediaType.REFERENCE_VIDEO:
            videos.append(path)
            video_seconds += found.seconds or 0.0
        elif item.type is MediaType.FIRST_FRAME:
            first_frame = path
            frame_size = (found.width or 16, found.height or 9)
        else:
            images.append(path)
        if item.voice is not None and rules.voice is not None and voice is None:
            voice = fetch(
                item.voice,
                folder / f"voice-{index}",
                rules.voice,
                model=request.model,
                oss_resolve=oss_resolve,
                uploads=uploads,
                now=now,
            )
            check(voice, rules.voice, "reference voice")
    size = output_size(request.resolution, request.ratio, frame_size)
    preview = PreviewRequest(
        width=size[0],
        height=size[1],
        seconds=request.duration,
        prompt=request.prompt,
        images=images,
        videos=videos,
        first_frame=first_frame,
        voice=voice,
        caption=caption,
    )
    _render_memoised(preview, result, memo)
    return Rendered(path=result, size=size, input_video_seconds=round(video_seconds, 3))


def _render_memoised(preview: PreviewRequest, result: Path, memo: Path | None) -> None:
    """A preview depends only on its pictures, prompt, size, length, voice and caption (not the
    seed), so tasks that differ elsewhere share one encode."""
    if memo is None:
        render_preview(preview, result)
        return
    digest = hashlib.sha256()
    for path in (*preview.images, *preview.videos, preview.first_frame, preview.voice):
        digest.update(b"-" if path is None else file_sha256(path).encode())
    digest.update(f"{preview.width}x{preview.height}/{preview.seconds}/{preview.prompt}".encode())
    digest.update(f"/{preview.caption!r}/{PREVIEW_VERSION}".encode())  # a burned-in name is part of the picture
    cached = memo / f"{digest.hexdigest()}.mp4"
    with _MEMO_LOCKS.setdefault(cached.name, threading.Lock()):  # one encode per preview, however many ask
        if not cached.exists():
            memo.mkdir(parents=True, exist_ok=True)
            render_preview(preview, cached)
    shutil.copyfile(cached, result)


_MEMO_LOCKS: dict[str, threading.Lock] = {}
