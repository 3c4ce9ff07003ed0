"""`renderspec explain` and `plan --why`: what differs from the render the lock remembers, and where it came from.

The plan already holds, per shot, the previous render's key and request (read from the local cache
or the remote's record of it: see project.py). This module reads the current text of the spec files
and fragments each shot was made from, hands everything to the pure comparison in
`core.explanation`, and prints the result as text a person reads top to bottom, or as JSON.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from renderspec.core.decisions import Previous
from renderspec.core.explanation import (
    SOURCE_CHANGED,
    SOURCE_GONE,
    SOURCE_NEW,
    SOURCE_UNCHANGED,
    Change,
    FileChange,
    Origin,
    SourceText,
    added_lines,
    file_changes,
    origins_of,
    prompt_diff,
    removed_lines,
    request_changes,
    request_input,
    source_statuses,
)
from renderspec.core.locations import Path as ValuePath
from renderspec.core.model import LocalFile, MediaItem, PlannedShot, ShotDraft, State
from renderspec.core.planning import Plan
from renderspec.core.rules import MediaType
from renderspec.core.templating import FragmentRefused
from renderspec.loading import FragmentFiles
from renderspec.manifest import LockEntry
from renderspec.project import ProjectPlan

_PROMPTS = (("prompt", "prompt"), ("negative_prompt", "negative prompt"))
# A reference file the change came from: its bytes differ from the render's, or the render did not send it.
FILE_CHANGED = "bytes changed"
FILE_ADDED = "file added"
_PHRASES = {
    SOURCE_CHANGED: "changed since the render",
    SOURCE_UNCHANGED: "unchanged since the render",
    SOURCE_NEW: "read since the render",
    SOURCE_GONE: "no longer read",
    FILE_CHANGED: "its bytes changed since the render",
    FILE_ADDED: "sent since the render",
}


@dataclass(frozen=True, slots=True)
class Located:
    """A change, with the spec line that sets the value now (None when it is renderspec's default)."""

    change: Change | FileChange
    where: str | None = None

    def __str__(self) -> str:
        return f"{self.change}" + (f"  ({self.where})" if self.where else "")


@dataclass(slots=True)
class SourceReport:
    """One spec file or fragment: whether it changed since the render, and which changed lines came from it."""

    path: str
    status: str | None
    lines: list[tuple[Origin, str]] = field(default_factory=list)
    is_worth_saying: bool = False
    """Whether to name it: a changed line came from it, or it changed and might explain the rest."""

    def __str__(self) -> str:
        numbers: dict[int, str | None] = {}
        for origin, _ in self.lines:
            numbers.setdefault(origin.line, origin.field)
        shown = ", ".join(f"{line}" + (f" ({name})" if name else "") for line, name in numbers.items())
        where = f"{self.path}:{shown}" if shown else self.path
        return f"{where}, {_PHRASES[self.status]}" if self.status in _PHRASES else where


@dataclass(slots=True)
class Explanation:
    shot: str
    spec: str
    line: int | None
    state: State
    new_key: str
    old_key: str | None
    summary: str
    previous: str | None = None
    """Where the previous render's request was read: `local cache`, `remote cache`, or None."""
    notes: list[str] = field(default_factory=list)
    diffs: dict[str, list[str]] = field(default_factory=dict)
    changes: list[Located] = field(default_factory=list)
    files: list[Located] = field(default_factory=list)
    sources: list[SourceReport] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "shot": self.shot,
            "spec": self.spec,
            "line": self.line,
            "state": str(self.state),
            "summary": self.summary,
            "old_key": self.old_key,
            "new_key": self.new_key,
            "previous_from": self.previous,
            "notes": list(self.notes),
            "prompt_diff": self.diffs.get("prompt", []),
            "negative_prompt_diff": self.diffs.get("negative_prompt", []),
            "parameters": [_change_json(item) for item in self.changes],
            "files": [_file_json(item) for item in self.files],
            "sources": [
                {
                    "path": source.path,
                    "status": source.status,
                    "lines": [
                        {"line": origin.line, "field": origin.field, "text": text} for origin, text in source.lines
                    ],
                }
                for source in self.sources
            ],
        }

    def text(self) -> list[str]:
        """The explanation as lines a person reads: a heading, then what differs, then where it came from."""
        where = f" ({self.spec}:{self.line})" if self.line else f" ({self.spec})"
        lines = [f"{self.shot}: {self.state}{where}", f"  {self.summary}"]
        lines += [f"  {note}" for note in self.notes]
        for name, label in _PROMPTS:
            if self.diffs.get(name):
                lines.append(f"  {label}:")
                lines += [f"    {line}" for line in self.diffs[name]]
        if self.changes:
            lines.append("  parameters:")
            lines += [f"    {item}" for item in self.changes]
        if self.files:
            lines.append("  files:")
            lines += [f"    {item}" for item in self.files]
        said = [source for source in self.sources if source.is_worth_saying]
        if said:
            lines.append("  came from:")
            lines += [f"    {source}" for source in said]
        return lines


