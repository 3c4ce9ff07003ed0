"""Cuts: named sequences of shots declared in spec files (`[cuts.NAME]`), checked against the plan and keyed.

A cut is what a storyboard is for, the shots in order as one film. This module reads the raw
`cuts` table of a parsed spec file into plain values with located problems, checks each entry
against the planned shots (unknown id, trims past the shot's end), and computes the cut's key: the
hash of what its video would show, so an unchanged cut is never encoded again. Pure: the encoder
(`renderspec.cutting`) and the command (`renderspec.cuts`) live at the edges.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from renderspec.core.keys import key_of
from renderspec.core.locations import Locator, Path
from renderspec.core.model import PlannedShot
from renderspec.core.problems import Problem, toml_type

CUT_VERSION = 1
"""Part of every cut key: bump it when the encoder's output for the same inputs changes (codec
settings, the slate's look, the letterbox), so every cut is made again once."""

CUT_FIELDS = ("shots", "size")
ENTRY_FIELDS = ("shot", "in", "out")
MIN_SIDE, MAX_SIDE = 16, 4096
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SIZE = re.compile(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*")
_EXAMPLE = '[cuts.master] shots = ["s01", { shot = "s02", in = 0.5, out = 4.0 }]'


@dataclass(frozen=True, slots=True)
class CutEntry:
    """One place in a cut: a shot id, and optionally where to start (`in`) and stop (`out`) in its render, in seconds."""

    shot: str
    start: float | None = None
    end: float | None = None
    position: int = 0
    line: int | None = None

    @property
    def trims(self) -> dict[str, float]:
        """The trims as written (`in`/`out`), for keys and metadata."""
        found: dict[str, float] = {}
        if self.start is not None:
            found["in"] = self.start
        if self.end is not None:
            found["out"] = self.end
        return found


@dataclass(frozen=True, slots=True)
class Cut:
    """A `[cuts.NAME]` table: its entries in order, the picture size asked for (None: the first shot's), and where it is."""

    name: str
    entries: tuple[CutEntry, ...]
    size: tuple[int, int] | None
    spec: str
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.spec}:{self.line}" if self.line else self.spec

    def field(self, position: int | None = None, name: str | None = None) -> str:
        """How a problem names a part of this cut: `cuts.master.shots[2].in`."""
        text = f"cuts.{self.name}"
        if position is not None:
            text += f".shots[{position}]"
        return f"{text}.{name}" if name else text


def parse_cuts(data: Mapping[str, Any], spec_path: str, locator: Locator) -> tuple[list[Cut], list[Problem]]:
    """The valid cuts of one parsed spec file (its whole TOML document), and a located problem for everything wrong.

    Exists so expansion can accept a top-level `cuts` table: it hands over the document it
    parsed, and gets back plain values. A cut with any problem is left out (its problems say why).
    """
    raw = data.get("cuts")
    if raw is None:
        return [], []
    reader = _CutReader(spec_path, locator)
    if not isinstance(raw, dict):
        reader.problem(("cuts",), "cuts", f"must be a table of named cuts, e.g. {_EXAMPLE}")
        return [], reader.problems
    cuts = [cut for name, table in raw.items() if (cut := reader.cut(str(name), table)) is not None]
    return cuts, reader.problems


