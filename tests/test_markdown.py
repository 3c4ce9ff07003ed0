"""`renderspec plan --markdown`: the pull-request comment, on the example storyboard and on hostile text.

The structure is checked with a CommonMark parser (markdown-it-py, which rich already depends on),
so "the table has six cells per row" and "nothing opens an HTML tag" are what a renderer sees, not
what a regular expression guesses.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from renderspec.core.decisions import Previous
from renderspec.core.model import PlannedShot, State
from renderspec.markdown import COLUMNS, plan_comment, text_diff
from tests.conftest import EXAMPLE, fast, run_cli

OLD_SENTENCE = "image 1 wearing the gown from image 2 walks slowly through the garden of image 3."
NEW_SENTENCE = "image 1 wearing the gown from image 2 runs barefoot through the garden of image 3."
ALLOWED_HTML = re.compile(r"^(<details><summary>[^<>]*</summary>|</details>|<code>|</code>)\s*$")


def parse(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text)


def table_rows(tokens: list[Token]) -> list[list[str]]:
    """Each row of every table, as the cells' inline source."""
    rows: list[list[str]] = []
    for token in tokens:
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows and token.level > 3:  # inside th/td, not a paragraph
            rows[-1].append(token.content)
    return rows


def fences(tokens: list[Token]) -> list[tuple[str, str]]:
    return [(token.info, token.content) for token in tokens if token.type == "fence"]


def html_pieces(tokens: list[Token]) -> list[str]:
    pieces = [token.content.strip() for token in tokens if token.type == "html_block"]
    for token in tokens:
        pieces += [child.content for child in token.children or [] if child.type == "html_inline"]
    return pieces


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example storyboard rendered once through the local provider (free, offline), for every test to copy."""
    root = tmp_path_factory.mktemp("built") / "project"
    shutil.copytree(EXAMPLE, root / "specs", ignore=shutil.ignore_patterns("*.py", "*.md"))
    fast(root)
    run = run_cli("build", "--provider", "local", cwd=root)
    assert run.code == 0, run.out + run.err
    return root


@pytest.fixture
def rendered(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the rendered example: its specs, lock, cache and renders."""
    return Path(shutil.copytree(built, tmp_path / "project", symlinks=True))


def edit_prompt(example: Path, old: str, new: str) -> None:
    spec = example / "specs" / "garden.toml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))


def test_an_edited_prompt_is_one_row_with_its_reason_cost_and_a_word_diff(rendered: Path) -> None:
    project = rendered
    edit_prompt(project, "walks slowly through", "runs barefoot through")

    run = run_cli("plan", "--markdown", "--provider", "local", cwd=project)

    assert run.code == 0, run.err
    assert run.out.splitlines()[0] == "### renderspec plan: 1 shot to render, 8 s of video, est. ¥4.80 CNY"
    tokens = parse(run.out)
    assert table_rows(tokens) == [
        list(COLUMNS),
        ["garden-walk", "stale", "prompt changed", "8 s", "720P", "¥4.80"],
        ["**total**", "1 to render", "", "8 s", "", "¥4.80"],
    ]
    assert "7 shots unchanged (cached)." in run.out.splitlines()
    assert "<details><summary>garden-walk: prompt changed</summary>" in html_pieces(tokens)
    [(info, diff)] = fences(tokens)
    assert info == "diff"
    assert diff.splitlines() == [
        f"-{OLD_SENTENCE}",
        f"+{NEW_SENTENCE}",
        " Shot on 35mm film, soft golden sunset light, shallow depth of field, gentle handheld camera.",
    ]
    assert run_cli("plan", "--markdown", "--provider", "local", cwd=project).out == run.out  # deterministic


def test_check_with_markdown_still_gates_and_an_unchanged_plan_says_nothing_to_render(rendered: Path) -> None:
    project = rendered

    unchanged = run_cli("plan", "--markdown", "--check", "--provider", "local", cwd=project)
    assert unchanged.code == 0, unchanged.err
    assert unchanged.out == "### renderspec plan: nothing to render\n\n8 shots unchanged (cached).\n"

    edit_prompt(project, "walks slowly through", "runs barefoot through")
    changed = run_cli("plan", "--markdown", "--check", "--provider", "local", cwd=project)
    assert changed.code == 1
    assert "| garden-walk | stale |" in changed.out


