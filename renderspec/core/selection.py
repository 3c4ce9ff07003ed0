"""Which shots a `--shot` option names: exact ids or globs (`s05-*`), with suggestions for a miss.

Pure: it sees only the planned ids.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence
from typing import TypeVar

from renderspec.errors import SettingsError

GLOB_CHARACTERS = frozenset("*?[")
T = TypeVar("T")


def is_glob(pattern: str) -> bool:
    return any(character in GLOB_CHARACTERS for character in pattern)


def select(items: Sequence[T], ids: Sequence[str], patterns: Sequence[str]) -> list[T]:
    """The items (in plan order) whose id matches any pattern; every pattern must match something.

    `ids[i]` is the id of `items[i]`. A pattern that matches nothing is one error naming it, with
    the closest ids as suggestions.
    """
    if not patterns:
        return list(items)
    chosen: set[int] = set()
    misses: list[str] = []
    for pattern in patterns:
        if is_glob(pattern):
            found = {index for index, shot_id in enumerate(ids) if fnmatch.fnmatchcase(shot_id, pattern)}
        else:
            found = {index for index, shot_id in enumerate(ids) if shot_id == pattern}
        if not found:
            misses.append(pattern)
        chosen |= found
    if misses:
        raise SettingsError("; ".join(_missed(pattern, ids) for pattern in misses))
    return [item for index, item in enumerate(items) if index in chosen]


def _missed(pattern: str, ids: Sequence[str]) -> str:
    what = "no shot id matches" if is_glob(pattern) else "no shot with id"
    close = difflib.get_close_matches(pattern, list(dict.fromkeys(ids)), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else "; `renderspec plan` lists the shot ids"
    return f"{what} {pattern}{hint}"
