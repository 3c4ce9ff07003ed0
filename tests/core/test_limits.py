"""Limits on untrusted specs: every bomb is one located problem, and legitimate templates still work."""

from __future__ import annotations

import string
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renderspec.core.limits import LimitExceeded, Limits, Meter
from renderspec.core.templating import TemplateFailure, Templates, is_template

from .support import errors, plan_text, shot

TOO_BIG = "would make a value of more than 100,000 characters or items, the most a template may build"
TOO_LONG = "renders to more than 100,000 characters, the most a template may make"
TOO_MUCH_WORK = "template takes more than 100,000 steps of work"
TOO_MANY_DIGITS = "would make a number of more than 10,000 digits"
MB = 1024 * 1024


def prompt_spec(template: str) -> str:
    """A spec whose only shot, `a`, has `template` as its prompt, on line 13."""
    return shot(f"id = \"a\"\nmedia = [\"mia\"]\nprompt = '''{{{{ mia }}}} {template}'''")


BOMBS = [
    ("{{ 'x' * 4000000000 }}", f"`*` {TOO_BIG}"),
    ("{% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}", TOO_MUCH_WORK),
    ("{% set s = 'x' * 99999 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", TOO_MUCH_WORK),
    ("{{ 'x'|center(999999999) }}", f"filter center {TOO_BIG}"),
    ("{{ '{:>999999999}'.format(1) }}", f"format() {TOO_BIG}"),
    ("{{ '{:{}}'.format(1, 999999999) }}", f"format() {TOO_BIG}"),
    ("{{ '%999999999d' % 1 }}", f"`%` {TOO_BIG}"),
    ("{{ '%.999999999f'|format(1.5) }}", f"filter format {TOO_BIG}"),
    ("{{ 'x'.ljust(999999999) }}", f"ljust() {TOO_BIG}"),
    ("{{ ('\t' * 99999).expandtabs(99999) }}", f"expandtabs() {TOO_BIG}"),
    ("{{ (1).to_bytes(999999999, 'big') }}", f"to_bytes() {TOO_BIG}"),
    ("{{ 'x'|indent(999999999, true) }}", f"filter indent {TOO_BIG}"),
    ("{{ ('ab ' * 9999)|wordwrap(1, wrapstring='y' * 9999) }}", f"filter wordwrap {TOO_BIG}"),
    ("{{ ('x' * 99999)|replace('', 'y' * 99999) }}", f"filter replace {TOO_BIG}"),
    ("{{ ('x' * 99999).replace('', 'y' * 99999) }}", f"replace() {TOO_BIG}"),
    ("{{ ['a', 'b']|join('y' * 99999) }}", f"filter join {TOO_BIG}"),
    ("{{ [1]|batch(999999999, 'x')|list }}", f"filter batch {TOO_BIG}"),
    ("{{ [1]|slice(999999999)|list }}", f"filter slice {TOO_BIG}"),
    ("{{ [[[1]]]|tojson(indent=999999999) }}", f"filter tojson {TOO_BIG}"),
    ("{{ [[1]] * 9999|sum(start=[]) }}", "filter sum adds numbers only in templates"),
    ("{{ 10 ** 100000000 }}", f"`**` {TOO_MANY_DIGITS}"),
    ("{% set n = 10 ** 3000 %}{% set n = n * n %}{% set n = n * n %}{{ n * n }}", f"`*` {TOO_MANY_DIGITS}"),
    ("{{ 1|round(-999999999) }}", f"filter round {TOO_MANY_DIGITS}"),
    # Values built from shared parts print far bigger than they are held: each is measured whole.
    ("{{ ['x' * 99999] * 99999 }}", f"`*` {TOO_BIG}"),
    ("{% set s = 'x' * 50000 %}{% set t = [s, s, s] %}", f"a list, table or slice {TOO_BIG}"),
    ("{% set s = 'x' * 60000 %}{{ s ~ s }}", f"`~` {TOO_BIG}"),
    ("{% set s = 'x' * 60000 %}{{ s + s }}", f"`+` {TOO_BIG}"),
    # Work hidden from loop counts: macro trees, recursive loops, filters and tests inside loops.
    ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", TOO_MUCH_WORK),
    ("{% for x in range(9) recursive %}{{ loop(range(99999)) }}{% endfor %}", TOO_MUCH_WORK),
    ("{% for a in range(99999) %}{% set t = range(99999)|sum %}{% endfor %}", TOO_MUCH_WORK),
    ("{% set l = range(50000)|list %}{% for a in range(9999) %}{% if a in l %}{% endif %}{% endfor %}", TOO_MUCH_WORK),
    ("{% set l = range(50000)|list %}{% for a in range(9999) %}{% set t = l[1:] %}{% endfor %}", TOO_MUCH_WORK),
    ("{% set s %}{% for a in range(90000) %}" + "x" * 2000 + "{% endfor %}{% endset %}", TOO_MUCH_WORK),
    ("{% macro f() %}{% endmacro %}{% for a in range(20000) %}{{ f() }}{% endfor %}", TOO_MUCH_WORK),
    ("{% for a in range(20000) %}abcdefgh{% endfor %}", TOO_LONG),
    # lipsum is gone: random text would change the shot's key at every plan, and it can be huge.
    ("{{ lipsum(999999) }}", "undefined name in template: 'lipsum' is undefined"),
]


