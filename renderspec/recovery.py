"""Finding the task a create made when its answer was lost, before anything is sent again.

A journal record without a task id means a create was sent (or was about to be) and its answer
never came: the build died, the connection dropped, a gateway answered 502 or 504. The service
may have made the task. Where it lists tasks, the candidates are the tasks of the model in the
record's time window that no record, lock entry or cache entry already claims, and a candidate
is the lost create's task only if what the service reports it was asked to render (the
provider's `request_facts`: prompt, length, resolution, ratio, model) equals what the record says
was sent. Never "the only unknown task": another project on the same account, or a superseded
version of the same shot, may have made it.

- A match (or several identical ones): the earliest is adopted; the others were paid for too and
  are recorded as duplicates, so nothing adopts them later.
- No match once the candidates have finished and the create has had time to appear: the create
  never reached the service, and it may be sent again.
- A candidate that matches two lost creates, candidates still running at the deadline, or a
  service with no list (APIYI): unresolved, so a person decides (`--adopt`, `--resubmit`).

This is the one resolver: the build runs it over the journal before rendering, and the executor
runs it for a create whose answer it lost.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import anyio

from renderspec.errors import WorkspaceError
from renderspec.journal import Journal, Record
from renderspec.providers.base import Provider, TaskSummary

LOOKBACK = 120.0  # clock skew between this machine and the service
WINDOW = 600.0  # how long after it was sent a create may still appear (slow gateways, long timeouts)
ADOPT_HINT = (
    "look the task up in the provider's console, then run `renderspec build --adopt SHOT=TASK_ID`, "
    "or `renderspec build --resubmit SHOT` to send it again (this may pay twice)"
)


class UnresolvedSubmissions(WorkspaceError):
    """Creates whose outcome cannot be known from here; each needs the user's decision."""


@dataclass(frozen=True, slots=True)
class LostCreate:
    """A create whose answer never came: what was sent, and when."""

    key: str
    shot: str
    model: str
    sent_at: float
    facts: Mapping[str, Any]
    lost_at: float | None = None


@dataclass(slots=True)
class Resolution:
    adopted: dict[str, str] = field(default_factory=dict)  # key -> task id
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # key -> other paid tasks of that request
    not_created: list[str] = field(default_factory=list)
    unresolved: dict[str, str] = field(default_factory=dict)  # key -> why
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Candidate:
    summary: TaskSummary
    facts: Mapping[str, Any] | None
    final: bool


