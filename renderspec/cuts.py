"""`renderspec cut`, the cuts `build` makes after the shots, and the stale cuts `plan` names.

Glue only: the cuts are read from the spec files and checked against the plan (renderspec.core.cuts),
each entry is resolved to its render in the cache or to a slate, the encoder (renderspec.cutting)
writes the video, and the interchange module the .otio and .edl, all into `renders/cuts/`.

A cut is incremental: its key hashes what its video shows (each render's key and sha256, trims,
size, and each slate's text), and `renders/cuts/.cuts.json` remembers, per cut, the key its video
was made from and the file as it was written (size, mtime, inode). An unchanged cut whose video
is still that file is not encoded again; its .otio and .edl are rebuilt (they also carry spec
locations and task ids, which are not in the key) and written only when their bytes change.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from renderspec.core.cuts import Cut, CutShot, cut_key, cut_problems, parse_cuts, shots_by_name
from renderspec.core.locations import Locator
from renderspec.core.model import PlannedShot, State
from renderspec.core.problems import Problem
from renderspec.errors import InvalidOutput, StorageError
from renderspec.fsutil import TEMP_SUFFIX, remove_debris, write_atomic
from renderspec.loading import read_sources
from renderspec.project import ProjectPlan
from renderspec.settings import Settings

if TYPE_CHECKING:  # the encoder pulls in PyAV, Pillow and numpy: imported only when a cut is made
    from renderspec.cutting import CutVideo

CUTS_FOLDER = "cuts"
MEMO_NAME = ".cuts.json"
MEMO_VERSION = 1
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def is_cut_problem(problem: Problem) -> bool:
    """A problem about the `cuts` table: reported by the cut commands themselves (from their own reading)."""
    return problem.field is not None and (problem.field == "cuts" or problem.field.startswith("cuts."))


def declared_cuts(settings: Settings, spec_files: Sequence[str]) -> tuple[list[Cut], list[Problem]]:
    """Every cut of the project's spec files (as the plan read them), and the problems of their tables.

    A file that does not mention `cuts` is not parsed again; one that does not parse is the
    plan's problem, reported there.
    """
    sources, _ = read_sources([settings.root / path for path in spec_files], settings.root)
    cuts: list[Cut] = []
    problems: list[Problem] = []
    for source in sources:
        if "cuts" not in source.text:
            continue
        try:
            document = tomllib.loads(source.text)
        except tomllib.TOMLDecodeError:
            continue
        found, wrong = parse_cuts(document, source.path, Locator(source.text))
        cuts += found
        problems += wrong
    return cuts, problems


def cuts_folder(settings: Settings) -> Path:
    return settings.root / settings.project.renders.rstrip("/") / CUTS_FOLDER


def run_cut(
    settings: Settings, names: Sequence[str], cwd: Path, out: TextIO, err: TextIO, *, force: bool = False
) -> int:
    """`renderspec cut [NAME...]`: plans the project, then makes the named cuts (default: every cut)."""
    from renderspec import reporting
    from renderspec.project import plan_project
    from renderspec.workspace import workspace_lock

    with workspace_lock(settings.cache_dir, wait=True, notice=err):
        project = plan_project(settings, [], cwd)
        others = [problem for problem in project.plan.problems if not is_cut_problem(problem)]
        errors = [problem for problem in others if problem.is_error]
        if errors:
            reporting.print_problems(others, err)
            count = len(errors)
            print(
                f"renderspec: error: the specs have {count} error{'s' if count != 1 else ''} "
                "(`renderspec check` lists them); no cut was made",
                file=err,
            )
            return EXIT_INVALID
        seen = len(project.store.warnings)
        code = make_cuts(settings, project, names, out, err, force=force, announce_none=True)
        for warning in dict.fromkeys(project.store.warnings[seen:]):  # a damaged entry: that shot was a slate
            print(f"renderspec: warning: {warning}", file=err)
        return code


def make_cuts(
    settings: Settings,
    project: ProjectPlan,
    names: Sequence[str],
    out: TextIO,
    err: TextIO,
    *,
    force: bool = False,
    announce_none: bool = False,
) -> int:
    """Makes the named cuts (default: all) of a planned project: exit 0, 1 when a cut failed, 2 for spec problems.

    Call it holding the workspace lock, after the shots are built (`build` does): renders are taken
    from the cache, shots without one become slates.
    """
    from renderspec import reporting

    cuts, problems = declared_cuts(settings, project.spec_files)
    problems += cut_problems(cuts, project.plan.shots)
    if problems:
        reporting.print_problems(problems, err)
        if any(problem.is_error for problem in problems):
            print("renderspec: error: the cuts above have problems; no cut was made", file=err)
            return EXIT_INVALID
    known = {cut.name: cut for cut in cuts}
    for name in names:
        if name not in known:
            guess = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            listed = ", ".join(known) if known else "none (declare one as [cuts.NAME] in a spec file)"
            print(f"renderspec: error: no cut is named {name!r}; {hint}the project's cuts: {listed}", file=err)
            return EXIT_INVALID
    chosen = [known[name] for name in dict.fromkeys(names)] if names else list(known.values())
    if not chosen:
        if announce_none:
            print('no cuts declared: add one to a spec file, e.g. [cuts.master] shots = ["s01", "s02"]', file=out)
        return EXIT_OK
    folder = cuts_folder(settings)
    remove_debris(folder, f".*{TEMP_SUFFIX}")  # under the workspace lock: only a killed run's leftovers
    memo = CutMemo(folder)
    failed = 0
    resolver = _Renders(project)
    for cut in chosen:
        try:
            print(_make(cut, resolver, folder, memo, settings, force=force), file=out, flush=True)
        except (InvalidOutput, OSError, ValueError) as error:  # a damaged render, a full disk
            failed += 1
            print(f"renderspec: error: cut {cut.name}: {_reason(error)}; it was not written", file=err)
        with contextlib.suppress(StorageError):  # the memo only saves work
            memo.save()
    return EXIT_FAILED if failed else EXIT_OK


# -- resolving entries to renders -----------------------------------------------------------------


class _Renders:
    """Each planned shot's render in the local cache, if it has one (a waiting shot is keyed again first)."""

    def __init__(self, project: ProjectPlan) -> None:
        self.project = project
        self.named = shots_by_name(project.plan.shots)
        self._resolved: dict[str, PlannedShot] = {}

    def shots(self, cut: Cut) -> list[tuple[CutShot, Path | None]]:
        found: list[tuple[CutShot, Path | None]] = []
        for entry in cut.entries:
            shot = self.current(self.named[entry.shot])
            cached = self.project.store.get(shot.key)
            video = cached.video if cached is not None else None
            found.append((CutShot(entry, shot, cached.sha256 if cached is not None else None), video))
        return found

    def current(self, shot: PlannedShot) -> PlannedShot:
        """The shot with its final key: a shot that waited on another's render is planned again now that it may exist."""
        if not shot.waiting_on:
            return shot
        if shot.id not in self._resolved:
            for upstream in shot.upstream:  # a chain resolves in order, so later links see earlier keys
                if upstream in self.named and upstream != shot.id:
                    self.current(self.named[upstream])
            resolved = self.project.plan.resolve(shot.id)
            self._resolved[shot.id] = resolved if resolved is not None and not resolved.waiting_on else shot
        return self._resolved[shot.id]

    def task_id(self, shot: PlannedShot) -> str | None:
        entry = self.project.manifest.entries.get(shot.id)
        return entry.task_id if entry is not None and entry.key == shot.key else None

    def location(self, shot: PlannedShot) -> str:
        line = self.project.plan.line_of(shot)
        return f"{shot.spec}:{line}" if line else shot.spec


