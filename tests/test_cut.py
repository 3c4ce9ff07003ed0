"""`renderspec cut`, the cuts `build` makes, and `plan`'s stale cuts: end to end through `main(argv)` with the local provider."""

from __future__ import annotations

import json
from pathlib import Path

import opentimelineio as otio
import pytest

from .conftest import run_cli
from .cutmedia import pixel, video_facts

LOCAL = {"RENDERSPEC_PROVIDER": "local"}
SHOTS = """
[refs.mia]
image = "refs/mia.png"

[defaults]
duration = 2

[[shots]]
id = "a-wave"
media = ["mia"]
prompt = "{{ mia }} waves"

[[shots]]
id = "b-walk"
media = ["mia"]
prompt = "{{ mia }} walks away"
ratio = "9:16"

[[shots]]
id = "c-look"
media = ["mia"]
prompt = "{{ mia }} looks back"
"""
CUTS = """
[cuts.master]
shots = ["a-wave", { shot = "b-walk", out = 1.5 }, "c-look"]

[cuts.quick]
shots = ["a-wave", "c-look"]
"""


@pytest.fixture
def storyboard(project: Path) -> Path:
    (project / "specs" / "shots.toml").write_text(SHOTS)
    (project / "specs" / "cuts.toml").write_text(CUTS)
    return project


def build(root: Path, *args: str) -> str:
    run = run_cli("build", *args, cwd=root, env=LOCAL)
    assert run.code == 0, run.out + run.err
    return run.out


def test_build_makes_every_cut_and_an_unchanged_cut_is_not_encoded_again(storyboard: Path) -> None:
    out = build(storyboard)
    folder = storyboard / "renders" / "cuts"
    assert "cut master: wrote renders/cuts/master.mp4" in out
    assert "cut quick: wrote renders/cuts/quick.mp4" in out and "video copied without re-encoding" in out
    assert "b-walk is 720x1280, the cut 1280x720" in out  # why master was re-encoded
    for name in ("master", "quick"):
        assert {(folder / f"{name}.{suffix}").is_file() for suffix in ("mp4", "otio", "edl")} == {True}
    seconds, _, audio_seconds = video_facts(folder / "master.mp4")
    assert abs(seconds - 5.5) <= 1 / 30 and abs(audio_seconds - 5.5) <= 1 / 30
    assert abs(video_facts(folder / "quick.mp4")[0] - 4.0) <= 1 / 30
    before = {path.name: path.stat() for path in folder.iterdir()}

    again = run_cli("cut", cwd=storyboard, env=LOCAL)
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        "cut master: unchanged, renders/cuts/master.mp4 not encoded again",
        "cut quick: unchanged, renders/cuts/quick.mp4 not encoded again",
    ]
    after = {path.name: path.stat() for path in folder.iterdir()}
    for name in ("master.mp4", "master.otio", "master.edl", "quick.mp4"):
        assert (after[name].st_mtime_ns, after[name].st_ino) == (before[name].st_mtime_ns, before[name].st_ino)
    assert "cut master: unchanged" in build(storyboard)  # a no-op build says so too


def test_a_changed_shot_or_trim_makes_its_cuts_again_and_only_those(storyboard: Path) -> None:
    build(storyboard)
    text = (storyboard / "specs" / "shots.toml").read_text()
    (storyboard / "specs" / "shots.toml").write_text(text.replace("walks away", "walks off"))
    out = build(storyboard)
    assert "cut master: wrote" in out and "cut quick: unchanged" in out
    (storyboard / "specs" / "cuts.toml").write_text(CUTS.replace('"a-wave", "c-look"', '"c-look", "a-wave"'))
    run = run_cli("cut", "quick", cwd=storyboard, env=LOCAL)
    assert run.code == 0 and run.out.startswith("cut quick: wrote") and "master" not in run.out


def test_the_boundaries_of_a_built_cut_show_the_right_shots(storyboard: Path) -> None:
    build(storyboard)
    cut = storyboard / "renders" / "cuts" / "master.mp4"
    renders = storyboard / "renders"
    # the tall shot is pillarboxed: black at the sides of its frames, its own picture in the middle;
    # the wide shot before it fills the frame (its caption band reaches both edges)
    assert sum(pixel(cut, 2.0, (0.3, 0.95))) < 40
    assert sum(pixel(cut, 1.9, (0.3, 0.95))) > 40
    assert pixel(cut, 2.0, (0.5, 0.3)) == pytest.approx(pixel(renders / "b-walk.mp4", 0.0, (0.5, 0.3)), abs=24)
    assert pixel(cut, 3.5, (0.5, 0.3)) == pytest.approx(pixel(renders / "c-look.mp4", 0.0, (0.5, 0.3)), abs=24)


