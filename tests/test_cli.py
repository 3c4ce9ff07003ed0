"""`renderspec check` and `renderspec plan` as a user runs them, on real files."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli, write_mp4, write_png


def test_check_passes_on_the_example_storyboard(example_project: Path) -> None:
    run = run_cli("check", cwd=example_project)
    assert run.code == 0, run.out + run.err
    assert run.out.strip().splitlines()[-1] == "ok: 8 shots in 2 spec files (0 errors, 0 warnings)"


def test_plan_lists_every_shot_as_new_with_key_and_cost(example_project: Path) -> None:
    run = run_cli("plan", cwd=example_project)
    assert run.code == 0, run.err
    lines = run.out.strip().splitlines()
    assert len(lines) == 9
    assert lines[0].split()[:2] == ["new", "garden-walk"]
    assert "¥4.80" in lines[0]
    assert lines[-1] == "8 shots: 8 new, 0 stale, 0 cached; to render: 8 shots, 44 s of video, est. ¥30.00"


def test_plan_json_is_one_document_with_the_exact_request(example_project: Path) -> None:
    run = run_cli("plan", "--json", cwd=example_project)
    assert run.code == 0, run.err
    document = json.loads(run.out)
    shots = {shot["id"]: shot for shot in document["shots"]}
    walk = shots["garden-walk"]
    assert walk["state"] == "new" and walk["reasons"] == ["new shot"]
    assert len(walk["key"]) == 64 and walk["spec"] == "specs/garden.toml" and walk["line"] == 27
    request = walk["request"]
    assert request["model"] == "wan2.7-r2v"
    assert request["parameters"] == {
        "resolution": "720P",
        "ratio": "16:9",
        "duration": 8,
        "prompt_extend": False,
        "watermark": False,
        "seed": 7,
    }
    assert request["input"]["prompt"].startswith(
        "image 1 wearing the gown from image 2 walks slowly through the garden of image 3."
    )
    first = request["input"]["media"][0]
    assert first["type"] == "reference_image"
    assert first["url"]["local"] == "specs/refs/mia.png" and len(first["url"]["sha256"]) == 64
    assert first["reference_voice"]["local"] == "specs/refs/mia.wav"
    hero = shots["bottle-hero"]
    assert hero["input_video_seconds"] == pytest.approx(2.0, abs=0.1)
    assert hero["cost"] == pytest.approx((6 + hero["input_video_seconds"]) * 0.6)
    assert document["summary"]["new"] == 8 and document["summary"]["currency"] == "CNY"
    assert shots["turn-left"]["request"]["input"]["media"][-1]["type"] == "first_frame"
    assert shots["bottle-in-hand-2"]["request"]["parameters"]["seed"] == 102


def test_apiyi_prices_in_usd_and_shares_keys_with_dashscope(example_project: Path) -> None:
    apiyi = json.loads(run_cli("plan", "--json", "--provider", "apiyi", cwd=example_project).out)
    dashscope = json.loads(run_cli("plan", "--json", "--provider", "dashscope", cwd=example_project).out)
    local = json.loads(run_cli("plan", "--json", cwd=example_project).out)
    assert apiyi["summary"]["currency"] == "USD"
    assert [s["key"] for s in apiyi["shots"]] == [s["key"] for s in dashscope["shots"]]
    assert [s["key"] for s in apiyi["shots"]] != [s["key"] for s in local["shots"]]


def test_check_reports_every_problem_with_file_line_shot_and_field(project: Path) -> None:
    (project / "specs" / "bad.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n'
        '[refs.ghost]\nimage = "refs/missing.png"\n'
        '[[shots]]\nid = "one"\nmedia = ["mia"]\nprompt = "{{ mia }} {{ dres }}"\nduration = 20\n'
        '[[shots]]\nid = "two"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nresolution = "720p"\n'
    )
    run = run_cli("check", cwd=project)
    assert run.code == 1
    assert run.out.splitlines() == [
        "specs/bad.toml:4: refs.ghost.image: file not found: specs/refs/missing.png (paths are relative to the spec file's folder)",
        "specs/bad.toml:8: shot one: prompt: undefined name in template: 'dres' is undefined; defined here: ghost, mia",
        "specs/bad.toml:9: shot one: duration: 20 s is out of range; allowed 2–15 s",
        "specs/bad.toml:14: shot two: resolution: '720p' is not allowed; wan2.7-r2v takes 720P, 1080P (uppercase P)",
        "invalid: 4 errors, 0 warnings in 1 spec file",
    ]


def test_real_media_files_are_checked_by_their_headers(project: Path) -> None:
    write_png(project / "specs" / "refs" / "tiny.png", size=(100, 100))
    write_mp4(project / "specs" / "refs" / "clip.mp4", seconds=2, size=(320, 240))
    (project / "specs" / "refs" / "fake.png").write_bytes(b"not an image at all")
    (project / "specs" / "a.toml").write_text(
        '[refs.tiny]\nimage = "refs/tiny.png"\n[refs.clip]\nvideo = "refs/clip.mp4"\n[refs.fake]\nimage = "refs/fake.png"\n'
        '[refs.wrong]\nimage = "refs/clip.mp4"\n'
        '[[shots]]\nid = "a"\nmedia = ["tiny", "clip", "fake", "wrong"]\nprompt = "{{ tiny }} {{ clip }} {{ fake }} {{ wrong }}"\n'
    )
    run = run_cli("check", cwd=project)
    assert run.code == 1
    assert (
        "specs/a.toml:2: refs.tiny.image: specs/refs/tiny.png is 100x100 px; each side must be 240–8000 px" in run.out
    )
    assert "refs.fake.image: specs/refs/fake.png is not a readable image: not an image, video or audio file" in run.out
    assert "refs.wrong.image: specs/refs/clip.mp4 is a video (MP4), not an image" in run.out
    assert "refs.clip" not in run.out


def test_plan_with_invalid_specs_exits_2_and_prints_problems_on_stderr(project: Path) -> None:
    (project / "specs" / "a.toml").write_text('[[shots]]\nid = "a"\nprompt = "x"\n')
    run = run_cli("plan", cwd=project)
    assert run.code == 2
    assert run.out == ""
    assert "specs/a.toml:1: shot a: media: has 0 references" in run.err


def test_plan_json_with_invalid_specs_is_still_one_json_document(project: Path) -> None:
    (project / "specs" / "a.toml").write_text('[[shots]]\nid = "a"\nprompt = "x"\n')
    run = run_cli("plan", "--json", cwd=project)
    assert run.code == 2
    assert json.loads(run.out)["summary"]["errors"] == 1


def test_plan_check_exits_1_while_anything_would_render(example_project: Path) -> None:
    assert run_cli("plan", "--check", cwd=example_project).code == 1


def test_paths_may_name_files_or_folders_and_missing_paths_are_usage_errors(example_project: Path) -> None:
    one = run_cli("check", "specs/product.toml", cwd=example_project)
    assert one.code == 0 and "3 shots in 1 spec file" in one.out
    missing = run_cli("check", "nope.toml", cwd=example_project)
    assert missing.code == 2 and "no such spec file or folder" in missing.err


def test_project_root_is_found_from_a_subfolder(example_project: Path) -> None:
    run = run_cli("check", cwd=example_project / "specs" / "refs")
    assert run.code == 0 and "8 shots" in run.out


def test_bad_settings_are_one_line_errors(example_project: Path) -> None:
    (example_project / "renderspec.toml").write_text('[renderspec]\nprovidr = "local"\n')
    run = run_cli("check", cwd=example_project)
    assert run.code == 2
    assert run.err.strip() == (
        "renderspec: error: renderspec.toml:2: renderspec.providr: unknown setting (did you mean provider?)"
    )
    (example_project / "renderspec.toml").write_text(
        '[renderspec]\nconcurency = 4\n\n[renderspec.remote]\nmdoe = "read"\n'
    )
    run = run_cli("check", cwd=example_project)
    assert run.code == 2
    assert run.err.splitlines() == [
        "renderspec: error: renderspec.toml:2: renderspec.concurency: unknown setting (did you mean concurrency or currency?)",
        "renderspec.toml:5: renderspec.remote.mdoe: unknown setting (did you mean mode?)",
    ]


def test_unknown_provider_from_the_environment_is_an_error(example_project: Path) -> None:
    run = run_cli("check", cwd=example_project, env={"RENDERSPEC_PROVIDER": "openai"})
    assert run.code == 2 and "unknown provider 'openai'" in run.err


def test_warm_plan_reads_no_file_contents(example_project: Path) -> None:
    from renderspec.project import plan_project
    from renderspec.settings import load_settings

    settings = load_settings(example_project, {})
    assert plan_project(settings, [], example_project).files_read == 6
    assert plan_project(settings, [], example_project).files_read == 0
    os.utime(example_project / "specs" / "refs" / "mia.png")  # touched, bytes unchanged
    again = plan_project(settings, [], example_project)
    assert again.files_read == 1


def test_keys_survive_touching_and_moving_files_on_disk(example_project: Path) -> None:
    before = {s["id"]: s["key"] for s in json.loads(run_cli("plan", "--json", cwd=example_project).out)["shots"]}
    refs = example_project / "specs" / "refs"
    os.utime(refs / "dress.png", (1, 1))
    (refs / "moved").mkdir()
    (refs / "garden.jpg").rename(refs / "moved" / "garden.jpg")
    spec = example_project / "specs" / "garden.toml"
    spec.write_text(spec.read_text().replace("refs/garden.jpg", "refs/moved/garden.jpg"))
    after = {s["id"]: s["key"] for s in json.loads(run_cli("plan", "--json", cwd=example_project).out)["shots"]}
    assert after == before
    write_png(refs / "dress.png", colour=(1, 2, 3))
    changed = {s["id"]: s["key"] for s in json.loads(run_cli("plan", "--json", cwd=example_project).out)["shots"]}
    assert {shot for shot in before if changed[shot] != before[shot]} == {"garden-walk", "turn-left", "turn-right"}


def test_a_damaged_digest_memo_is_a_warning_not_a_crash(example_project: Path) -> None:
    assert run_cli("check", cwd=example_project).code == 0
    (example_project / "cache" / "assets.json").write_text("{not json")
    run = run_cli("check", cwd=example_project)
    assert run.code == 0
    assert "warning: ignoring the damaged file digest memo" in run.out


def test_non_utf8_spec_is_reported(project: Path) -> None:
    (project / "specs" / "latin.toml").write_bytes(b'[vars]\nname = "Ren\xe9e"\n')
    run = run_cli("check", cwd=project)
    assert (
        run.code == 1
        and "specs/latin.toml:2: is not UTF-8 text (byte 0xe9 at column 12); save the file as UTF-8" in run.out
    )


_toml_chars = string.ascii_letters + string.digits + " =[]{}\"'.,#\n-_:%|()"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=_toml_chars, max_size=200))
def test_random_garbage_never_produces_a_traceback(project: Path, garbage: str) -> None:
    (project / "specs" / "fuzz.toml").write_text(garbage)
    run = run_cli("check", cwd=project)
    assert run.code in (0, 1), run.err
    assert "Traceback" not in run.out + run.err


_template_pieces = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        " mia ",
        " x ",
        "|",
        "upper",
        "include",
        "'a'",
        "for",
        "in",
        "endfor",
        "(",
        ")",
        ".",
        "__class__",
        "range(9)",
        "1/0",
        "~",
        "if",
    ]
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_template_pieces, max_size=12).map("".join))
def test_random_templates_never_produce_a_traceback(project: Path, template: str) -> None:
    quote = "\x27" * 3  # TOML literal strings: the template is taken byte for byte
    (project / "specs" / "fuzz.toml").write_text(
        "[refs.mia]\nimage = 'refs/mia.png'\n[[shots]]\nmedia = ['mia']\n"
        f"id = {quote}a{template}{quote}\nprompt = {quote}{{{{ mia }}}}{template}{quote}\n"
        f"seed = {quote}{template}{quote}\n"
    )
    run = run_cli("check", cwd=project)
    assert run.code in (0, 1), run.err
    assert "Traceback" not in run.out + run.err


def test_prices_with_an_unknown_resolution_are_refused(example_project: Path) -> None:
    (example_project / "renderspec.toml").write_text('[renderspec]\n[renderspec.prices."wan2.7-r2v"]\n720p = 0.5\n')
    run = run_cli("plan", cwd=example_project)
    assert run.code == 2 and "prices for wan2.7-r2v name 720p; resolutions are 720P, 1080P" in run.err


def test_configured_prices_and_currency_are_used(example_project: Path) -> None:
    (example_project / "renderspec.toml").write_text(
        '[renderspec]\ncurrency = "EUR"\n[renderspec.prices."wan2.7-r2v"]\n720P = 0.1\n'
    )
    document = json.loads(run_cli("plan", "--json", cwd=example_project).out)
    walk = next(shot for shot in document["shots"] if shot["id"] == "garden-walk")
    assert walk["currency"] == "EUR" and walk["cost"] == pytest.approx(0.8)


def test_max_matrix_and_max_shots_come_from_renderspec_toml(example_project: Path) -> None:
    settings_file = example_project / "renderspec.toml"
    settings_file.write_text("[renderspec]\nmax_matrix = 1\n")
    run = run_cli("check", cwd=example_project)
    assert run.code == 1
    assert (
        "specs/garden.toml:37: shot turn-{{ side }}: matrix: makes 2 shots (side: 2); a shot may make at most 1; "
        "split it into several shots, or raise max_matrix in renderspec.toml"
    ) in run.out.splitlines()
    settings_file.write_text("[renderspec]\nmax_shots = 3\n")
    run = run_cli("check", cwd=example_project)
    assert run.code == 1
    assert run.out.splitlines()[0].startswith("specs/garden.toml:42: shot portrait-{{ ratio | replace(':', 'x') }}: ")
    assert "takes the project past 3 shots" in run.out
    settings_file.write_text("[renderspec]\nmax_matrix = 0\n")
    run = run_cli("check", cwd=example_project)
    assert run.code == 2
    assert run.err.strip() == (
        "renderspec: error: renderspec.toml:2: renderspec.max_matrix: Input should be greater than or equal to 1"
    )


def test_check_of_hostile_specs_reports_each_bomb_and_stays_small(project: Path) -> None:
    hundred = ", ".join(str(n) for n in range(100))
    (project / "specs" / "bombs.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\n'
        '\n[[shots]]\nid = "multiply"\nmedia = ["mia"]\nprompt = "{{ mia }} {{ \'x\' * 4000000000 }}"\n'
        '\n[[shots]]\nid = "loops"\nmedia = ["mia"]\n'
        'prompt = "{{ mia }} {% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}"\n'
        '\n[[shots]]\nid = "m-{{ a }}-{{ b }}-{{ c }}-{{ d }}"\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'
        f"matrix = {{ a = [{hundred}], b = [{hundred}], c = [{hundred}], d = [{hundred}] }}\n"
        '\n[[shots]]\nid = "center"\nmedia = ["mia"]\nprompt = "{{ mia }} {{ \'x\'|center(999999999) }}"\n'
        '\n[[shots]]\nid = "format"\nmedia = ["mia"]\nprompt = "{{ mia }} {{ \'{:>999999999}\'.format(1) }}"\n'
    )
    peak_file = project / "peak"
    run = subprocess.run(
        [sys.executable, "-c", _PEAK_OF, str(peak_file), "-m", "renderspec", "check"],
        cwd=project,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    out = run.stdout
    too_big = "would make a value of more than 100,000 characters or items, the most a template may build"
    assert run.returncode == 1, out + run.stderr
    assert out.splitlines() == [
        f"specs/bombs.toml:7: shot multiply: prompt: `*` {too_big}",
        "specs/bombs.toml:12: shot loops: prompt: template takes more than 100,000 steps of work "
        "(loop iterations, calls, filters; long values count more); make its loops shorter",
        "specs/bombs.toml:18: shot m-{{ a }}-{{ b }}-{{ c }}-{{ d }}: matrix: makes 100,000,000 shots "
        "(a: 100 × b: 100 × c: 100 × d: 100); a shot may make at most 10,000; "
        "split it into several shots, or raise max_matrix in renderspec.toml",
        f"specs/bombs.toml:23: shot center: prompt: filter center {too_big}",
        f"specs/bombs.toml:28: shot format: prompt: format() {too_big}",
        "invalid: 5 errors, 0 warnings in 1 spec file",
    ]
    assert run.stderr == ""
    assert float(peak_file.read_text()) < 300


# Runs the command named by its arguments and writes the command's peak memory in MB to a file.
# A small parent of its own, because a child's ru_maxrss starts from the memory of the process
# that spawned it (Linux keeps the old image's peak across exec), and late in a test run pytest
# holds hundreds of MB.
_PEAK_OF = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, *sys.argv[2:]])
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)))
sys.exit(child.returncode)
"""


