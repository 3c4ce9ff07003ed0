"""Voices per shot: a media entry may be a table, `{ ref = "ava", voice = false }` or with a voice of its own."""

from __future__ import annotations

import dataclasses

import pytest

from renderspec.core.expansion import expand
from renderspec.core.model import LocalFile, SourceFile

from .support import HEADER, STANDARD_FACTS, VOICE, errors, messages, plan_text, shot

LINE2 = dataclasses.replace(VOICE, sha256="f" * 64, seconds=3.0)
FACTS = {**STANDARD_FACTS, "specs/refs/ben-line2.wav": LINE2}


def media_of(text: str, **kwargs: object) -> list[dict[str, object]]:
    result = plan_text(text, facts=FACTS, **kwargs)  # type: ignore[arg-type]
    assert errors(result) == [], errors(result)
    (planned,) = result.shots
    return list(planned.request["input"]["media"])


def test_voice_false_uses_the_reference_without_its_voice() -> None:
    media = media_of(
        shot('id = "a"\nmedia = [{ ref = "mia", voice = false }, "dress"]\nprompt = "{{ mia }} {{ dress }}"')
    )
    assert media == [
        {"type": "reference_image", "url": LocalFile("specs/refs/mia.png")},
        {"type": "reference_image", "url": LocalFile("specs/refs/dress.png")},
    ]


def test_a_voice_for_one_shot_joins_the_reference_and_citations_are_unchanged() -> None:
    text = shot(
        'id = "a"\nmedia = ["bottle", { ref = "dress", voice = "refs/ben-line2.wav" }, { ref = "mia" }]\n'
        'prompt = "{{ mia }}|{{ dress }}|{{ bottle }}"'
    )
    result = plan_text(text, facts=FACTS)
    assert messages(result) == []
    (planned,) = result.shots
    assert planned.request["input"]["prompt"] == "image 2|image 1|video 1"
    assert planned.request["input"]["media"][1:] == [
        {
            "type": "reference_image",
            "url": LocalFile("specs/refs/dress.png"),
            "reference_voice": LocalFile("specs/refs/ben-line2.wav"),
        },
        {
            "type": "reference_image",
            "url": LocalFile("specs/refs/mia.png"),
            "reference_voice": LocalFile("specs/refs/mia.wav"),
        },
    ]
    assert planned.digests["specs/refs/ben-line2.wav"] == "f" * 64


def test_a_shot_voice_may_be_a_template_and_is_relative_to_the_shots_file() -> None:
    cast = '[refs.ben]\nimage = "../refs/dress.png"\n'
    text = 'uses = ["people/cast.toml"]\n' + shot(
        'id = "line-{{ n }}"\nmatrix = { n = [1, 2] }\nmedia = [{ ref = "ben", voice = "refs/mia.wav" }]\n'
        'prompt = "{{ ben }}"\nduration = "{{ 4 + n }}"',
        header="",
    )
    text = text.replace('"refs/mia.wav"', "\"refs/{{ 'ben-line2' if n == 2 else 'mia' }}.wav\"")
    result = plan_text(text, facts=FACTS, shared={"specs/people/cast.toml": cast})
    assert messages(result) == []
    voices = [planned.request["input"]["media"][0]["reference_voice"] for planned in result.shots]
    assert voices == [LocalFile("specs/refs/mia.wav"), LocalFile("specs/refs/ben-line2.wav")]
    assert "specs/refs/ben-line2.wav" in result.expansion.local_files()


def test_writing_a_name_as_a_table_changes_nothing() -> None:
    plain = plan_text(shot('id = "a"\nmedia = ["mia", "dress"]\nprompt = "{{ mia }} {{ dress }}"'))
    table = plan_text(shot('id = "a"\nmedia = [{ ref = "mia" }, { ref = "dress" }]\nprompt = "{{ mia }} {{ dress }}"'))
    assert table.shots[0].key == plain.shots[0].key


