"""Upload links made for local files, by (file hash, provider, model), kept in cache/uploads.json until they expire.

Speed only: a damaged memo is ignored and rebuilt, never a crash.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from renderspec.errors import StorageError
from renderspec.fsutil import write_atomic


class FileUploadMemo:
    """The UploadMemo of a project (see providers.base): links live in one small JSON file."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._links: dict[str, tuple[str, float]] = {}
        with contextlib.suppress(OSError, ValueError, RecursionError):
            loaded = json.loads(path.read_bytes())
            if isinstance(loaded, dict):
                self._links = {key: link for key, value in loaded.items() if (link := _link(value)) is not None}

    def get(self, sha256: str, provider: str, model: str, now: float) -> str | None:
        found = self._links.get(f"{provider}/{model}/{sha256}")
        return found[0] if found and found[1] > now else None

    def put(self, sha256: str, provider: str, model: str, url: str, expires: float) -> None:
        now = self._clock()
        self._links = {key: link for key, link in self._links.items() if link[1] > now}
        self._links[f"{provider}/{model}/{sha256}"] = (url, expires)
        with contextlib.suppress(StorageError):  # a memo that cannot be saved costs an upload later, nothing more
            write_atomic(self.path, json.dumps({k: list(v) for k, v in self._links.items()}, sort_keys=True).encode())


def _link(value: Any) -> tuple[str, float] | None:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        expires = value[1]
        if isinstance(expires, int | float) and not isinstance(expires, bool) and math.isfinite(expires):
            return value[0], float(expires)
    return None
