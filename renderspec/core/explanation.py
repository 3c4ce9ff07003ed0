"""What differs between the render the lock remembers for a shot and the one it would get now.

Pure: the edges hand in the previous render's key payload and the sources it recorded (read from
the cache, or the remote's record), the planned shot, and the current text of the files its
templates read. This module compares them — the prompt as a unified diff, parameters, model and
provider, reference files by their digests — and says where each changed line of the prompt came
from: the fragment file, or the spec field, whose current text holds most of that line literally.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from renderspec.core.model import LocalFile, RemoteFile, RenderOf

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")
_VALUE_LINE = re.compile(r"""^\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"([^"\\]{3,})"|'([^']{3,})')\s*(?:#.*)?$""")
_MIN_BLOCK = 4  # shorter common runs of text are coincidence (" of ", "the ")
_ROLE_WORDS = {"reference_image": "image", "reference_video": "video"}

# How a source file stands against the render: its text changed or not, or the render did not read it, or
# the shot no longer reads it.
SOURCE_CHANGED = "changed"
SOURCE_UNCHANGED = "unchanged"
SOURCE_NEW = "added"
SOURCE_GONE = "removed"


def sentences(text: str) -> list[str]:
    """A prompt cut into lines at sentence ends and line breaks: one long line diffs unreadably."""
    return [piece for line in text.splitlines() for piece in _SENTENCE_END.split(line.strip()) if piece]


def prompt_diff(old: str, new: str, *, old_label: str, new_label: str) -> list[str]:
    """A unified diff (difflib's) of two prompts, sentence by sentence; empty when they are equal.

    When only whitespace differs, each side is one JSON string, so the difference is visible.
    """
    if old == new:
        return []
    before, after = sentences(old), sentences(new)
    if before == after:
        before, after = [json.dumps(old, ensure_ascii=False)], [json.dumps(new, ensure_ascii=False)]
    return list(difflib.unified_diff(before, after, old_label, new_label, n=3, lineterm=""))


def added_lines(diff: Sequence[str]) -> list[str]:
    """The text of the lines a unified diff adds (without the `+`)."""
    return [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]


def removed_lines(diff: Sequence[str]) -> list[str]:
    return [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]


# -- parameters, model, provider -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One value of the request that differs: `duration 5 → 8`."""

    name: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.name} {show(self.old)} → {show(self.new)}"


def request_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """The cache format, provider kind, model and each parameter that differ between two key payloads."""
    changes: list[Change] = []
    if old.get("key_version") != new.get("key_version"):
        changes.append(Change("cache format", old.get("key_version"), new.get("key_version")))
    if old.get("provider_kind") != new.get("provider_kind"):
        changes.append(Change("provider", old.get("provider_kind"), new.get("provider_kind")))
    before, after = _table(old.get("request")), _table(new.get("request"))
    if before.get("model") != after.get("model"):
        changes.append(Change("model", before.get("model"), after.get("model")))
    old_parameters, new_parameters = _table(before.get("parameters")), _table(after.get("parameters"))
    for name in sorted(set(old_parameters) | set(new_parameters), key=str):
        if old_parameters.get(name) != new_parameters.get(name):
            changes.append(Change(str(name), old_parameters.get(name), new_parameters.get(name)))
    return changes


