"""`renderspec gc` and `renderspec clean`: drop what no current spec refers to."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TextIO

from renderspec.cache import workspace_lock
from renderspec.project import plan_project
from renderspec.settings import Settings

EXIT_OK, EXIT_INVALID = 0, 2


def gc(settings: Settings, cwd: Path, out: TextIO, *, dry_run: bool, everything: bool = False) -> int:
    """Cache entries whose key no current shot and no lock entry names are removed."""
    with workspace_lock(settings.cache_dir, wait=True, notice=out):
        project = plan_project(settings, [], cwd)
        if not project.plan.is_valid:
            print("gc: the specs are invalid; run `renderspec check` first (nothing was removed)", file=out)
            return EXIT_INVALID
        wanted = {shot.key for shot in project.plan.shots} | {entry.key for entry in project.manifest.entries.values()}
        wanted |= set(project.cache.journal())
        unused = sorted(project.cache.keys() - wanted)
        for key in unused:
            if not dry_run:
                project.cache.remove(key)
        if not dry_run:  # the local emulator's encoded previews: only a speed memo
            shutil.rmtree(settings.cache_dir / "emulator" / "previews", ignore_errors=True)
        verb = "would drop" if dry_run else "dropped"
        print(
            f"gc: {verb} {len(unused)} unused cache entr{'y' if len(unused) == 1 else 'ies'}; kept {len(wanted & project.cache.keys())}",
            file=out,
        )
        return EXIT_OK


def clean(settings: Settings, cwd: Path, out: TextIO, *, dry_run: bool, everything: bool = False) -> int:
    """Materialised renders of shots that no longer exist (or all of them) are removed."""
    project = plan_project(settings, [], cwd, with_states=False)
    if not project.plan.is_valid and not everything:
        print("clean: the specs are invalid; run `renderspec check` first (nothing was removed)", file=out)
        return EXIT_INVALID
    folder = settings.root / settings.project.renders
    current = {f"{shot.id}.mp4" for shot in project.plan.shots}
    doomed = (
        sorted(path for path in folder.glob("*.mp4") if everything or path.name not in current)
        if folder.is_dir()
        else []
    )
    for path in doomed:
        if not dry_run:
            path.unlink()
    verb = "would remove" if dry_run else "removed"
    print(
        f"clean: {verb} {len(doomed)} render{'s' if len(doomed) != 1 else ''} from {settings.project.renders}/",
        file=out,
    )
    for path in doomed:
        print(f"  {path.relative_to(settings.root)}", file=out)
    return EXIT_OK
