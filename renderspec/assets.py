"""Facts about reference files (sha256, kind, format, pixels, length), memoised by stat.

A file is read only when its (size, mtime, inode) differ from the memo, so planning an unchanged
storyboard of thousands of shots reads no file contents. The memo lives in the cache folder; a
damaged memo is a warning and a rebuild, never a crash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from renderspec.core.keys import is_key
from renderspec.core.model import FileFacts
from renderspec.core.rules import FileKind
from renderspec.fsutil import file_sha256, write_atomic

MEMO_VERSION = 1
MEMO_NAME = "assets.json"


class AssetFacts:
    """Looks up facts for project-relative paths, hashing and probing only what changed."""

    def __init__(self, root: Path, cache_dir: Path | None, *, allowed: Sequence[Path] = ()) -> None:
        self.root = root
        self._inside = (root.resolve(), *(folder.resolve() for folder in allowed))
        self.memo_path = cache_dir / MEMO_NAME if cache_dir is not None else None
        self.warnings: list[str] = []
        self.files_read = 0
        self._memo = self._load()
        self._dirty = False

    def facts(self, paths: Iterable[str]) -> dict[str, FileFacts | None]:
        """Facts per path; None for a path that is not an existing regular file."""
        result: dict[str, FileFacts | None] = {}
        misses: list[tuple[str, os.stat_result]] = []
        for rel in paths:
            refusal = self._refusal(rel)
            if refusal is not None:
                result[rel] = FileFacts(sha256="", size=0, refusal=refusal)
                continue
            try:
                stat = os.stat(self.root / rel)
            except (OSError, ValueError):
                result[rel] = None
                continue
            if not _is_regular(stat):
                result[rel] = None
                continue
            entry = self._memo.get(rel)
            known = _facts_from(entry) if isinstance(entry, dict) and entry.get("stat") == _stat_key(stat) else None
            if known is not None:
                result[rel] = known
            else:
                misses.append((rel, stat))
        if misses:
            with ThreadPoolExecutor(max_workers=min(4, len(misses))) as pool:
                for rel, stat, fact in pool.map(lambda item: (*item, self._read(item[0])), misses):
                    result[rel] = fact
                    self._memo[rel] = {"stat": _stat_key(stat), **_facts_to(fact)}
            self.files_read += len(misses)
            self._dirty = True
        return result

    def _refusal(self, rel: str) -> str | None:
        """Why `rel` may not be read: it resolves (symlinks followed) outside the project and the allowed folders.

        A spec from a pull request must not be able to send a file from this machine to a service.
        """
        try:
            resolved = (self.root / rel).resolve()
        except (OSError, RuntimeError, ValueError):
            return "cannot be resolved (a symlink loop?)"
        if any(resolved.is_relative_to(folder) for folder in self._inside):
            return None
        via = " through a symlink" if not os.path.normpath(rel).startswith(("..", "/")) else ""
        return (
            f"is outside the project{via} ({resolved}); references must stay inside it, "
            "or list the folder in allow_outside in renderspec.toml"
        )

    def save(self) -> None:
        if not self._dirty or self.memo_path is None:
            return
        data = {"version": MEMO_VERSION, "files": self._memo}
        try:
            write_atomic(self.memo_path, json.dumps(data, sort_keys=True).encode("utf-8"))
        except OSError as error:
            self.warnings.append(f"could not save the file digest memo {self.memo_path}: {error.strerror}")
        self._dirty = False

    def _read(self, rel: str) -> FileFacts:
        from renderspec.media import probe

        path = self.root / rel
        try:
            digest, size = file_sha256(path), path.stat().st_size
        except OSError as error:
            return FileFacts(sha256="", size=0, error=f"cannot read it ({error.strerror})")
        found = probe(path)
        return FileFacts(
            sha256=digest,
            size=size,
            kind=found.kind,
            format=found.format,
            width=found.width,
            height=found.height,
            seconds=found.seconds,
            error=found.error,
        )

    def _load(self) -> dict[str, dict[str, Any]]:
        if self.memo_path is None or not self.memo_path.exists():
            return {}
        try:
            data = json.loads(self.memo_path.read_bytes())
            if data.get("version") != MEMO_VERSION or not isinstance(data.get("files"), dict):
                return {}
            return dict(data["files"])
        except (OSError, ValueError, AttributeError, RecursionError) as error:
            self.warnings.append(
                f"ignoring the damaged file digest memo {self.memo_path} ({error}); files will be re-hashed"
            )
            return {}


def _is_regular(stat: os.stat_result) -> bool:
    import stat as stat_module

    return stat_module.S_ISREG(stat.st_mode)


def _stat_key(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _facts_to(fact: FileFacts) -> dict[str, Any]:
    return {
        "sha256": fact.sha256,
        "size": fact.size,
        "kind": fact.kind.value if fact.kind else None,
        "format": fact.format,
        "width": fact.width,
        "height": fact.height,
        "seconds": fact.seconds,
        "error": fact.error,
    }


def _facts_from(entry: dict[str, Any]) -> FileFacts | None:
    """The memoised facts, or None when the entry is damaged (then the file is read again)."""
    try:
        facts = FileFacts(
            sha256=entry["sha256"],
            size=entry["size"],
            kind=FileKind(entry["kind"]) if entry.get("kind") else None,
            format=entry.get("format"),
            width=entry.get("width"),
            height=entry.get("height"),
            seconds=entry.get("seconds"),
            error=entry.get("error"),
        )
    except (KeyError, ValueError, TypeError):
        return None
    typed = (
        is_key(facts.sha256)
        and _is_int(facts.size)
        and all(value is None or _is_int(value) for value in (facts.width, facts.height))
        and (facts.seconds is None or (isinstance(facts.seconds, int | float) and not isinstance(facts.seconds, bool)))
        and all(value is None or isinstance(value, str) for value in (facts.format, facts.error))
    )
    return facts if typed else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
