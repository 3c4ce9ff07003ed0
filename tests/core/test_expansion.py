"""Spec expansion: citations, matrices, fragments, templated values and the sandbox."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderspec.core.templating import Templates

from .support import HEADER, errors, messages, plan_text, shot


def test_citations_follow_media_order_with_images_and_videos_numbered_apart() -> None:
    result = plan_text(
        shot(
            'id = "a"\nmedia = ["bottle", "dress", "mia"]\nprompt = "{{ mia }}|{{ dress }}|{{ bottle }}"\nduration = 5'
        )
    )
    assert errors(result) == []
    assert result.shots[0].request["input"]["prompt"] == "image 2|image 1|video 1"
    types = [item["type"] for item in result.shots[0].request["input"]["media"]]
    assert types == ["reference_video", "reference_image", "reference_image"]


@given(st.lists(st.sampled_from(["i0", "i1", "i2", "v0", "v1"]), min_size=1, max_size=5, unique=True))
def test_citation_numbers_agree_with_media_order(order: list[str]) -> None:
    header = "".join(
        f'[refs.{name}]\n{"image" if name[0] == "i" else "video"} = "refs/{name}.{"png" if name[0] == "i" else "mp4"}"\n'
        for name in ["i0", "i1", "i2", "v0", "v1"]
    )
    facts = {f"specs/refs/{n}.png": support_image(n) for n in ["i0", "i1", "i2"]}
    facts |= {f"specs/refs/{n}.mp4": support_video(n) for n in ["v0", "v1"]}
    prompt = " ".join("{{ %s }}" % name for name in order)
    media = ", ".join(f'"{name}"' for name in order)
    result = plan_text(shot(f'id = "x"\nmedia = [{media}]\nprompt = "{prompt}"', header), facts=facts)
    assert errors(result) == []
    expected, counts = [], {"i": 0, "v": 0}
    for name in order:
        counts[name[0]] += 1
        expected.append(f"{'image' if name[0] == 'i' else 'video'} {counts[name[0]]}")
    assert result.shots[0].request["input"]["prompt"] == " ".join(expected)
    urls = [item["url"].path for item in result.shots[0].request["input"]["media"]]
    assert [url.split("/")[-1].split(".")[0] for url in urls] == order


def support_image(name: str):  # type: ignore[no-untyped-def]
    from .support import IMAGE

    return IMAGE.__class__(**{**_fields(IMAGE), "sha256": name.ljust(64, "0")})


def support_video(name: str):  # type: ignore[no-untyped-def]
    from .support import VIDEO

    return VIDEO.__class__(**{**_fields(VIDEO), "sha256": name.ljust(64, "0")})


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_matrix_expands_to_the_cartesian_product_with_unique_ids() -> None:
    result = plan_text(
        shot(
            'id = "turn-{{ side }}-{{ n }}"\nmatrix = { side = ["left", "right"], n = [1, 2, 3] }\nmedia = ["mia"]\nprompt = "{{ mia }} turns {{ side }} {{ n }}"'
        )
    )
    assert errors(result) == []
    assert [s.id for s in result.shots] == [f"turn-{side}-{n}" for side in ("left", "right") for n in (1, 2, 3)]
    assert result.shots[-1].request["input"]["prompt"] == "image 1 turns right 3"


def test_matrix_without_the_variable_in_the_id_is_a_duplicate_id_with_a_hint() -> None:
    result = plan_text(
        shot('id = "turn"\nmatrix = { side = ["left", "right"] }\nmedia = ["mia"]\nprompt = "{{ mia }} {{ side }}"')
    )
    assert any("'turn' is used by 2 shots" in line and "{{ side }}" in line for line in errors(result))
    assert result.shots == []


def test_duplicate_ids_across_files_name_both_places() -> None:
    body = shot('id = "same"\nmedia = ["mia"]\nprompt = "{{ mia }}"')
    lines = errors(plan_text(body, body))
    assert len(lines) == 2
    assert all("specs/s0.toml:11" in line and "specs/s1.toml:11" in line for line in lines)


def test_fragments_are_included_relative_to_the_spec_file() -> None:
    fragments = {"specs/fragments/style.j2": "in {{ light }} light"}
    text = '[vars]\nlight = "dusk"\n' + shot(
        'id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }} {% include \'fragments/style.j2\' %}"'
    )
    result = plan_text(text, fragments=fragments)
    assert result.shots[0].request["input"]["prompt"] == "image 1 in dusk light"


def test_missing_fragment_and_escaping_fragment_are_reported() -> None:
    missing = shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }} {% include \'nope.j2\' %}"')
    escaping = shot('id = "b"\nmedia = ["mia"]\nprompt = "{{ mia }} {% include \'../../etc/passwd\' %}"')
    lines = errors(plan_text(missing, escaping))
    assert any("fragment 'nope.j2' not found (looked for specs/nope.j2)" in line for line in lines)
    assert any("outside the project" in line for line in lines)


def test_citing_a_reference_missing_from_media_is_an_error_at_the_prompt_line() -> None:
    lines = errors(plan_text(shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }} in {{ dress }}"')))
    assert lines == [
        "specs/s0.toml:13: shot a: prompt: cites reference 'dress', which is not in this shot's media; add it to media or remove the citation"
    ]


def test_media_never_cited_is_a_warning_only() -> None:
    result = plan_text(shot('id = "a"\nmedia = ["mia", "dress"]\nprompt = "{{ mia }} alone"'))
    assert errors(result) == []
    assert [p.format() for p in result.warnings] == [
        "specs/s0.toml:12: shot a: media: warning: reference 'dress' is in media but the prompt never cites it (write {{ dress }} in the prompt)"
    ]
    assert len(result.shots) == 1


def test_undefined_names_are_errors_naming_what_is_defined() -> None:
    lines = errors(
        plan_text('[vars]\nlight = "x"\n' + shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }} {{ lihgt }}"'))
    )
    assert len(lines) == 1
    assert "'lihgt' is undefined" in lines[0] and "light" in lines[0]


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", id="walking to object subclasses"),
        pytest.param("{{ mia.__init__.__globals__ }}", id="a method's globals"),
        pytest.param("{% set x = [] %}{{ x.append(1) }}", id="mutating a list"),
        pytest.param("{{ cycler.__init__.__globals__.os }}", id="reaching os through a builtin"),
    ],
)
def test_sandbox_violations_are_reported_not_executed(template: str) -> None:
    lines = errors(plan_text(shot(f'id = "a"\nmedia = ["mia"]\nprompt = """{{{{ mia }}}} {template}"""')))
    assert len(lines) == 1
    assert "shot a: prompt:" in lines[0]


def test_templated_typed_values_render_to_their_types() -> None:
    result = plan_text(
        shot(
            'id = "a-{{ d }}"\nmatrix = { d = [3, 9], wm = [true] }\nmedia = ["mia"]\nprompt = "{{ mia }}"\nduration = "{{ d }}"\nwatermark = "{{ wm }}"\nseed = "{{ d * 10 }}"'
        )
    )
    assert errors(result) == []
    parameters = [s.request["parameters"] for s in result.shots]
    assert [(p["duration"], p["watermark"], p["seed"]) for p in parameters] == [(3, True, 30), (9, True, 90)]


def test_quoted_number_without_template_is_refused_like_the_api_would() -> None:
    lines = errors(plan_text(shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nduration = "5"')))
    assert lines == [
        "specs/s0.toml:14: shot a: duration: must be an integer, got the string '5'; write it without quotes"
    ]


def test_media_names_may_be_templates() -> None:
    result = plan_text(
        shot(
            'id = "with-{{ who }}"\nmatrix = { who = ["mia", "dress"] }\nmedia = ["{{ who }}"]\nprompt = "look at {{ mia if who == \'mia\' else dress }}"'
        )
    )
    assert errors(result) == []
    assert [s.request["input"]["prompt"] for s in result.shots] == ["look at image 1", "look at image 1"]


def test_unknown_fields_suggest_the_close_name() -> None:
    lines = errors(plan_text(shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nnegativ_prompt = "x"')))
    assert len(lines) == 1
    assert (
        "specs/s0.toml:14: shot a: negativ_prompt: unknown field 'negativ_prompt'; did you mean 'negative_prompt'?"
        in lines[0]
    )


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = shot('id = "a"\nmedia = ["mia", "ghost"]\nprompt = "{{ nobody }}"\nduration = 99\nresolution = "4K"') + shot(
        'id = "b"\nmedia = []\nprompt = "x"\nseed = -1', header=""
    )
    lines = errors(plan_text(text))
    fields = sorted(line.split(": ")[2] for line in lines)
    assert fields == ["duration", "media", "media", "prompt", "resolution", "seed"]


def test_broken_toml_points_at_its_line() -> None:
    result = plan_text('[defaults]\nduration = 5\nratio = "16:9\n')
    assert messages(result) == [
        "specs/s0.toml:3: invalid TOML (column 14): Illegal character '\\n'; a string is not closed: "
        'end it with " on the same line, or use """ for text over several lines'
    ]


