"""The one exception tree of renderspec; every layer raises these, the CLI turns them into lines.

    RenderspecError
    ├── SpecError                 the project's specs are invalid (carries every problem)
    ├── SettingsError             renderspec.toml or the environment is invalid
    ├── WorkspaceError            the cache, lock or output folders cannot be used
    │   └── StorageError          a write failed (disk full, permissions): names the path
    ├── ProviderError             talking to the video service went wrong
    │   ├── Rejected              the service refused the request: do not retry
    │   ├── Unavailable           throttled, 5xx or network trouble: retry later
    │   ├── JobFailed             the task ended FAILED (code and message from the service)
    │   ├── JobTimedOut           the task did not finish before the client's deadline
    │   └── OutcomeUnknown        a create may have reached the service: never resend blindly
    ├── RemoteError               the shared remote cache cannot be used as asked
    │   ├── RemoteUnavailable     cannot be reached (network trouble, 5xx after the retries)
    │   ├── RemoteDenied          the credentials are missing or lack the right (401/403)
    │   ├── RemoteMissing         the object is not on the remote (404)
    │   └── RemoteUnusable        the object is there but cannot be an entry's (too large, not a file)
    └── InvalidOutput             a downloaded video is not what was asked for

Imports nothing from renderspec, so any module may raise these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RenderspecError(Exception):
    """Base of every error renderspec reports to a user."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class SpecError(RenderspecError):
    """Raised when planning found errors; `problems` holds every one of them."""

    def __init__(self, problems: Sequence[Any]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the specs")


class SettingsError(RenderspecError):
    """renderspec.toml or an environment variable holds a value renderspec cannot use."""


class WorkspaceError(RenderspecError):
    """The project's folders (cache, renders, lock) cannot be read or written as needed."""


class StorageError(WorkspaceError):
    """Writing a file failed (no space, no permission); the message names the file, nothing is half-written."""

    def __init__(self, error: OSError, path: object) -> None:
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        super().__init__(f"{reason} while writing {path}")
        self.errno = error.errno
        self.path = path


class ProviderError(RenderspecError):
    """Base of every failure talking to a video service."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after


class Rejected(ProviderError):
    """The service refused the request (400/401/403, arrears, moderation): retrying cannot help."""


class Unavailable(ProviderError):
    """Throttling, a server error or a network failure: the same call may succeed later."""


class JobFailed(ProviderError):
    """The task was accepted and then ended FAILED; nothing was billed."""


class JobTimedOut(ProviderError):
    """The task did not reach a final state before the client's deadline; it may still finish."""


class OutcomeUnknown(ProviderError):
    """A create request may have reached the service; resending it could pay twice."""


class RemoteError(RenderspecError):
    """The remote cache answered something renderspec cannot use; `remote` is its URL (never a credential)."""

    def __init__(self, message: str, *, remote: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.remote = remote


class RemoteUnavailable(RemoteError):
    """The remote cannot be reached, or kept failing (5xx, 429) through every retry."""


class RemoteDenied(RemoteError):
    """The remote refused the credentials, or they lack the right (401/403): a write degrades to read-only."""


class RemoteMissing(RemoteError):
    """The object asked for is not on the remote."""


class RemoteUnusable(RemoteError):
    """One object on the remote is not what renderspec writes there (too large, not a file): its entry is refused."""


class InvalidOutput(RenderspecError):
    """A downloaded video failed verification (length, container, size or duration)."""
