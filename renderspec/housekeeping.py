"""`renderspec gc`, `renderspec clean` and `renderspec verify`: drop what no spec refers to, check what is kept.

None of them reads or removes anything outside the cache and renders/ that renderspec did not put
there: `clean` removes a file only when renderspec materialised it and nobody changed it since.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TextIO

from renderspec.manifest import Manifest
from renderspec.outputs import RendersIndex, made_by_renderspec
from renderspec.project import plan_project
from renderspec.settings import Settings
from renderspec.workspace import sweep_memo_debris, workspace_lock

EXIT_OK, EXIT_DAMAGED, EXIT_INVALID = 0, 1, 2


def gc(settings: Settings, cwd: Path, out: TextIO, *, dry_run: bool) -> int:
    """Cache entries whose key no current shot, lock entry or journal record names are removed."""
    with workspace_lock(settings.cache_dir, wait=True, notice=out):
        project = plan_project(settings, [], cwd)
        if not project.plan.is_valid:
            print("gc: the specs are invalid; run `renderspec check` first (nothing was removed)", file=out)
            return EXIT_INVALID
        store = project.store
        wanted = {shot.key for shot in project.plan.shots} | {entry.key for entry in project.manifest.entries.values()}
        wanted |= set(project.journal.records())
        held = store.keys()
        unused = sorted(held - wanted)
        if not dry_run:
            for key in unused:
                store.remove(key)
            swept = project.journal.sweep() + store.sweep() + sweep_memo_debris(settings.cache_dir)
            # the local emulator's encoded previews: only a speed memo
            shutil.rmtree(settings.cache_dir / "emulator" / "previews", ignore_errors=True)
        else:
            swept = 0
        verb = "would drop" if dry_run else "dropped"
        entries = "entry" if len(unused) == 1 else "entries"
        debris = f"; removed {swept} leftover temporary file{'s' if swept != 1 else ''}" if swept else ""
        print(f"gc: {verb} {len(unused)} unused cache {entries}; kept {len(wanted & held)}{debris}", file=out)
        for warning in dict.fromkeys(project.journal.warnings):
            print(f"gc: warning: {warning}", file=out)
        return EXIT_OK


def clean(settings: Settings, cwd: Path, out: TextIO, *, dry_run: bool, everything: bool = False) -> int:
    """Renders of shots that no longer exist (or all of them) are removed: only files renderspec made."""
    project = plan_project(settings, [], cwd, with_states=False)
    if not project.plan.is_valid and not everything:
        print("clean: the specs are invalid; run `renderspec check` first (nothing was removed)", file=out)
        return EXIT_INVALID
    manifest = Manifest.load(settings.root, memo_dir=settings.cache_dir)
    index = RendersIndex(settings.cache_dir)
    renders = settings.project.renders.rstrip("/")
    folder = settings.root / renders
    current = {f"{renders}/{shot.id}.mp4" for shot in project.plan.shots}
    named = set(index.files) | {entry.output for entry in manifest.entries.values()}
    objects = project.store.inodes()
    doomed: list[str] = []
    kept: list[str] = []
    for path in sorted(folder.glob("*.mp4")) if folder.is_dir() else []:
        rel = f"{renders}/{path.name}"
        if not everything and rel in current:
            continue
        if made_by_renderspec(path, rel, index, manifest, objects):
            doomed.append(rel)
        elif rel in named:
            kept.append(rel)
    for rel in doomed:
        if not dry_run:
            (settings.root / rel).unlink(missing_ok=True)
            index.drop(rel)
    if not dry_run:
        index.save()
    verb = "would remove" if dry_run else "removed"
    print(f"clean: {verb} {len(doomed)} render{'s' if len(doomed) != 1 else ''} from {renders}/", file=out)
    for rel in doomed:
        print(f"  {rel}", file=out)
    for rel in kept:
        print(f"  kept {rel}: it changed since renderspec wrote it", file=out)
    return EXIT_OK


def verify(settings: Settings, cwd: Path, out: TextIO) -> int:
    """Re-hashes every cache entry (as `git fsck` does); damaged ones are moved aside and named."""
    with workspace_lock(settings.cache_dir, wait=True, notice=out):
        project = plan_project(settings, [], cwd, with_states=False)
        store = project.store
        by_key: dict[str, list[str]] = {}
        for shot in project.plan.shots:
            by_key.setdefault(shot.key, []).append(shot.id)
        keys = sorted(store.keys())
        damaged = 0
        for key in keys:
            problem = store.check(key)
            if problem is None:
                continue
            damaged += 1
            moved = store.quarantine(key, problem)
            shots = by_key.get(key)
            fate = f"shot {', '.join(shots)} will render again" if shots else "no current shot uses it"
            print(
                f"damaged: {key[:12]}: {problem}; moved to {moved.relative_to(settings.root) if moved.is_relative_to(settings.root) else moved}; {fate}",
                file=out,
            )
        print(
            f"verify: {len(keys)} cache entr{'y' if len(keys) == 1 else 'ies'} checked, {damaged} damaged"
            + (" (moved aside; `renderspec build` renders them again)" if damaged else ""),
            file=out,
        )
        return EXIT_DAMAGED if damaged else EXIT_OK
