"""Resolving creates whose answer was lost, before anything is submitted again.

A journal record with no task id means a create was (or was about to be) sent when the build
died or the connection dropped. Where the service lists tasks, recent unclaimed tasks of the
model are matched to those records (by their prompt once they finish); where it cannot, the
build stops and names the shots, so a person decides.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Set
from typing import Any

import anyio

from renderspec.cache import Cache
from renderspec.core.model import PlannedShot
from renderspec.errors import WorkspaceError
from renderspec.providers.base import Provider, TaskState

LOOKBACK = 120.0


class UnresolvedSubmissions(WorkspaceError):
    """Creates whose outcome cannot be known from here; each needs the user's decision."""


async def resolve_unknown(
    provider: Provider,
    cache: Cache,
    shots: Mapping[str, PlannedShot],
    known_task_ids: Set[str],
    *,
    poll_interval: float,
    patience: float,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Adopts or forgets every record without a task id; returns notes for the log."""
    notes: list[str] = []
    by_model: dict[str, dict[str, Mapping[str, Any]]] = {}
    prompts: dict[str, str] = {}
    journal: Mapping[str, Mapping[str, Any]] = cache.journal()
    for key, record in journal.items():
        if record.get("task_id"):
            continue
        sent = _what_was_sent(key, record, shots)
        if sent is None:
            cache.forget(key)
            notes.append(
                f"forgot an unanswered create for shot {record.get('shot')}: its record does not say what was sent"
            )
            continue
        model, prompts[key] = sent
        by_model.setdefault(model, {})[key] = record
    if not by_model:
        return notes
    for model, records in by_model.items():
        since = min(float(record.get("sent_at", clock())) for record in records.values()) - LOOKBACK
        listed = await provider.recent_tasks(model, since)
        if listed is None:
            names = ", ".join(sorted(str(record.get("shot")) for record in records.values()))
            raise UnresolvedSubmissions(
                f"the answer to a create was lost for shot(s) {names}, and {provider.name} cannot list tasks to find out "
                "whether it was accepted",
                hint=(
                    "look the task up in the provider's console, then run `renderspec build --adopt SHOT=TASK_ID`, "
                    "or `renderspec build --resubmit SHOT` to send it again (this may pay twice)"
                ),
            )
        candidates = [task.task_id for task in listed if task.task_id not in known_task_ids]
        notes += await _match(
            provider,
            cache,
            prompts,
            records,
            candidates,
            poll_interval=poll_interval,
            deadline=clock() + patience,
            sleep=sleep,
            clock=clock,
        )
    return notes


def _what_was_sent(key: str, record: Mapping[str, Any], shots: Mapping[str, PlannedShot]) -> tuple[str, str] | None:
    """The model and prompt of a lost create: from its journal record, so a shot edited (or left
    out of this build) since still has its possibly paid task found; from the plan for old records."""
    expect = record.get("expect")
    if isinstance(expect, dict):
        try:
            return str(expect["model"]), str(expect["payload"]["request"]["input"]["prompt"])
        except (KeyError, TypeError):
            pass
    shot = shots.get(key)
    return (shot.model, shot.request["input"]["prompt"]) if shot is not None else None


async def _match(
    provider: Provider,
    cache: Cache,
    prompts: Mapping[str, str],
    records: Mapping[str, Mapping[str, Any]],
    candidates: list[str],
    *,
    poll_interval: float,
    deadline: float,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
) -> list[str]:
    notes: list[str] = []
    if not candidates:
        for key, record in records.items():
            cache.forget(key)
            notes.append(f"shot {record.get('shot')}: the lost create never reached the service; it will be sent again")
        return notes
    if len(records) == 1 and len(candidates) == 1:
        (key, record), task_id = next(iter(records.items())), candidates[0]
        cache.record(key, task_id=task_id, submitted_at=record.get("sent_at", clock()))
        return [
            f"shot {record.get('shot')}: found its task {task_id} at the service; collecting it instead of paying again"
        ]
    # Several at once: wait for the candidates to finish and match them by the prompt they ran.
    open_keys = dict(records)
    remaining = set(candidates)
    while remaining and open_keys and clock() < deadline:
        for task_id in sorted(remaining):
            status = await provider.query(task_id)
            if not status.state.is_final:
                continue
            remaining.discard(task_id)
            prompt = (
                (status.raw.get("output") or {}).get("orig_prompt")
                if isinstance(status.raw.get("output"), dict)
                else None
            )
            for key, record in list(open_keys.items()):
                if status.state is TaskState.SUCCEEDED and prompt == prompts[key]:
                    cache.record(key, task_id=task_id, submitted_at=record.get("sent_at", clock()))
                    notes.append(f"shot {record.get('shot')}: matched its lost create to task {task_id}")
                    del open_keys[key]
                    break
        if remaining and open_keys:
            await sleep(poll_interval)
    if remaining and open_keys:
        names = ", ".join(sorted(str(record.get("shot")) for record in open_keys.values()))
        raise UnresolvedSubmissions(
            f"could not yet tell which of the tasks {', '.join(sorted(remaining))} belong to shot(s) {names}",
            hint="run the build again when those tasks have finished",
        )
    for key, record in open_keys.items():
        cache.forget(key)
        notes.append(f"shot {record.get('shot')}: no finished task matches its lost create; it will be sent again")
    return notes
