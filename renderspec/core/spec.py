"""The shape of a spec file, checked once at the boundary with unknown keys refused.

Values that the API needs typed (duration, seed, booleans) may also be written as template
strings such as "{{ d }}"; those are rendered and typed during expansion, so the shape here
accepts either the typed value or a string. A few values are either a string or a table
(`first_frame = { shot = "walk" }`, `media = [{ ref = "ava", voice = false }]`): the table
branch is chosen by the value's type alone, so an error speaks about the form that was written.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
)

Scalar = StrictStr | StrictBool | StrictInt | StrictFloat
TypedInt = StrictInt | StrictStr
TypedBool = StrictBool | StrictStr

# Union branch names in validation errors' locations; expansion drops them from what it shows.
TEXT_TAG = "tag:text"
RENDER_TAG = "tag:render"
MEDIA_TAG = "tag:media"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RenderSpec(_Strict):
    """Another shot's render as a file: `{ shot = "walk", frame = "last" }`.

    `frame` is "first", "last" (the default for a still) or seconds from the start; a reference
    `video = { shot = ... }` is the whole render and takes no frame. Both may be templates.
    """

    shot: StrictStr
    frame: StrictStr | StrictInt | StrictFloat | None = None


class MediaSpec(_Strict):
    """A `media` entry written as a table: the reference, and this shot's own voice or none.

    `voice = false` leaves the reference's voice out; a path (or URL) gives it this voice for this
    shot only. Without `voice`, the entry means what the bare name means.
    """

    ref: StrictStr
    voice: StrictBool | StrictStr | None = None  # this order: typing caches unions by their set of members,
    # so `StrictStr | StrictBool | None` here would also reorder TypedBool's errors (bool first)
    voice_sha256: StrictStr | None = None


def _text_or(tag: str) -> Any:
    return Discriminator(lambda value: tag if isinstance(value, dict) else TEXT_TAG)


FileSpec = Annotated[Annotated[StrictStr, Tag(TEXT_TAG)] | Annotated[RenderSpec, Tag(RENDER_TAG)], _text_or(RENDER_TAG)]
"""A file: a path relative to the spec file, an https:// URL, or another shot's render."""
MediaEntry = Annotated[Annotated[StrictStr, Tag(TEXT_TAG)] | Annotated[MediaSpec, Tag(MEDIA_TAG)], _text_or(MEDIA_TAG)]
"""A reference's name, or a table naming it with a voice of this shot's own."""


class RefSpec(_Strict):
    """A named reference: exactly one image or video, optionally with a voice clip."""

    image: FileSpec | None = None
    video: FileSpec | None = None
    voice: StrictStr | None = None
    sha256: StrictStr | None = None
    voice_sha256: StrictStr | None = None


class Parameters(_Strict):
    """Everything a shot may set and `[defaults]` may provide for every shot of the file."""

    model: StrictStr | None = None
    resolution: StrictStr | None = None
    ratio: StrictStr | None = None
    duration: TypedInt | None = None
    prompt_extend: TypedBool | None = None
    watermark: TypedBool | None = None
    seed: TypedInt | None = None
    negative_prompt: StrictStr | None = None
    first_frame: FileSpec | None = None
    extra: dict[str, Any] | None = None
    takes: TypedInt | None = None
    """How many renders of the shot to make (`<id>.take1`...), each with its own seed."""


class ShotSpec(Parameters):
    id: StrictStr
    prompt: StrictStr
    media: list[MediaEntry] = Field(default_factory=list)
    matrix: dict[str, Annotated[list[Scalar], Field(min_length=1)]] | None = None
    pick: TypedInt | None = None
    """Which take `renders/<id>.mp4` shows (1 when not given)."""


class SpecDocument(_Strict):
    """A whole spec file. Expansion reads it part by part (so one bad part hides nothing else);
    this model is the shape's one description."""

    uses: list[StrictStr] = Field(default_factory=list)
    """Spec files whose [refs], [vars] and [defaults] this file uses, relative to it."""
    defaults: Parameters = Field(default_factory=Parameters)
    vars: dict[str, Any] = Field(default_factory=dict)
    refs: dict[str, RefSpec] = Field(default_factory=dict)
    shots: list[ShotSpec] = Field(default_factory=list)
    cuts: dict[str, Any] = Field(default_factory=dict)
    """Cuts of the film: `[cuts.NAME] shots = [...]`, checked by renderspec.core.cuts."""


PARAMETER_FIELDS = tuple(Parameters.model_fields)
SHOT_FIELDS = tuple(ShotSpec.model_fields)
TOP_LEVEL_FIELDS = tuple(SpecDocument.model_fields)
TABLE_FIELDS: dict[str, tuple[str, ...]] = {
    RENDER_TAG: tuple(RenderSpec.model_fields),
    MEDIA_TAG: tuple(MediaSpec.model_fields),
}
"""The keys each table form allows, by its union branch name (for unknown-key messages)."""
