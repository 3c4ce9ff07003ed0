"""Reads a project and plans it: the glue between the edges (files, digests, lock, cache) and the core."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from renderspec.assets import AssetFacts
from renderspec.core.decisions import Previous, decide
from renderspec.core.expansion import expand
from renderspec.core.keys import is_key
from renderspec.core.model import FileFacts, RenderOf, State
from renderspec.core.planning import Plan, plan
from renderspec.core.problems import Problem, Severity
from renderspec.errors import SettingsError
from renderspec.journal import Journal
from renderspec.loading import FragmentFiles, SpecFiles, read_sources, spec_paths
from renderspec.manifest import Manifest
from renderspec.remote.tier import Remote
from renderspec.settings import Settings
from renderspec.store import LocalStore


@dataclass(slots=True)
class ProjectPlan:
    plan: Plan
    spec_files: list[str]
    files_read: int
    store: LocalStore
    journal: Journal
    manifest: Manifest = field(default_factory=lambda: Manifest(Path(".")))
    whole_project: bool = True
    previous: dict[str, Previous] = field(default_factory=dict)
    """Per shot id, what the lock says made its last render (with that render's payload, when the
    local cache holds it and the key changed): what `decide` compared, kept for reports."""


def plan_project(
    settings: Settings,
    arguments: Sequence[str],
    cwd: Path,
    *,
    with_states: bool = True,
    forced: Set[str] = frozenset(),
    remote: Remote | None = None,
) -> ProjectPlan:
    """Every shot of the named spec files (or the project's), validated, keyed, priced and decided.

    With a `remote`, the keys the local cache lacks are looked up there in one batched question.
    """
    root = settings.root
    paths = spec_paths(arguments, root, settings.project.specs, cwd)
    sources, read_problems = read_sources(paths, root)
    expansion = expand(sources, FragmentFiles(root), settings.limits, specs=SpecFiles(root))
    expansion.problems.extend(read_problems)
    assets = AssetFacts(root, settings.cache_dir, allowed=settings.outside_folders)
    facts = assets.facts(expansion.local_files())
    assets.save()
    wanted = (
        {draft.id for draft in expansion.drafts}
        | {draft.take_of for draft in expansion.drafts if draft.take_of}
        | {item.file.shot for draft in expansion.drafts for item in draft.media if isinstance(item.file, RenderOf)}
    )
    elsewhere = ids_elsewhere(settings, paths, cwd, wanted) if arguments else None
    store = LocalStore(settings.cache_dir)
    manifest = Manifest.load(root, memo_dir=settings.cache_dir) if with_states else Manifest(root)
    result = plan(
        expansion,
        facts,
        provider_kind=settings.provider_kind,
        pricing=settings.pricing,
        elsewhere=elsewhere,
        renders=KnownRenders(manifest, store),
    )
    previous: dict[str, Previous] = {}
    if with_states and result.is_valid:
        cached: set[str] = set()
        damaged: set[str] = set()
        for shot in result.shots:
            if shot.state is State.WAITING:
                continue  # a provisional key: no cache holds it
            entry = manifest.entries.get(shot.id)
            size = entry.video_size if entry is not None and entry.key == shot.key else None
            if size is not None:
                if store.has(shot.key, size):  # stat only: the lock knows the render's size
                    cached.add(shot.key)
                elif store.has(shot.key):
                    damaged.add(shot.key)
            elif store.has(shot.key):
                (cached if store.get(shot.key) is not None else damaged).add(shot.key)
        remote_keys: set[str] = set()
        if remote is not None:
            remote_keys = remote.contains(
                {shot.key for shot in result.shots if shot.state is not State.WAITING} - cached
            )
        for shot in result.shots:
            entry = manifest.entries.get(shot.id)
            if entry is None:
                continue
            payload, origin, recorded = None, None, None
            if entry.key != shot.key and shot.key not in cached:
                old = store.get(entry.key)
                if old is not None and old.meta.get("payload") is not None:
                    payload, origin, recorded = old.meta["payload"], "local cache", recorded_sources(old.meta, shot.id)
            previous[shot.id] = Previous(entry.key, payload, origin, recorded)
        if remote is not None:  # say what changed even where only the remote has the previous render
            held = cached | remote_keys
            asked = {
                shot.id: previous[shot.id].key
                for shot in result.shots
                if shot.id in previous
                and previous[shot.id].payload is None
                and previous[shot.id].key != shot.key
                and shot.key not in held
            }
            records = remote.records(asked.values()) if asked else {}
            for shot_id, old_key in asked.items():
                if old_key in records:
                    record = records[old_key]
                    previous[shot_id] = Previous(
                        old_key, record.get("payload"), "remote cache", recorded_sources(record, shot_id)
                    )
        result.shots = decide(result.shots, previous, cached, remote_keys=remote_keys, damaged=damaged, forced=forced)
    for warning in dict.fromkeys([*assets.warnings, *store.warnings]):
        result.problems.append(Problem(file=str(settings.project.cache), message=warning, severity=Severity.WARNING))
    if remote is not None:
        for warning in remote.warnings:
            result.problems.append(Problem(file=remote.url, message=warning, severity=Severity.WARNING))
    return ProjectPlan(
        plan=result,
        spec_files=[source.path for source in sources],
        files_read=assets.files_read,
        store=store,
        journal=Journal(settings.cache_dir / "journal"),
        manifest=manifest,
        whole_project=not arguments,
        previous=previous,
    )


class KnownRenders(Mapping[str, FileFacts]):
    """Per key, the video of a render this project has: as the lock records it, else as the local cache does.

    Read lazily: only the keys of shots whose renders other shots use are ever asked for.
    """

    def __init__(self, manifest: Manifest, store: LocalStore) -> None:
        self.manifest = manifest
        self.store = store
        self._known: dict[str, FileFacts] | None = None

    @property
    def known(self) -> dict[str, FileFacts]:
        if self._known is None:  # built on the first question: most projects never ask
            self._known = {
                entry.key: FileFacts(sha256=entry.video_sha256, size=entry.video_size)
                for entry in self.manifest.entries.values()
                if entry.video_size is not None
            }
        return self._known

    def __getitem__(self, key: str) -> FileFacts:
        if key not in self.known:
            entry = self.store.get(key) if is_key(key) else None
            if entry is None:
                raise KeyError(key)
            self.known[key] = FileFacts(sha256=entry.sha256, size=entry.size)
        return self.known[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def recorded_sources(meta: Mapping[str, Any], shot_id: str) -> dict[str, str] | None:
    """The spec file and fragments a cache record says its render was made from, when that render was this shot's.

    An entry is shared by every shot that asks for its key, and its record names the shot that made
    it: another shot's sources say nothing of this one. Records are read as untrusted (a remote's
    may be anyone's): a malformed table counts as none.
    """
    sources = meta.get("sources")
    if meta.get("shot") != shot_id or not isinstance(sources, dict):
        return None
    if not all(isinstance(path, str) and len(path) < 4096 and is_key(digest) for path, digest in sources.items()):
        return None  # a sha256 has the shape of a key
    return dict(sources)


def ids_elsewhere(settings: Settings, named: Sequence[Path], cwd: Path, wanted: Set[str]) -> dict[str, list[str]]:
    """Which of the `wanted` shot ids the project's spec files that were not named use, and where (`FILE:LINE`).

    Files named on the command line (a pre-commit hook passes only the changed ones) must still not
    reuse an id of another file. Only ids are rendered; the rest of those files is not checked here.
    Named files outside the project's `specs` are checked on their own, as before.
    """
    try:
        project = spec_paths([], settings.root, settings.project.specs, cwd)
    except SettingsError:
        return {}  # the project's specs folder does not exist: nothing else to compare with
    chosen = set(named)
    if chosen.isdisjoint(project):
        return {}
    sources, _ = read_sources([path for path in project if path not in chosen], settings.root)
    expansion = expand(
        sources, FragmentFiles(settings.root), settings.limits, ids_only=True, specs=SpecFiles(settings.root)
    )
    places: dict[str, list[str]] = {}
    for draft in expansion.drafts:
        if "id" in draft.failed:
            continue
        line = expansion.line_of(draft.spec, ("shots", draft.index, "id")) or "?"
        if draft.id in wanted:
            places.setdefault(draft.id, []).append(f"{draft.spec}:{line}")
        if (
            draft.take_of is not None and draft.take_of in wanted and draft.picked
        ):  # a shot with takes claims its own id through its pick
            places.setdefault(draft.take_of, []).append(f"{draft.spec}:{line}")
    return places
