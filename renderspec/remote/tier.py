"""The remote tier of the cache: entries other machines paid for, addressed by the same content keys.

Layout under the backend's prefix: `v1/objects/<key>/video.mp4`, then `v1/objects/<key>/meta.json`
(the local cache's record). The video is written first and the meta last, so an entry without
its meta does not exist and a killed upload is never seen. Nothing reaches the local cache
unverified: the record must be well formed (and signed, when a signing key is set), its payload
must hash to the key, and the video must match the record's size and sha256 and play as the shot
expects. A remote entry that fails is reported once and never used.

A remote that cannot be reached is a warning and the build carries on locally, unless the
settings say `required = true`; a refused write (403) degrades the remote to read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

from renderspec.core.keys import is_key, key_of
from renderspec.errors import InvalidOutput, RemoteDenied, RemoteError, RemoteMissing, RemoteUnusable
from renderspec.fsutil import file_sha256
from renderspec.providers.base import Secret
from renderspec.remote.backend import Backend
from renderspec.store import Entry, LocalStore, record_problem

OBJECTS = "v1/objects"
SIGNATURE = "signature"
SIGNATURE_SCHEME = "hmac-sha256:"
TRANSFERS = 8
T = TypeVar("T")
R = TypeVar("R")


def video_path(key: str) -> str:
    return f"{OBJECTS}/{key}/video.mp4"


def meta_path(key: str) -> str:
    return f"{OBJECTS}/{key}/meta.json"


def signature_of(record: Mapping[str, Any], secret: Secret) -> str:
    """HMAC-SHA256 over the record's canonical JSON, the signature field left out."""
    body = {name: value for name, value in record.items() if name != SIGNATURE}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return SIGNATURE_SCHEME + hmac.new(secret.reveal().encode(), canonical, hashlib.sha256).hexdigest()


class _Refused(Exception):
    """A remote entry that failed verification; the message says why."""