def test_a_shot_not_rendered_yet_is_a_slate_in_the_video_and_offline_in_the_timeline(storyboard: Path) -> None:
    build(storyboard, "--shot", "a-wave", "--no-cuts")
    assert not (storyboard / "renders" / "cuts").exists()  # --no-cuts
    run = run_cli("cut", "master", cwd=storyboard, env=LOCAL)
    assert run.code == 0, run.err
    assert "not rendered yet, shown as slates: b-walk, c-look" in run.out
    folder = storyboard / "renders" / "cuts"
    seconds, _, _ = video_facts(folder / "master.mp4")
    assert abs(seconds - (2 + 1.5 + 2)) <= 1 / 30
    assert pixel(folder / "master.mp4", 3.0, (0.98, 0.98)) == pytest.approx((24, 26, 34), abs=12)
    timeline = otio.adapters.read_from_file(str(folder / "master.otio"))
    clips = list(timeline.find_clips())
    assert [clip.name for clip in clips] == ["a-wave", "b-walk", "c-look"]
    assert [type(clip.media_reference).__name__ for clip in clips] == [
        "ExternalReference",
        "MissingReference",
        "MissingReference",
    ]
    assert clips[1].source_range.duration.to_seconds() == 1.5
    lock = (storyboard / "renderspec.lock").read_text()
    meta = clips[0].metadata["renderspec"]
    assert meta["spec"] == "specs/shots.toml:8" and meta["prompt"] == "image 1 waves"
    assert meta["task_id"] in lock and meta["key"] in lock
    assert (folder / clips[0].media_reference.target_url).resolve() == (storyboard / "renders" / "a-wave.mp4").resolve()
    assert clips[1].metadata["renderspec"]["slate"] is True
    edl = otio.adapters.read_from_file(str(folder / "master.edl"), rate=30)
    assert [clip.source_range.duration.to_frames() for clip in edl.find_clips()] == [60, 45, 60]


def test_plan_names_the_cuts_the_next_build_makes_again(storyboard: Path) -> None:
    run = run_cli("plan", cwd=storyboard, env=LOCAL)
    assert run.out.splitlines()[-2:] == [
        "cut master: would be made again (new cut)",
        "cut quick: would be made again (new cut)",
    ]
    build(storyboard)
    assert "cut " not in run_cli("plan", cwd=storyboard, env=LOCAL).out
    text = (storyboard / "specs" / "shots.toml").read_text()
    (storyboard / "specs" / "shots.toml").write_text(text.replace("looks back", "looks up"))
    (storyboard / "specs" / "cuts.toml").write_text(CUTS.replace("out = 1.5", "out = 1.0"))
    lines = run_cli("plan", cwd=storyboard, env=LOCAL).out.splitlines()
    assert lines[-2:] == [
        "cut master: would be made again (c-look will render)",
        "cut quick: would be made again (c-look will render)",
    ]
    (storyboard / "specs" / "shots.toml").write_text(text)
    lines = run_cli("plan", cwd=storyboard, env=LOCAL).out.splitlines()
    assert lines[-1] == "cut master: would be made again (its shots, trims or size changed)"
    (storyboard / "specs" / "cuts.toml").write_text(CUTS)
    (storyboard / "renders" / "cuts" / "quick.mp4").unlink()
    lines = run_cli("plan", cwd=storyboard, env=LOCAL).out.splitlines()
    assert lines[-1] == "cut quick: would be made again (renders/cuts/quick.mp4 is missing or was changed)"


def test_cut_errors_are_located_and_nothing_is_made(storyboard: Path) -> None:
    (storyboard / "specs" / "cuts.toml").write_text(
        "[cuts.master]\nshots = [\n"
        '  "a-wav",\n'
        '  { shot = "b-walk", in = 2.5 },\n'
        '  { shot = "c-look", in = 1, out = 0.5 },\n'
        "]\n"
        '[cuts.other]\nshots = ["a-wave"]\nsize = "1280x721"\n'
    )
    run = run_cli("cut", cwd=storyboard, env=LOCAL)
    assert run.code == 2
    assert run.err.splitlines() == [
        "specs/cuts.toml:5: cuts.master.shots[2].out: out = 0.5 s is not after in = 1 s; `out` is where the shot "
        "stops, in seconds from its start",
        "specs/cuts.toml:9: cuts.other.size: '1280x721' is not a picture size; write \"WIDTHxHEIGHT\" in pixels, "
        'each even and 16–4096 (H.264 with 4:2:0 colour), e.g. "1280x720"',
        "renderspec: error: the cuts above have problems; no cut was made",
    ]
    (storyboard / "specs" / "cuts.toml").write_text(
        '[cuts.master]\nshots = [\n  "a-wav",\n  { shot = "b-walk", in = 2.5 },\n]\n'
    )
    run = run_cli("cut", cwd=storyboard, env=LOCAL)
    assert run.code == 2
    assert run.err.splitlines()[:2] == [
        "specs/cuts.toml:3: cuts.master.shots[0]: no shot has the id 'a-wav'; did you mean 'a-wave'?",
        "specs/cuts.toml:4: cuts.master.shots[1].in: in = 2.5 s is at or past the end of shot b-walk (2 s long)",
    ]
    assert not (storyboard / "renders" / "cuts").exists()


