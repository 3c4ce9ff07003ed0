"""The workspace lock (`cache/lock`, held by the build or gc that owns the cache), and sweeping what kills leave.

A second build waits and says who holds the lock. Sweeping runs under the lock, so no other
renderspec process is writing the files it removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from renderspec.errors import StorageError, WorkspaceError
from renderspec.fsutil import TEMP_SUFFIX, remove_debris

MEMO_DEBRIS_AGE = 600.0  # `plan` writes memos without the lock: leave its fresh temporary files alone


@contextlib.contextmanager
def workspace_lock(cache_root: Path, *, wait: bool, notice: TextIO | None = None) -> Iterator[None]:
    """Holds cache/lock for the duration; a second build waits (saying who holds it) or fails."""
    path = cache_root / "lock"
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    except OSError as error:
        raise StorageError(error, path) from error
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another renderspec process"
            if not wait:
                raise WorkspaceError(f"{path} is held by {holder}", hint="wait for it to finish") from None
            if notice is not None:
                print(f"waiting for {holder}, which holds {path}", file=notice, flush=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # only clears the last holder's line
            handle.seek(0)
            handle.truncate()
        try:
            handle.write(f"renderspec build (pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
            handle.flush()
        except OSError as error:
            raise StorageError(error, path) from error
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            handle.close()


def sweep_memo_debris(cache_root: Path) -> int:
    """Temporary files of memo writes (assets.json, lock-memo.json, uploads.json) that a kill left."""
    return remove_debris(cache_root, f".*{TEMP_SUFFIX}", older_than=MEMO_DEBRIS_AGE)
