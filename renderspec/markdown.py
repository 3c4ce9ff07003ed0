"""The plan as a Markdown pull-request comment (`renderspec plan --markdown`), as Infracost does for cloud cost.

A heading with the totals, a table of the shots that are not cached, a count of those that are,
and a collapsible diff of each changed prompt. Shot ids, reasons and prompts come from specs that
a pull request may have written, so each is escaped for where it lands: no text can add a table
cell, open an HTML tag or close a code fence. The same plan always prints the same text.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from renderspec.core.decisions import Previous
from renderspec.core.explanation import sentences
from renderspec.core.model import PlannedShot, State
from renderspec.core.problems import Problem
from renderspec.reporting import CURRENCY_SIGNS, estimated_cost, money, totals

COLUMNS = ("shot", "state", "why", "duration", "resolution", "cost")
_ALIGN = ("---", "---", "---", "---:", "---", "---:")
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")
_BACKTICKS = re.compile(r"`+")
_PROMPTS = (("prompt", "prompt"), ("negative_prompt", "negative prompt"))


def plan_comment(shots: Sequence[PlannedShot], previous: Mapping[str, Previous]) -> str:
    """The whole comment for a valid plan; `previous` is what the lock and cache said of each shot's last render."""
    listed = [shot for shot in shots if shot.state is not State.CACHED]
    unchanged = len(shots) - len(listed)
    lines = [f"### {_heading(shots)}", ""]
    if listed:
        lines += [*_table(listed), ""]
    if unchanged:
        lines += [f"{unchanged} shot{'s' if unchanged != 1 else ''} unchanged (cached).", ""]
    for shot in listed:
        lines += _prompt_details(shot, previous.get(shot.id))
    return "\n".join(lines).rstrip("\n") + "\n"


def problems_comment(problems: Sequence[Problem]) -> str:
    """What to post when the specs do not plan: the problem lines, as `check` prints them."""
    errors = sum(1 for problem in problems if problem.is_error)
    body = [line for problem in problems for line in problem.format().splitlines()]
    heading = f"### renderspec plan: the specs are invalid ({errors} error{'s' if errors != 1 else ''})"
    return "\n".join([heading, "", *fenced(body, "text")]) + "\n"


def _heading(shots: Sequence[PlannedShot]) -> str:
    total = totals(shots)
    if not total["to_render"]:
        return "renderspec plan: nothing to render"
    count = total["to_render"]
    return (
        f"renderspec plan: {count} shot{'s' if count != 1 else ''} to render, "
        f"{total['seconds']} s of video, est. {_total_cost(total, with_code=True)}"
    )


def _total_cost(total: Mapping[str, Any], *, with_code: bool = False) -> str:
    currency = total["currency"]
    code = f" {currency}" if with_code and currency in CURRENCY_SIGNS else ""
    return estimated_cost(total) + code + (" (some costs unknown)" if total["cost"] is None else "")


def _table(listed: Sequence[PlannedShot]) -> list[str]:
    rows = [_row(COLUMNS), _row(_ALIGN)]
    first_of_key: dict[str, str] = {}
    for shot in listed:
        if shot.state is State.REMOTE:
            cost = f"{money(0.0, shot.currency)} (fetched)"
        elif shot.key in first_of_key:  # shots asking for one render pay once (as `totals` counts them)
            cost = f"{money(0.0, shot.currency)} (same render as {first_of_key[shot.key]})"
        else:
            first_of_key[shot.key] = shot.id
            cost = money(shot.cost, shot.currency)
        rows.append(
            _row(
                (
                    cell(shot.id),
                    str(shot.state),
                    cell("; ".join(shot.reasons)),
                    f"{shot.duration} s",
                    cell(shot.resolution),
                    cell(cost),
                )
            )
        )
    total = totals(listed)
    rows.append(
        _row(
            ("**total**", f"{total['to_render']} to render", "", f"{total['seconds']} s", "", cell(_total_cost(total)))
        )
    )
    return rows


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def cell(text: str) -> str:
    """Text for one table cell: on one line, no HTML, no Markdown markup, no unescaped pipe."""
    flat = " ".join(text.splitlines())
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(flat, quote=False))


def _summary(text: str) -> str:
    return html.escape(" ".join(text.splitlines()), quote=True)


def _prompt_details(shot: PlannedShot, before: Previous | None) -> list[str]:
    if before is None or before.key == shot.key:
        return []  # a new shot has no old text; a `missing` one asks for the very render it had
    new_input = shot.request.get("input", {})
    if before.payload is None:
        return _details(
            f"{shot.id}: prompt (the previous text is not available)",
            [
                f"The previous render (key <code>{before.key[:12]}</code>) is not in the local cache, "
                "so its prompt cannot be compared. The prompt now:",
                "",
                *fenced(sentences(str(new_input.get("prompt") or "")), "text"),
            ],
        )
    old_input = _old_input(before.payload)
    blocks: list[str] = []
    for name, label in _PROMPTS:
        old, new = old_input.get(name), new_input.get(name)
        if old == new:
            continue
        if old is not None and not isinstance(old, str):
            blocks += _details(f"{shot.id}: {label} changed (the previous text is unreadable)", [])
            continue
        blocks += _details(f"{shot.id}: {label} changed", fenced(text_diff(old or "", str(new or "")), "diff"))
    return blocks


def _old_input(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    # The payload was read from the cache's meta.json: tolerate any shape rather than crash a report.
    request = payload.get("request")
    found = request.get("input") if isinstance(request, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _details(summary: str, body: Sequence[str]) -> list[str]:
    return ["<details><summary>" + _summary(summary) + "</summary>", "", *body, "", "</details>", ""]


def text_diff(old: str, new: str) -> list[str]:
    """Old and new text sentence by sentence, every line shown, marked ` `, `-` or `+` as a unified diff is."""
    before, after = sentences(old), sentences(new)
    if before == after:  # only whitespace differs: show both whole, with their whitespace visible
        return [f"-{json.dumps(old, ensure_ascii=False)}", f"+{json.dumps(new, ensure_ascii=False)}"]
    return list(_diff_lines(before, after))


def _diff_lines(before: list[str], after: list[str]) -> Iterator[str]:
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            yield from (f" {line}" for line in before[i1:i2])
        else:
            yield from (f"-{line}" for line in before[i1:i2])
            yield from (f"+{line}" for line in after[j1:j2])


def fenced(lines: Sequence[str], info: str) -> list[str]:
    """A fenced code block longer than any run of backticks inside, so no line can close it early."""
    longest = max((len(run) for line in lines for run in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *lines, fence]