def explain(
    project: ProjectPlan, shots: Sequence[PlannedShot], root: Path, *, remote_configured: bool = False
) -> list[Explanation]:
    """What differs, for each of `shots` (planned with states), from the render the lock remembers."""
    reader = _Reader(root)
    drafts = {draft.id: draft for draft in project.plan.expansion.drafts}
    return [
        _explain_one(
            shot,
            project.previous.get(shot.id),
            project.manifest.entries.get(shot.id),
            drafts.get(shot.id),
            project.plan,
            reader,
            remote_configured=remote_configured,
        )
        for shot in shots
    ]


def _explain_one(
    shot: PlannedShot,
    before: Previous | None,
    entry: LockEntry | None,
    draft: ShotDraft | None,
    plan: Plan,
    reader: _Reader,
    *,
    remote_configured: bool,
) -> Explanation:
    explanation = Explanation(
        shot=shot.id,
        spec=shot.spec,
        line=plan.line_of(shot),
        state=shot.state,
        new_key=shot.key,
        old_key=before.key if before else None,
        summary="",
    )
    key = f"key {shot.key[:12]}…"
    if shot.state is State.CACHED:
        explanation.summary = f"unchanged: cached ({key})"
    elif shot.state is State.REMOTE:
        explanation.summary = f"unchanged: on the remote cache ({key}); a build fetches it"
    elif shot.state is State.WAITING and before is None:
        explanation.summary = f"new shot, {shot.reasons[0]}: it renders once that render exists"
    elif before is None:
        explanation.summary = "new shot: nothing to compare"
    elif before.key == shot.key:
        explanation.summary = f"unchanged since the lock's render ({key}): {'; '.join(shot.reasons)}"
    else:
        old = f"key {before.key[:12]}…"
        explanation.summary = f"changed since the render the lock remembers ({old}; now {key})"
        if shot.state is State.WAITING:  # its key is provisional: the upstream's new render decides it
            explanation.summary = (
                f"{shot.reasons[0]}: it renders again once that render exists (the lock's render is {old})"
            )
        if before.payload is None:
            unset = "" if remote_configured else " (no remote cache is configured to read it from)"
            explanation.notes.append(
                f"the previous render ({old}) is in no cache, so its prompt cannot be shown{unset}"
            )
            explanation.changes = [
                Located(change, "the old value from the lock") for change in _lock_changes(entry, shot)
            ]
            explanation.sources = _sources(shot, None, [])
        else:
            explanation.previous = before.origin
            _compare(explanation, shot, before, draft, plan, reader)
    return explanation


def _compare(
    explanation: Explanation,
    shot: PlannedShot,
    before: Previous,
    draft: ShotDraft | None,
    plan: Plan,
    reader: _Reader,
) -> None:
    payload = before.payload if isinstance(before.payload, Mapping) else {}
    old_input, new_input = request_input(payload), request_input(shot.payload)
    attributed: list[tuple[Origin, str]] = []
    for name, label in _PROMPTS:
        old, new = old_input.get(name), new_input.get(name)
        if old == new:
            continue
        if old is not None and not isinstance(old, str):
            explanation.notes.append(f"the previous render's {label} is unreadable")
            continue
        diff = prompt_diff(old or "", str(new or ""), old_label=f"{label}, previous render", new_label=f"{label}, now")
        explanation.diffs[name] = diff
        candidates = reader.candidates(shot, draft, plan, name)
        spec_text = reader.text(shot.spec)
        values = [SourceText(shot.spec, spec_text)] if spec_text is not None else []
        for text, origins in origins_of(added_lines(diff), removed_lines(diff), candidates, values):
            attributed += [(origin, f"+{text}") for origin in origins]
    where = _parameter_places(draft, plan)
    explanation.changes = [
        Located(change, _place(where[change.name]) if change.name in where else None)
        for change in request_changes(payload, shot.payload)
    ]
    places = _file_places(draft, plan)
    explanation.files = [
        Located(change, places.get(change.path or "")) for change in file_changes(payload, shot.payload, shot.request)
    ]
    for item in explanation.changes:  # a parameter set in a spec line came from that line
        if isinstance(item.change, Change) and item.change.name in where:
            attributed.append((where[item.change.name], str(item.change)))
    files = [item.change for item in explanation.files if isinstance(item.change, FileChange)]
    explanation.sources = _sources(shot, before.sources, attributed, files)