def test_extra_parameters_pass_through_with_a_warning() -> None:
    result = plan_text(shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nextra = { audio = true }'))
    assert result.shots[0].request["parameters"]["audio"] is True
    assert [p.field for p in result.warnings] == ["extra.audio"]


def test_documented_field_under_extra_is_an_error() -> None:
    assert (
        "set it directly"
        in errors(plan_text(shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nextra = { duration = 5 }')))[0]
    )


def test_defaults_problem_is_reported_once_not_per_shot() -> None:
    text = (
        '[defaults]\nresolution = "480P"\n'
        + shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"')
        + shot('id = "b"\nmedia = ["mia"]\nprompt = "{{ mia }}"', header="")
    )
    assert errors(plan_text(text)) == [
        "specs/s0.toml:2: defaults.resolution: '480P' is not allowed; wan2.7-r2v takes 720P, 1080P (uppercase P)"
    ]


_names = st.sampled_from(["mia", "light", "n", "flag"])
_literal = st.text(alphabet=string.ascii_letters + " .,:;!?-'\"\n{}%#", max_size=20)


@settings(max_examples=400)
@given(
    st.lists(st.one_of(_literal, _names.map(lambda n: "{{ %s }}" % n), _names.map(lambda n: "{{%s}}" % n)), max_size=8)
)
def test_fast_path_renders_exactly_like_jinja(parts: list[str]) -> None:
    text = "".join(parts)
    context = {"mia": "image 1", "light": "dusk", "n": 3, "flag": True}
    templates = Templates("specs", {}.get)
    fast = _outcome(lambda: templates.render(text, context))
    slow = _outcome(
        lambda: templates._render_jinja(text, context) if any(m in text for m in ("{{", "{%", "{#")) else text
    )
    assert fast == slow


def _outcome(render):  # type: ignore[no-untyped-def]
    from renderspec.core.templating import TemplateFailure

    try:
        return ("ok", render())
    except TemplateFailure as failure:
        return ("error", failure.message.split(";")[0])


def test_a_syntax_error_inside_a_fragment_names_the_fragment_and_its_line() -> None:
    fragments = {"specs/fragments/style.j2": "line one\nline {{ two"}
    text = shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }} {% include \'fragments/style.j2\' %}"')
    lines = errors(plan_text(text, fragments=fragments))
    assert len(lines) == 1
    assert lines[0].startswith(
        "specs/s0.toml:13: shot a: prompt: template syntax error in fragment specs/fragments/style.j2 line 2:"
    )


_REF_LINES = {
    "mia": 'image = "{base}refs/mia.png"\nvoice = "{base}refs/mia.wav"\n',
    "dress": 'image = "{base}refs/dress.png"\n',
    "bottle": 'video = "{base}refs/bottle.mp4"\n',
}
_PLACES = st.sampled_from(["own", "specs/lib/cast.toml", "specs/lib/look.toml", "specs/more.toml"])


@settings(max_examples=60, deadline=None)
@given(
    refs=st.dictionaries(st.sampled_from(sorted(_REF_LINES)), _PLACES, min_size=1),
    variables=st.dictionaries(st.sampled_from(["light", "mood"]), st.tuples(_PLACES, st.sampled_from(["a", "b c"]))),
    defaults=st.dictionaries(
        st.sampled_from(["duration", "seed", "first_frame"]), st.tuples(_PLACES, st.integers(3, 9).map(str))
    ),
)
def test_moving_definitions_into_used_files_changes_no_request(
    refs: dict[str, str], variables: dict[str, tuple[str, str]], defaults: dict[str, tuple[str, str]]
) -> None:
    """Where a reference, variable or default is written (this file, or files it uses, in other
    folders) changes nothing a shot asks for."""
    files: dict[str, list[str]] = {}
    for name, place in refs.items():
        base = "../" if place.startswith("specs/lib/") else ""
        files.setdefault(place, []).append(f"[refs.{name}]\n" + _REF_LINES[name].format(base=base))
    for name, (place, value) in variables.items():
        files.setdefault(place, []).append(f'[vars]\n{name} = "{value}"\n')
    for name, (place, value) in defaults.items():
        base = "../" if place.startswith("specs/lib/") else ""
        value = f'"{base}refs/start.png"' if name == "first_frame" else value
        files.setdefault(place, []).append(f"[defaults]\n{name} = {value}\n")
    media = ", ".join(f'"{name}"' for name in refs)
    prompt = " ".join(["{{ %s }}" % name for name in [*refs, *variables]])
    shot_text = f'[[shots]]\nid = "x"\nmedia = [{media}]\nprompt = "{prompt}"\n'

    def tables(chunks: list[str]) -> str:  # one [vars] and one [defaults] table per file
        merged: dict[str, list[str]] = {}
        for chunk in chunks:
            header, body = chunk.split("\n", 1)
            merged.setdefault(header, []).append(body)
        return "".join(header + "\n" + "".join(bodies) for header, bodies in merged.items())

    alone = plan_text(tables([chunk for chunks in files.values() for chunk in chunks]).replace("../", "") + shot_text)
    shared = {place: tables(chunks) for place, chunks in files.items() if place != "own"}
    used = [place.removeprefix("specs/") for place in shared]
    moved = plan_text(f"uses = {used!r}\n".replace("'", '"') + tables(files.get("own", [])) + shot_text, shared=shared)
    assert errors(alone) == errors(moved) == []
    assert [shot.request for shot in moved.shots] == [shot.request for shot in alone.shots]
    assert [shot.key for shot in moved.shots] == [shot.key for shot in alone.shots]


@settings(max_examples=80, deadline=None)
@given(
    takes=st.integers(1, 10),
    seed=st.none() | st.integers(0, 2**31 - 1),
    sides=st.lists(st.sampled_from(["left", "right", "up", "down"]), min_size=1, max_size=3, unique=True),
    name=st.text(alphabet="abcxyz0-.", min_size=1, max_size=12).filter(lambda s: s[0].isalnum()),
    data=st.data(),
)
def test_takes_have_unique_ids_distinct_deterministic_seeds_and_take_one_is_the_shot(
    takes: int, seed: int | None, sides: list[str], name: str, data: st.DataObject
) -> None:
    pick = data.draw(st.integers(1, takes))
    base = (
        f'[[shots]]\nid = "{name}-{{{{ side }}}}"\nmatrix = {{ side = {sides!r} }}\nmedia = ["mia"]\n'
        f'prompt = "{{{{ mia }}}} {{{{ side }}}}"\n' + (f"seed = {seed}\n" if seed is not None else "")
    ).replace("'", '"')
    taken = base + f"takes = {takes}\npick = {pick}\n"
    first, again, alone = plan_text(HEADER + taken), plan_text(HEADER + taken), plan_text(HEADER + base)
    assert errors(first) == errors(alone) == []
    drafts = first.expansion.drafts
    assert len(drafts) == takes * len(sides)
    assert len({draft.id for draft in drafts}) == len(drafts)
    assert [(d.id, d.parameters) for d in drafts] == [(d.id, d.parameters) for d in again.expansion.drafts]
    for untaken in alone.expansion.drafts:
        group = [draft for draft in drafts if (draft.take_of or draft.id) == untaken.id]
        assert [draft.take for draft in group] == ([None] if takes == 1 else list(range(1, takes + 1)))
        assert [draft.picked for draft in group] == [number == pick for number in range(1, takes + 1)]
        seeds = [draft.parameters.get("seed") for draft in group]
        assert len(set(seeds)) == takes
        one = group[0]
        assert (one.prompt, one.parameters, one.media) == (untaken.prompt, untaken.parameters, untaken.media)
    keys = {shot.id: shot.key for shot in first.shots}
    for untaken in alone.shots:
        assert keys[untaken.id if takes == 1 else f"{untaken.id}.take1"] == untaken.key
