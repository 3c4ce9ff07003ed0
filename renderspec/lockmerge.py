"""`renderspec lock merge BASE OURS THEIRS`: git's merge driver for renderspec.lock, shot by shot.

Each shot's entry is merged on its own, three ways. An entry added, changed or removed on one side
only is taken from that side; the same change on both sides is taken once. When both sides changed
one shot's entry differently, the keys decide where they can: a side whose key is still the base's
(it only rendered the same request again) yields to the side whose request changed, and two
entries with one key are renders of one request (ours is kept). Two different new keys cannot be
decided here: the right entry is the one whose key matches the spec as merged, and git has not
merged the specs yet when it runs this driver (the `ort` strategy writes no merged file, not even
one that sorts before the lock, until every path is merged: the work tree and index still hold ours;
`-s recursive` in git 2.39 writes one-sided changes first, but merges a spec both sides changed
after the lock, which sorts before specs/). So the driver never plans the work tree. Such
shots are conflicts: OURS receives the merged lock with ours' entry for each of them, valid and
readable, the driver names them and exits 1, and git marks the lock as conflicted until the user,
having resolved the specs, runs `renderspec build` (which brings those entries up to date) and
`git add renderspec.lock`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from renderspec.errors import WorkspaceError
from renderspec.fsutil import write_atomic
from renderspec.manifest import LOCK_NAME, LockEntry, parse_lock, render_lock

Entries = Mapping[str, LockEntry]


@dataclass(frozen=True, slots=True)
class Conflict:
    """A shot both sides changed differently, to new keys: which entry is right, only the merged spec can say."""

    shot: str
    base: LockEntry | None
    ours: LockEntry | None
    theirs: LockEntry | None


@dataclass(slots=True)
class LockMerge:
    """The merged entries (ours' entry where a shot conflicts) and the conflicts, in shot order."""

    entries: dict[str, LockEntry] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)


def merged_entries(base: Entries, ours: Entries, theirs: Entries) -> LockMerge:
    """The per-shot three-way merge of three locks' entries; pure, so it can be checked as a property."""
    merge = LockMerge()
    for shot in sorted({*base, *ours, *theirs}):
        old, mine, other = base.get(shot), ours.get(shot), theirs.get(shot)
        kept = mine  # the same change on both sides (or none), ours' change alone, or a conflict
        if mine == old:
            kept = other
        elif mine != other and other != old:  # both sides changed it, differently
            old_key, my_key, other_key = (_key(entry) for entry in (old, mine, other))
            if my_key == old_key and other_key != old_key:
                kept = other  # ours rendered the base's request again; theirs changed the request
            elif my_key != other_key and other_key != old_key:
                merge.conflicts.append(Conflict(shot, old, mine, other))
        if kept is not None:
            merge.entries[shot] = kept
    return merge


def _key(entry: LockEntry | None) -> str | None:
    return entry.key if entry is not None else None


def merge_lock_files(base: Path, ours: Path, theirs: Path, err: TextIO) -> int:
    """Git's driver contract: the merged lock goes into OURS; 0 when clean, 1 when shots conflict.

    A lock that cannot be read is an error before anything is written: OURS stays as it was.
    """
    sides = {name: _read(name, path) for name, path in (("BASE", base), ("OURS", ours), ("THEIRS", theirs))}
    merge = merged_entries(sides["BASE"], sides["OURS"], sides["THEIRS"])
    write_atomic(ours, render_lock(merge.entries).encode("utf-8"))
    for conflict in merge.conflicts:
        print(f"renderspec: {LOCK_NAME}: {_describe(conflict)}", file=err)
    if not merge.conflicts:
        return 0
    shots = ", ".join(conflict.shot for conflict in merge.conflicts)
    print(
        f"renderspec: {LOCK_NAME}: kept ours' side of {shots}; the right entry is the one whose key matches the "
        "spec as merged: resolve the specs, run `renderspec build` (it renders those shots again, or takes them "
        f"from the cache), then `git add {LOCK_NAME}` (theirs' entries: `git show :3:{LOCK_NAME}`)",
        file=err,
    )
    return 1


def _read(side: str, path: Path) -> dict[str, LockEntry]:
    """One side's entries; git passes an empty file for a side that has no lock (added on both sides)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise WorkspaceError(f"lock merge: {side} ({path}) cannot be read: {reason}", hint=_UNTOUCHED) from None
    if not text.strip():
        return {}
    try:
        return parse_lock(text)
    except WorkspaceError as error:
        raise WorkspaceError(f"lock merge: {side} ({path}): {error.message}", hint=_UNTOUCHED) from None


_UNTOUCHED = "nothing was written; merge renderspec.lock by hand, or take one side and run `renderspec build`"


def _describe(conflict: Conflict) -> str:
    def state(entry: LockEntry | None) -> str:
        if entry is not None:
            return f"key {entry.key[:12]}"
        return "has no entry" if conflict.base is None else "removed it"

    sides = ", ".join(
        f"{name} {state(entry)}"
        for name, entry in (("base", conflict.base), ("ours", conflict.ours), ("theirs", conflict.theirs))
    )
    return f"shot {conflict.shot}: changed differently on both sides ({sides})"