class _CutReader:
    def __init__(self, spec_path: str, locator: Locator) -> None:
        self.spec = spec_path
        self.locator = locator
        self.problems: list[Problem] = []

    def problem(self, path: Path, field: str, message: str, line: int | None = None) -> None:
        where = line if line is not None else self.locator.line_of(path)
        self.problems.append(Problem(file=self.spec, line=where, field=field, message=message))

    def cut(self, name: str, table: Any) -> Cut | None:
        path: Path = ("cuts", name)
        where = f"cuts.{name}"
        before = len(self.problems)
        if not _NAME.fullmatch(name):
            self.problem(
                path,
                where,
                f"{name!r} cannot name a cut: it names renders/cuts/NAME.mp4; use letters, digits, . _ - "
                "(starting with a letter or digit)",
            )
        if not isinstance(table, dict):
            self.problem(path, where, f"must be a table with `shots`, e.g. {_EXAMPLE}")
            return None
        for key in table:
            if key not in CUT_FIELDS:
                self.problem((*path, key), f"{where}.{key}", _unknown(str(key), CUT_FIELDS))
        size = self.size(table.get("size"), (*path, "size"), f"{where}.size")
        shots = table.get("shots")
        entries: list[CutEntry] = []
        if shots is None:
            self.problem(path, f"{where}.shots", f"is required: the shots in order, e.g. {_EXAMPLE}")
        elif not isinstance(shots, list):
            self.problem((*path, "shots"), f"{where}.shots", f"must be an array of shot ids, e.g. {_EXAMPLE}")
        elif not shots:
            self.problem((*path, "shots"), f"{where}.shots", "is empty: a cut needs at least one shot")
        else:
            for position, item in enumerate(shots):
                entry = self.entry(item, (*path, "shots", position), f"{where}.shots[{position}]", position)
                if entry is not None:
                    entries.append(entry)
        if len(self.problems) > before:
            return None
        return Cut(name=name, entries=tuple(entries), size=size, spec=self.spec, line=self.locator.line_of(path))

    def size(self, value: Any, path: Path, field: str) -> tuple[int, int] | None:
        if value is None:
            return None
        match = _SIZE.fullmatch(value) if isinstance(value, str) else None
        if match is not None:
            width, height = int(match.group(1)), int(match.group(2))
            if all(MIN_SIDE <= side <= MAX_SIDE and side % 2 == 0 for side in (width, height)):
                return width, height
        shown = repr(value) if isinstance(value, str) else toml_type(value)
        self.problem(
            path,
            field,
            f'{shown} is not a picture size; write "WIDTHxHEIGHT" in pixels, each even and {MIN_SIDE}–{MAX_SIDE} '
            '(H.264 with 4:2:0 colour), e.g. "1280x720"',
        )
        return None

    def entry(self, item: Any, path: Path, field: str, position: int) -> CutEntry | None:
        line = self.locator.item_line(path[:-1], position)
        if isinstance(item, str):
            if not item:
                self.problem(path, field, "is an empty shot id", line)
                return None
            return CutEntry(shot=item, position=position, line=line)
        if not isinstance(item, dict):
            self.problem(
                path,
                field,
                f'must be a shot id or {{ shot = "ID", in = SECONDS, out = SECONDS }}, got {toml_type(item)}',
                line,
            )
            return None
        before = len(self.problems)
        for key in item:
            if key not in ENTRY_FIELDS:
                self.problem((*path, key), f"{field}.{key}", _unknown(str(key), ENTRY_FIELDS), line)
        shot = item.get("shot")
        if not isinstance(shot, str) or not shot:
            got = "nothing" if shot is None else toml_type(shot)
            self.problem(path, f"{field}.shot", f"must be the id of a shot, got {got}", line)
        start = self.seconds(item.get("in"), (*path, "in"), f"{field}.in", line)
        end = self.seconds(item.get("out"), (*path, "out"), f"{field}.out", line)
        if end is not None and end <= (start or 0.0):
            was = f"in = {_seconds(start)} s" if start is not None else "the shot's start (no `in`)"
            self.problem(
                (*path, "out"),
                f"{field}.out",
                f"out = {_seconds(end)} s is not after {was}; `out` is where the shot stops, in seconds from its start",
                line,
            )
        if len(self.problems) > before or not isinstance(shot, str):
            return None
        return CutEntry(shot=shot, start=start, end=end, position=position, line=line)

    def seconds(self, value: Any, path: Path, field: str, line: int | None) -> float | None:
        if value is None:
            return None
        name = str(path[-1])
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, field, f"must be a number of seconds, got {toml_type(value)}", line)
            return None
        if not math.isfinite(value):
            self.problem(path, field, f"must be a finite number of seconds, got {value}", line)
            return None
        if value < 0:
            self.problem(
                path, field, f"{name} = {_seconds(value)} s is negative; times count from the shot's start (0)", line
            )
            return None
        return float(value)


def shots_by_name(shots: Iterable[PlannedShot]) -> dict[str, PlannedShot]:
    """How a cut names planned shots: by id, and a shot with takes by its own id (meaning its pick)."""
    named: dict[str, PlannedShot] = {}
    for shot in shots:
        named[shot.id] = shot
        if shot.take_of is not None and shot.picked:
            named.setdefault(shot.take_of, shot)
    return named


