"""Each model's rules as data: limits, enums and file constraints that validation walks.

A new model is a new `ModelRules` value, not a new branch in the validator. The emulator reads
the same tables to judge wire requests, so the limits live in exactly one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final


class MediaType(enum.StrEnum):
    """The `media[].type` values of the wan2.7 protocol."""

    REFERENCE_IMAGE = "reference_image"
    REFERENCE_VIDEO = "reference_video"
    FIRST_FRAME = "first_frame"


class FileKind(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True, slots=True)
class FileRule:
    """What the service accepts for one role of file (reference image, video, voice)."""

    kind: FileKind
    formats: tuple[str, ...]
    max_bytes: int
    side: tuple[int, int] | None = None
    max_aspect: float | None = None
    seconds: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class ModelRules:
    """Everything validation needs to know about one model's request."""

    model: str
    prompt_max: int
    negative_prompt_max: int
    references: tuple[int, int]
    reference_kinds: tuple[MediaType, ...]
    image: FileRule
    video: FileRule | None
    voice: FileRule | None
    has_first_frame: bool
    durations: tuple[int, int]
    duration_max_with_video: int | None
    resolutions: tuple[str, ...]
    ratios: tuple[str, ...]
    seeds: tuple[int, int]
    ratio_ignored_with_first_frame: bool
    prices: MappingProxyType[str, float] = field(default_factory=lambda: MappingProxyType({}))
    currency: str = "CNY"


MB: Final = 1024 * 1024
RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4")
RESOLUTIONS: Final = ("720P", "1080P")
SEED_RANGE: Final = (0, 2_147_483_647)

# The emulator's output sizes and the size check of downloaded renders (wan-r2v-api.md).
OUTPUT_SIZES: Final = MappingProxyType(
    {
        ("720P", "16:9"): (1280, 720),
        ("720P", "9:16"): (720, 1280),
        ("720P", "1:1"): (960, 960),
        ("720P", "4:3"): (1088, 832),
        ("720P", "3:4"): (832, 1088),
        ("1080P", "16:9"): (1920, 1080),
        ("1080P", "9:16"): (1080, 1920),
        ("1080P", "1:1"): (1440, 1440),
        ("1080P", "4:3"): (1632, 1248),
        ("1080P", "3:4"): (1248, 1632),
    }
)

WAN_IMAGE: Final = FileRule(
    kind=FileKind.IMAGE,
    formats=("jpeg", "png", "bmp", "webp"),
    max_bytes=20 * MB,
    side=(240, 8000),
    max_aspect=8.0,
)
WAN_VIDEO: Final = FileRule(
    kind=FileKind.VIDEO,
    formats=("mp4", "mov"),
    max_bytes=100 * MB,
    side=(240, 4096),
    max_aspect=8.0,
    seconds=(1.0, 30.0),
)
WAN_VOICE: Final = FileRule(
    kind=FileKind.AUDIO,
    formats=("wav", "mp3"),
    max_bytes=15 * MB,
    seconds=(1.0, 10.0),
)

WAN27_R2V: Final = ModelRules(
    model="wan2.7-r2v",
    prompt_max=5000,
    negative_prompt_max=500,
    references=(1, 5),
    reference_kinds=(MediaType.REFERENCE_IMAGE, MediaType.REFERENCE_VIDEO),
    image=WAN_IMAGE,
    video=WAN_VIDEO,
    voice=WAN_VOICE,
    has_first_frame=True,
    durations=(2, 15),
    duration_max_with_video=10,
    resolutions=RESOLUTIONS,
    ratios=RATIOS,
    seeds=SEED_RANGE,
    ratio_ignored_with_first_frame=True,
    prices=MappingProxyType({"720P": 0.6, "1080P": 1.0}),
)

HAPPYHORSE_R2V: Final = ModelRules(
    model="happyhorse-1.1-r2v",
    prompt_max=5000,
    negative_prompt_max=500,
    references=(1, 9),
    reference_kinds=(MediaType.REFERENCE_IMAGE,),
    image=FileRule(
        kind=FileKind.IMAGE,
        formats=("jpeg", "png", "webp"),
        max_bytes=20 * MB,
        side=(400, 8000),
        max_aspect=8.0,
    ),
    video=None,
    voice=None,
    has_first_frame=False,
    durations=(2, 15),
    duration_max_with_video=None,
    resolutions=RESOLUTIONS,
    ratios=RATIOS,
    seeds=SEED_RANGE,
    ratio_ignored_with_first_frame=False,
    prices=MappingProxyType({"720P": 0.9, "1080P": 1.2}),
)

MODELS: Final[MappingProxyType[str, ModelRules]] = MappingProxyType(
    {
        "wan2.7-r2v": WAN27_R2V,
        "wan2.7-r2v-2026-06-12": WAN27_R2V,
        "happyhorse-1.1-r2v": HAPPYHORSE_R2V,
    }
)

# The request parameters every model above documents; anything else goes under `extra`.
PARAMETERS: Final = ("resolution", "ratio", "duration", "prompt_extend", "watermark", "seed")


def rules_for(model: str) -> ModelRules | None:
    return MODELS.get(model)


def output_size(resolution: str, ratio: str, first_frame: tuple[int, int] | None = None) -> tuple[int, int]:
    """The pixel size of a render: the tier's table size, or the tier's area at the first frame's aspect."""
    if first_frame is None:
        return OUTPUT_SIZES[(resolution, ratio)]
    area = OUTPUT_SIZES[(resolution, "16:9")][0] * OUTPUT_SIZES[(resolution, "16:9")][1]
    width, height = first_frame
    aspect = width / height
    out_width = round((area * aspect) ** 0.5 / 16) * 16
    out_height = round((area / aspect) ** 0.5 / 16) * 16
    return max(16, out_width), max(16, out_height)
