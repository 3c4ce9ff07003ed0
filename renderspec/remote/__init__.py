"""The shared remote cache (design §9): one URL picks a backend; `Remote` is the tier the commands use.

`open_remote` is the only place that turns settings and the environment into a remote: it
refuses credentials in URLs, plain HTTP beyond loopback and schemes it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit

from renderspec.errors import SettingsError
from renderspec.providers.base import Secret
from renderspec.remote.backend import Backend
from renderspec.remote.tier import Remote
from renderspec.settings import RemoteSettings

if TYPE_CHECKING:  # httpx and anyio load with it: an offline `plan` imports this package but needs neither
    from renderspec.providers.http import RetryPolicy

SIGNING_KEY = "RENDERSPEC_REMOTE_SIGNING_KEY"
SCHEMES = "s3://BUCKET/PREFIX, https://HOST/PATH (http:// on loopback), file:///PATH or a folder path"

__all__ = ["Remote", "check_url", "open_backend", "open_remote"]


def open_remote(
    settings: RemoteSettings, env: Mapping[str, str], root: Path, *, retry: RetryPolicy | None = None
) -> Remote | None:
    """The configured remote, or None when there is none (or `--no-remote`)."""
    if not settings.url:
        return None
    backend = open_backend(settings, env, root, retry=retry)
    signing_key = env.get(SIGNING_KEY)
    return Remote(
        backend,
        signing_key=Secret(signing_key) if signing_key else None,
        read_only=settings.read_only,
        required=settings.required,
    )


def check_url(url: str) -> None:
    """Refuses a remote URL renderspec cannot or must not use, without contacting anything."""
    _parsed(url.strip())


def _parsed(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        _ = parts.port  # `user:pass` cut short by a `/` or `#` in the password reads as a port
    except ValueError:
        raise SettingsError(  # never quoted: what fails to parse may be a credential
            "the remote URL cannot be read as a URL (its host or port is malformed)",
            hint=f"write {SCHEMES}; credentials go in the environment, never in the URL",
        ) from None
    if parts.scheme and "@" in parts.netloc:
        raise SettingsError(
            "the remote URL carries credentials (user:password@); they must come from the environment "
            "(AWS_* for s3://, RENDERSPEC_REMOTE_TOKEN or RENDERSPEC_REMOTE_USER and RENDERSPEC_REMOTE_PASSWORD for https://)"
        )
    scheme = parts.scheme.lower()
    if scheme == "s3" and not parts.netloc:
        raise SettingsError(f"the remote URL {url} names no bucket; write s3://BUCKET/PREFIX")
    if scheme in ("http", "https"):
        from renderspec.remote.webdav import checked_base

        checked_base(url)
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise SettingsError(f"the remote URL {url} names a host; a shared folder is file:///PATH (mount it first)")
    if scheme and len(scheme) > 1 and scheme not in ("s3", "http", "https", "file"):  # one letter: a Windows drive
        raise SettingsError(f"the remote URL {url} has a scheme renderspec does not know; use {SCHEMES}")
    return parts


def open_backend(
    settings: RemoteSettings, env: Mapping[str, str], root: Path, *, retry: RetryPolicy | None = None
) -> Backend:
    url = (settings.url or "").strip()
    parts = _parsed(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        from renderspec.remote.s3 import S3Backend

        return S3Backend(
            parts.netloc,
            parts.path.strip("/"),
            env=env,
            endpoint=settings.endpoint,
            region=settings.region,
            retry=retry,
        )
    if scheme in ("http", "https"):
        from renderspec.remote.webdav import HttpBackend

        return HttpBackend(url, env=env, retry=retry)
    from renderspec.remote.folder import FolderBackend

    if scheme == "file":
        return FolderBackend(Path(unquote(parts.path)), url=url)
    return FolderBackend(root / url, url=url)
