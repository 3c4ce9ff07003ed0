"""renders/<shot>.mp4 materialised from the cache, and the lock entry that says what produced it."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
import uuid
from pathlib import Path

from renderspec.cache import Entry
from renderspec.core.model import PlannedShot
from renderspec.manifest import LockEntry, Manifest


def materialise(source: Path, target: Path) -> None:
    """Hard-links (or copies, across filesystems) `source` to `target`, replacing it atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


class ProjectOutputs:
    """Commits renders into renders/ and renderspec.lock.

    The lock is saved at most once a second while a build runs (and always at its end): rewriting
    thousands of entries after every shot would make big builds quadratic, and a lock entry lost
    to a crash in that second comes back from the cache on the next build.
    """

    def __init__(self, root: Path, renders: str, manifest: Manifest, *, save_every: float = 1.0) -> None:
        self.root = root
        self.renders = renders
        self.manifest = manifest
        self.save_every = save_every
        self._saved_at = -math.inf

    def output_path(self, shot_id: str) -> str:
        return f"{self.renders.rstrip('/')}/{shot_id}.mp4"

    def commit(self, shot: PlannedShot, entry: Entry, task_id: str | None) -> str:
        output = self.output_path(shot.id)
        materialise(entry.video, self.root / output)
        self.manifest.set(
            shot.id,
            LockEntry(
                spec=shot.spec,
                key=shot.key,
                output=output,
                video_sha256=str(entry.meta.get("video_sha256")),
                model=shot.model,
                duration=shot.duration,
                resolution=shot.resolution,
                ratio=shot.ratio,
                task_id=task_id,
            ),
        )
        if time.monotonic() - self._saved_at >= self.save_every:
            self.manifest.save()
            self._saved_at = time.monotonic()
        return output