def test_without_the_old_render_in_the_cache_the_details_say_so_and_show_the_new_prompt(rendered: Path) -> None:
    project = rendered
    edit_prompt(project, "walks slowly through", "runs barefoot through")
    shutil.rmtree(project / "cache")  # CI with only the lock (and perhaps a remote): no old request to read

    run = run_cli("plan", "--markdown", "--provider", "local", cwd=project)

    assert run.code == 0, run.err
    tokens = parse(run.out)
    rows = {row[0]: row for row in table_rows(tokens)}
    assert rows["garden-walk"][1:3] == [
        "stale",
        "request changed (the previous render is not in the local cache to compare)",
    ]
    assert rows["turn-left"][1] == "missing"
    assert "<details><summary>garden-walk: prompt (the previous text is not available)</summary>" in html_pieces(tokens)
    assert "is not in the local cache, so its prompt cannot be compared" in run.out
    [(info, text)] = fences(tokens)
    assert info == "text"
    assert text.splitlines()[0] == NEW_SENTENCE
    assert OLD_SENTENCE not in run.out  # nothing invented


def test_hostile_prompt_text_cannot_break_the_fence_or_open_html(rendered: Path) -> None:
    project = rendered
    hostile = "walks | through <script>alert(1)</script> and ``` escapes ```` the fence </details> through"
    edit_prompt(project, "walks slowly through", hostile)

    run = run_cli("plan", "--markdown", "--provider", "local", cwd=project)

    assert run.code == 0, run.err
    tokens = parse(run.out)
    assert all(ALLOWED_HTML.match(piece) for piece in html_pieces(tokens)), html_pieces(tokens)
    [(info, diff)] = fences(tokens)
    assert info == "diff"
    assert f"+image 1 wearing the gown from image 2 {hostile} the garden of image 3." in diff.splitlines()
    assert len(table_rows(tokens)) == 3


def test_json_and_markdown_together_are_a_usage_error(example_project: Path) -> None:
    run = run_cli("plan", "--json", "--markdown", cwd=example_project)
    assert run.code == 2
    assert run.out == ""
    assert "--json and --markdown" in run.err


def test_invalid_specs_print_their_problems_in_a_fence_and_exit_2(example_project: Path) -> None:
    edit_prompt(example_project, "duration = 8", "duration = 80")
    run = run_cli("plan", "--markdown", cwd=example_project)
    assert run.code == 2
    assert run.out.startswith("### renderspec plan: the specs are invalid (1 error)\n")
    [(info, text)] = fences(parse(run.out))
    assert info == "text" and "shot garden-walk: duration" in text


# Unit level: shot ids and reasons that the spec language would refuse still must not break the comment.


def shot(
    shot_id: str, *, state: State = State.STALE, reasons: tuple[str, ...] = (), prompt: str = "", **more: Any
) -> PlannedShot:
    fields: dict[str, Any] = {
        "spec": "specs/a.toml",
        "index": 0,
        "key": f"{abs(hash(shot_id)):064x}"[-64:],
        "request": {"input": {"prompt": prompt}},
        "payload": {},
        "expected_size": None,
        "model": "wan2.7-r2v",
        "duration": 5,
        "resolution": "720P",
        "ratio": "16:9",
        "digests": {},
        "input_video_seconds": None,
        "cost": 3.0,
        "currency": "CNY",
        **more,
    }
    return PlannedShot(id=shot_id, state=state, reasons=reasons, **fields)


def old(prompt: str) -> Previous:
    return Previous(key="0" * 64, payload={"request": {"input": {"prompt": prompt}}})


