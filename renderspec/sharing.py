"""Renders between machines: fetching what the remote holds (build, `pull`), sharing what was made here (`push`).

Glue between the remote tier, the local cache and renders/: a fetched entry is verified by the
tier before it enters the local cache, then materialised like any cached render.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from renderspec import reporting
from renderspec.core.model import PlannedShot, State
from renderspec.core.selection import select_shots
from renderspec.errors import SettingsError
from renderspec.media import verify_render
from renderspec.outputs import ProjectOutputs, RendersIndex, names_of
from renderspec.project import ProjectPlan, plan_project
from renderspec.remote import open_remote
from renderspec.remote.tier import Remote
from renderspec.settings import Settings
from renderspec.store import Entry, LocalStore
from renderspec.workspace import workspace_lock

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def size_tolerance(settings: Settings) -> float:
    """The emulator's previews are exact; the service's videos may differ from the asked size by a few percent."""
    return 0.0 if settings.provider == "local" else 0.05


def probe(shot: PlannedShot, tolerance: float, path: Path) -> object:
    """A fetched video must be an mp4 of the shot's size and length, every packet there, its first frame decoding."""
    return verify_render(
        path, size=shot.expected_size, seconds=float(shot.duration), size_tolerance=tolerance, decode_tail=False
    )


@dataclass(slots=True)
class Fetched:
    """What fetching the `remote` shots of a plan did."""

    shots: dict[str, PlannedShot] = field(default_factory=dict)  # by shot id: each fetched shot, now cached
    refused: dict[str, PlannedShot] = field(default_factory=dict)  # by shot id: the remote copy failed, must render
    bytes: int = 0


def fetch_shots(
    project: ProjectPlan,
    outputs: ProjectOutputs,
    shots: Sequence[PlannedShot],
    remote: Remote,
    *,
    tolerance: float,
    progress: Callable[[PlannedShot, Entry | None], None] = lambda shot, entry: None,
) -> Fetched:
    """Fetches every `remote` shot into the local cache (verified) and materialises it in renders/.

    Each key is fetched once; every shot that asks for it gets it (shots may share a key).
    """
    wanted: dict[str, list[PlannedShot]] = {}
    for shot in shots:
        if shot.state is State.REMOTE:
            wanted.setdefault(shot.key, []).append(shot)
    result = Fetched()
    store = project.store

    def one(group: list[PlannedShot]) -> Entry | None:
        entry = remote.fetch(group[0].key, store, functools.partial(probe, group[0], tolerance))
        if entry is not None:
            for shot in group:
                outputs.commit(shot, entry, entry.task_id)  # materialised on this worker thread: disk time overlaps
        return entry

    def done(group: list[PlannedShot], entry: Entry | None) -> None:
        if entry is not None:
            result.bytes += entry.size
        for shot in group:
            if entry is None:
                # Refused (failed verification): renders, unless the lock says it was paid for. Not
                # fetched (the remote went away meanwhile): someone paid for it, so it is guarded.
                paid = project.manifest.entries.get(shot.id)
                refused = remote.rejected.get(shot.key)
                if refused is None:
                    state, why = State.MISSING, "on the remote cache, but it could not be fetched"
                else:
                    state = State.MISSING if paid is not None and paid.key == shot.key else State.STALE
                    why = f"the remote's copy is not usable: {refused}"
                result.refused[shot.id] = shot.with_state(state, (why,))
            else:
                result.shots[shot.id] = shot.with_state(State.CACHED, ())
            progress(shot, entry)

    remote.each(wanted.values(), one, done)
    return result


def share(
    remote: Remote, store: LocalStore, keys: Sequence[str], progress: Callable[[str, bool], None]
) -> tuple[list[str], int]:
    """Pushes the local entries of `keys` the remote lacks; returns the keys it pushed and how many it lacked."""
    held = remote.contains(keys)
    absent = [key for key in keys if key not in held]
    pushed: list[str] = []

    def one(key: str) -> bool:
        entry = store.get(key)
        return entry is not None and remote.push(entry, known_absent=True)

    def done(key: str, ok: bool) -> None:
        if ok:
            pushed.append(key)
        progress(key, ok)

    remote.each(absent, one, done)
    return sorted(pushed), len(absent)