@pytest.mark.parametrize(("template", "message"), BOMBS, ids=[template for template, _ in BOMBS])
def test_a_template_bomb_is_one_located_problem_in_bounded_memory(template: str, message: str) -> None:
    tracemalloc.start()
    try:
        lines = errors(plan_text(prompt_spec(template)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"specs/s0.toml:13: shot a: prompt: {message}"), lines[0]
    assert peak < 64 * MB


LEGITIMATE = [
    ("{% for side in ['left', 'right'] %}{{ side }} {% endfor %}", "left right "),
    ("{{ 'ab' * 3 }}|{{ [1, 2] * 2 }}|{{ 2 ** 10 }}|{{ 'a' ~ 1 ~ 'b' }}", "ababab|[1, 2, 1, 2]|1024|a1b"),
    ("{{ '%05d' % 7 }} {{ '{:>4}|{:.2f}'.format(1, 2.5) }} {{ '%s-%s'|format('a', 'b') }}", "00007    1|2.50 a-b"),
    ("{{ 'ab'|center(6) }}|{{ 'a\nb'|indent(2) }}|{{ 'one two three'|wordwrap(8) }}", "  ab  |a\n  b|one two\nthree"),
    (
        "{{ range(3)|join(', ') }} {{ [1, 2, 3, 4, 5]|batch(2, 0)|list }} {{ range(4)|sum }}",
        "0, 1, 2 [[1, 2], [3, 4], [5, 0]] 6",
    ),
    ("{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}{{ twice('ho') }} {{ 3.14159|round(2) }}", "hoho 3.14"),
    (
        "{% for x in [[1, [2]], [3]] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %}",
        "123",
    ),
    ("{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% include 'fragments/dash.j2' %}{% endfor %}", "a-b-a-"),
    ("{{ {'b': 1, 'a': 2}|dictsort|first|join('=') }} {{ 'x y'.split()|tojson }} {{ 'abc'[1:] }}", 'a=2 ["x", "y"] bc'),
    ("{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", "10"),
    ("{% for i in range(90000) %}{% endfor %}{{ 'y' * 4000 == 'y' * 4000 }}", "True"),
]


@pytest.mark.parametrize(("template", "expected"), LEGITIMATE, ids=[template for template, _ in LEGITIMATE])
def test_legitimate_templates_render_as_before(template: str, expected: str) -> None:
    result = plan_text(prompt_spec(template), fragments={"specs/fragments/dash.j2": "-"})
    assert errors(result) == []
    assert result.shots[0].request["input"]["prompt"] == f"image 1 {expected}"


def test_a_huge_variable_is_fine_as_data_but_not_as_rendered_text() -> None:
    big = "x" * 200_000
    header = f'[vars]\nbig = "{big}"\n'
    fine = plan_text(header + prompt_spec("{{ big[:5] }} {{ big|length }}"))
    assert errors(fine) == []
    assert fine.shots[0].request["input"]["prompt"] == "image 1 xxxxx 200000"
    # The fast path for plain `{{ name }}` templates holds the same limit as Jinja.
    assert errors(plan_text(header + prompt_spec("{{ big }}"))) == [
        f"specs/s0.toml:15: shot a: prompt: {TOO_LONG}; is a loop or a variable much longer than meant?"
    ]


def test_a_matrix_over_the_limit_is_one_problem_at_its_line_and_makes_no_shots() -> None:
    values = ", ".join(str(n) for n in range(100))
    spec = shot(
        f'id = "m-{{{{ a }}}}-{{{{ b }}}}-{{{{ c }}}}-{{{{ d }}}}"\nmedia = ["mia"]\nprompt = "{{{{ mia }}}}"\n'
        f"matrix = {{ a = [{values}], b = [{values}], c = [{values}], d = [{values}] }}"
    )
    result = plan_text(spec)
    assert errors(result) == [
        "specs/s0.toml:14: shot m-{{ a }}-{{ b }}-{{ c }}-{{ d }}: matrix: makes 100,000,000 shots "
        "(a: 100 × b: 100 × c: 100 × d: 100); a shot may make at most 10,000; "
        "split it into several shots, or raise max_matrix in renderspec.toml"
    ]
    assert result.expansion.drafts == [] and not result.expansion.stopped


def test_max_matrix_is_configurable() -> None:
    spec = shot('id = "m-{{ n }}"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nmatrix = { n = [1, 2, 3, 4, 5, 6] }')
    assert len(plan_text(spec, limits=Limits(max_matrix=6)).shots) == 6
    assert "makes 6 shots (n: 6); a shot may make at most 5;" in errors(plan_text(spec, limits=Limits(max_matrix=5)))[0]


def test_the_shot_that_passes_max_shots_is_reported_and_nothing_after_it_is_expanded() -> None:
    first = shot('id = "a"\nmedia = ["mia"]\nprompt = "{{ mia }}"') + shot(
        'id = "b-{{ n }}"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nmatrix = { n = [1, 2] }', header=""
    )
    over = shot('id = "c-{{ n }}"\nmedia = ["mia"]\nprompt = "{{ mia }}"\nmatrix = { n = [1, 2] }', header="")
    unchecked = shot('id = "d"\nmedia = ["mia"]\nprompt = "{{ nobody }}"', header="")
    result = plan_text(first + over + unchecked, prompt_spec("{{ nobody }}"), limits=Limits(max_shots=4))
    assert errors(result) == [
        "specs/s0.toml:21: shot c-{{ n }}: takes the project past 4 shots, the most it may have; expansion stopped "
        "here (later shots are not checked); raise max_shots in renderspec.toml if it is that big"
    ]
    assert [draft.id for draft in result.expansion.drafts] == ["a", "b-1", "b-2"]
    assert result.expansion.stopped


def test_the_step_budget_of_the_whole_expansion_stops_it_once() -> None:
    spec = shot(
        'id = "m-{{ n }}"\nmedia = ["mia"]\nprompt = "{{ mia }}{% for i in range(300) %}{% endfor %}"\n'
        f"matrix = {{ n = [{', '.join(str(n) for n in range(100))}] }}"
    )
    result = plan_text(spec, spec.replace('"m-', '"other-'), limits=Limits(max_total_steps=5_000))
    lines = errors(result)
    assert len(lines) == 1
    assert lines[0].startswith("specs/s0.toml:13: shot m-")
    assert lines[0].endswith(
        "prompt: templates took more than 5,000 steps of work in all; expansion stopped here "
        "(later shots are not checked); make loops shorter"
    )
    assert result.expansion.stopped and len(result.expansion.drafts) < 20


def test_the_text_budget_of_the_whole_expansion_stops_it_once() -> None:
    spec = shot(
        'id = "m-{{ n }}"\nmedia = ["mia"]\nprompt = "{{ mia }} {{ \'y\' * 90 }}"\n'
        f"matrix = {{ n = [{', '.join(str(n) for n in range(100))}] }}"
    )
    lines = errors(plan_text(spec, limits=Limits(max_total_text=1_000)))
    assert len(lines) == 1
    assert lines[0].endswith(
        "prompt: templates rendered more than 1,000 characters in all; expansion stopped here (later shots are not checked)"
    )


def test_every_render_gets_its_own_steps_until_the_total_runs_out() -> None:
    meter = Meter(Limits(max_steps=10, max_total_steps=25))
    for _ in range(2):
        meter.begin_render()
        meter.charge(10)
    meter.begin_render()
    with pytest.raises(LimitExceeded, match="more than 25 steps of work in all"):
        meter.charge(6)
    assert meter.exhausted
    meter = Meter(Limits(max_steps=10, max_total_steps=25))
    meter.begin_render()
    with pytest.raises(LimitExceeded, match="template takes more than 10 steps"):
        meter.charge(11)
    assert not meter.exhausted and meter.steps == 10


_names = st.sampled_from(["short", "long", "n"])
_literal = st.text(alphabet=string.ascii_letters + " .,-'\n{}%#", max_size=12)


@settings(max_examples=300)
@given(st.lists(st.one_of(_literal, _names.map(lambda n: "{{ %s }}" % n)), max_size=8))
def test_the_fast_path_and_jinja_stop_at_the_same_rendered_length(parts: list[str]) -> None:
    text = "".join(parts)
    context = {"short": "abc", "long": "z" * 25, "n": 12345}
    templates = Templates("specs", {}.get, Meter(Limits(max_text=30)))
    fast = _outcome(lambda: templates.render(text, context))
    slow = _outcome(lambda: templates._render_jinja(text, context) if is_template(text) else text)
    assert fast == slow


def _outcome(render: Any) -> tuple[str, str]:
    try:
        return ("ok", render())
    except TemplateFailure as failure:
        return ("error", failure.message.split(";")[0])


_sizes = st.one_of(st.integers(0, 40), st.integers(0, 10**12))
_risky = st.sampled_from(
    [
        "{{ 'ab' * N }}",
        "{{ ['ab' * M] * N }}",
        "{{ 'ab'|center(N) }}",
        "{{ '{:>N}'.format(M) }}",
        "{{ '%N.Mf' % 1.5 }}",
        "{{ 'a\nb'|indent(N, true) }}",
        "{{ range(M)|join('y' * N) }}",
        "{{ ('ab' * M).replace('', 'y' * N) }}",
        "{{ 7 ** N }}",
        "{{ [1]|batch(N, 0)|list|length }}",
        "{{ 2.5|round(N) }}",
        "{% for i in range(M) %}{% for j in range(N) %}x{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(N) }}",
    ]
)


@settings(max_examples=60, deadline=None)
@given(_risky, _sizes, _sizes)
def test_risky_templates_render_small_or_fail_cleanly_in_bounded_memory(template: str, n: int, m: int) -> None:
    text = template.replace("N", str(n)).replace("M", str(m))
    templates = Templates("specs", {}.get)
    tracemalloc.start()
    try:
        rendered = templates.render(text, {})
    except TemplateFailure:
        rendered = ""
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert len(rendered) <= 100_000
    assert peak < 64 * MB


def test_rendered_values_in_problems_stay_on_one_short_line() -> None:
    spec = shot(
        "id = '''{{ 'y' * 300 }}'''\nmedia = ['''{{ 'z\\n' * 3 }}''']\nprompt = \"{{ mia }}\"\n"
        "duration = '''{{ 'd' * 300 }}'''\nfirst_frame = '''{{ 'f' * 300 }}.png'''"
    )
    lines = errors(plan_text(spec))
    label = "shot 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy'... (300 characters)"
    assert lines == [
        f"specs/s0.toml:11: {label}: id: 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy'... (300 characters) is not a usable "
        "shot id; use letters, digits, '.', '_' and '-' (it names renders/<id>.mp4), starting with a letter or digit",
        f"specs/s0.toml:12: {label}: media: media[0] names 'z\\nz\\nz', which is not a reference of this file; "
        "known references: bottle, dress, mia",
        f"specs/s0.toml:13: {label}: prompt: cites reference 'mia', which is not in this shot's media; "
        "add it to media or remove the citation",
        f"specs/s0.toml:14: {label}: duration: template gave '{'d' * 80}'... (300 characters), which is not an integer",
        f"specs/s0.toml:15: {label}: first_frame: file not found: 'specs/{'f' * 74}'... (310 characters) "
        "(paths are relative to the spec file's folder)",
    ]
