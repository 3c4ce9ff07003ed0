"""`renderspec build`: plan, resolve what the journal left open, render the rest, record it all.

Glue only: the planner decides, the executor carries out, the outputs and lock record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import anyio

from renderspec import reporting
from renderspec.budget import Budget, estimate, refusal
from renderspec.continuity import FRAMES, Continuity
from renderspec.coordination import ClaimGate
from renderspec.core.keys import is_task_id
from renderspec.core.model import PlannedShot, State
from renderspec.core.selection import select_shots
from renderspec.core.shards import Shard, shard_share
from renderspec.errors import SettingsError
from renderspec.executor import BuildOptions, Executor
from renderspec.journal import Journal
from renderspec.media import verify_render
from renderspec.outcomes import Events, Outcome, ShotResult
from renderspec.outputs import ProjectOutputs, RendersIndex, names_of
from renderspec.project import ProjectPlan, plan_project
from renderspec.providers.factory import open_provider
from renderspec.recovery import resolve_journal
from renderspec.remote import open_remote
from renderspec.remote.backend import is_conditional
from renderspec.remote.claims import Claims, identity
from renderspec.remote.tier import Remote
from renderspec.settings import Settings
from renderspec.sharing import fetch_shots, print_warnings, probe, restore_cached, size_tolerance
from renderspec.store import Entry
from renderspec.uploads import FileUploadMemo
from renderspec.workspace import sweep_memo_debris, workspace_lock

DEFAULT_JOBS = {"local": 4, "dashscope": 4, "apiyi": 6}
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


@dataclass(frozen=True, slots=True)
class BuildArguments:
    paths: Sequence[str] = ()
    jobs: int | None = None
    keep_going: bool = False
    dry_run: bool = False
    shots: Sequence[str] = ()
    json: bool = False
    adopt: Mapping[str, str] = field(default_factory=dict)
    resubmit: Sequence[str] = ()
    rerender_missing: bool = False
    shard: Shard | None = None
    budget: float | None = None  # overrides the `budget` setting
    cuts: bool = True  # make the cuts after the shots (`--no-cuts`: not)


def run_build(
    settings: Settings, env: Mapping[str, str], args: BuildArguments, cwd: Path, out: TextIO, err: TextIO
) -> int:
    remote = open_remote(settings.project.remote, env, settings.root)
    try:
        return _build(settings, env, args, cwd, out, err, remote)
    finally:
        if remote is not None:
            remote.close()


def _build(
    settings: Settings,
    env: Mapping[str, str],
    args: BuildArguments,
    cwd: Path,
    out: TextIO,
    err: TextIO,
    remote: Remote | None,
) -> int:
    human = err if args.json else out
    with workspace_lock(settings.cache_dir, wait=True, notice=err):
        project = plan_project(settings, args.paths, cwd, remote=remote)
        shown = len(remote.warnings) if remote is not None else 0
        plan = project.plan
        if not reporting.is_usable(plan, len(project.spec_files), err):
            if args.json:
                reporting.write_json(
                    {
                        "shots": [],
                        "summary": {"errors": len(plan.errors)},
                        "problems": [p.as_json() for p in plan.problems],
                    },
                    out,
                )
            return EXIT_INVALID
        selected = with_upstream(select_shots(plan.shots, args.shots), plan.shots)
        others: list[PlannedShot] = []
        if args.shard is not None:  # everything else is another job's: not rendered, fetched or restored here
            selected, others = shard_share(selected, args.shard)
        limit = args.budget if args.budget is not None else settings.project.budget
        outputs = ProjectOutputs(
            settings.root, settings.project.renders, project.manifest, RendersIndex(settings.cache_dir)
        )
        _sweep(project, outputs, settings)
        restored, damaged = restore_cached(project, outputs, selected)
        for warning in dict.fromkeys(project.store.warnings):
            print(f"renderspec: warning: {warning}", file=err)
        selected = [damaged.get(shot.id, shot) for shot in selected]
        if args.dry_run:
            pending = [shot for shot in selected if shot.state is not State.CACHED]
            if args.json:
                reporting.write_json(reporting.plan_document(_subplan(project, pending)), out)
            else:
                reporting.plain_plan(_subplan(project, pending), human)
            if args.shard is not None:
                print(f"{len(others)} shot{'s belong' if len(others) != 1 else ' belongs'} to other shards", file=human)
            if limit is not None and (refused := refusal(limit, estimate(pending), _currency(pending))):
                print(f"renderspec: error: {refused}", file=err)
                return EXIT_INVALID
            return EXIT_OK
        fetched = 0
        if remote is not None and any(shot.state is State.REMOTE for shot in selected):
            got = fetch_shots(
                project,
                outputs,
                selected,
                remote,
                tolerance=size_tolerance(settings),
                progress=lambda shot, entry: (
                    print(f"{shot.id}: fetched from the remote cache", file=human) if entry is not None else None
                ),
            )
            selected = [got.shots.get(shot.id) or got.refused.get(shot.id) or shot for shot in selected]
            fetched = len(got.shots)
        shown = print_warnings(remote, err, shown)
        missing = [shot for shot in selected if shot.state is State.MISSING]
        if missing and settings.provider != "local" and not args.rerender_missing:
            outputs.save()  # what was fetched stays recorded
            return _refuse_missing(missing, remote, args, out, err)
        if limit is not None and (refused := refusal(limit, found := estimate(selected), _currency(selected))):
            outputs.save()
            print(f"renderspec: error: {refused}", file=err)
            if args.json:
                summary = {"estimate": found.total, "budget": limit, "currency": _currency(selected), "refused": True}
                reporting.write_json({"shots": [], "summary": summary}, out)
            return EXIT_INVALID
        firsts: dict[str, PlannedShot] = {}  # shots asking for the very same render are paid for once
        for shot in selected:
            if shot.state.renders:
                firsts.setdefault(shot.key, shot)
        to_render = list(firsts.values())
        _apply_decisions(project.journal, selected, args)
        results: list[ShotResult] = []
        # Journaled tasks are collected (and lost creates settled) even when nothing else renders.
        if to_render or project.journal.records():
            try:
                budget = Budget(limit, _currency(selected)) if limit is not None else None
                results = anyio.run(_render, settings, env, args, project, outputs, to_render, human, remote, budget)
            except KeyboardInterrupt:
                outputs.save()
                open_tasks = len(project.journal.records())
                print(
                    f"interrupted: {open_tasks} task(s) still at the service are journaled in {settings.project.cache}/journal; "
                    "run `renderspec build` again to collect them without paying again",
                    file=err,
                )
                raise
        for warning in dict.fromkeys(project.journal.warnings):
            print(f"renderspec: warning: {warning}", file=err)
        print_warnings(remote, err, shown)
        if remote is not None and remote.unshared:
            print(
                f"renderspec: warning: {remote.unshared} new render{'s were' if remote.unshared != 1 else ' was'} "
                f"not shared with {remote.url}; run `renderspec push` when it can be reached",
                file=err,
            )
        if project.whole_project and not args.shots:
            current = {shot_id for shot in plan.shots for shot_id in names_of(shot)}
            for shot_id in [shot_id for shot_id in project.manifest.entries if shot_id not in current]:
                project.manifest.drop(shot_id)
        results += _same_render(selected, results, project, outputs)
        outputs.save()
        by_id = {result.shot.id: result for result in results}
        final = [
            by_id.get(shot.id) or ShotResult(shot, Outcome.CACHED, output=outputs.output_path(shot.id))
            for shot in selected
        ]
        _report(final, restored, fetched, settings, args, project, out, human, others=len(others), budget=limit)
        if remote is not None and remote.required and remote.unshared:
            return EXIT_FAILED
        if any(result.outcome in (Outcome.FAILED, Outcome.SKIPPED) for result in final):
            return EXIT_FAILED
        return _make_cuts(settings, project, args, human, err)


def _make_cuts(settings: Settings, project: ProjectPlan, args: BuildArguments, out: TextIO, err: TextIO) -> int:
    """The cuts, after every shot was built (renderspec/cuts.py): not for a build of some spec files
    or one shard, whose plan does not hold every shot a cut may show."""
    if not args.cuts or not project.whole_project or args.shard is not None:
        return EXIT_OK
    from renderspec.cuts import make_cuts

    return make_cuts(settings, project, (), out, err)


def _same_render(
    shots: list[PlannedShot], results: list[ShotResult], project: ProjectPlan, outputs: ProjectOutputs
) -> list[ShotResult]:
    """Shots asking for the very render (one key) another shot of this build made: paid once, materialised for each."""
    original = {shot.id: shot.key for shot in shots}
    made: dict[str, ShotResult] = {}
    for result in results:  # a waiting shot's result carries its final key; its duplicates name the provisional one
        made[result.shot.key] = made[original.get(result.shot.id, result.shot.key)] = result
    done = {result.shot.id for result in results}
    extra: list[ShotResult] = []
    for shot in shots:
        first = made.get(shot.key)
        if not shot.state.renders or shot.id in done or first is None:
            continue
        entry = project.store.get(first.shot.key) if first.outcome in (Outcome.RENDERED, Outcome.CACHED) else None
        if entry is not None:
            same = replace(shot, key=first.shot.key, payload=first.shot.payload, request=first.shot.request)
            extra.append(ShotResult(same, Outcome.CACHED, output=outputs.commit(same, entry, entry.task_id)))
        else:
            why = f"it asks for the same render as shot {first.shot.id}, which did not render"
            extra.append(ShotResult(shot, Outcome.SKIPPED, message=why))
    return extra


def _refuse_missing(
    missing: list[PlannedShot], remote: Remote | None, args: BuildArguments, out: TextIO, err: TextIO
) -> int:
    """The spend guard: shots the lock says were paid for are not paid for again without --rerender-missing."""
    found = estimate(missing)  # one render per key, as the build would pay for them
    cost = "an unknown amount" if found.unknown else reporting.money(found.total, _currency(missing))
    names = ", ".join(shot.id for shot in missing[:20]) + (", ..." if len(missing) > 20 else "")
    count = len(missing)
    them = "them" if count != 1 else "it"
    if remote is None:
        where = f"no remote cache is configured to fetch {them} from ([renderspec.remote] url, RENDERSPEC_REMOTE or --remote)"
    elif remote.offline:
        where = f"the remote cache {remote.url} could not be used"
    else:
        where = f"the remote cache {remote.url} does not hold {them}"
    print(
        f"renderspec: error: {count} shot{'s were' if count != 1 else ' was'} already paid for (renderspec.lock has "
        f"{'their keys' if count != 1 else 'its key'}, or the remote cache listed "
        f"{them}) but could not be brought from a cache: {names}; "
        f"{where}. Rendering {them} again would cost about {cost}; "
        "pass --rerender-missing to pay for that (nothing was submitted)",
        file=err,
    )
    if args.json:
        reporting.write_json(
            {
                "shots": [{"id": shot.id, "key": shot.key, "state": shot.state, "cost": shot.cost} for shot in missing],
                "summary": {"missing": count, "refused": True},
            },
            out,
        )
    return EXIT_INVALID


def _sweep(project: ProjectPlan, outputs: ProjectOutputs, settings: Settings) -> None:
    """What killed builds left half-written (temporary files, staging folders) goes first."""
    project.journal.sweep()
    project.store.sweep()
    outputs.sweep()
    sweep_memo_debris(settings.cache_dir)


async def _render(
    settings: Settings,
    env: Mapping[str, str],
    args: BuildArguments,
    project: ProjectPlan,
    outputs: ProjectOutputs,
    shots: list[PlannedShot],
    human: TextIO,
    remote: Remote | None,
    budget: Budget | None = None,
) -> list[ShotResult]:
    journal = project.journal
    memo = FileUploadMemo(settings.cache_dir / "uploads.json")
    async with open_provider(settings, env, uploads=memo) as provider:
        options = BuildOptions(
            jobs=args.jobs or settings.project.concurrency or DEFAULT_JOBS[settings.provider],
            poll_interval=provider.poll_interval,
            timeout=settings.project.timeout,
            submit_interval=1.0 / settings.project.submit_rate,
            keep_going=args.keep_going or _truthy(env.get("CI")),
            size_tolerance=0.0 if settings.provider == "local" else 0.05,
        )
        stored_ids: set[str] | None = None

        def known_ids() -> set[str]:
            """Task ids something already claims: lock, journal (with duplicates), cache entries."""
            nonlocal stored_ids
            if stored_ids is None:
                stored_ids = project.store.task_ids()  # reads every record: only when a create was lost
            ids: set[str] = project.manifest.task_ids() | stored_ids
            for record in journal.records().values():
                ids.update(item for item in (record.task_id, *record.duplicates) if item)
            return ids

        if any(record.task_id is None for record in journal.records().values()):
            for note in await resolve_journal(
                provider,
                journal,
                await anyio.to_thread.run_sync(known_ids),
                poll_interval=provider.poll_interval,
                patience=settings.project.timeout,
                settle=provider.poll_interval,
            ):
                print(note, file=human)
        records = journal.records()  # as resolving left it: adopted tasks included
        limit = budget.limit if budget is not None else None
        events: Events = (
            reporting.RichEvents(human, len(shots), shots[0].currency if shots else "CNY", budget=limit)
            if human.isatty()
            else reporting.LineEvents(human, budget=limit)
        )
        executor = Executor(
            provider=provider,
            store=project.store,
            journal=journal,
            files_root=settings.root,
            outputs=outputs,
            events=events,
            options=options,
            verify=_verify,
            known_task_ids=known_ids,
            share=_sharer(remote),
            gate=_gate(settings, env, remote, project, events, provider.poll_interval),
            budget=budget,
            upstream=Continuity(
                project.plan,
                project.store,
                settings.cache_dir / FRAMES,
                remote=remote,
                probe=_prober(settings),
                locked=lambda shot_id: shot_id in project.manifest.entries,
            ),
        )
        try:
            wanted = {shot.key for shot in shots}
            orphans = {key: record for key, record in records.items() if key not in wanted}
            return await executor.run(shots, records, orphans)
        finally:
            events.close()


def with_upstream(chosen: list[PlannedShot], shots: Sequence[PlannedShot]) -> list[PlannedShot]:
    """The chosen shots and every shot whose render one of them waits on (make-style), in plan order."""
    by_id = {shot.id: shot for shot in shots}
    wanted = {shot.id for shot in chosen}
    stack = [upstream for shot in chosen for upstream in shot.waiting_on]
    while stack:
        shot_id = stack.pop()
        if shot_id not in wanted and shot_id in by_id:
            wanted.add(shot_id)
            stack.extend(by_id[shot_id].waiting_on)
    return [shot for shot in shots if shot.id in wanted]


def _sharer(remote: Remote | None) -> Callable[[Entry], Awaitable[object]] | None:
    """Pushes each new render right after it is committed, so a killed CI job still shares what it paid for."""
    if remote is None or remote.read_only:
        return None  # an offline remote still gets the call: it counts what it could not share

    async def share(entry: Entry) -> object:
        return await anyio.to_thread.run_sync(remote.push, entry)

    return share


def _gate(
    settings: Settings, env: Mapping[str, str], remote: Remote | None, project: ProjectPlan, events: Events, poll: float
) -> ClaimGate | None:
    """Claims on the remote, where it can hold them (conditional writes) and this build may write."""
    if remote is None or not remote.writable:
        return None
    backend = remote.backend
    if not is_conditional(backend):
        return None
    claims = Claims(backend, lease=settings.project.remote.lease, clock=time.time, who=identity(env))
    return ClaimGate(
        claims,
        remote,
        project.store,
        probe=_prober(settings),
        events=events,
        poll_interval=poll,
        timeout=settings.project.timeout,
    )


def _prober(settings: Settings) -> Callable[[PlannedShot, Path], object]:
    """How a render fetched during the build (another build's, or a dependent's) is checked before it is used."""
    tolerance = size_tolerance(settings)
    return lambda shot, path: probe(shot, tolerance, path)


def _currency(shots: Sequence[PlannedShot]) -> str:
    return shots[0].currency if shots else "CNY"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _verify(path: Path, size: tuple[int, int] | None, seconds: float, tolerance: float) -> Any:
    return verify_render(path, size=size, seconds=seconds, size_tolerance=tolerance)


def _apply_decisions(journal: Journal, shots: list[PlannedShot], args: BuildArguments) -> None:
    """--adopt SHOT=TASK and --resubmit SHOT settle creates whose answer was lost."""
    by_id = {shot.id: shot for shot in shots}
    for shot_id, task_id in args.adopt.items():
        if shot_id not in by_id:
            raise SettingsError(f"--adopt names shot {shot_id}, which is not in this build")
        if not is_task_id(task_id):
            raise SettingsError(f"--adopt {shot_id}={task_id[:60]}: that is not a task id (letters, digits, . _ : -)")
        record = journal.get(by_id[shot_id].key)
        sent_at = record.sent_at if record is not None and record.sent_at is not None else time.time()
        journal.write(by_id[shot_id].key, shot=shot_id, task_id=task_id, submitted_at=sent_at, outcome="adopted")
    for shot_id in args.resubmit:
        if shot_id not in by_id:
            raise SettingsError(f"--resubmit names shot {shot_id}, which is not in this build")
        journal.forget(by_id[shot_id].key)


def _subplan(project: ProjectPlan, shots: list[PlannedShot]) -> Any:
    return replace(project.plan, shots=shots)


def _report(
    results: list[ShotResult],
    restored: int,
    fetched: int,
    settings: Settings,
    args: BuildArguments,
    project: ProjectPlan,
    out: TextIO,
    human: TextIO,
    *,
    others: int = 0,
    budget: float | None = None,
) -> None:
    rendered = [r for r in results if r.outcome is Outcome.RENDERED]
    cached = [r for r in results if r.outcome is Outcome.CACHED]
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    skipped = [r for r in results if r.outcome is Outcome.SKIPPED]
    currency = results[0].shot.currency if results else "CNY"
    spent = sum(r.cost or 0.0 for r in rendered)
    if args.json:
        document = {
            "shots": [
                {
                    "id": r.shot.id,
                    "key": r.shot.key,
                    "state": r.outcome.value,
                    "output": r.output
                    or (project.manifest.entries[r.shot.id].output if r.shot.id in project.manifest.entries else None),
                    "task_id": r.task_id,
                    "seconds": round(r.seconds, 3),
                    "cost": r.cost,
                    "code": r.code,
                    "message": r.message,
                }
                for r in results
            ],
            "summary": {
                "rendered": len(rendered),
                "cached": len(cached),
                "fetched": fetched,
                "failed": len(failed),
                "skipped": len(skipped),
                "spent": round(spent, 4),
                "currency": currency,
                "other_shards": others,
                "budget": budget,
            },
        }
        out.write(json.dumps(document, ensure_ascii=False) + "\n")
    for result in failed + skipped:
        line = project.plan.line_of(result.shot)
        where = f"{result.shot.spec}:{line}" if line else result.shot.spec
        print(f"{where}: shot {result.shot.id}: {result.outcome.value}: {result.message}", file=human)
    renders = settings.project.renders
    elsewhere = (
        f"; {others} shot{'s belong' if others != 1 else ' belongs'} to other shards (--shard {args.shard})"
        if args.shard is not None
        else ""
    )
    if not rendered and not failed and not skipped:
        extra = f" (restored {restored} in {renders}/)" if restored else ""
        extra += f" (fetched {fetched} from the remote cache)" if fetched else ""
        print(
            f"nothing to render: {len(cached)} shot{'s' if len(cached) != 1 else ''} cached{extra}{elsewhere}; "
            f"videos are in {renders}/",
            file=human,
        )
        return
    cost = reporting.money(spent, currency)
    spend = (
        f"the service would have charged about {cost} (the emulator charged nothing)"
        if settings.provider == "local"
        else f"spent about {cost}"
    )
    cached_count = f"{len(cached)} (fetched {fetched})" if fetched else str(len(cached))
    if budget is not None:
        spend += f"; budget {reporting.money(budget, currency)}"
    print(
        f"rendered {len(rendered)}, cached {cached_count}, failed {len(failed)}, skipped {len(skipped)}; {spend}"
        f"{elsewhere}; videos are in {renders}/",
        file=human,
    )
    if failed or skipped:
        print("run `renderspec build` again to retry the failed shots (rendered shots are kept)", file=human)
