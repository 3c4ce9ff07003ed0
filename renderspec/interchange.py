"""A cut for editing tools: an OpenTimelineIO timeline (`NAME.otio`) and a CMX 3600 EDL (`NAME.edl`).

One video track, one clip per entry of the cut, in order. A rendered entry's clip points at the
shot's render by a URL relative to the folder of the .otio file (`../s01-dawn.mp4` for
renders/cuts/), so the renders/ folder can be moved or shipped whole; its source range is the
entry's trims. A shot not rendered yet is a clip with a missing reference (editors show it
offline), so its name, length and metadata still stand in the timeline where the slate is in the
video. Every clip carries what made it under `metadata["renderspec"]`: shot, key, prompt, spec
location, task id. The EDL is written by OTIO's CMX 3600 adapter, with reel names that EDL
accepts (at most 8 letters and digits, unique within the cut).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import opentimelineio as otio

REEL_LENGTH = 8


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """One entry of a cut as the timeline shows it."""

    name: str
    target: str | None
    """The render's URL relative to the .otio file's folder; None for a shot not rendered yet."""
    source_start: int
    """First frame used of the render (its `in`), at the cut's frame rate."""
    frames: int
    available: int | None = None
    """The render's whole length in frames (None when unknown or not rendered)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)


def reel_names(ids: Sequence[str]) -> dict[str, str]:
    """A reel name per distinct shot id: uppercase letters and digits, at most 8, unique (an EDL's rules)."""
    reels: dict[str, str] = {}
    taken: set[str] = set()
    for shot_id in ids:
        if shot_id in reels:
            continue
        letters = re.sub(r"[^A-Z0-9]", "", shot_id.upper()) or "SHOT"
        digits = letters[len(letters.rstrip("0123456789")) :][-3:]
        # cut short, a name keeps its last digits (a take's number), not only its start
        base = letters if len(letters) <= REEL_LENGTH else letters[: REEL_LENGTH - len(digits)] + digits
        reel, count = base, 1
        while reel in taken:
            count += 1
            suffix = str(count)
            reel = base[: REEL_LENGTH - len(suffix)] + suffix
        taken.add(reel)
        reels[shot_id] = reel
    return reels


def cut_timeline(name: str, clips: Sequence[ClipInfo], fps: float, metadata: Mapping[str, Any]) -> otio.schema.Timeline:
    """The cut as an OTIO timeline: one video track, one clip per entry."""
    timeline = otio.schema.Timeline(name=name, metadata={"renderspec": dict(metadata)})
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    reels = reel_names([clip.name for clip in clips])
    for clip in clips:
        if clip.target is None:
            reference: otio.core.MediaReference = otio.schema.MissingReference(
                name=clip.name, metadata={"renderspec": {"slate": True}}
            )
        else:
            available = (
                otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, fps), otio.opentime.RationalTime(clip.available, fps)
                )
                if clip.available
                else None
            )
            reference = otio.schema.ExternalReference(target_url=clip.target, available_range=available)
        comments = ["RENDERSPEC SLATE: NOT RENDERED YET"] if clip.target is None else []
        track.append(
            otio.schema.Clip(
                name=clip.name,
                media_reference=reference,
                source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(clip.source_start, fps), otio.opentime.RationalTime(clip.frames, fps)
                ),
                metadata={
                    "renderspec": _plain(clip.metadata),
                    "cmx_3600": {"reel": reels[clip.name], "comments": comments},
                },
            )
        )
    return timeline


def otio_text(timeline: otio.schema.Timeline) -> str:
    return str(otio.adapters.write_to_string(timeline, "otio_json")) + "\n"


def edl_text(timeline: otio.schema.Timeline, fps: float) -> str:
    """The timeline as a CMX 3600 EDL (Avid style), through OTIO's adapter."""
    return str(otio.adapters.write_to_string(timeline, "cmx_3600", rate=fps, style="avid"))


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata OTIO can hold: no None values (left out), nested mappings and lists kept."""
    plain: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        plain[key] = _plain(value) if isinstance(value, Mapping) else value
    return plain