def lost_create(record: Record, provider: Provider, clock: Callable[[], float]) -> LostCreate | None:
    """The lost create a journal record describes, or None when it does not say what was sent."""
    body = record.sent
    if body is None and record.expect is not None:  # records older than `sent`: the key's request
        payload = record.expect.get("payload")
        body = payload.get("request") if isinstance(payload, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return None
    sent_at = (
        record.sent_at if record.sent_at is not None else record.updated if record.updated is not None else clock()
    )
    return LostCreate(
        key=record.key,
        shot=record.shot or "?",
        model=body["model"],
        sent_at=sent_at,
        facts=provider.request_facts(body),
        lost_at=record.updated,
    )


async def resolve_lost(
    provider: Provider,
    lost: Sequence[LostCreate],
    known_task_ids: Set[str],
    *,
    poll_interval: float,
    patience: float,
    settle: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    rivals: Callable[[], Sequence[LostCreate]] | None = None,
) -> Resolution:
    """Decides each lost create: adopted, never created, or unresolved (see the module's rules).

    `rivals` gives the other creates still without a task (lost, or not yet answered) that are
    being decided elsewhere: a task matching one of them as well as a lost create is not adopted.
    """
    resolution = Resolution()
    if not lost:
        return resolution
    deadline = clock() + patience
    seen: dict[str, _Candidate] = {}
    open_ = list(lost)
    while open_:
        listed = await _survey(provider, open_, known_task_ids, seen)
        if not listed:  # no list at this service
            for item in open_:
                resolution.unresolved[item.key] = (
                    f"{provider.name} cannot list tasks to find out whether it was accepted"
                )
            break
        finals = [candidate for candidate in seen.values() if candidate.final and candidate.facts is not None]
        matches = {item.key: _matches(item, finals) for item in open_}
        owners: dict[str, list[str]] = {}
        for item in open_:
            for candidate in matches[item.key]:
                owners.setdefault(candidate.summary.task_id, []).append(item.shot)
        deciding = {item.key for item in open_}
        for rival in rivals() if rivals is not None else ():
            if rival.key not in deciding:
                for candidate in _matches(rival, finals):
                    owners.setdefault(candidate.summary.task_id, []).append(rival.shot)
        out_of_time = clock() >= deadline
        still_open = []
        for item in open_:
            found = matches[item.key]
            waiting = [c for c in seen.values() if not c.final and _in_window(item, c)]
            shared = sorted({shot for c in found for shot in owners[c.summary.task_id] if shot != item.shot})
            if shared:
                resolution.unresolved[item.key] = (
                    f"task {found[0].summary.task_id} matches what was sent for it and for {', '.join(shared)} alike"
                )
            elif found and (out_of_time or not any(_earlier(c, found[0]) for c in waiting)):
                _adopt(item, found, resolution)
            elif not found and not waiting and clock() >= max(item.sent_at, item.lost_at or item.sent_at) + settle:
                resolution.not_created.append(item.key)
                resolution.notes.append(
                    f"shot {item.shot}: the lost create never reached the service; it will be sent again"
                )
            elif out_of_time:
                ids = ", ".join(sorted(c.summary.task_id for c in waiting)) or "?"
                resolution.unresolved[item.key] = (
                    f"could not yet tell whether task(s) {ids} are its own (they had not finished)"
                )
            else:
                still_open.append(item)
        open_ = still_open
        if open_:
            await sleep(poll_interval)
    return resolution


async def _survey(provider: Provider, lost: Sequence[LostCreate], known: Set[str], seen: dict[str, _Candidate]) -> bool:
    """Lists the candidates and queries those not yet finished into `seen`; False with no list."""
    models: dict[str, list[LostCreate]] = {}
    for item in lost:
        models.setdefault(item.model, []).append(item)
    for model, group in models.items():
        since = min(item.sent_at for item in group) - LOOKBACK
        until = max(item.sent_at for item in group) + WINDOW
        listed = await provider.recent_tasks(model, since, until)
        if listed is None:
            return False
        for summary in listed:
            task_id = summary.task_id
            if task_id in known or (task_id in seen and seen[task_id].final):
                continue
            status = await provider.query(task_id)
            facts = dict(status.request_facts) if status.request_facts is not None else None
            if facts is not None and summary.model:
                facts.setdefault("model", summary.model)
            seen[task_id] = _Candidate(summary, facts, status.state.is_final)
    return True


def _matches(item: LostCreate, finals: Sequence[_Candidate]) -> list[_Candidate]:
    """Finished candidates in the item's window whose reported facts all equal what was sent."""
    found = [c for c in finals if c.facts is not None and _in_window(item, c) and agrees(item.facts, c.facts)]
    return sorted(
        found, key=lambda c: (c.summary.submitted if c.summary.submitted is not None else 0.0, c.summary.task_id)
    )


def _earlier(candidate: _Candidate, than: _Candidate) -> bool:
    """Whether `candidate` may have been made before `than` (an unknown time may be earlier)."""
    mine, theirs = candidate.summary.submitted, than.summary.submitted
    return mine is None or theirs is None or mine <= theirs


def agrees(sent: Mapping[str, Any], reported: Mapping[str, Any]) -> bool:
    """Every fact both sides state is equal (and there is at least one to compare)."""
    common = set(sent) & set(reported)
    return bool(common) and all(sent[name] == reported[name] for name in common)


def _in_window(item: LostCreate, candidate: _Candidate) -> bool:
    submitted = candidate.summary.submitted
    return submitted is None or item.sent_at - LOOKBACK <= submitted <= item.sent_at + WINDOW


def _adopt(item: LostCreate, found: Sequence[_Candidate], resolution: Resolution) -> None:
    task_id = found[0].summary.task_id
    resolution.adopted[item.key] = task_id
    note = f"shot {item.shot}: found its task {task_id} at the service; collecting it instead of paying again"
    if len(found) > 1:
        others = [candidate.summary.task_id for candidate in found[1:]]
        resolution.duplicates[item.key] = others
        note += f" (task(s) {', '.join(others)} ran the same request and were paid too; recorded as duplicates)"
    resolution.notes.append(note)


async def resolve_journal(
    provider: Provider,
    journal: Journal,
    known_task_ids: Set[str],
    *,
    poll_interval: float,
    patience: float,
    settle: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> list[str]:
    """Settles every journal record without a task id; returns notes for the log.

    Raises UnresolvedSubmissions (after recording what could be settled) when some cannot be.
    """
    notes: list[str] = []
    lost: list[LostCreate] = []
    records = journal.records()
    for record in records.values():
        if record.task_id:
            continue
        item = lost_create(record, provider, clock)
        if item is None:
            journal.forget(record.key)
            notes.append(f"forgot an unanswered create for shot {record.shot}: its record does not say what was sent")
        else:
            lost.append(item)
    resolution = await resolve_lost(
        provider,
        lost,
        known_task_ids,
        poll_interval=poll_interval,
        patience=patience,
        settle=settle,
        clock=clock,
        sleep=sleep,
    )
    for key, task_id in resolution.adopted.items():
        duplicates = tuple(resolution.duplicates.get(key, ()))
        write = functools.partial(
            journal.write, key, task_id=task_id, submitted_at=records[key].sent_at, duplicates=duplicates
        )
        await anyio.to_thread.run_sync(write)
    for key in resolution.not_created:
        await anyio.to_thread.run_sync(journal.forget, key)
    notes += resolution.notes
    if resolution.unresolved:
        lines = "; ".join(f"shot {records[key].shot}: {why}" for key, why in sorted(resolution.unresolved.items()))
        raise UnresolvedSubmissions(
            f"the answer to a create was lost and it cannot be told whether it was made: {lines}", hint=ADOPT_HINT
        )
    return notes
