"""Continuity references, expansion side: `{ shot = "walk", frame = "last" }` names another shot's render.

Whether the named shot exists, and the order renders wait for each other, is the planner's; here
only the syntax and what it expands to.
"""

from __future__ import annotations

import pytest

from renderspec.core.expansion import Expansion, expand
from renderspec.core.model import LocalFile, RenderOf, SourceFile
from renderspec.core.rules import MediaType

REFS = '[refs.mia]\nimage = "refs/mia.png"\n'
SHOT = '[[shots]]\nid = "next"\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'


def expanded(text: str, **shared: str) -> Expansion:
    files = {f"specs/{name}.toml": body for name, body in shared.items()}
    return expand([SourceFile("specs/s0.toml", text)], {}.get, specs=files.get)


def problems(text: str, **shared: str) -> list[str]:
    return [problem.format() for problem in expanded(text, **shared).problems]


def frame_of(first_frame: str) -> object:
    expansion = expanded(REFS + SHOT + f"first_frame = {first_frame}\n")
    assert [problem.format() for problem in expansion.problems] == []
    (draft,) = expansion.drafts
    assert draft.first_frame is not None and draft.first_frame.type is MediaType.FIRST_FRAME
    return draft.first_frame.file


@pytest.mark.parametrize(
    ("written", "frame"),
    [
        ('{ shot = "walk" }', "last"),
        ('{ shot = "walk", frame = "last" }', "last"),
        ('{ shot = "walk", frame = "first" }', "first"),
        ('{ shot = "walk", frame = 2.5 }', 2.5),
        ('{ shot = "walk", frame = 0 }', 0.0),
        ('{ shot = "walk", frame = "{{ 1 + 2 }}" }', 3.0),
        ("{ shot = \" {{ 'walk' }} \", frame = \"{{ 'first' }}\" }", "first"),
    ],
)
def test_a_first_frame_may_be_a_still_of_another_shots_render(written: str, frame: object) -> None:
    assert frame_of(written) == RenderOf(shot="walk", frame=frame)


def test_a_path_first_frame_is_unchanged() -> None:
    assert frame_of('"refs/start.png"') == LocalFile("specs/refs/start.png")


def test_references_may_be_a_whole_render_or_a_still_of_one_with_a_voice() -> None:
    text = (
        '[refs.before]\nvideo = { shot = "walk" }\nvoice = "refs/mia.wav"\n'
        '[refs.pose]\nimage = { shot = "walk", frame = 1.5 }\n[refs.end]\nimage = { shot = "walk" }\n'
    )
    expansion = expanded(text)
    assert [problem.format() for problem in expansion.problems] == []
    files = {reference.name: (reference.kind, reference.file, reference.voice) for _, reference in expansion.references}
    assert files == {
        "before": (MediaType.REFERENCE_VIDEO, RenderOf("walk"), LocalFile("specs/refs/mia.wav")),
        "pose": (MediaType.REFERENCE_IMAGE, RenderOf("walk", 1.5), None),
        "end": (MediaType.REFERENCE_IMAGE, RenderOf("walk", "last"), None),
    }
    assert expansion.local_files() == ["specs/refs/mia.wav"]  # a render is no file to read facts of


def test_matrix_shots_can_chain_with_a_templated_shot_id() -> None:
    text = REFS + (
        '[[shots]]\nid = "step-{{ n }}"\nmatrix = { n = [1, 2, 3] }\nmedia = ["mia"]\nprompt = "{{ mia }}"\n'
        'first_frame = { shot = "step-{{ n - 1 }}", frame = "last" }\n'
    )
    expansion = expanded(text)
    assert [problem.format() for problem in expansion.problems] == []
    frames = [draft.first_frame.file for draft in expansion.drafts if draft.first_frame is not None]
    assert frames == [RenderOf("step-0", "last"), RenderOf("step-1", "last"), RenderOf("step-2", "last")]
    media = [item.file for draft in expansion.drafts for item in draft.media]
    assert media.count(LocalFile("specs/refs/mia.png")) == 3


