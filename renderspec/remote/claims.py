"""Claims: before paying for a shot, a build that can write says so on the remote, so two machines never pay for one.

A claim is `v1/claims/<key>.json`: who holds it (host, process, CI job), since when, until when
(its lease) and, once the service answered, the task id. It is made with a conditional create,
renewed and handed over with conditional replaces (S3's If-None-Match / If-Match, a folder's
exclusive generations; see `backend.Conditional`), so of two builds racing for one key exactly one
holds it. A build that finds a live claim of another does not submit: it waits for the entry to
appear. An expired claim is taken over; if it names a task, the new holder collects that task
instead of paying again (same account). Plain HTTP servers have no conditional writes, hence no
claims.

The clock is handed in, so tests drive leases without waiting.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from renderspec.core.keys import is_key, is_task_id
from renderspec.errors import RemoteMissing
from renderspec.remote.backend import Conditional

CLAIMS = "v1/claims"
CI_JOB_VARIABLES = ("GITHUB_RUN_ID", "CI_JOB_ID", "BUILDKITE_JOB_ID", "CIRCLE_WORKFLOW_JOB_ID", "BUILD_ID")


def claim_path(key: str) -> str:
    if not is_key(key):
        raise ValueError(f"not a content key: {key!r}")
    return f"{CLAIMS}/{key}.json"


@dataclass(frozen=True, slots=True)
class Holder:
    """What a claim says about the build that holds it."""

    token: str  # this build's own id: host and process alone repeat across containers
    host: str
    process: int
    job: str | None
    since: float
    expires: float
    task_id: str | None = None

    def is_live(self, now: float) -> bool:
        return now < self.expires

    def describe(self) -> str:
        job = f", CI job {self.job}" if self.job else ""
        return f"{self.host} (process {self.process}{job})"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim this build holds: its version is what the next conditional write must match."""

    key: str
    version: str
    holder: Holder
    inherited_task: str | None = None  # the task an expired claim named: collect it, do not pay again


def identity(env: Mapping[str, str]) -> dict[str, Any]:
    """Who this build is, as its claims show it."""
    job = next((env[name] for name in CI_JOB_VARIABLES if env.get(name)), None)
    return {"token": uuid.uuid4().hex, "host": socket.gethostname(), "process": os.getpid(), "job": job}


class Claims:
    """Takes, renews and releases claims on a backend that has conditional writes."""

    def __init__(
        self,
        backend: Conditional,
        *,
        lease: float,
        clock: Callable[[], float],
        who: Mapping[str, Any],
    ) -> None:
        self.backend = backend
        self.lease = lease
        self.clock = clock
        self.who = dict(who)

    def _holder(self, task_id: str | None = None, since: float | None = None) -> Holder:
        now = self.clock()
        return Holder(**self.who, since=now if since is None else since, expires=now + self.lease, task_id=task_id)

    def take(self, key: str) -> Claim | Holder:
        """Our claim on `key`, or the live claim of another build (then: wait, do not submit)."""
        path = claim_path(key)
        for _ in range(8):  # each round lost a race to a writer that changed the claim meanwhile
            mine = self._holder()
            self.backend.create(path, _encoded(mine))
            try:
                # Read back even after a create that succeeded: on a store whose conditional create is
                # not atomic (moto's server) two writers may both be told they won; the claim read
                # back names the one that did.
                data, version = self.backend.read_versioned(path)
            except RemoteMissing:
                continue  # released since: try to create it again
            theirs = _decoded(data)
            if theirs is not None and theirs.token == mine.token:
                return Claim(key, version, theirs)
            if theirs is not None and theirs.is_live(self.clock()):
                return theirs
            # Expired (or unreadable, which no renderspec writes): take it over, and its task with it.
            inherited = theirs.task_id if theirs is not None else None
            new = self.backend.replace(path, _encoded(replace(mine, task_id=inherited)), version)
            if new is not None:
                return Claim(key, new, replace(mine, task_id=inherited), inherited_task=inherited)
        raise RuntimeError(f"the claim on {key} kept changing under this build")

    def holder(self, key: str) -> Holder | None:
        """Another build's live claim on `key`, without taking anything; None when it is free (or ours, or expired)."""
        try:
            data, _ = self.backend.read_versioned(claim_path(key))
        except RemoteMissing:
            return None
        theirs = _decoded(data)
        if theirs is None or theirs.token == self.who.get("token") or not theirs.is_live(self.clock()):
            return None
        return theirs

    def renew(self, claim: Claim, task_id: str | None = None) -> Claim | None:
        """Extends the lease (and records the task id); None when the claim was lost (taken over after expiry)."""
        holder = self._holder(task_id or claim.holder.task_id, since=claim.holder.since)
        version = self.backend.replace(claim_path(claim.key), _encoded(holder), claim.version)
        return None if version is None else replace(claim, version=version, holder=holder)

    def release(self, claim: Claim) -> bool:
        """Deletes the claim when the shot is committed or failed; False when it was no longer ours."""
        return self.backend.remove(claim_path(claim.key), claim.version)


def _encoded(holder: Holder) -> bytes:
    return json.dumps({"format": 1, **asdict(holder)}, sort_keys=True).encode()


def _decoded(data: bytes) -> Holder | None:
    """A claim as written by renderspec, or None for anything else (treated as expired)."""
    try:
        raw = json.loads(data)
        holder = Holder(
            token=str(raw["token"]),
            host=str(raw["host"])[:200],
            process=int(raw["process"]),
            job=None if raw.get("job") is None else str(raw["job"])[:200],
            since=float(raw["since"]),
            expires=float(raw["expires"]),
            task_id=raw.get("task_id") if is_task_id(raw.get("task_id")) else None,
        )
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return holder
