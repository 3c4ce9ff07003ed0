"""A cut's timeline for editors: the .otio loads in OpenTimelineIO, the .edl parses back through its CMX 3600 adapter."""

from __future__ import annotations

import opentimelineio as otio

from renderspec.interchange import ClipInfo, cut_timeline, edl_text, otio_text, reel_names

CLIPS = [
    ClipInfo("s01-dawn", "../s01-dawn.mp4", 0, 150, 150, {"key": "a" * 64, "prompt": "Mia wakes", "task_id": "t-1"}),
    ClipInfo("s03-bottle", "../s03-bottle.mp4", 15, 105, 180, {"key": "b" * 64, "spec": "specs/a.toml:9"}),
    ClipInfo("s05-end", None, 0, 60, None, {"prompt": "Mia looks back", "slate": True, "task_id": None}),
]


def test_the_otio_file_has_one_clip_per_entry_with_its_range_reference_and_metadata() -> None:
    text = otio_text(cut_timeline("master", CLIPS, 30.0, {"cut": "master", "key": "c" * 64}))
    timeline = otio.adapters.read_from_string(text, "otio_json")
    assert timeline.name == "master" and timeline.metadata["renderspec"]["key"] == "c" * 64
    (track,) = timeline.tracks
    clips = list(track.find_clips())
    assert [clip.name for clip in clips] == ["s01-dawn", "s03-bottle", "s05-end"]
    assert [clip.source_range.duration.to_frames() for clip in clips] == [150, 105, 60]
    assert clips[1].source_range.start_time.to_seconds() == 0.5
    assert timeline.duration().to_seconds() == (150 + 105 + 60) / 30
    assert clips[0].media_reference.target_url == "../s01-dawn.mp4"
    assert clips[0].media_reference.available_range.duration.to_frames() == 150
    assert isinstance(clips[2].media_reference, otio.schema.MissingReference)  # the slate: offline in an editor
    assert dict(clips[0].metadata["renderspec"]) == {"key": "a" * 64, "prompt": "Mia wakes", "task_id": "t-1"}
    assert "task_id" not in clips[2].metadata["renderspec"]  # unknown values are left out, not null
    assert [track.range_of_child(clip).start_time.to_frames() for clip in clips] == [0, 150, 255]


def test_the_edl_parses_back_with_the_same_events_and_reels() -> None:
    timeline = cut_timeline("master", CLIPS, 30.0, {})
    edl = edl_text(timeline, 30.0)
    assert edl.startswith("TITLE: master\n")
    back = otio.adapters.read_from_string(edl, "cmx_3600", rate=30)
    clips = list(back.find_clips())
    assert [clip.name for clip in clips] == ["s01-dawn", "s03-bottle", "s05-end"]
    assert [clip.source_range.duration.to_frames() for clip in clips] == [150, 105, 60]
    assert [clip.source_range.start_time.to_frames() for clip in clips] == [0, 15, 0]
    assert [clip.metadata["cmx_3600"]["reel"] for clip in clips] == ["S01DAWN", "S03BOTTL", "S05END"]
    assert reel_names(["s10-long-name", "s10-long-name-2"]) == {
        "s10-long-name": "S10LONGN",
        "s10-long-name-2": "S10LONG2",
    }
    assert back.duration().to_frames() == 315


def test_reel_names_are_short_unique_letters_and_digits() -> None:
    reels = reel_names(["s03-bottle.take1", "s03-bottle.take2", "s03-bottle.take1", "***", "s03-bottle.take3"])
    assert reels == {
        "s03-bottle.take1": "S03BOTT1",
        "s03-bottle.take2": "S03BOTT2",
        "***": "SHOT",
        "s03-bottle.take3": "S03BOTT3",
    }
    assert all(len(reel) <= 8 and reel.isalnum() for reel in reels.values())