def cut_problems(cuts: Sequence[Cut], shots: Sequence[PlannedShot], elsewhere: Collection[str] = ()) -> list[Problem]:
    """Entries that name no planned shot, or trim past a shot's end; and a cut name used twice.

    Exists because a cut is only checkable once the shots are planned: call it with every planned
    shot of the project (a cut may name a shot of any spec file). When only some files were
    planned (`check FILE`), `elsewhere` holds the ids of the others' shots: an entry naming one of
    them is taken as it is (its length is not known here).
    """
    named = shots_by_name(shots)
    problems: list[Problem] = []
    first: dict[str, Cut] = {}
    for cut in cuts:
        if cut.name in first:
            problems.append(
                Problem(
                    file=cut.spec,
                    line=cut.line,
                    field=cut.field(),
                    message=f"the cut {cut.name!r} is declared twice (first at {first[cut.name].where}); rename one",
                )
            )
        first.setdefault(cut.name, cut)
        for entry in cut.entries:
            if entry.shot not in named and entry.shot in elsewhere:
                continue
            problem = _entry_problem(cut, entry, named)
            if problem is not None:
                problems.append(problem)
    return problems


def _entry_problem(cut: Cut, entry: CutEntry, named: Mapping[str, PlannedShot]) -> Problem | None:
    def located(name: str | None, message: str) -> Problem:
        return Problem(file=cut.spec, line=entry.line, field=cut.field(entry.position, name), message=message)

    shot = named.get(entry.shot)
    if shot is None:
        guess = difflib.get_close_matches(entry.shot, list(named), n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else "; `renderspec plan` lists the shot ids"
        return located(None, f"no shot has the id {entry.shot!r}{hint}")
    length = float(shot.duration)
    if entry.start is not None and entry.start >= length:
        return located(
            "in", f"in = {_seconds(entry.start)} s is at or past the end of shot {shot.id} ({_seconds(length)} s long)"
        )
    if entry.end is not None and entry.end > length:
        return located(
            "out",
            f"out = {_seconds(entry.end)} s is past the end of shot {shot.id} ({_seconds(length)} s long); "
            "leave `out` out to play it to its end",
        )
    return None


@dataclass(frozen=True, slots=True)
class CutShot:
    """One entry of a cut with the shot it shows, and that shot's render when there is one.

    `video_sha256` None means not rendered yet: the cut shows a slate (id, prompt, duration).
    """

    entry: CutEntry
    shot: PlannedShot
    video_sha256: str | None

    @property
    def is_slate(self) -> bool:
        return self.video_sha256 is None

    @property
    def prompt(self) -> str:
        body = self.shot.request.get("input", {})
        prompt = body.get("prompt") if isinstance(body, dict) else None
        return prompt if isinstance(prompt, str) else ""

    @property
    def planned_seconds(self) -> float:
        """How long the entry plays by the plan: the shot's duration, trimmed."""
        end = self.entry.end if self.entry.end is not None else float(self.shot.duration)
        return max(0.0, end - (self.entry.start or 0.0))


def cut_payload(cut: Cut, shots: Sequence[CutShot]) -> dict[str, Any]:
    """What a cut's key hashes: the format version, the size asked for, and per entry what it shows.

    A rendered entry is its shot's key and its video's sha256 (the pixels), with its trims; a slate
    is its id, prompt and duration, since those are what it shows. Shot ids of rendered entries,
    spec locations and task ids are left out: they change the interchange files (always rewritten
    when they differ), not the video.
    """
    entries: list[dict[str, Any]] = []
    for item in shots:
        shown: dict[str, Any]
        if item.video_sha256 is None:
            shown = {"slate": {"id": item.entry.shot, "prompt": item.prompt, "duration": item.shot.duration}}
        else:
            shown = {"key": item.shot.key, "video": item.video_sha256}
        entries.append({**shown, **item.entry.trims})
    return {"cut_version": CUT_VERSION, "size": list(cut.size) if cut.size else None, "entries": entries}


def cut_key(cut: Cut, shots: Sequence[CutShot]) -> str:
    return key_of(cut_payload(cut, shots))


def frame_spans(lengths: Sequence[float], fps: float) -> list[tuple[int, int]]:
    """Each entry's first frame and frame count in a cut at `fps`, from its length in seconds.

    Boundaries are rounded from the running total, not per entry, so rounding never accumulates:
    the cut is as long as the sum of its entries within one frame. Every entry keeps at least one frame.
    """
    spans: list[tuple[int, int]] = []
    elapsed = 0.0
    start = 0
    for length in lengths:
        elapsed += max(0.0, length)
        end = max(start + 1, round(elapsed * fps))
        spans.append((start, end - start))
        start = end
    return spans


def _unknown(key: str, allowed: Sequence[str]) -> str:
    guess = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{guess[0]}'? " if guess else ""
    return f"unknown field '{key}'; {hint}allowed: {', '.join(allowed)}"


def _seconds(value: float | None) -> str:
    """4 for 4.0, 0.5 for 0.5: a time as it would be written."""
    return "" if value is None else f"{value:g}"