# -- making one cut -------------------------------------------------------------------------------


def _make(cut: Cut, renders: _Renders, folder: Path, memo: CutMemo, settings: Settings, *, force: bool) -> str:
    started = time.monotonic()
    entries = renders.shots(cut)
    shots = [shot for shot, _ in entries]
    key = cut_key(cut, shots)
    video_path = folder / f"{cut.name}.mp4"
    shown = _relative(video_path, settings.root)
    record = memo.current(cut.name, key, video_path)
    made: CutVideo | None = None
    if record is None or force:
        import av  # the encoder's libraries load only when a cut is encoded

        from renderspec.cutting import Piece, write_cut

        pieces = [
            Piece(
                label=shot.entry.shot,
                video=video,
                start=shot.entry.start or 0.0,
                end=shot.entry.end,
                prompt=shot.prompt,
                duration=float(shot.shot.duration),
                size=shot.shot.expected_size,
            )
            for shot, video in entries
        ]
        try:
            made = write_cut(pieces, video_path, size=cut.size, check=_verify)
        except av.FFmpegError as error:  # a render the cache verified should decode: say which file did not
            where = f" ({_relative(Path(error.filename), settings.root)})" if error.filename else ""
            raise InvalidOutput(f"a render could not be read{where}: {error.strerror or error}") from error
        record = memo.note(cut.name, key, video_path, made, shots)
    written = _write_interchange(cut, key, record, entries, renders, folder, settings)
    slates = [shot.entry.shot for shot in shots if shot.is_slate]
    slate_note = f"; not rendered yet, shown as slates: {', '.join(dict.fromkeys(slates))}" if slates else ""
    if made is None:
        also = f" ({' and '.join(written)} updated)" if written else ""
        return f"cut {cut.name}: unchanged, {shown} not encoded again{also}{slate_note}"
    how = "video copied without re-encoding" if made.copied else f"re-encoded: {made.why_encoded}"
    seconds = made.seconds
    return (
        f"cut {cut.name}: wrote {shown} and its .otio and .edl: {len(shots)} shot{'s' if len(shots) != 1 else ''}, "
        f"{int(seconds // 60)}:{seconds % 60:04.1f}, {made.size[0]}x{made.size[1]} ({how}) "
        f"in {time.monotonic() - started:.1f} s{slate_note}"
    )