def test_pipes_html_and_backticks_in_ids_reasons_and_prompts_are_escaped() -> None:
    evil = "a|b<script>x</script>`c`"
    comment = plan_comment(
        [
            shot(
                evil,
                reasons=("reference changed: specs/refs/x|y.png", "<b>bold</b> *starred* [link](u)"),
                prompt="```\nP",
            ),
            shot("lost", prompt="```\n<script>alert(2)</script>"),
        ],
        {evil: old("```\n</details>\n<script>alert(1)</script>"), "lost": Previous(key="1" * 64)},
    )
    tokens = parse(comment)
    rows = table_rows(tokens)
    assert all(len(row) == len(COLUMNS) for row in rows)
    # markdown-it hands over a cell's inline source with its escaped pipes already unescaped
    assert rows[1][0] == r"a|b&lt;script&gt;x&lt;/script&gt;\`c\`"
    assert rows[1][2] == r"reference changed: specs/refs/x|y.png; &lt;b&gt;bold&lt;/b&gt; \*starred\* \[link\](u)"
    assert all(ALLOWED_HTML.match(piece) for piece in html_pieces(tokens)), html_pieces(tokens)
    [(info, diff), (text_info, text)] = fences(tokens)
    assert info == "diff"
    assert diff.splitlines() == [" ```", "-</details>", "-<script>alert(1)</script>", "+P"]
    assert (text_info, text) == ("text", "```\n<script>alert(2)</script>\n")


def test_remote_shots_cost_nothing_and_duplicate_renders_are_paid_once() -> None:
    twin = shot("b", state=State.NEW, reasons=("new shot",))
    comment = plan_comment(
        [
            shot("a", state=State.REMOTE, reasons=("on the remote cache",)),
            twin,
            shot("c", state=State.NEW, reasons=("new shot",), key=twin.key),
            shot("d", state=State.CACHED, cost=None),
        ],
        {},
    )
    rows = table_rows(parse(comment))
    assert [row[5] for row in rows[1:]] == [
        "¥0.00 (fetched)",
        "¥3.00",
        "¥0.00 (same render as b)",
        "¥3.00",
    ]
    assert comment.splitlines()[0] == "### renderspec plan: 2 shots to render, 5 s of video, est. ¥3.00 CNY"
    assert "1 shot unchanged (cached)." in comment


def test_an_unknown_cost_makes_the_totals_a_lower_bound() -> None:
    comment = plan_comment([shot("a", state=State.NEW, cost=None), shot("b", state=State.NEW)], {})
    assert comment.splitlines()[0].endswith("est. at least ¥3.00 CNY (some costs unknown)")
    assert table_rows(parse(comment))[-1][5] == "at least ¥3.00 (some costs unknown)"


def test_one_long_prompt_line_diffs_by_sentence_and_whitespace_changes_stay_visible() -> None:
    assert text_diff("One. Two! Three?", "One. Deux! Three?") == [" One.", "-Two!", "+Deux!", " Three?"]
    assert text_diff("a  b", "a b") == ["-a  b", "+a b"]
    assert text_diff("One.  Two.", "One. Two.") == ['-"One.  Two."', '+"One. Two."']


texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40) | st.sampled_from(
    ["|", "\\|", "`", "```", "<td>", "\n"]
)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(texts, st.sampled_from(list(State)), st.lists(texts, max_size=3), texts, texts),
        min_size=1,
        max_size=5,
        unique_by=lambda item: item[0],
    )
)
def test_every_table_row_has_the_same_cells_whatever_the_text(
    items: list[tuple[str, State, list[str], str, str]],
) -> None:
    shots = [
        shot(shot_id, state=state, reasons=tuple(reasons), prompt=new, key=f"{index + 1:064x}")
        for index, (shot_id, state, reasons, new, _) in enumerate(items)
    ]
    previous = {shot_id: old(before) for shot_id, _, _, _, before in items}
    comment = plan_comment(shots, previous)

    tokens = parse(comment)
    rows = table_rows(tokens)
    listed = [item for item in items if item[1] is not State.CACHED]
    assert len(rows) == (len(listed) + 2 if listed else 0)  # header, shots, totals
    # A parser pads or drops cells to the header's count, so check the source lines and where cells landed.
    lines = [line for line in comment.splitlines() if line.startswith("| ")]
    assert len(lines) == len(rows) + (1 if rows else 0)  # and the alignment row
    assert all(len(re.findall(r"(?<!\\)\|", line)) == len(COLUMNS) + 1 for line in lines)
    assert [(row[1], row[3]) for row in rows[1:-1]] == [(str(item[1]), "5 s") for item in listed]
    assert all(ALLOWED_HTML.match(piece) for piece in html_pieces(tokens)), html_pieces(tokens)
    changed = [item for item in listed if item[3] != item[4]]
    assert [content for _, content in fences(tokens)] == [
        "".join(f"{line}\n" for line in text_diff(before, new)) for _, _, _, new, before in changed
    ]