def test_an_unknown_cut_name_is_an_error_with_a_suggestion(storyboard: Path) -> None:
    run = run_cli("cut", "mastr", cwd=storyboard, env=LOCAL)
    assert run.code == 2
    assert run.err.strip() == (
        "renderspec: error: no cut is named 'mastr'; did you mean 'master'? the project's cuts: master, quick"
    )


def test_a_project_without_cuts_says_how_to_declare_one(project: Path) -> None:
    (project / "specs" / "shots.toml").write_text(SHOTS)
    run = run_cli("cut", cwd=project, env=LOCAL)
    assert run.code == 0 and run.out.startswith("no cuts declared")
    assert "cut" not in run_cli("build", cwd=project, env=LOCAL).out.split("rendered 3")[-1]


def test_a_damaged_memo_is_a_miss_not_a_crash(storyboard: Path) -> None:
    build(storyboard)
    memo = storyboard / "renders" / "cuts" / ".cuts.json"
    memo.write_text('{"version": 1, "cuts": {"master": {"key": 3}}}')
    run = run_cli("cut", cwd=storyboard, env=LOCAL)
    assert run.code == 0 and "cut master: wrote" in run.out and "cut quick: wrote" in run.out
    assert set(json.loads(memo.read_text())["cuts"]) == {"master", "quick"}


def test_a_render_that_does_not_decode_fails_its_cut_with_a_message(storyboard: Path) -> None:
    build(storyboard, "--no-cuts")
    lock = (storyboard / "renderspec.lock").read_text()
    key = lock.split("[shots.c-look]")[1].split('key = "')[1].split('"')[0]
    video = storyboard / "cache" / "objects" / key[:2] / key / "video.mp4"
    video.chmod(0o644)
    video.write_bytes(b"\0" * video.stat().st_size)  # same size, so the cache's stat check passes
    run = run_cli("cut", cwd=storyboard, env=LOCAL)
    assert run.code == 1
    assert "renderspec: error: cut master: a render could not be read" in run.err
    assert "it was not written" in run.err
    assert not (storyboard / "renders" / "cuts" / "master.mp4").exists()


def test_a_shot_that_waited_on_another_is_in_the_cut_the_same_build_makes(storyboard: Path) -> None:
    with (storyboard / "specs" / "shots.toml").open("a") as spec:
        spec.write(
            '\n[[shots]]\nid = "d-after"\nmedia = ["mia"]\nfirst_frame = { shot = "a-wave", frame = "last" }\n'
            'prompt = "{{ mia }} turns"\n'
        )
    (storyboard / "specs" / "cuts.toml").write_text('[cuts.chain]\nshots = ["a-wave", "d-after"]\n')
    assert "waiting" in run_cli("plan", cwd=storyboard, env=LOCAL).out
    out = build(storyboard)
    assert "cut chain: wrote renders/cuts/chain.mp4" in out and "slate" not in out
    timeline = otio.adapters.read_from_file(str(storyboard / "renders" / "cuts" / "chain.otio"))
    keys = [clip.metadata["renderspec"]["key"] for clip in timeline.find_clips()]
    assert keys[1] in (storyboard / "renderspec.lock").read_text()  # the final key, not the provisional one
    assert "unchanged" in run_cli("cut", cwd=storyboard, env=LOCAL).out


def test_a_shot_with_takes_is_named_by_its_id_and_shows_its_pick(storyboard: Path) -> None:
    text = (storyboard / "specs" / "shots.toml").read_text()
    (storyboard / "specs" / "shots.toml").write_text(
        text.replace('prompt = "{{ mia }} waves"', 'prompt = "{{ mia }} waves"\ntakes = 2\npick = 2')
    )
    (storyboard / "specs" / "cuts.toml").write_text('[cuts.takes]\nshots = ["a-wave", "a-wave.take1"]\n')
    assert "cut takes: wrote" in build(storyboard)
    timeline = otio.adapters.read_from_file(str(storyboard / "renders" / "cuts" / "takes.otio"))
    clips = list(timeline.find_clips())
    assert [clip.metadata["renderspec"]["shot"] for clip in clips] == ["a-wave.take2", "a-wave.take1"]
    assert [clip.media_reference.target_url for clip in clips] == ["../a-wave.mp4", "../a-wave.take1.mp4"]
    assert [clip.metadata["cmx_3600"]["reel"] for clip in clips] == ["AWAVE", "AWAVETA1"]
