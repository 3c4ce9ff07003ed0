"""Plain data passed between the planner's stages and out to the edges."""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from renderspec.core.locations import Path
from renderspec.core.rules import FileKind, MediaType


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A spec file's text as read by the edge; `path` is project-relative, POSIX-style."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file in the project, named by its project-relative path (never part of a key)."""

    path: str


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """An http(s) URL written in a spec, optionally pinned to the sha256 of what it serves."""

    url: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class RenderOf:
    """Another shot's render used as a file: the whole video (`frame` None), or one still of it.

    `frame` is "first", "last" or a time in seconds. The file exists only once that shot is
    rendered, so a shot using it waits for it, and its key holds the render's sha256.
    """

    shot: str
    frame: str | float | None = None
    upstream_key: str | None = None
    """Set by the planner: the upstream shot's key (its render may not exist yet)."""
    sha256: str | None = None
    """Set by the planner once the upstream's render is known: the sha256 of its video."""

    @property
    def fact_id(self) -> str:
        """Where the planner keeps this file's facts, beside the project's paths (never a path itself)."""
        return f"render:{self.shot}" if self.frame is None else f"render:{self.shot}@{self.frame}"

    @property
    def label(self) -> str:
        if self.frame is None:
            return f"the render of shot {self.shot}"
        at = f"{self.frame} frame" if isinstance(self.frame, str) else f"frame at {self.frame:g} s"
        return f"the {at} of shot {self.shot}"


FileRef = LocalFile | RemoteFile | RenderOf


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the edge learnt about a local file from its bytes and headers."""

    sha256: str
    size: int
    kind: FileKind | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    seconds: float | None = None
    error: str | None = None
    refusal: str | None = None
    """Why the file may not be used at all (outside the project): never read, never sent."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A named `[refs.NAME]` entry after rendering, with where it was written."""

    name: str
    kind: MediaType
    file: FileRef
    voice: FileRef | None
    origin: Path


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One entry of the request's `media` array, before uploads."""

    type: MediaType
    file: FileRef
    voice: FileRef | None = None
    reference: str | None = None
    origin: Path = ()
    origin_file: str | None = None
    """The spec file `origin` is in: a reference's own file (which may be another than the shot's,
    through `uses`), or the file of the [defaults] that gave the first frame; None: the shot's file."""
    voice_origin: Path | None = None
    """Where the shot gave this reference a voice of its own (`{ ref = "ben", voice = "..." }`), in
    the shot's file; None when `voice` is the reference's own (or was left out with `voice = false`)."""


@dataclass(slots=True)
class ShotDraft:
    """An expanded, rendered shot: the request's content before validation against files."""

    id: str
    spec: str
    index: int
    model: str
    prompt: str
    negative_prompt: str | None
    media: list[MediaItem]
    parameters: dict[str, Any]
    extra: dict[str, Any]
    origins: dict[str, Path]
    origin_files: dict[str, str] = field(default_factory=dict)
    """For a field of `origins` written in another file (a [defaults] imported through `uses`), that file."""
    matrix: dict[str, Any] = field(default_factory=dict)
    cited: frozenset[str] = frozenset()
    ratio_on_shot: bool = False
    failed: frozenset[str] = frozenset()
    take: int | None = None
    """This draft's take number when its shot asks for several (`takes = 3`): its id is then
    `<shot>.take<N>`, and `take_of` is the shot's own id."""
    take_of: str | None = None
    picked: bool = True
    """Whether this take is the shot's pick (what `renders/<shot>.mp4` shows); always true without takes."""
    # explain: the spec file and fragment files the shot's templates read, with the sha256 of each text
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_complete(self) -> bool:
        """False when some field already has an error: such a shot is checked but never planned."""
        return not self.failed

    @property
    def references(self) -> list[MediaItem]:
        return [item for item in self.media if item.type is not MediaType.FIRST_FRAME]

    @property
    def first_frame(self) -> MediaItem | None:
        return next((item for item in self.media if item.type is MediaType.FIRST_FRAME), None)


class State(enum.StrEnum):
    """Where a shot stands before a build: what `plan` shows and `build` acts on."""

    NEW = "new"  # no render of this shot id is known
    STALE = "stale"  # the lock remembers a render of this shot made from other inputs (or lost)
    CACHED = "cached"  # the cache holds this shot's key
    REMOTE = "remote"  # the remote cache holds this shot's key: fetched, never paid for again
    MISSING = "missing"  # the lock says this very key was paid for, and neither cache holds it
    WAITING = "waiting"  # uses another shot's render that does not exist yet: its key is known once it does

    @property
    def renders(self) -> bool:
        """Whether a build would ask the service for this shot (and pay for it)."""
        return self in (State.NEW, State.STALE, State.MISSING, State.WAITING)


@dataclass(frozen=True, slots=True)
class PlannedShot:
    """A valid shot ready to render: the exact request, its content key and its cost."""

    id: str
    spec: str
    index: int
    key: str
    request: dict[str, Any]
    payload: dict[str, Any]
    expected_size: tuple[int, int] | None
    model: str
    duration: int
    resolution: str
    ratio: str | None
    digests: Mapping[str, str]
    input_video_seconds: float | None
    cost: float | None
    currency: str
    state: State = State.NEW
    reasons: tuple[str, ...] = ("new shot",)
    take: int | None = None
    take_of: str | None = None
    picked: bool = True
    waiting_on: tuple[str, ...] = ()
    """The shots whose renders this one uses and that are not rendered yet: until they are, `key`
    is provisional (it hashes their keys, not their videos) and no cache can hold it."""
    upstream: tuple[str, ...] = ()
    """Every shot whose render this one uses (rendered or not)."""
    # explain: the spec file and fragments its templates read, by path, with the sha256 of each text
    sources: Mapping[str, str] = field(default_factory=dict)
    # previews: who the shot is, for the local emulator to burn in (never in the request or the key)
    labels: ShotLabels | None = None

    @property
    def group(self) -> str:
        """The shot id as written: a take's shot, else the id itself."""
        return self.take_of or self.id

    def with_state(self, state: State, reasons: tuple[str, ...]) -> PlannedShot:
        # A copy with two fields set: dataclasses.replace re-runs __init__ over every field, and a
        # plan decides every shot (a third of a 10,000-shot no-op plan went there).
        copied = copy.copy(self)
        object.__setattr__(copied, "state", state)
        object.__setattr__(copied, "reasons", reasons)
        return copied


@dataclass(frozen=True, slots=True)
class ShotLabels:
    """Who a shot is, in words its request does not carry: the shot as written, its take, each
    citation's reference name and its matrix values.

    Only the local emulator sees them (its previews burn them in); they are never part of the
    request or its key, and no real service is sent them.
    """

    shot: str
    take: int | None = None
    refs: tuple[tuple[str, str], ...] = ()
    """(citation as the prompt numbers it, name): `("image 1", "mia")`, `("first frame", "start.png")`."""
    matrix: tuple[tuple[str, str], ...] = ()
    """(variable, value as text), in the matrix's order."""