def show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def request_input(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload's `request.input`, tolerating any shape (payloads are read from cache records)."""
    return _table(_table(payload.get("request")).get("input"))


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# -- reference files -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileChange:
    """A file of the request that differs: changed bytes, or a media item added or removed."""

    role: str
    """What the file is to the request, numbered as citations are: `image 2`, `voice of image 1`, `first frame`."""
    path: str | None
    """Where it is now (a project path or a URL); None for a file the request no longer has."""
    old_sha256: str | None
    new_sha256: str | None
    status: str  # "changed", "added" or "removed"

    def __str__(self) -> str:
        where = f"{self.path} ({self.role})" if self.path else self.role
        if self.status == "changed":
            return f"{where}: {_short(self.old_sha256)} → {_short(self.new_sha256)}"
        if self.status == "added":
            return f"{where}: added ({_short(self.new_sha256)})"
        return f"{where}: removed (was {_short(self.old_sha256)})"


@dataclass(frozen=True, slots=True)
class _Slot:
    type: str
    form: Any  # the key's form of the file: {"sha256"} or {"url", "sha256"}
    voice: Any
    live: Any = None  # the current request's LocalFile/RemoteFile, for its path
    live_voice: Any = None


def file_changes(
    old_payload: Mapping[str, Any], new_payload: Mapping[str, Any], request: Mapping[str, Any]
) -> list[FileChange]:
    """Reference images, videos, voices and first frames whose bytes (or links) differ, or that came or went.

    Items are paired in `media` order; where the list itself changed, identical items are matched
    first and the rest reported as added or removed. The previous render's files have no paths
    (keys never hold one): a changed file is named by where its counterpart is now.
    """
    old_media = _media(request_input(old_payload).get("media"))
    new_media = _media(request_input(new_payload).get("media"))
    live = _media(_table(request.get("input")).get("media"))
    before = [_Slot(_text(item.get("type")), item.get("url"), item.get("reference_voice")) for item in old_media]
    after = [
        _Slot(
            _text(item.get("type")),
            item.get("url"),
            item.get("reference_voice"),
            live[index].get("url") if index < len(live) else None,
            live[index].get("reference_voice") if index < len(live) else None,
        )
        for index, item in enumerate(new_media)
    ]
    old_roles, new_roles = _roles(before), _roles(after)
    changes: list[FileChange] = []
    matcher = difflib.SequenceMatcher(
        None, [_identity(slot) for slot in before], [_identity(slot) for slot in after], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        paired = tag == "equal" or (
            tag == "replace"
            and i2 - i1 == j2 - j1
            and all(before[i].type == after[j].type for i, j in zip(range(i1, i2), range(j1, j2), strict=True))
        )
        if paired:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                changes += _pair_changes(before[i], after[j], new_roles[j])
            continue
        for i in range(i1, i2):
            changes += _gone(before[i], old_roles[i])
        for j in range(j1, j2):
            changes += _came(after[j], new_roles[j])
    return changes


def _pair_changes(old: _Slot, new: _Slot, role: str) -> Iterator[FileChange]:
    if old.form != new.form:
        yield FileChange(role, _where(new.live, new.form), _digest(old.form), _digest(new.form), "changed")
    if old.voice != new.voice:
        voice_role = f"voice of {role}"
        if old.voice is None:
            yield FileChange(voice_role, _where(new.live_voice, new.voice), None, _digest(new.voice), "added")
        elif new.voice is None:
            yield FileChange(voice_role, None, _digest(old.voice), None, "removed")
        else:
            path = _where(new.live_voice, new.voice)
            yield FileChange(voice_role, path, _digest(old.voice), _digest(new.voice), "changed")


def _gone(old: _Slot, role: str) -> Iterator[FileChange]:
    yield FileChange(role, None, _digest(old.form), None, "removed")
    if old.voice is not None:
        yield FileChange(f"voice of {role}", None, _digest(old.voice), None, "removed")


def _came(new: _Slot, role: str) -> Iterator[FileChange]:
    yield FileChange(role, _where(new.live, new.form), None, _digest(new.form), "added")
    if new.voice is not None:
        yield FileChange(f"voice of {role}", _where(new.live_voice, new.voice), None, _digest(new.voice), "added")


def _media(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _identity(slot: _Slot) -> str:
    return json.dumps([slot.type, slot.form], sort_keys=True, default=str)


def _roles(slots: Sequence[_Slot]) -> list[str]:
    """`image 1`, `image 2`, `video 1`, `first frame`: as the prompt's citations number them."""
    counts: dict[str, int] = {}
    roles = []
    for slot in slots:
        word = _ROLE_WORDS.get(slot.type)
        if word is None:
            roles.append(slot.type.replace("_", " ") or "media item")
            continue
        counts[word] = counts.get(word, 0) + 1
        roles.append(f"{word} {counts[word]}")
    return roles


def _where(live: Any, form: Any) -> str | None:
    if isinstance(live, LocalFile):
        return live.path
    if isinstance(live, RemoteFile):
        return live.url
    if isinstance(live, RenderOf):
        return live.label
    url = _table(form).get("url")
    return url if isinstance(url, str) else None


def _digest(form: Any) -> str | None:
    digest = _table(form).get("sha256", _table(form).get("frame_of"))  # a still: its render's sha256
    if isinstance(digest, str):
        return digest
    if "waits_on" in _table(form):
        return "not rendered yet"
    url = _table(form).get("url")
    return url if isinstance(url, str) else None  # an unpinned URL: the link is its identity


def _short(digest: str | None) -> str:
    if digest is None:
        return "unknown"
    return digest[:12] if re.fullmatch(r"[0-9a-f]{64}", digest) else digest


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# -- sources: which file a change came from -----------------------------------------------------


def source_statuses(old: Mapping[str, str] | None, new: Mapping[str, str]) -> dict[str, str | None]:
    """Per spec file and fragment, whether its text changed since the render (None: the render did not record it)."""
    if old is None:
        return {path: None for path in new}
    statuses: dict[str, str | None] = {}
    for path, digest in new.items():
        if path not in old:
            statuses[path] = SOURCE_NEW
        else:
            statuses[path] = SOURCE_UNCHANGED if old[path] == digest else SOURCE_CHANGED
    for path in old:
        if path not in new:
            statuses[path] = SOURCE_GONE
    return statuses


@dataclass(frozen=True, slots=True)
class SourceText:
    """The current text of a file a shot was made from, or of one field of its spec, with its first line."""

    path: str
    text: str
    first_line: int = 1
    field: str | None = None
    """The spec field this text is the value of (`prompt`), or None for a whole fragment file."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one changed line of the prompt came from: a file's line, and the field when it is a spec's."""

    path: str
    line: int
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" + (f" ({self.field})" if self.field else "")


def origins_of(
    added: Sequence[str], removed: Sequence[str], candidates: Sequence[SourceText], values: Sequence[SourceText] = ()
) -> list[tuple[str, list[Origin]]]:
    """For each added prompt line, the source lines it came from (possibly none).

    The main origin is the candidate line (of a field or fragment) whose literal text, template tags
    left out, covers most of the added line; earlier candidates win ties, so a shot's own field comes
    before a fragment. `values` (a spec file's `name = "text"` lines, e.g. [vars]) are named too when
    their text is in the added line but in no removed one: a changed variable shows where it is set.
    """
    lines = [
        (candidate, candidate.first_line + offset, literal)
        for candidate in candidates
        for offset, raw in enumerate(candidate.text.split("\n"))
        if len(literal := _TEMPLATE_TAG.sub("\0", raw).strip()) >= _MIN_BLOCK
    ]
    settings = [
        (value.path, value.first_line + offset, match)
        for value in values
        for offset, raw in enumerate(value.text.split("\n"))
        if (match := _VALUE_LINE.match(raw))
    ]
    result: list[tuple[str, list[Origin]]] = []
    for text in added:
        found: list[Origin] = []
        best, best_score = None, 0
        for candidate, number, literal in lines:
            score = _covered(text, literal)
            if score > best_score:
                best, best_score = Origin(candidate.path, number, candidate.field), score
        if best is not None and (best_score * 2 >= len(text.strip()) or best_score >= 30):
            found.append(best)
        for path, number, match in settings:
            value = match.group(2) or match.group(3)
            is_new = value in text and not any(value in line for line in removed)
            if is_new and all((origin.path, origin.line) != (path, number) for origin in found):
                found.append(Origin(path, number, match.group(1)))
        result.append((text, found))
    return result


def _covered(text: str, literal: str) -> int:
    """How many characters of `text` appear in `literal` in runs of at least a few characters, in order."""
    if literal in text:
        return len(literal.replace("\0", ""))
    matcher = difflib.SequenceMatcher(None, literal, text, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks() if block.size >= _MIN_BLOCK)