def _verify(path: Path, made: CutVideo) -> None:
    """The cut plays to its end at its size and length, as a downloaded render must (the same check)."""
    from renderspec.media import verify_render

    verify_render(path, size=made.size, seconds=made.seconds, seconds_tolerance=max(0.1, 2 / float(made.fps)))


def _write_interchange(
    cut: Cut,
    key: str,
    record: MemoRecord,
    entries: Sequence[tuple[CutShot, Path | None]],
    renders: _Renders,
    folder: Path,
    settings: Settings,
) -> list[str]:
    """Writes NAME.otio and NAME.edl when their text changed; returns the names of those written."""
    from renderspec.interchange import ClipInfo, cut_timeline, edl_text, otio_text

    fps = record.fps
    clips: list[ClipInfo] = []
    renders_dir = settings.root / settings.project.renders.rstrip("/")
    for (shot, _), span in zip(entries, record.spans, strict=True):
        render = renders_dir / f"{shot.entry.shot}.mp4"
        metadata: dict[str, Any] = {
            "shot": shot.shot.id,
            "key": shot.shot.key,
            "video_sha256": shot.video_sha256,
            "prompt": shot.prompt,
            "spec": renders.location(shot.shot),
            "task_id": renders.task_id(shot.shot) if not shot.is_slate else None,
            "duration": shot.shot.duration,
            "slate": shot.is_slate,
            **shot.entry.trims,
        }
        clips.append(
            ClipInfo(
                name=shot.entry.shot,
                target=None if shot.is_slate else Path(os.path.relpath(render, folder)).as_posix(),
                source_start=round(span.source_start * fps),
                frames=span.frames,
                available=round(span.source_seconds * fps) if span.source_seconds else None,
                metadata=metadata,
            )
        )
    timeline = cut_timeline(
        cut.name,
        clips,
        float(fps),
        {
            "cut": cut.name,
            "key": key,
            "spec": cut.where,
            "video": f"{cut.name}.mp4",
            "size": f"{record.size[0]}x{record.size[1]}",
            "fps": float(fps),
        },
    )
    written = []
    for suffix, text in (("otio", otio_text(timeline)), ("edl", edl_text(timeline, float(fps)))):
        path = folder / f"{cut.name}.{suffix}"
        data = text.encode("utf-8")
        with contextlib.suppress(OSError):
            if path.read_bytes() == data:
                continue
        write_atomic(path, data)
        written.append(path.name)
    return written


# -- the memo of made cuts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoSpan:
    frames: int
    source_start: float
    source_seconds: float | None


@dataclass(frozen=True, slots=True)
class MemoRecord:
    """What `renders/cuts/.cuts.json` remembers of one made cut."""

    key: str
    file: tuple[int, int, int]  # size, mtime_ns, inode of NAME.mp4 as written
    fps: Fraction
    size: tuple[int, int]
    spans: tuple[MemoSpan, ...]
    shows: tuple[tuple[str, str | None], ...]
    """Per entry, the shot id and the sha256 of the render it showed (None: a slate): what `plan` compares."""

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "file": list(self.file),
            "fps": [self.fps.numerator, self.fps.denominator],
            "size": list(self.size),
            "spans": [[s.frames, s.source_start, s.source_seconds] for s in self.spans],
            "shows": [list(item) for item in self.shows],
        }

    @staticmethod
    def from_json(value: Any) -> MemoRecord:
        """Raises on anything malformed (the caller then forgets the record)."""
        return MemoRecord(
            key=str(value["key"]),
            file=(int(value["file"][0]), int(value["file"][1]), int(value["file"][2])),
            fps=Fraction(int(value["fps"][0]), int(value["fps"][1])),
            size=(int(value["size"][0]), int(value["size"][1])),
            spans=tuple(
                MemoSpan(int(f), float(s), None if length is None else float(length)) for f, s, length in value["spans"]
            ),
            shows=tuple((str(shot), None if sha is None else str(sha)) for shot, sha in value["shows"]),
        )