def test_without_settings_the_root_is_the_git_work_trees_top_level(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from tests.conftest import REPO

    repo = tmp_path / "story"
    shutil.copytree(REPO / "specs", repo / "specs", ignore=shutil.ignore_patterns("*.py"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    run = run_cli("plan", ".", cwd=repo / "specs", env={"RENDERSPEC_PROVIDER": "local"})
    assert run.code == 0, run.err
    assert (repo / "cache").is_dir() and not (repo / "specs" / "cache").exists()
    outside = tmp_path / "loose"
    shutil.copytree(REPO / "specs", outside, ignore=shutil.ignore_patterns("*.py"))
    run = run_cli("plan", ".", cwd=outside, env={"RENDERSPEC_PROVIDER": "local"})
    assert run.code == 0 and (outside / "cache").is_dir()  # no git, no settings: the current folder


def test_shot_globs_select_shots_for_plan_and_build(example_project: Path) -> None:
    env = {"RENDERSPEC_PROVIDER": "local"}
    shown = run_cli("plan", "--json", "--shot", "turn-*", cwd=example_project, env=env)
    assert shown.code == 0, shown.err
    assert [shot["id"] for shot in json.loads(shown.out)["shots"]] == ["turn-left", "turn-right"]
    built = run_cli("build", "--shot", "turn-*", cwd=example_project, env=env)
    assert built.code == 0 and "rendered 2, cached 0" in built.out, built.out + built.err
    missed = run_cli("build", "--shot", "turn-lfet", cwd=example_project, env=env)
    assert missed.code == 2 and "did you mean turn-left" in missed.err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("media = [ava]", 'write "ava"'),
        ('prompt = "unterminated', "a string is not closed"),
        ("prompt", 'a key needs "="'),
    ],
    ids=["unquoted", "unterminated", "no-equals"],
)
def test_toml_syntax_errors_name_the_line_column_and_likely_cause(project: Path, line: str, expected: str) -> None:
    (project / "specs" / "a.toml").write_text(f'[[shots]]\nid = "a"\n{line}\n')
    run = run_cli("check", cwd=project, env={})
    assert run.code == 1
    assert "specs/a.toml:3: invalid TOML (column" in run.out and expected in run.out, run.out


def test_a_voice_longer_than_its_shot_is_a_warning(project: Path) -> None:
    from tests.conftest import write_wav

    write_wav(project / "specs" / "refs" / "long.wav", seconds=6.0)
    (project / "specs" / "a.toml").write_text(
        '[refs.mia]\nimage = "refs/mia.png"\nvoice = "refs/long.wav"\n\n'
        '[[shots]]\nid = "short"\nmedia = ["mia"]\nprompt = "{{ mia }} waves"\nduration = 3\n\n'
        '[[shots]]\nid = "long"\nmedia = ["mia"]\nprompt = "{{ mia }} talks"\nduration = 8\n'
    )
    run = run_cli("check", cwd=project, env={})
    assert run.code == 0, run.out
    warnings = [line for line in run.out.splitlines() if "not heard" in line]
    assert len(warnings) == 1 and "shot short" in warnings[0] and "6.0 s long" in warnings[0], run.out
