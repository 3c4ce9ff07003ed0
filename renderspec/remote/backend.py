"""What a remote cache backend offers: a handful of blob operations on paths under its prefix.

Backends know nothing of keys, metas or signing (that is `renderspec.remote.tier`); they move
bytes, batch existence questions, retry what may be retried and translate every failure into a
`RemoteError`. They are synchronous (boto3 is) and thread-safe: the tier runs them in threads.

Paths are relative to the backend's prefix and use `/`, e.g. `v1/objects/<key>/meta.json`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Protocol, TypeGuard

MAX_SMALL = 4 * 2**20  # a meta record (or, later, a claim) is a few KB: nothing near this is one


class Backend(Protocol):
    url: str
    """The remote as the user wrote it (never with a credential): shown in messages."""

    def exists(self, paths: Collection[str]) -> set[str]:
        """Which of `paths` exist, asked in batches (S3: listings by prefix; HTTP: bounded concurrent HEADs)."""
        ...

    def read(self, path: str, limit: int = MAX_SMALL) -> bytes:
        """A small object's bytes; RemoteMissing when absent, RemoteError when larger than `limit`."""
        ...

    def download(self, path: str, target: Path, limit: int | None = None) -> int:
        """Streams an object into `target` (a staging file the caller owns); returns its size.

        A body shorter than the announced length is an error, never a short file presented as whole;
        one longer than `limit` is RemoteUnusable, found before or while reading, never after the
        whole of it arrived. On any failure `target` is removed.
        """
        ...

    def upload(self, path: str, source: Path) -> None:
        """Stores a file's bytes at `path` (creating parent collections where the server needs them)."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Stores `data` at `path`."""
        ...

    def delete(self, path: str) -> None:
        """Removes `path`; absent is not an error."""
        ...

    def close(self) -> None: ...


class Conditional(Protocol):
    """Writes that succeed only if nobody changed the object meanwhile: what claims need (S3, folders).

    A version is an opaque tag (S3's ETag; on a folder, the file's inode, mtime and size). Each
    write returns the new version, or None when the condition failed (someone else won the race).
    Plain HTTP servers offer no such writes, so their backend does not implement this.
    """

    def read_versioned(self, path: str, limit: int = MAX_SMALL) -> tuple[bytes, str]:
        """A small object's bytes and version; RemoteMissing when absent."""
        ...

    def create(self, path: str, data: bytes) -> str | None:
        """Writes `data` only if `path` does not exist."""
        ...

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        """Writes `data` only if `path` is still at `version`."""
        ...

    def remove(self, path: str, version: str) -> bool:
        """Deletes `path` only if it is still at `version`; False when it changed or is gone."""
        ...


def is_conditional(backend: object) -> TypeGuard[Conditional]:
    """Whether a backend can hold claims (conditional writes)."""
    return all(callable(getattr(backend, name, None)) for name in ("read_versioned", "create", "replace", "remove"))