class CutMemo:
    """renders/cuts/.cuts.json: per cut, the key its video was made from and that file's stat. Damage is a miss."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MEMO_NAME
        self.records: dict[str, MemoRecord] = {}
        self._dirty = False
        with contextlib.suppress(OSError, ValueError, RecursionError):
            data = json.loads(self.path.read_bytes())
            if isinstance(data, dict) and data.get("version") == MEMO_VERSION and isinstance(data.get("cuts"), dict):
                for name, value in data["cuts"].items():
                    with contextlib.suppress(KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
                        self.records[str(name)] = MemoRecord.from_json(value)

    def current(self, name: str, key: str, video: Path) -> MemoRecord | None:
        """The record when the cut's video is the one made from `key` and nobody changed it since."""
        record = self.records.get(name)
        if record is None or record.key != key:
            return None
        try:
            stat = video.stat()
        except OSError:
            return None
        return record if (stat.st_size, stat.st_mtime_ns, stat.st_ino) == record.file else None

    def note(self, name: str, key: str, video: Path, made: CutVideo, shots: Sequence[CutShot]) -> MemoRecord:
        stat = video.stat()
        record = MemoRecord(
            key=key,
            file=(stat.st_size, stat.st_mtime_ns, stat.st_ino),
            fps=made.fps,
            size=made.size,
            spans=tuple(MemoSpan(s.frames, s.source_start, s.source_seconds) for s in made.spans),
            shows=tuple((shot.entry.shot, shot.video_sha256) for shot in shots),
        )
        self.records[name] = record
        self._dirty = True
        return record

    def save(self) -> None:
        if not self._dirty:
            return
        document = {
            "version": MEMO_VERSION,
            "cuts": {name: record.as_json() for name, record in sorted(self.records.items())},
        }
        write_atomic(self.path, (json.dumps(document, separators=(",", ":")) + "\n").encode())
        self._dirty = False


# -- what `plan` says -----------------------------------------------------------------------------


def stale_cut_lines(settings: Settings, project: ProjectPlan) -> list[str]:
    """One line per cut that the next `build` (or `renderspec cut`) would make again, and why.

    A cut is stale when a shot it shows will render (its pixels are not known yet), when a shot
    shows another render or a slate than it did, when its size or trims changed, or when its
    video is missing or was changed by hand. Only stat calls and the cache's small records.
    """
    if not project.whole_project or any(not is_cut_problem(problem) for problem in project.plan.errors):
        return []
    cuts, problems = declared_cuts(settings, project.spec_files)
    if not cuts or problems or cut_problems(cuts, project.plan.shots):
        return []  # `check` reports them
    named = shots_by_name(project.plan.shots)
    memo = CutMemo(cuts_folder(settings))
    lines: list[str] = []
    for cut in cuts:
        video = cuts_folder(settings) / f"{cut.name}.mp4"
        reasons = _stale_reasons(cut, named, project, memo, video, _relative(video, settings.root))
        if reasons:
            lines.append(f"cut {cut.name}: would be made again ({'; '.join(reasons)})")
    return lines


def _stale_reasons(
    cut: Cut, named: Mapping[str, PlannedShot], project: ProjectPlan, memo: CutMemo, video: Path, shown: str
) -> list[str]:
    rendering: list[str] = []
    shots: list[CutShot] = []
    for entry in cut.entries:
        shot = named[entry.shot]
        sha = _known_sha256(shot, project)
        if shot.state.renders or (sha is None and shot.state is not State.CACHED):
            rendering.append(entry.shot)
        shots.append(CutShot(entry, shot, sha))
    record = memo.records.get(cut.name)
    if record is None:
        return ["new cut"]
    reasons = [f"{', '.join(dict.fromkeys(rendering))} will render"] if rendering else []
    if rendering:
        return reasons
    if memo.current(cut.name, cut_key(cut, shots), video) is not None:
        return []
    before = dict(record.shows)
    changed = [
        shot.entry.shot for shot in shots if shot.entry.shot in before and before[shot.entry.shot] != shot.video_sha256
    ]
    if changed:
        reasons.append(f"{', '.join(dict.fromkeys(changed))} changed")
    elif record.key == cut_key(cut, shots):
        reasons.append(f"{shown} is missing or was changed")
    else:
        reasons.append("its shots, trims or size changed")
    return reasons


def _known_sha256(shot: PlannedShot, project: ProjectPlan) -> str | None:
    """The sha256 of the render a cached shot has, from the lock (no file read) or the cache's record."""
    entry = project.manifest.entries.get(shot.id)
    if entry is not None and entry.key == shot.key:
        return entry.video_sha256
    if shot.state in (State.CACHED, State.REMOTE):
        cached = project.store.get(shot.key)
        return cached.sha256 if cached is not None else None
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text if len(text) < 200 else text[:197] + "..."