def restore_cached(
    project: ProjectPlan, outputs: ProjectOutputs, shots: list[PlannedShot]
) -> tuple[int, dict[str, PlannedShot]]:
    """Cached shots whose render is missing, changed or unrecorded get it back from the cache.

    Returns how many were restored, and the shots that must render again, by shot id.

    An object is re-hashed before it is materialised: a damaged one is moved aside and its shot
    renders again (returned by shot id, as stale). A render in renders/ that differs from the cache
    is replaced, never trusted. An intact render recorded in the lock costs a stat, not a read:
    `plan` already matched the object's size with the lock's.
    """
    store = project.store
    restored = 0
    damaged: dict[str, PlannedShot] = {}
    for shot in shots:
        if shot.state is not State.CACHED:
            problem = store.check(shot.key) if store.has(shot.key) else None
            if problem is not None:  # planned as damaged: moved out of the way, so the shot renders
                _set_aside(store, shot, problem)
            continue
        if all(_intact(project, outputs, shot, shot_id) for shot_id in names_of(shot)):
            continue
        entry = store.get(shot.key)
        if entry is None:
            problem = "it is missing or unreadable"
        elif (problem := store.check(shot.key)) is not None:
            _set_aside(store, shot, problem)
        else:
            outputs.commit(shot, entry, entry.task_id)
            restored += 1
            continue
        damaged[shot.id] = shot.with_state(State.STALE, (f"the cached render was damaged: {problem}",))
    return restored, damaged


def _intact(project: ProjectPlan, outputs: ProjectOutputs, shot: PlannedShot, shot_id: str) -> bool:
    """Whether renders/<shot_id>.mp4 is this shot's cached render, as the lock records it (a stat)."""
    locked = project.manifest.entries.get(shot_id)
    return (
        locked is not None
        and (locked.key, locked.spec) == (shot.key, shot.spec)
        and locked.video_size is not None
        and outputs.is_intact(shot_id, project.store.video_of(shot.key), locked.video_sha256)
    )


def _set_aside(store: LocalStore, shot: PlannedShot, problem: str) -> None:
    moved = store.quarantine(shot.key, problem)
    store.warnings.append(
        f"shot {shot.id}: the cached render is damaged ({problem}); moved it to {moved}; it will render again"
    )


def print_warnings(remote: Remote | None, err: TextIO, start: int = 0) -> int:
    """Prints the remote's warnings from `start` on; returns how many there are now."""
    if remote is None:
        return start
    for warning in remote.warnings[start:]:
        print(f"renderspec: warning: {remote.url}: {warning}", file=err)
    return len(remote.warnings)


def _opened(settings: Settings, env: Mapping[str, str], command: str) -> Remote:
    remote = open_remote(settings.project.remote, env, settings.root)
    if remote is None:
        raise SettingsError(
            f"`renderspec {command}` needs a remote cache, and none is configured (or RENDERSPEC_REMOTE turns it off); "
            "set [renderspec.remote] url in renderspec.toml, "
            "RENDERSPEC_REMOTE, or --remote URL"
        )
    return remote


