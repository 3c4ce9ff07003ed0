"""Content keys: the identity of a shot's video, independent of how its spec is written.

A key hashes the canonical JSON (sorted keys, compact separators) of the key format version, the
provider kind and the fully resolved request, with every local file replaced by the sha256 of its
bytes. Paths, reference names, TOML layout and mtimes never reach it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from renderspec.core.model import FileFacts, FileRef, LocalFile, RemoteFile, RenderOf

KEY_VERSION = 1
_KEY = re.compile(r"[0-9a-f]{64}")
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def is_key(value: object) -> bool:
    """A content key: 64 lowercase hex digits. Keys name folders, so anything else read from disk is refused."""
    return isinstance(value, str) and _KEY.fullmatch(value) is not None


def is_task_id(value: object) -> bool:
    """A task id fit to journal and to put in a URL path: no '/', no whitespace, no control characters."""
    return isinstance(value, str) and _TASK_ID.fullmatch(value) is not None


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def key_payload(
    provider_kind: str, request: Mapping[str, Any], facts: Mapping[str, FileFacts | None]
) -> dict[str, Any]:
    """What a key hashes; kept in the cache so a later plan can say which input changed."""
    return {
        "key_version": KEY_VERSION,
        "provider_kind": provider_kind,
        "request": substitute_files(request, lambda ref: _key_form(ref, facts)),
    }


def key_of(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def display_request(request: Mapping[str, Any], digests: Mapping[str, str]) -> Any:
    """The request as `plan --json` shows it: local files by path and hash until uploaded."""
    return substitute_files(request, lambda ref: _display_form(ref, digests))


def map_media(request: Mapping[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """A copy of the request with `convert` applied to every value of every `input.media` item.

    Files only ever appear there, so this is the one place that rewrites them: for keys, for
    display, for the links a provider needs, for the record of what was sent.
    """
    body_input = request["input"]
    media = [{name: convert(value) for name, value in item.items()} for item in body_input["media"]]
    return {**request, "input": {**body_input, "media": media}}


def substitute_files(request: Mapping[str, Any], replace: Callable[[FileRef], Any]) -> dict[str, Any]:
    """A copy of the request with every file reference replaced; the rest is shared."""
    return map_media(
        request, lambda value: replace(value) if isinstance(value, LocalFile | RemoteFile | RenderOf) else value
    )


def _key_form(ref: FileRef, facts: Mapping[str, FileFacts | None]) -> Any:
    if isinstance(ref, RemoteFile):
        return {"url": ref.url, "sha256": ref.sha256}
    if isinstance(ref, RenderOf):
        # A render's video is its bytes, like any file; a still is a function of those bytes and the time.
        # Until the upstream is rendered, its key stands in (a provisional key no cache holds).
        if ref.sha256 is None:
            if ref.upstream_key is None:
                raise KeyError(f"shot {ref.shot} is not planned")
            return {"waits_on": ref.upstream_key, "frame": ref.frame}
        return {"sha256": ref.sha256} if ref.frame is None else {"frame_of": ref.sha256, "at": ref.frame}
    fact = facts.get(ref.path)
    if fact is None:
        raise KeyError(f"no digest for {ref.path}")
    return {"sha256": fact.sha256}


def _display_form(ref: FileRef, digests: Mapping[str, str]) -> Any:
    if isinstance(ref, RemoteFile):
        return ref.url
    if isinstance(ref, RenderOf):
        shown: dict[str, Any] = {"render_of": ref.shot, "sha256": ref.sha256}
        if ref.frame is not None:
            shown["frame"] = ref.frame
        return shown
    return {"local": ref.path, "sha256": digests.get(ref.path)}