def test_a_default_first_frame_render_is_rendered_in_each_shots_context() -> None:
    look = '[defaults]\nfirst_frame = { shot = "{{ scene }}-open", frame = "first" }\n'
    text = 'uses = ["look"]\n[vars]\nscene = "garden"\n' + REFS + SHOT
    expansion = expanded(text.replace('"look"', '"look.toml"'), look=look)
    assert [problem.format() for problem in expansion.problems] == []
    (draft,) = expansion.drafts
    assert draft.first_frame is not None
    assert (draft.first_frame.file, draft.first_frame.origin_file) == (
        RenderOf("garden-open", "first"),
        "specs/look.toml",
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param(
            '{ shot = "walk", fram = "last" }',
            "specs/s0.toml:7: shot next: first_frame.fram: unknown field 'fram'; did you mean 'frame'? "
            "allowed: shot, frame",
            id="unknown key",
        ),
        pytest.param('{ frame = "last" }', "specs/s0.toml:7: shot next: first_frame.shot: is required", id="no shot"),
        pytest.param(
            '{ shot = "walk", frame = "end" }',
            'specs/s0.toml:7: shot next: first_frame.frame: must be "first", "last" or a number of seconds '
            "from the start, got 'end'",
            id="unknown frame word",
        ),
        pytest.param(
            '{ shot = "walk", frame = "2.5" }',
            'specs/s0.toml:7: shot next: first_frame.frame: must be "first", "last" or a number of seconds '
            "from the start, got '2.5'; write seconds without quotes",
            id="quoted seconds",
        ),
        pytest.param(
            '{ shot = "walk", frame = -1 }',
            "specs/s0.toml:7: shot next: first_frame.frame: -1 is not a time in the render; give seconds from "
            "the start (0 or more)",
            id="negative",
        ),
        pytest.param(
            '{ shot = "walk", frame = nan }',
            "specs/s0.toml:7: shot next: first_frame.frame: nan is not a time in the render; give seconds from "
            "the start (0 or more)",
            id="not a number",
        ),
        pytest.param(
            '{ shot = "walk", frame = true }',
            'specs/s0.toml:7: shot next: first_frame.frame: must be "first", "last" or a number of seconds '
            "from the start, got boolean true",
            id="boolean frame",
        ),
        pytest.param(
            '{ shot = "  " }',
            "specs/s0.toml:7: shot next: first_frame.shot: is empty; name the shot whose render to use, "
            'e.g. { shot = "garden-walk" }',
            id="empty shot",
        ),
        pytest.param(
            '{ shot = "walk here" }',
            "specs/s0.toml:7: shot next: first_frame.shot: 'walk here' is not a shot id (letters, digits, '.', "
            "'_' and '-')",
            id="not an id",
        ),
        pytest.param(
            '{ shot = "{{ nope }}" }',
            "specs/s0.toml:7: shot next: first_frame.shot: undefined name in template: 'nope' is undefined; "
            "defined here: none",
            id="template fails",
        ),
        pytest.param(
            "5",
            "specs/s0.toml:7: shot next: first_frame: must be a file path (relative to this file), an https:// "
            'URL, or a table such as { shot = "walk" }, got number 5',
            id="not a path nor a table",
        ),
    ],
)
def test_a_bad_render_table_is_a_located_error(written: str, expected: str) -> None:
    text = REFS + SHOT + f"first_frame = {written}\n"
    expansion = expanded(text)
    assert [problem.format() for problem in expansion.problems] == [expected]
    assert all(draft.first_frame is None for draft in expansion.drafts)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param(
            'video = { shot = "walk", frame = "last" }',
            "specs/s0.toml:3: refs.clip.video.frame: a reference video is the whole render of the shot; to use one "
            'frame, write image = { shot = "...", frame = ... } instead',
            id="frame on a video",
        ),
        pytest.param(
            'video = { shot = "walk", at = 1 }',
            "specs/s0.toml:3: refs.clip.video.at: unknown field 'at'; allowed: shot, frame",
            id="unknown key",
        ),
        pytest.param(
            'image = { shot = "walk" }\nsha256 = "' + "a" * 64 + '"',
            "specs/s0.toml:4: refs.clip.sha256: warning: sha256 pins only apply to URLs; a render is hashed when "
            "it is made",
            id="pinned render",
        ),
    ],
)
def test_a_bad_render_reference_is_reported_at_its_line(ref: str, expected: str) -> None:
    assert problems(f"# clips\n[refs.clip]\n{ref}\n") == [expected]