def pull(
    settings: Settings,
    env: Mapping[str, str],
    paths: Sequence[str],
    shot_ids: Sequence[str],
    cwd: Path,
    out: TextIO,
    err: TextIO,
    *,
    as_json: bool,
) -> int:
    """Fetches and materialises what the remote holds for the current plan; renders nothing."""
    human = err if as_json else out
    remote = _opened(settings, env, "pull")
    try:
        with workspace_lock(settings.cache_dir, wait=True, notice=err):
            project = plan_project(settings, paths, cwd, remote=remote)
            plan = project.plan
            if not reporting.is_usable(plan, len(project.spec_files), err):
                return EXIT_INVALID
            shown = len(remote.warnings)
            selected = select_shots(plan.shots, shot_ids)
            outputs = ProjectOutputs(
                settings.root, settings.project.renders, project.manifest, RendersIndex(settings.cache_dir)
            )
            restored, damaged = restore_cached(project, outputs, selected)

            bar = reporting.Transfers(human, "pulling", sum(shot.state is State.REMOTE for shot in selected))

            def progress(shot: PlannedShot, entry: Entry | None) -> None:
                done = f"fetched {shot.id} ({entry.size:,} bytes) -> {outputs.output_path(shot.id)}" if entry else None
                bar.step(done)

            try:
                fetched = fetch_shots(
                    project, outputs, selected, remote, tolerance=size_tolerance(settings), progress=progress
                )
            finally:
                bar.close()
            outputs.save()
            print_warnings(remote, err, shown)
            final = [fetched.shots.get(s.id) or fetched.refused.get(s.id) or damaged.get(s.id, s) for s in selected]
            left = [shot for shot in final if shot.state is not State.CACHED]
            cached = len(final) - len(left) - len(fetched.shots)
            if as_json:
                reporting.write_json(
                    {
                        "shots": [
                            {
                                "id": shot.id,
                                "key": shot.key,
                                "state": "fetched" if shot.id in fetched.shots else shot.state,
                                "reasons": list(shot.reasons),
                            }
                            for shot in final
                        ],
                        "summary": {
                            "fetched": len(fetched.shots),
                            "bytes": fetched.bytes,
                            "cached": cached,
                            "restored": restored,
                            "not_on_remote": len(left),
                            "remote": remote.url,
                        },
                    },
                    out,
                )
            print(
                f"pulled {len(fetched.shots)} from {remote.url} ({fetched.bytes:,} bytes); {cached} already cached; "
                f"{len(left)} not on the remote"
                + (f" ({', '.join(shot.id for shot in left[:10])}{', ...' if len(left) > 10 else ''})" if left else ""),
                file=human,
            )
            return EXIT_FAILED if remote.offline or fetched.refused else EXIT_OK
    finally:
        remote.close()


def push(
    settings: Settings,
    env: Mapping[str, str],
    paths: Sequence[str],
    cwd: Path,
    out: TextIO,
    err: TextIO,
    *,
    everything: bool,
    as_json: bool,
) -> int:
    """Uploads the local entries of the current plan (or, with `everything`, all of them) that the remote lacks."""
    human = err if as_json else out
    remote = _opened(settings, env, "push")
    try:
        if remote.read_only:
            raise SettingsError(
                f'the remote {remote.url} is read-only here (mode = "read", RENDERSPEC_REMOTE_MODE or '
                '--remote-read-only); push needs mode = "read-write"'
            )
        with workspace_lock(settings.cache_dir, wait=True, notice=err):
            project = plan_project(settings, paths, cwd)
            store = project.store
            if everything:
                keys = sorted(store.keys())
            else:
                plan = project.plan
                if not reporting.is_usable(plan, len(project.spec_files), err):
                    return EXIT_INVALID
                keys = sorted({shot.key for shot in plan.shots if shot.state is State.CACHED})
            names: dict[str, Any] = {shot.key: shot.id for shot in project.plan.shots}

            bar = reporting.Transfers(human, "pushing", len(keys))

            def progress(key: str, ok: bool) -> None:
                bar.step(f"pushed {names.get(key, key[:12])}" if ok else None)

            try:
                pushed, lacked = share(remote, store, keys, progress)
            finally:
                bar.close()
            print_warnings(remote, err)
            failed = remote.offline or remote.read_only
            if as_json:
                reporting.write_json(
                    {
                        "pushed": [{"key": key, "shot": names.get(key)} for key in pushed],
                        "summary": {
                            "pushed": len(pushed),
                            "already_there": None if failed else len(keys) - lacked,
                            "not_pushed": lacked - len(pushed),
                            "local_entries": len(keys),
                            "remote": remote.url,
                        },
                    },
                    out,
                )
            where = "every local entry" if everything else "this plan's cached shots"
            print(f"pushed {len(pushed)} of {len(keys)} ({where}) to {remote.url}", file=human)
            return EXIT_FAILED if failed else EXIT_OK
    finally:
        remote.close()
