"""What the commands print: problem lines, the plan as a table or plain lines, JSON documents.

Human output goes to stdout; with --json, stdout carries exactly one JSON document and every
other line goes to stderr.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from renderspec.core.keys import display_request
from renderspec.core.model import PlannedShot, State
from renderspec.core.planning import Plan
from renderspec.core.problems import Problem
from renderspec.outcomes import Outcome, ShotResult

CURRENCY_SIGNS = {"CNY": "¥", "USD": "$"}


def money(amount: float | None, currency: str) -> str:
    if amount is None:
        return "?"
    sign = CURRENCY_SIGNS.get(currency)
    return f"{sign}{amount:,.2f}" if sign else f"{amount:,.2f} {currency}"


def print_problems(problems: Sequence[Problem], out: TextIO) -> None:
    for problem in problems:
        print(problem.format(), file=out)


def is_usable(plan: Plan, files: int, err: TextIO) -> bool:
    """Prints the plan's problems, and the summary line when they make it invalid; True when it is valid."""
    print_problems(plan.problems, err)
    if not plan.is_valid:
        print(problem_summary(plan, files), file=err)
    return plan.is_valid


def problem_summary(plan: Plan, files: int) -> str:
    errors, warnings = len(plan.errors), len(plan.warnings)
    counts = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    shots = len(plan.shots)
    scope = f"{files} spec file{'s' if files != 1 else ''}"
    if errors:
        return f"invalid: {counts} in {scope}"
    return f"ok: {shots} shot{'s' if shots != 1 else ''} in {scope} ({counts})"


def totals(shots: Sequence[PlannedShot]) -> dict[str, Any]:
    states = {state.value: 0 for state in State}
    cost = 0.0
    cost_known = True
    seconds = 0
    to_render = [shot for shot in shots if shot.state.renders]
    for shot in shots:
        states[shot.state] = states.get(shot.state, 0) + 1
    for shot in {shot.key: shot for shot in to_render}.values():  # shots asking for one render pay once
        seconds += shot.duration
        if shot.cost is None:
            cost_known = False
        else:
            cost += shot.cost
    currency = shots[0].currency if shots else "CNY"
    return {
        "shots": len(shots),
        **states,
        "to_render": len(to_render),
        "seconds": seconds,
        "cost": round(cost, 4) if cost_known else None,
        "cost_lower_bound": round(cost, 4),
        "currency": currency,
    }


def plan_document(plan: Plan) -> dict[str, Any]:
    facts = plan.expansion  # lines come from the expansion's locators, scanned only now
    shots = []
    for shot in plan.shots:
        shots.append(
            {
                "id": shot.id,
                "spec": shot.spec,
                "line": facts.line_of(shot.spec, ("shots", shot.index)),
                "key": None if shot.waiting_on else shot.key,  # provisional until its upstream renders
                "state": shot.state,
                "reasons": list(shot.reasons),
                **_take_fields(shot),
                "model": shot.model,
                "duration": shot.duration,
                "resolution": shot.resolution,
                "ratio": shot.ratio,
                "input_video_seconds": shot.input_video_seconds,
                "cost": shot.cost,
                "currency": shot.currency,
                "files": dict(shot.digests),
                "request": display_request(shot.request, shot.digests),
            }
        )
    summary = totals(plan.shots)
    summary.update(errors=len(plan.errors), warnings=len(plan.warnings))
    return {"shots": shots, "summary": summary, "problems": [p.as_json() for p in plan.problems]}


def _take_fields(shot: PlannedShot) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if shot.take is not None:
        fields.update(shot=shot.take_of, take=shot.take, pick=shot.picked)
    if shot.upstream:
        fields.update(upstream=list(shot.upstream), waiting_on=list(shot.waiting_on))
    return fields


def rows(shots: Sequence[PlannedShot]) -> list[tuple[str, PlannedShot | None]]:
    """Each shot with the label it is listed under; a shot's takes follow a header row (no shot) naming it."""
    takes = Counter(shot.take_of for shot in shots if shot.take_of is not None)
    listed: list[tuple[str, PlannedShot | None]] = []
    previous: str | None = None
    for shot in shots:
        if shot.take_of is None:
            listed.append((shot.id, shot))
        else:
            if shot.take_of != previous:
                count = takes[shot.take_of]
                listed.append((f"{shot.take_of}: {count} take{'s' if count != 1 else ''}", None))
            listed.append((f"  take {shot.take}" + (" (pick)" if shot.picked else ""), shot))
        previous = shot.take_of
    return listed


def shown_key(shot: PlannedShot) -> str:
    return "(waiting)" if shot.waiting_on else shot.key[:12]


def write_json(document: Any, out: TextIO) -> None:
    # Compact on purpose: json's C encoder only runs without indent (10k shots: 0.1 s, not 1.8 s).
    out.write(json.dumps(document, ensure_ascii=False))
    out.write("\n")


def plain_plan(plan: Plan, out: TextIO) -> None:
    listed = rows(plan.shots)
    width = max((len(label) for label, shot in listed if shot is not None), default=4)
    for label, shot in listed:
        if shot is None:
            print(f"{'':<7}  {label}", file=out)
            continue
        print(
            f"{shot.state:<7}  {label:<{width}}  {shown_key(shot):<12}  {shot.duration:>2}s {shot.resolution:>5} "
            f"{shot.ratio or 'frame':<5}  {money(shot.cost, shot.currency):>9}  {'; '.join(shot.reasons)}",
            file=out,
        )
    print(summary_line(plan.shots), file=out)


