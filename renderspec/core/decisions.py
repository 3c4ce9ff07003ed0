"""Why a shot must render: its state (`cached`, `remote`, `new`, `stale`, `missing`) and reasons from a closed set.

Pure: the edges hand in what the lock file remembers of each shot, which keys the local cache and
the remote hold, and the key payload a previous render was made from; this module only compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from renderspec.core.model import LocalFile, PlannedShot, State


@dataclass(frozen=True, slots=True)
class Previous:
    """What the lock file says produced a shot's current render, and that render's payload.

    For reports (`explain`): where the payload was read (`local cache`, `remote cache`), and the
    sources the render recorded (spec file and fragments, sha256 of each text), when it did.
    """

    key: str
    payload: Mapping[str, Any] | None = None
    origin: str | None = None
    sources: Mapping[str, str] | None = None


def decide(
    shots: list[PlannedShot],
    previous: Mapping[str, Previous],
    cached_keys: Set[str],
    *,
    remote_keys: Set[str] = frozenset(),
    damaged: Set[str] = frozenset(),
    forced: Set[str] = frozenset(),
) -> list[PlannedShot]:
    """Each shot with its state and the reasons it must render (none when cached or remote).

    `damaged` keys are in the cache but fail its size check: they render again unless the remote
    holds them. A shot whose lock entry has its very key was paid for: when neither cache holds
    it, it is `missing`, which a paid build refuses to pay for again unless told to.
    """
    decided = []
    for shot in shots:
        before = previous.get(shot.id)
        if shot.state is State.WAITING:
            decided.append(shot)  # its key is provisional: no cache can hold it until its upstream renders
        elif shot.id in forced:
            decided.append(shot.with_state(State.STALE if before else State.NEW, ("forced",)))
        elif shot.key in cached_keys:
            decided.append(shot.with_state(State.CACHED, ()))
        elif shot.key in remote_keys:
            decided.append(shot.with_state(State.REMOTE, ("on the remote cache",)))
        elif shot.key in damaged:
            decided.append(
                shot.with_state(State.STALE, ("the cached render is damaged (`renderspec verify` moves it aside)",))
            )
        elif before is None:
            decided.append(shot.with_state(State.NEW, ("new shot",)))
        elif before.key == shot.key:
            decided.append(
                shot.with_state(State.MISSING, ("paid for before (the lock has this key), but in no cache",))
            )
        elif before.payload is None:
            decided.append(
                shot.with_state(
                    State.STALE, ("request changed (the previous render is not in the local cache to compare)",)
                )
            )
        else:
            decided.append(
                shot.with_state(
                    State.STALE, tuple(changes(before.payload, shot.payload, shot.request)) or ("request changed",)
                )
            )
    return _waiting_reasons(decided)


def _waiting_reasons(shots: list[PlannedShot]) -> list[PlannedShot]:
    """A waiting shot says why each shot it waits on renders: an edit upstream re-renders the whole chain."""
    by_id = {shot.id: shot for shot in shots}
    result = []
    for shot in shots:
        if shot.state is State.WAITING:
            parts = []
            for upstream in shot.waiting_on:
                source = by_id.get(upstream)
                why = "; ".join(source.reasons) if source is not None and source.reasons else ""
                parts.append(f"{upstream} ({why})" if why else upstream)
            shot = shot.with_state(State.WAITING, (f"waiting on {', '.join(parts)}",))
        result.append(shot)
    return result


def changes(old: Mapping[str, Any], new: Mapping[str, Any], request: Mapping[str, Any]) -> list[str]:
    """Human reasons for the differences between two key payloads."""
    reasons: list[str] = []
    if old.get("key_version") != new.get("key_version"):
        return ["cache format changed"]
    if old.get("provider_kind") != new.get("provider_kind"):
        reasons.append(f"provider changed ({old.get('provider_kind')} → {new.get('provider_kind')})")
    before, after = old.get("request", {}), new.get("request", {})
    if before.get("model") != after.get("model"):
        reasons.append(f"model changed ({before.get('model')} → {after.get('model')})")
    old_input, new_input = before.get("input", {}), after.get("input", {})
    for name, label in (("prompt", "prompt"), ("negative_prompt", "negative prompt")):
        if old_input.get(name) != new_input.get(name):
            reasons.append(f"{label} changed")
    reasons += _media_changes(old_input.get("media", []), new_input.get("media", []), request["input"]["media"])
    old_parameters, new_parameters = before.get("parameters", {}), after.get("parameters", {})
    for name in sorted(set(old_parameters) | set(new_parameters)):
        if old_parameters.get(name) != new_parameters.get(name):
            reasons.append(f"{name} {_show(old_parameters.get(name))} → {_show(new_parameters.get(name))}")
    return reasons


def _media_changes(old: list[Any], new: list[Any], current: list[Any]) -> list[str]:
    if [item.get("type") for item in old] != [item.get("type") for item in new]:
        return ["media changed"]
    reasons = []
    for before, after, live in zip(old, new, current, strict=True):
        for field in ("url", "reference_voice"):
            if before.get(field) != after.get(field):
                ref = live.get(field)
                where = ref.path if isinstance(ref, LocalFile) else getattr(ref, "url", None) or "a reference"
                reasons.append(
                    f"reference changed: {where}" if before.get(field) and after.get(field) else "media changed"
                )
    return reasons


def _show(value: Any) -> str:
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