def test_a_shots_own_voice_and_leaving_the_voice_out_change_the_key() -> None:
    def key(entry: str) -> str:
        result = plan_text(shot(f'id = "a"\nmedia = [{entry}]\nprompt = "{{{{ mia }}}}"'), facts=FACTS)
        assert errors(result) == []
        return result.shots[0].key

    keys = {key('"mia"'), key('{ ref = "mia", voice = false }'), key('{ ref = "mia", voice = "refs/ben-line2.wav" }')}
    assert len(keys) == 3


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            '{ ref = "mia", voce = false }',
            "media[0].voce: unknown field 'voce'; did you mean 'voice'? allowed: ref, voice, voice_sha256",
            id="unknown key",
        ),
        pytest.param("{ voice = false }", "media[0].ref: is required", id="no ref"),
        pytest.param(
            '{ ref = "mia", voice = 3 }',
            "media[0].voice: must be a voice file's path (or URL) for this shot, or false to leave the voice out, "
            "got number 3",
            id="voice of the wrong type",
        ),
        pytest.param(
            "3",
            'media[0]: must be a reference\'s name, or a table such as { ref = "mia", voice = false }, got number 3',
            id="entry of the wrong type",
        ),
        pytest.param(
            '{ ref = "mia", voice = true }',
            'media[0].voice: voice = true is what the name alone means; write "mia", a voice file for this shot, '
            "or false to leave the voice out",
            id="voice true",
        ),
        pytest.param(
            '{ ref = "mia", voice_sha256 = "' + "a" * 64 + '" }',
            'media[0].voice: voice_sha256 pins a voice, but this entry gives none; add voice = "..."',
            id="pin without a voice",
        ),
        pytest.param(
            '{ ref = "mia", voice = false, voice_sha256 = "' + "a" * 64 + '" }',
            "media[0].voice: voice_sha256 pins a voice, but voice = false",
            id="pin with voice false",
        ),
        pytest.param(
            '{ ref = "mia", voice = "" }',
            "media[0].voice: is empty; give a file path relative to this spec, or an https:// URL",
            id="empty voice",
        ),
        pytest.param(
            '{ ref = "mia", voice = "refs/{{ who }}.wav" }',
            "media[0].voice: undefined name in template: 'who' is undefined; defined here: none",
            id="voice template fails",
        ),
        pytest.param(
            '{ ref = "mia", voice = "https://example.com/v.wav", voice_sha256 = "xyz" }',
            "media: must be 64 lowercase hex digits (the sha256 of what the URL serves)",
            id="bad pin",
        ),
        pytest.param(
            '"mia", { ref = "ghost", voice = false }',
            "media: media[1] names 'ghost', which is not a reference of this file; known references: bottle, "
            "dress, mia",
            id="unknown reference",
        ),
    ],
)
def test_a_bad_media_table_is_an_error_at_the_media_line(entry: str, expected: str) -> None:
    text = shot(f'id = "a"\nmedia = [\n  {entry},\n]\nprompt = "{{{{ mia }}}}"')
    assert errors(plan_text(text, facts=FACTS)) == ["specs/s0.toml:12: shot a: " + expected]


def test_leaving_out_a_voice_the_reference_does_not_have_is_a_warning() -> None:
    result = plan_text(shot('id = "a"\nmedia = [{ ref = "dress", voice = false }]\nprompt = "{{ dress }}"'))
    assert messages(result) == [
        "specs/s0.toml:12: shot a: media[0].voice: warning: 'dress' has no voice to leave out; write \"dress\" alone"
    ]
    assert len(result.shots) == 1


def test_a_shot_voice_file_is_checked_as_a_voice_at_the_shots_media_line() -> None:
    missing = shot('id = "a"\nmedia = [{ ref = "mia", voice = "refs/gone.wav" }]\nprompt = "{{ mia }}"')
    not_audio = shot('id = "b"\nmedia = [{ ref = "mia", voice = "refs/dress.png" }]\nprompt = "{{ mia }}"', header="")
    result = plan_text(missing + not_audio, facts=FACTS)
    assert errors(result) == [
        "specs/s0.toml:12: shot a: media: file not found: specs/refs/gone.wav (paths are relative to the spec file's folder)",
        "specs/s0.toml:17: shot b: media: specs/refs/dress.png is an image (JPEG), not an audio",
    ]
    assert result.shots == []


def test_a_shot_voice_longer_than_the_shot_is_warned_about() -> None:
    long = dataclasses.replace(LINE2, seconds=7.5)
    text = shot(
        'id = "a"\nmedia = [{ ref = "dress", voice = "refs/ben-line2.wav" }]\nprompt = "{{ dress }}"\nduration = 5'
    )
    result = plan_text(text, facts={**FACTS, "specs/refs/ben-line2.wav": long})
    assert messages(result) == [
        "specs/s0.toml:12: shot a: media: warning: the voice of 'dress' (specs/refs/ben-line2.wav) is 7.5 s long, "
        "longer than the shot's 5 s: the end of it is not heard"
    ]


def test_a_model_without_voices_refuses_a_shot_voice() -> None:
    text = shot(
        'id = "a"\nmodel = "happyhorse-1.1-r2v"\nmedia = [{ ref = "dress", voice = "refs/ben-line2.wav" }]\nprompt = "{{ dress }}"'
    )
    lines = errors(plan_text(text, facts=FACTS))
    assert lines == [
        "specs/s0.toml:13: shot a: media: reference 'dress' has a voice; happyhorse-1.1-r2v takes no voice clips"
    ]


def test_local_files_hold_each_shot_voice_once() -> None:
    body = HEADER + "".join(
        f'[[shots]]\nid = "s{n}"\nmedia = [{{ ref = "dress", voice = "refs/ben-line2.wav" }}]\nprompt = "{{{{ dress }}}}"\n'
        for n in range(3)
    )
    expansion = expand([SourceFile("specs/a.toml", body)], {}.get)
    assert expansion.local_files().count("specs/refs/ben-line2.wav") == 1