def estimated_cost(total: Mapping[str, Any]) -> str:
    """The plan's estimate as money, or its lower bound when some shot's cost is unknown."""
    if total["cost"] is not None:
        return money(total["cost"], total["currency"])
    return f"at least {money(total['cost_lower_bound'], total['currency'])}"


def summary_line(shots: Sequence[PlannedShot]) -> str:
    total = totals(shots)
    cost = estimated_cost(total)
    states = f"{total['new']} new, {total['stale']} stale, {total['cached']} cached"
    for optional in (
        State.REMOTE,
        State.MISSING,
        State.WAITING,
    ):  # shown only where a remote or a paid lock entry matters
        if total[optional]:
            states += f", {total[optional]} {optional}"
    return (
        f"{total['shots']} shot{'s' if total['shots'] != 1 else ''}: {states}; "
        f"to render: {total['to_render']} shot{'s' if total['to_render'] != 1 else ''}, {total['seconds']} s of video, est. {cost}"
    )


def rich_plan(plan: Plan, out: TextIO) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out)
    table = Table(show_edge=False, header_style="bold")
    for column, justify in (
        ("state", "left"),
        ("shot", "left"),
        ("key", "left"),
        ("len", "right"),
        ("res", "left"),
        ("ratio", "left"),
        ("est. cost", "right"),
        ("why", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    colours = {
        State.NEW: "green",
        State.STALE: "yellow",
        State.CACHED: "dim",
        State.REMOTE: "cyan",
        State.MISSING: "red",
        State.WAITING: "magenta",
    }
    for label, shot in rows(plan.shots):
        if shot is None:
            table.add_row("", f"[bold]{escape(label)}[/]", "", "", "", "", "", "")
            continue
        table.add_row(
            f"[{colours.get(shot.state, 'white')}]{shot.state}[/]",
            escape(label),
            shown_key(shot),
            f"{shot.duration}s",
            shot.resolution,
            shot.ratio or "frame",
            money(shot.cost, shot.currency),
            "; ".join(shot.reasons),
        )
    console.print(table)
    console.print(summary_line(plan.shots), highlight=False)


class LineEvents:
    """Build progress as plain timestamped lines (CI logs, pipes, --json runs on stderr)."""

    def __init__(self, out: TextIO, clock: Any = None, budget: float | None = None) -> None:
        import time

        self.out = out
        self.clock = clock or time.time
        self.spent = 0.0
        self.budget = budget

    def _line(self, text: str) -> None:
        import time

        print(f"[{time.strftime('%H:%M:%S', time.localtime(self.clock()))}] {text}", file=self.out, flush=True)

    def stage(self, shot_id: str, stage: str) -> None:
        self._line(f"{shot_id}: {stage}")

    def done(self, result: ShotResult) -> None:
        if result.outcome is Outcome.RENDERED and result.cost:
            self.spent += result.cost
        detail = f" -> {result.output}" if result.output else f": {result.message}" if result.message else ""
        note = f"est. cost so far {money(self.spent, result.shot.currency)}"
        if self.budget is not None:
            note += f", budget left {money(max(0.0, self.budget - self.spent), result.shot.currency)}"
        self._line(f"{result.shot.id}: {result.outcome}{detail} ({note})")

    def close(self) -> None:
        pass


class RichEvents:
    """Build progress as rich bars on a terminal: overall, and one line per shot in flight."""

    def __init__(self, out: TextIO, total: int, currency: str, budget: float | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.currency = currency
        self.spent = 0.0
        self.budget = budget
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=Console(file=out),
        )
        self.overall = self.progress.add_task("all shots", total=total, note="")
        self.rows: dict[str, Any] = {}
        self.progress.start()

    def stage(self, shot_id: str, stage: str) -> None:
        row = self.rows.get(shot_id)
        if row is None:
            self.rows[shot_id] = self.progress.add_task(f"  {shot_id}", total=None, note=stage)
        else:
            self.progress.update(row, note=stage)

    def done(self, result: ShotResult) -> None:
        if result.outcome is Outcome.RENDERED and result.cost:
            self.spent += result.cost
        row = self.rows.pop(result.shot.id, None)
        if row is not None:
            self.progress.remove_task(row)
        if result.outcome is Outcome.FAILED:
            self.progress.console.print(f"[red]{result.shot.id}: failed: {result.message}[/]", highlight=False)
        note = f"est. cost so far {money(self.spent, self.currency)}"
        if self.budget is not None:
            note += f", budget left {money(max(0.0, self.budget - self.spent), self.currency)}"
        self.progress.update(self.overall, advance=1, note=note)

    def close(self) -> None:
        self.progress.stop()


class Transfers:
    """Progress of `pull` and `push`: a rich bar on a terminal, a line per entry moved otherwise."""

    def __init__(self, out: TextIO, verb: str, total: int) -> None:
        self.out = out
        self.progress: Any = None
        if out.isatty() and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn(verb), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(file=out)
            )
            self.task = self.progress.add_task(verb, total=total)
            self.progress.start()

    def step(self, line: str | None) -> None:
        """One entry dealt with; `line` says what was moved (None: nothing was)."""
        if self.progress is not None:
            self.progress.update(self.task, advance=1)
        elif line:
            print(line, file=self.out)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