def _sources(
    shot: PlannedShot,
    recorded: Mapping[str, str] | None,
    attributed: Sequence[tuple[Origin, str]],
    files: Sequence[FileChange] = (),
) -> list[SourceReport]:
    """Each spec file, fragment and reference file the change came from, and whether to name it.

    A fragment is named when a changed line came from it or its text changed since the render; a
    reference file when its bytes changed or it is newly sent. The spec file holds every shot of
    the file, so its having changed says little: it is named when a changed line or parameter is
    set in it, or when nothing else explains the change.
    """
    statuses = source_statuses(recorded, shot.sources)
    reports = {path: SourceReport(path, status) for path, status in statuses.items()}
    for origin, text in attributed:
        reports.setdefault(origin.path, SourceReport(origin.path, None)).lines.append((origin, text))
    for change in files:
        if change.path is not None and change.status != "removed":
            status = FILE_CHANGED if change.status == "changed" else FILE_ADDED
            reports.setdefault(change.path, SourceReport(change.path, status))
    for report in reports.values():
        if report.path != shot.spec:
            report.is_worth_saying = bool(report.lines) or report.status not in (None, SOURCE_UNCHANGED)
    spec = reports.get(shot.spec)
    if spec is not None:
        others = any(report.is_worth_saying for report in reports.values())
        changed = spec.status not in (None, SOURCE_UNCHANGED)
        spec.is_worth_saying = bool(spec.lines) or (changed and not others)
    return list(reports.values())


def _lock_changes(entry: LockEntry | None, shot: PlannedShot) -> list[Change]:
    """What the lock alone can say changed: the model and the output's length and format."""
    if entry is None:
        return []
    pairs = (
        ("model", entry.model, shot.model),
        ("duration", entry.duration, shot.duration),
        ("resolution", entry.resolution, shot.resolution),
        ("ratio", entry.ratio, shot.ratio),
    )
    return [Change(name, old, new) for name, old, new in pairs if old != new]


def _parameter_places(draft: ShotDraft | None, plan: Plan) -> dict[str, Origin]:
    """Per request parameter (and `model`), the spec line that sets it now (in the shot or in [defaults])."""
    if draft is None:
        return {}
    places = {}
    for name, path in draft.origins.items():
        line = plan.expansion.line_of(draft.spec, path)
        if line is not None:
            places[name] = Origin(draft.spec, line, f"defaults.{name}" if path[:1] == ("defaults",) else name)
    return places


def _place(origin: Origin) -> str:
    table = " [defaults]" if origin.field and origin.field.startswith("defaults.") else ""
    return f"{origin.path}:{origin.line}{table}"


def _file_places(draft: ShotDraft | None, plan: Plan) -> dict[str, str]:
    """Per project path of a file the shot sends, the spec line that names it."""
    if draft is None:
        return {}
    places: dict[str, str] = {}
    for item in draft.media:
        for ref, path in ((item.file, _file_path(item)), (item.voice, (*item.origin, "voice"))):
            if isinstance(ref, LocalFile):
                line = plan.expansion.line_of(draft.spec, path)
                places.setdefault(ref.path, f"{draft.spec}:{line}" if line else draft.spec)
    return places


def _file_path(item: MediaItem) -> ValuePath:
    if item.type is MediaType.FIRST_FRAME:
        return item.origin
    return (*item.origin, "image" if item.type is MediaType.REFERENCE_IMAGE else "video")


