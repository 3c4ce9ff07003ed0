"""Which shots a `--shot` option names: exact ids or globs (`s05-*`), with suggestions for a miss.

Pure: it sees only the planned ids.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence
from typing import Protocol, TypeVar

from renderspec.errors import SettingsError

GLOB_CHARACTERS = frozenset("*?[")
T = TypeVar("T")
S = TypeVar("S", bound="_Shot")


class _Shot(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def take_of(self) -> str | None: ...


def is_glob(pattern: str) -> bool:
    return any(character in GLOB_CHARACTERS for character in pattern)


def select(
    items: Sequence[T], ids: Sequence[str], patterns: Sequence[str], groups: Sequence[str | None] = ()
) -> list[T]:
    """The items (in plan order) whose id matches any pattern; every pattern must match something.

    `ids[i]` is the id of `items[i]`, and `groups[i]` (when given) another name it answers to: the
    shot a take belongs to, so `--shot hero` selects every take of hero. A pattern that matches
    nothing is one error naming it, with the closest ids as suggestions.
    """
    if not patterns:
        return list(items)
    names = [(shot_id, groups[index] if index < len(groups) else None) for index, shot_id in enumerate(ids)]
    chosen: set[int] = set()
    misses: list[str] = []
    for pattern in patterns:
        if is_glob(pattern):
            found = {
                index
                for index, pair in enumerate(names)
                if any(name is not None and fnmatch.fnmatchcase(name, pattern) for name in pair)
            }
        else:
            found = {index for index, pair in enumerate(names) if pattern in pair}
        if not found:
            misses.append(pattern)
        chosen |= found
    if misses:
        known = [*ids, *(group for group in groups if group is not None)]
        raise SettingsError("; ".join(_missed(pattern, known) for pattern in misses))
    return [item for index, item in enumerate(items) if index in chosen]


def _missed(pattern: str, ids: Sequence[str]) -> str:
    what = "no shot id matches" if is_glob(pattern) else "no shot with id"
    close = difflib.get_close_matches(pattern, list(dict.fromkeys(ids)), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else "; `renderspec plan` lists the shot ids"
    return f"{what} {pattern}{hint}"


def select_shots(shots: Sequence[S], patterns: Sequence[str]) -> list[S]:
    """`select` over planned shots: by id, or by the shot a take belongs to."""
    return select(shots, [shot.id for shot in shots], patterns, [shot.take_of for shot in shots])
