"""Builds the configured provider with real collaborators: httpx client, key from the environment."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import anyio
import httpx

from renderspec.errors import SettingsError
from renderspec.providers.apiyi import BASE_URL as APIYI_BASE_URL
from renderspec.providers.apiyi import ApiyiProvider
from renderspec.providers.base import Provider, Secret, UploadMemo
from renderspec.providers.dashscope import BASE_URLS, DashScopeProvider
from renderspec.providers.http import HttpEngine, Sleep, default_timeout
from renderspec.providers.local import LOCAL_KEY, LocalProvider, start_local_emulator
from renderspec.providers.publish import S3Publisher, S3Target
from renderspec.settings import Settings

KEY_VARIABLES = {"dashscope": "DASHSCOPE_API_KEY", "apiyi": "APIYI_API_KEY"}


def _key(settings: Settings, env: Mapping[str, str]) -> Secret:
    variable = KEY_VARIABLES[settings.provider]
    value = env.get(variable, "").strip()
    if not value:
        raise SettingsError(f"provider '{settings.provider}' needs an API key in the environment variable {variable}")
    if not is_header_safe(value):
        raise SettingsError(
            f"{variable} holds a character that cannot be sent in an HTTP header (non-ASCII or a control character)",
            hint="copy the key again from the provider's console; it is printable ASCII",
        )
    return Secret(value)


def is_header_safe(value: str) -> bool:
    """Printable ASCII only: anything else cannot travel in an Authorization header."""
    return value.isascii() and value.isprintable()


def base_url(settings: Settings, env: Mapping[str, str]) -> str:
    chosen = env.get("RENDERSPEC_BASE_URL") or settings.project.base_url
    if chosen:
        parts = urlsplit(chosen)
        if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback_url(chosen)):
            return chosen.rstrip("/")
        raise SettingsError(
            f"base URL {chosen!r} must be https:// (or http:// on loopback, for an emulator): the API key travels with every call"
        )
    if settings.provider == "apiyi":
        return APIYI_BASE_URL
    region = settings.project.region
    if region not in BASE_URLS:
        raise SettingsError(
            f"unknown DashScope region '{region}'; choose one of {', '.join(BASE_URLS)} or set base_url"
        )
    return BASE_URLS[region]


@contextlib.asynccontextmanager
async def open_provider(
    settings: Settings,
    env: Mapping[str, str],
    *,
    sleep: Sleep = anyio.sleep,
    uploads: UploadMemo | None = None,
) -> AsyncIterator[Provider]:
    """The provider for these settings, closed (and its emulator stopped) on exit."""
    client = httpx.AsyncClient(
        timeout=default_timeout(), follow_redirects=False, limits=httpx.Limits(max_connections=32)
    )
    provider: Provider
    project = settings.project
    if settings.provider == "local":
        emulator = start_local_emulator(settings.cache_dir / "emulator")
        engine = HttpEngine(
            base_url=emulator.url,
            api_key=Secret(LOCAL_KEY),
            client=client,
            sleep=sleep,
            rng=random.Random(),
            allow_loopback_downloads=True,
        )
        provider = LocalProvider(engine, emulator, poll_interval=project.poll_interval or 0.2)
    else:
        url = base_url(settings, env)
        engine = HttpEngine(
            base_url=url,
            api_key=_key(settings, env),
            client=client,
            sleep=sleep,
            allow_loopback_downloads=_is_loopback_url(url),
        )
        if settings.provider == "dashscope":
            provider = DashScopeProvider(engine, poll_interval=project.poll_interval or 15.0, uploads=uploads)
        else:
            provider = ApiyiProvider(
                engine,
                poll_interval=project.poll_interval or 10.0,
                data_uri_max_bytes=project.apiyi_data_uri_max_bytes,
                publisher=_publisher(settings, env, uploads),
            )
    try:
        yield provider
    finally:
        with anyio.CancelScope(shield=True):
            await provider.aclose()


def _publisher(settings: Settings, env: Mapping[str, str], uploads: UploadMemo | None) -> S3Publisher | None:
    """The bucket APIYI fetches local files from, when settings name one (keys from the environment)."""
    project = settings.project
    if not project.apiyi_s3_bucket:
        return None
    key_id, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not key_id or not secret:
        raise SettingsError(
            "apiyi_s3_bucket is set, so AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be in the environment"
        )
    token = env.get("AWS_SESSION_TOKEN")
    target = S3Target(
        bucket=project.apiyi_s3_bucket,
        prefix=project.apiyi_s3_prefix,
        endpoint_url=project.apiyi_s3_endpoint,
        region=project.apiyi_s3_region,
        access_key_id=key_id,
        secret_access_key=Secret(secret),
        session_token=Secret(token) if token else None,
    )
    return S3Publisher(target, uploads=uploads)


def _is_loopback_url(url: str) -> bool:
    """Base URLs on loopback (an emulator) may hand out plain-http result links on loopback."""
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")