class Remote:
    """The remote cache as the commands use it: batched lookups, verified fetches, signed pushes."""

    def __init__(
        self,
        backend: Backend,
        *,
        signing_key: Secret | None = None,
        read_only: bool = False,
        required: bool = False,
        transfers: int = TRANSFERS,
    ) -> None:
        self.backend = backend
        self.url = backend.url
        self.signing_key = signing_key
        self.read_only = read_only
        self.required = required
        self.transfers = max(1, transfers)
        self.offline = False
        self.warnings: list[str] = []
        self.rejected: dict[str, str] = {}  # key → why its remote entry is never used
        self.unshared = 0  # renders whose push failed: `renderspec push` shares them later
        self._degraded = False  # a write was refused (403): read-only from then on

    @property
    def writable(self) -> bool:
        return not self.read_only and not self.offline

    def close(self) -> None:
        self.backend.close()

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def _unreachable(self, error: RemoteError, *, stop: bool = True) -> None:
        """Warn once and carry on locally; a required remote stops the command instead (when `stop`)."""
        if self.required and stop:
            raise RemoteError(
                f"the remote cache {self.url} is required and cannot be used: {error.message}",
                remote=self.url,
                hint=error.hint or "check the network and the credentials, or set required = false",
            ) from error
        if not self.offline:
            self.offline = True
            self._warn(f"cannot use the remote cache ({error.message}); carrying on with the local cache only")

    # -- reads -------------------------------------------------------------------------------

    def contains(self, keys: Iterable[str]) -> set[str]:
        """Which keys the remote holds whole (their meta is there), in one batched question."""
        if self.offline:
            return set()
        wanted = {meta_path(key): key for key in keys if is_key(key)}
        if not wanted:
            return set()
        try:
            found = self.backend.exists(list(wanted))
        except RemoteError as error:
            self._unreachable(error)
            return set()
        return {wanted[path] for path in found if path in wanted} - set(self.rejected)

    def fetch(self, key: str, local: LocalStore, probe: Callable[[Path], object]) -> Entry | None:
        """Brings one entry into the local cache, verified; None when it is absent or refused (reported once).

        `probe` raises InvalidOutput when the video does not play as the shot expects.
        """
        if self.offline or key in self.rejected or not is_key(key):
            return None
        staging = local.staging_file()
        try:
            meta = self._accepted(key, self.backend.read(meta_path(key)))
            size = self.backend.download(video_path(key), staging, limit=meta["video_size"])
            if size != meta["video_size"]:
                raise _Refused(f"its video has {size} bytes, its record says {meta['video_size']}")
            if file_sha256(staging) != meta["video_sha256"]:
                raise _Refused("its video's bytes differ from its record (sha256)")
            try:
                probe(staging)
            except InvalidOutput as error:
                raise _Refused(f"its video is not what the shot asks for: {error}") from None
            return local.put(key, staging, meta)
        except (_Refused, RemoteUnusable) as refusal:  # this entry's own fault: the remote stays in use
            self.rejected[key] = refusal.message if isinstance(refusal, RemoteError) else str(refusal)
            self._warn(f"ignoring the remote entry {key} ({refusal}); it is never used")
            return None
        except RemoteMissing:
            return None  # gone since it was listed: a miss like any other
        except RemoteError as error:
            self._unreachable(error)
            return None
        finally:
            with contextlib.suppress(OSError):
                staging.unlink(missing_ok=True)

    def records(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The verified records (metas) of entries, without their videos: what earlier renders were made from.

        For saying why a shot changed where the local cache lacks its previous render (a CI runner);
        an entry that is absent, refused or unreachable is simply not in the answer.
        """
        found: dict[str, dict[str, Any]] = {}
        wanted = [key for key in dict.fromkeys(keys) if is_key(key) and key not in self.rejected]
        if self.offline or not wanted:
            return found

        def one(key: str) -> dict[str, Any] | None:
            try:
                return self._accepted(key, self.backend.read(meta_path(key)))
            except (_Refused, RemoteError):
                return None

        def done(key: str, meta: dict[str, Any] | None) -> None:
            if meta is not None:
                found[key] = meta

        self.each(wanted, one, done)
        return found

    def _accepted(self, key: str, raw: bytes) -> dict[str, Any]:
        try:
            meta = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Refused("its record is not JSON") from None
        problem = record_problem(key, meta)
        if problem is not None:
            raise _Refused(problem)
        if meta.get("key") != key:
            raise _Refused("its record does not name its key")
        if self.signing_key is not None:
            signature = meta.get(SIGNATURE)
            if not isinstance(signature, str):
                raise _Refused("it is not signed, and RENDERSPEC_REMOTE_SIGNING_KEY asks for signed entries")
            if not hmac.compare_digest(signature, signature_of(meta, self.signing_key)):
                raise _Refused("its signature does not match RENDERSPEC_REMOTE_SIGNING_KEY (another key, or changed)")
        payload = meta.get("payload")
        try:
            hashes = isinstance(payload, dict) and key_of(payload) == key
        except (TypeError, ValueError, RecursionError):
            hashes = False
        if not hashes:
            raise _Refused("its record's request does not hash to its key")
        return dict(meta)

    # -- writes ------------------------------------------------------------------------------

    def push(self, entry: Entry, *, known_absent: bool = False) -> bool:
        """Uploads a local entry, video first and meta last (signed when a key is set); True when it did.

        An entry the remote already holds is left alone: the first writer's record stands.
        """
        if not self.writable:
            if self.offline or self._degraded:
                self.unshared += 1
            return False
        record = {name: value for name, value in entry.meta.items() if name != SIGNATURE}
        if self.signing_key is not None:
            record[SIGNATURE] = signature_of(record, self.signing_key)
        data = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False).encode()
        try:
            if not known_absent and self.backend.exists([meta_path(entry.key)]):
                return False
            self.backend.upload(video_path(entry.key), entry.video)
            self.backend.write(meta_path(entry.key), data)
        except RemoteDenied as error:
            self.read_only = self._degraded = True
            self.unshared += 1
            self._warn(
                f"the remote cache refused a write ({error.message}); carrying on read-only, "
                "so renders made here are not shared"
            )
            return False
        except RemoteError as error:
            self.unshared += 1
            self._unreachable(error, stop=False)  # the render is safe locally; the build goes on
            return False
        return True

    # -- many at once ------------------------------------------------------------------------

    def each(self, items: Iterable[T], work: Callable[[T], R], done: Callable[[T, R], None]) -> None:
        """Runs `work` on every item on a few threads; `done` sees each result, in the calling thread."""
        with ThreadPoolExecutor(max_workers=self.transfers, thread_name_prefix="remote") as pool:
            futures = {pool.submit(work, item): item for item in items}
            for future in as_completed(futures):
                done(futures[future], future.result())