class _Reader:
    """The current text of spec files and fragments (read once each), and the candidate texts a shot's prompt came from."""

    def __init__(self, root: Path) -> None:
        self._fragments = FragmentFiles(root)  # the project's files only, as for rendering
        self._texts: dict[str, str | None] = {}
        self._parsed: dict[str, Mapping[str, Any]] = {}

    def text(self, path: str) -> str | None:
        if path not in self._texts:
            try:
                self._texts[path] = self._fragments(path)
            except FragmentRefused:
                self._texts[path] = None
        return self._texts[path]

    def candidates(self, shot: PlannedShot, draft: ShotDraft | None, plan: Plan, name: str) -> list[SourceText]:
        """The shot's own field first (its raw template, at its line), then each fragment it read."""
        found: list[SourceText] = []
        if draft is not None:
            path = draft.origins.get(name, ("shots", draft.index, name))
            field_text = self._field(draft.spec, path, plan)
            if field_text is not None:
                found.append(field_text)
        for source in shot.sources:
            if source != shot.spec and (text := self.text(source)) is not None:
                found.append(SourceText(source, text))
        return found

    def _field(self, spec: str, path: ValuePath, plan: Plan) -> SourceText | None:
        text = self.text(spec)
        if text is None:
            return None
        if spec not in self._parsed:
            try:
                self._parsed[spec] = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                self._parsed[spec] = {}
        value: Any = self._parsed[spec]
        for part in path:
            found = isinstance(part, int) and isinstance(value, list) and part < len(value)
            if not (found or (isinstance(part, str) and isinstance(value, Mapping) and part in value)):
                return None
            value = value[part]
        line = plan.expansion.line_of(spec, path)
        if not isinstance(value, str) or line is None:
            return None
        lines = text.splitlines()
        first = value.split("\n", 1)[0]
        # A multi-line string whose text starts on the next line (`prompt = """` then a line break).
        starts_here = bool(first.strip()) and line <= len(lines) and first.strip() in lines[line - 1]
        label = str(path[-1]).replace("_", " ")
        return SourceText(spec, value, line if starts_here else line + 1, label)


# -- output --------------------------------------------------------------------------------------


def write_text(explanations: Sequence[Explanation], out: TextIO) -> None:
    """Every explanation, then (for several) which source each changed line came from, with its shots."""
    for index, explanation in enumerate(explanations):
        if index:
            print(file=out)
        print("\n".join(explanation.text()), file=out)
    by_source = shots_by_source(explanations)
    if len(explanations) > 1 and by_source:
        print("\nchanges came from:", file=out)
        for path, shot_ids in by_source.items():
            print(f"  {path}: {', '.join(shot_ids)}", file=out)


def shots_by_source(explanations: Sequence[Explanation]) -> dict[str, list[str]]:
    """Per source a changed line came from (or that changed since the render), the shots it touched."""
    found: dict[str, list[str]] = {}
    for explanation in explanations:
        for source in explanation.sources:
            if source.is_worth_saying:
                found.setdefault(source.path, []).append(explanation.shot)
    return dict(sorted(found.items()))


def document(explanations: Sequence[Explanation]) -> dict[str, Any]:
    return {"shots": [item.as_json() for item in explanations], "sources": shots_by_source(explanations)}


def _change_json(item: Located) -> dict[str, Any]:
    change = item.change
    assert isinstance(change, Change)
    return {"name": change.name, "old": change.old, "new": change.new, "where": item.where}


def _file_json(item: Located) -> dict[str, Any]:
    change = item.change
    assert isinstance(change, FileChange)
    return {
        "role": change.role,
        "path": change.path,
        "status": change.status,
        "old_sha256": change.old_sha256,
        "new_sha256": change.new_sha256,
        "where": item.where,
    }


def attach(plan_document: dict[str, Any], explanations: Sequence[Explanation]) -> None:
    """`plan --why --json`: each explained shot's entry gets its explanation under `why`."""
    by_id = {explanation.shot: explanation for explanation in explanations}
    for entry in plan_document["shots"]:
        explanation = by_id.get(entry["id"])
        if explanation is not None:
            entry["why"] = explanation.as_json()


def run(
    project: ProjectPlan,
    patterns: Sequence[str],
    root: Path,
    out: TextIO,
    err: TextIO,
    *,
    as_json: bool,
    remote: bool,
) -> int:
    """`renderspec explain [SHOT...]`: 0 explained, 2 invalid specs (an unknown id raises a SettingsError)."""
    from renderspec import reporting
    from renderspec.core.selection import select_shots

    plan = project.plan
    if not reporting.is_usable(plan, len(project.spec_files), err):
        return 2
    shots = select_shots(plan.shots, patterns) if patterns else [shot for shot in plan.shots if shot.state.renders]
    explanations = explain(project, shots, root, remote_configured=remote)
    if as_json:
        reporting.write_json(document(explanations), out)
    elif explanations:
        write_text(explanations, out)
    else:
        count = len(plan.shots)
        print(
            f"nothing would render: all {count} shot{'s' if count != 1 else ''} are cached or on the remote", file=out
        )
    return 0
