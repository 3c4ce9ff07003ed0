"""Spec text to shot drafts: parse TOML, check its shape, expand matrices and takes, render templates.

Every problem found is collected with its file, line, shot and field; a broken part of a file
never hides the problems of the other parts. A spec file may import the references, variables
and defaults of other spec files (`uses = ["cast.toml"]`): those are read through a `SpecSource`
the caller hands in, each file parsed once however many files use it, and every name keeps the
file and line it was defined at, so a problem with it is reported there, once.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import math
import posixpath
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from renderspec.core.cuts import Cut, parse_cuts
from renderspec.core.limits import DEFAULT_LIMITS, Limits, Meter
from renderspec.core.locations import Locator, Path
from renderspec.core.model import (
    FileRef,
    LocalFile,
    MediaItem,
    Reference,
    RemoteFile,
    RenderOf,
    ShotDraft,
    SourceFile,
)
from renderspec.core.problems import Problem, Severity, shown, toml_type
from renderspec.core.rules import MediaType
from renderspec.core.spec import (
    MEDIA_TAG,
    PARAMETER_FIELDS,
    RENDER_TAG,
    SHOT_FIELDS,
    TABLE_FIELDS,
    TEXT_TAG,
    TOP_LEVEL_FIELDS,
    MediaSpec,
    Parameters,
    RefSpec,
    RenderSpec,
    ShotSpec,
)
from renderspec.core.templating import (
    Citation,
    FragmentSource,
    NotInMedia,
    TemplateFailure,
    Templates,
    is_template,
)

DEFAULT_MODEL = "wan2.7-r2v"
# renderspec's defaults: explicit, cheap and reproducible (see README, "Decisions").
DEFAULT_PARAMETERS: Mapping[str, Any] = {
    "resolution": "720P",
    "ratio": "16:9",
    "duration": 5,
    "prompt_extend": False,
    "watermark": False,
}
MAX_TAKES = 10
"""Renders one shot may ask for with `takes`: each take is paid for."""
MAX_USES_DEPTH = 16
"""Files one chain of `uses` may pass through (a uses b uses c...): deeper is surely a mistake."""
SEED_MODULUS = 2**31
_INT_PARAMETERS = ("duration", "seed", "takes", "pick")
_BOOL_PARAMETERS = ("prompt_extend", "watermark")
_STR_PARAMETERS = ("resolution", "ratio")
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_M = TypeVar("_M", bound=BaseModel)
_TOML_LINE = re.compile(r"\((?:at line (\d+), column (\d+)|at end of document)\)")
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_FRAMES = ("first", "last")
_NAMESPACES = {"refs": "reference", "vars": "variable", "defaults": "default"}
_USES_PLACE = "to use other spec files, write uses = [...] at the top of the file, before any [table]"

SpecSource = Callable[[str], str | None]
"""Returns the text of a project-relative spec file named in `uses`, or None when there is no such
file; raises SpecRefused when the file may not be used (outside the project, not UTF-8)."""


class SpecRefused(Exception):
    """A spec file named in `uses` exists but may not be used; the message says why."""


def _toml_hint(reason: str, line: str, column: int | None) -> str | None:
    """What usually causes a TOML syntax error, said for the line at hand (None when nothing fits)."""
    lowered = reason.lower()
    if "illegal character '\\n'" in lowered or "unterminated string" in lowered:
        return 'a string is not closed: end it with " on the same line, or use """ for text over several lines'
    if "invalid value" in lowered and column:
        word = _BARE_WORD.match(line[column - 1 :])
        if word and word.group(0) not in ("true", "false", "inf", "nan"):
            return f'text needs quotes: write "{word.group(0)}" (references are named as strings too)'
    if "expected '=' after a key" in lowered:
        return 'each setting is `key = value`: a key needs "=" and a value on the same line'
    if "cannot declare" in lowered or "cannot overwrite" in lowered:
        return "this key or table is written twice in this file; keep one"
    return None


@dataclass(slots=True)
class Expansion:
    """The drafts of every valid shot, the problems found, and where to look up lines.

    `stopped` is set when a limit of the whole expansion was reached (the problems say where):
    the shots after that point were not expanded. `references` holds every reference once, with
    the file that defines it: a file read only through `uses` included.
    """

    drafts: list[ShotDraft] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    references: list[tuple[str, Reference]] = field(default_factory=list)
    locators: dict[str, Locator] = field(default_factory=dict)
    stopped: bool = False
    cuts: list[Cut] = field(default_factory=list)

    def line_of(self, spec: str, path: Sequence[str | int]) -> int | None:
        locator = self.locators.get(spec)
        return locator.line_of(path) if locator else None

    def place(self, spec: str, path: Sequence[str | int]) -> str:
        """`FILE:LINE` of a path, for messages that point at a second place."""
        line = self.line_of(spec, path)
        return f"{spec}:{line}" if line else spec

    def local_files(self) -> list[str]:
        """Every project-relative path that planning needs facts about, each once."""
        seen: dict[str, None] = {}
        for _, reference in self.references:
            for ref in (reference.file, reference.voice):
                if isinstance(ref, LocalFile):
                    seen.setdefault(ref.path)
        for draft in self.drafts:
            for item in draft.media:
                for ref in (item.file, item.voice):
                    if isinstance(ref, LocalFile):
                        seen.setdefault(ref.path)
        return list(seen)


def expand(
    sources: Iterable[SourceFile],
    fragments: FragmentSource,
    limits: Limits = DEFAULT_LIMITS,
    *,
    ids_only: bool = False,
    specs: SpecSource | None = None,
) -> Expansion:
    """Parses and expands every spec file within `limits`; pure apart from the reads handed in.

    `specs` reads the spec files that `uses` names and that are not among `sources` (without it,
    only `sources` can be used). A file among `sources` that only defines names (no shots) is
    a shared file like any other: its references are checked once, where they are written.

    With `ids_only`, only each shot's id is rendered (its drafts hold nothing else): what checking one
    file against the ids of the others needs, at a fraction of the cost.
    """
    sources = list(sources)
    expansion = Expansion()
    library = _Library(sources, fragments, specs, expansion, Meter(limits), ids_only=ids_only)
    for source in sources:
        if expansion.stopped:
            break
        library.expand_shots(source.path)
    return expansion


def take_seed(shot_id: str, take: int, seed: int | None) -> int:
    """The seed of take `take` (2 and up) of a shot: take 1 is the shot as written.

    With a seed the takes count up from it; without, they count up from a seed derived from the
    shot's id (sha256, so the same on every machine and run). Either way a shot's takes never share
    a seed, and adding takes never changes an existing take.
    """
    if seed is None:
        seed = int.from_bytes(hashlib.sha256(f"renderspec take seed\0{shot_id}".encode()).digest()[:8], "big")
    return (seed + take - 1) % SEED_MODULUS


@dataclass(frozen=True, slots=True)
class _Defined:
    """One name a spec file defines (a reference, a variable or a default): its value and place."""

    value: Any
    spec: str
    path: Path


@dataclass(slots=True)
class _Scope:
    """The names a spec file sees, each with where it was defined; `clashes` lists names that two
    different files define (found while merging what `uses` imports)."""

    refs: dict[str, _Defined] = field(default_factory=dict)
    vars: dict[str, _Defined] = field(default_factory=dict)
    defaults: dict[str, _Defined] = field(default_factory=dict)
    clashes: dict[tuple[str, str], list[_Defined]] = field(default_factory=dict)

    def table(self, namespace: str) -> dict[str, _Defined]:
        table: dict[str, _Defined] = getattr(self, namespace)
        return table

    def merge(self, other: _Scope) -> None:
        for namespace in _NAMESPACES:
            mine = self.table(namespace)
            for name, defined in other.table(namespace).items():
                present = mine.setdefault(name, defined)
                if (present.spec, present.path) == (defined.spec, defined.path):
                    continue  # the same definition, reached through two files
                places = self.clashes.setdefault((namespace, name), [present])
                if all((place.spec, place.path) != (defined.spec, defined.path) for place in places):
                    places.append(defined)


class _Library:
    """The spec files of one expansion, each parsed once: those handed in, and those `uses` names."""

    def __init__(
        self,
        sources: Sequence[SourceFile],
        fragments: FragmentSource,
        specs: SpecSource | None,
        out: Expansion,
        meter: Meter,
        *,
        ids_only: bool,
    ) -> None:
        self.texts: dict[str, str | SpecRefused | None] = {}
        for source in sources:
            self.texts.setdefault(source.path, source.text)
        self.fragments = fragments
        self.specs = specs
        self.out = out
        self.meter = meter
        self.ids_only = ids_only
        self.files: dict[str, _FileExpander] = {}
        self.reading: list[str] = []
        """The files whose definitions are being read, outermost first: a cycle of `uses` closes on one."""
        self.expanded: set[str] = set()
        self._templates: dict[str, Templates] = {}
        self._by_spec: dict[str, Templates] = {}

    def templates(self, spec: str) -> Templates:
        """Renders templates written in `spec`: its fragments resolve against its folder."""
        templates = self._by_spec.get(spec)  # asked once per rendered field: a dict lookup, not a dirname
        if templates is None:
            base_dir = posixpath.dirname(spec)
            templates = self._templates.get(base_dir)
            if templates is None:
                templates = self._templates[base_dir] = Templates(base_dir, self.fragments, self.meter)
            self._by_spec[spec] = templates
        return templates

    def sources_read(self, source: SourceFile) -> dict[str, str]:
        """The spec file and every fragment read since the last call, whichever folder's templates read it."""
        read: dict[str, str] = {}
        for templates in [self.templates(source.path), *self._templates.values()]:
            read.update(templates.sources_read(source))
        return read

    def file(self, path: str) -> _FileExpander | None:
        """The file at `path` with its definitions read; None when it does not exist.

        Raises SpecRefused when the file may not be used.
        """
        expander = self.files.get(path)
        if expander is not None:
            return expander
        if path not in self.texts:
            try:
                self.texts[path] = self.specs(path) if self.specs is not None else None
            except SpecRefused as refused:
                self.texts[path] = refused
        text = self.texts[path]
        if isinstance(text, SpecRefused):
            raise SpecRefused(str(text))  # each file that uses it reports it
        if text is None:
            return None
        expander = self.files[path] = _FileExpander(SourceFile(path=path, text=text), self)
        self.reading.append(path)
        try:
            expander.read_definitions()
        finally:
            self.reading.pop()
        return expander

    def expand_shots(self, path: str) -> None:
        if path in self.expanded:
            return
        self.expanded.add(path)
        expander = self.file(path)
        if expander is not None:
            expander.expand_shots()


class _FileExpander:
    """One spec file: its definitions (read once, after those it uses), then its shots."""

    def __init__(self, source: SourceFile, library: _Library) -> None:
        self.source = source
        self.path = source.path
        self.library = library
        self.ids_only = library.ids_only
        self.out = library.out
        self.meter = library.meter
        self.limits = self.meter.limits
        self.locator = Locator(source.text)
        self.out.locators[source.path] = self.locator
        self.base_dir = posixpath.dirname(source.path)
        self.data: dict[str, Any] | None = None
        self.scope = _Scope()
        self.refs: dict[str, Reference] = {}
        self.not_in_media: dict[str, NotInMedia] = {}
        self.vars: dict[str, Any] = {}
        self.uses = False

    # -- reporting ---------------------------------------------------------------------------

    def problem(
        self,
        path: Path,
        message: str,
        *,
        shot: str | None = None,
        field_name: str | None = None,
        severity: Severity = Severity.ERROR,
        line_offset: int | None = None,
        spec: str | None = None,
    ) -> None:
        """Records a problem at `path` of `spec` (this file unless the value was written in another)."""
        spec = spec or self.path
        line = self.out.line_of(spec, path) if path else None
        if line is not None and line_offset:
            line += line_offset - 1
        self.out.problems.append(
            Problem(
                file=spec,
                line=line,
                shot=shot,
                field=field_name if field_name is not None else _field_name(path),
                message=message,
                severity=severity,
            )
        )

    def defined_at(self, defined: _Defined) -> str:
        """' (defined at FILE:LINE)' for a name imported from another file; '' for this file's own."""
        if defined.spec == self.path:
            return ""
        return f" (defined at {self.out.place(defined.spec, defined.path)})"

    # -- definitions -------------------------------------------------------------------------

    def parse(self) -> dict[str, Any] | None:
        try:
            return tomllib.loads(self.source.text)
        except tomllib.TOMLDecodeError as error:
            text = str(error)
            match = _TOML_LINE.search(text)
            line = int(match.group(1)) if match and match.group(1) else None
            if line is None and "end of document" in text:
                line = max(1, self.source.text.count("\n") + (not self.source.text.endswith("\n")))
            column = int(match.group(2)) if match and match.group(2) else None
            lines = self.source.text.splitlines()
            line_text = lines[line - 1] if line and line <= len(lines) else ""
            reason = _TOML_LINE.sub("", text).strip()
            where = f" (column {column})" if column else ""
            hint = _toml_hint(reason, line_text, column)
            self.out.problems.append(
                Problem(
                    file=self.path,
                    line=line,
                    message=f"invalid TOML{where}: {reason}" + (f"; {hint}" if hint else ""),
                )
            )
            return None

    def read_definitions(self) -> None:
        """Reads what the file defines, after what it imports: its own definitions win."""
        data = self.parse()
        if data is None:
            return
        self.data = data
        for key in data:
            if key not in TOP_LEVEL_FIELDS:
                self.problem((key,), _unknown_message(key, TOP_LEVEL_FIELDS), field_name=key)
        cuts, problems = parse_cuts(data, self.source.path, self.locator)
        self.out.cuts += cuts
        self.out.problems += problems
        imported = self.read_uses(data.get("uses", []))
        self.uses = "uses" in data
        written = {
            namespace: set(data[namespace]) if isinstance(data.get(namespace), dict) else set()
            for namespace in _NAMESPACES
        }
        for namespace in _NAMESPACES:
            self.scope.table(namespace).update(
                (name, defined) for name, defined in imported.table(namespace).items() if name not in written[namespace]
            )
        for (namespace, name), places in imported.clashes.items():
            if name in written[namespace]:
                continue  # this file's own definition decides
            where = " and ".join(self.out.place(place.spec, place.path) for place in places)
            self.problem(
                ("uses",),
                f"{_NAMESPACES[namespace]} '{name}' is defined in both {where}; keep one, "
                f"or define it in this file to choose",
                field_name="uses",
            )
        for name, value in self.read_defaults(data.get("defaults", {})).items():
            self.scope.defaults[name] = _Defined(value, self.path, ("defaults", name))
        for name, value in self.read_vars(data.get("vars", {})).items():
            self.scope.vars[name] = _Defined(value, self.path, ("vars", name))
        self.vars = {name: defined.value for name, defined in self.scope.vars.items()}
        self.read_refs(data.get("refs", {}))  # even for ids: a matrix variable named like a reference makes no shot
        for name in sorted(set(self.scope.refs) & set(self.scope.vars)):
            reference, variable = self.scope.refs.pop(name), self.scope.vars[name]
            if variable.spec == self.path:
                self.problem(
                    variable.path,
                    f"'{name}' is both a variable here and a reference{self.defined_at(reference)}; rename one",
                )
            else:
                self.problem(
                    ("uses",),
                    f"'{name}' is both a reference ({self.out.place(reference.spec, reference.path)}) and a "
                    f"variable ({self.out.place(variable.spec, variable.path)}); rename one",
                    field_name="uses",
                )
        self.refs = {name: defined.value for name, defined in self.scope.refs.items()}
        self.not_in_media = {name: NotInMedia(name) for name in self.refs}

    def read_uses(self, raw: Any) -> _Scope:
        """What the files named in `uses` define, merged; clashes between them are left to the caller."""
        imported = _Scope()
        if not isinstance(raw, list):
            self.problem(("uses",), 'must be an array of spec files, e.g. uses = ["cast.toml", "look.toml"]')
            return imported
        seen: set[str] = set()
        for position, entry in enumerate(raw):
            if not isinstance(entry, str) or not entry.strip():
                got = shown(entry) if isinstance(entry, str) else toml_type(entry)
                self.problem(("uses",), f"uses[{position}] must be a spec file's path relative to this file, got {got}")
                continue
            written = entry.strip()
            target = posixpath.normpath(posixpath.join(self.base_dir, written))
            if posixpath.isabs(written) or target == ".." or target.startswith("../"):
                self.problem(
                    ("uses",), f"{shown(written)} is outside the project; keep shared spec files in the project"
                )
                continue
            if target in seen:
                self.problem(("uses",), f"{shown(written)} is listed twice in uses")
                continue
            seen.add(target)
            reading = self.library.reading
            if target == self.path:
                self.problem(("uses",), f"{shown(written)} is this file itself; a file's own definitions need no uses")
                continue
            if target in reading:
                chain = " → ".join([*reading[reading.index(target) :], target])
                self.problem(
                    ("uses",),
                    f"{shown(written)} uses this file in turn ({chain}); spec files may not use each other in a "
                    "cycle: move what both need into a third file",
                )
                continue
            if len(reading) >= MAX_USES_DEPTH:
                self.problem(
                    ("uses",),
                    f"{shown(written)} would make a chain of {len(reading) + 1} files through uses "
                    f"({' → '.join(reading)} → ...); at most {MAX_USES_DEPTH} may be chained",
                )
                continue
            try:
                other = self.library.file(target)
            except SpecRefused as refused:
                self.problem(("uses",), f"{shown(written)} ({target}) {refused}")
                continue
            if other is None:
                self.problem(
                    ("uses",), f"{shown(written)} not found (looked for {target}; paths are relative to this file)"
                )
                continue
            imported.merge(other.scope)
        return imported

    def validated(self, model: type[_M], raw: Any, path: Path, *, shot: str | None = None) -> _M | None:
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            allowed = PARAMETER_FIELDS if model is Parameters else tuple(model.model_fields)
            seen: set[Path] = set()
            for detail in error.errors(include_url=False):
                loc = _trim_union_loc((*path, *detail["loc"]))
                if loc in seen:
                    continue
                seen.add(loc)
                tags = [part for part in detail["loc"] if isinstance(part, str) and part.startswith("tag:")]
                table = tags[-1] if tags else None
                if detail["type"] == "extra_forbidden":
                    key = str(detail["loc"][-1])
                    if model is Parameters and key == "pick":
                        message = "picks one shot's take: set it on the shot (takes may be a default)"
                    elif key == "uses" and len(detail["loc"]) == 1:
                        message = _USES_PLACE
                    else:
                        message = _unknown_message(key, TABLE_FIELDS.get(table or "", allowed))
                elif detail["type"] == "missing":
                    message = "is required"
                else:
                    message = _type_message(detail, table, _last_name(loc))
                self.problem(loc, message, shot=shot)
            return None

    def read_defaults(self, raw: Any) -> dict[str, Any]:
        """The valid part of [defaults]: a bad default is reported once, and shots still expand."""
        defaults = self.validated(Parameters, raw, ("defaults",))
        if defaults is None:
            if not isinstance(raw, dict):
                return {}
            good = {}
            for key, value in raw.items():
                try:
                    Parameters.model_validate({key: value})
                except ValidationError:
                    continue
                good[key] = value
            defaults = Parameters.model_validate(good)
        return {name: getattr(defaults, name) for name in PARAMETER_FIELDS if getattr(defaults, name) is not None}

    def read_vars(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.problem(("vars",), 'must be a table of names and values, e.g. [vars] light = "dusk"')
            return {}
        for name in raw:
            if not name.isidentifier():
                self.problem(("vars", name), f"'{name}' cannot be used in templates; use letters, digits and _")
        if isinstance(raw.get("uses"), list):  # TOML puts keys after a [table] header into that table
            self.problem(("vars", "uses"), f"is a variable here; {_USES_PLACE}", severity=Severity.WARNING)
        return raw

    def read_refs(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.problem(("refs",), "must be a table of named references, e.g. [refs.mia]")
            return
        for name, value in raw.items():
            path: Path = ("refs", name)
            spec = self.validated(RefSpec, value, path)
            if spec is None:
                continue
            if not name.isidentifier():
                self.problem(
                    path,
                    f"reference name '{name}' cannot be cited; use letters, digits and _",
                    field_name=f"refs.{name}",
                )
                continue
            if name in self.scope.vars:
                variable = self.scope.vars[name]
                where = (
                    "in [vars]" if variable.spec == self.path else f"({self.out.place(variable.spec, variable.path)})"
                )
                self.problem(
                    path,
                    f"'{name}' is both a reference and a variable {where}; rename one",
                    field_name=f"refs.{name}",
                )
                continue
            if (spec.image is None) == (spec.video is None):
                self.problem(path, 'needs exactly one of image = "..." or video = "..."', field_name=f"refs.{name}")
                continue
            kind = MediaType.REFERENCE_IMAGE if spec.image is not None else MediaType.REFERENCE_VIDEO
            key = "image" if spec.image is not None else "video"
            written = spec.image if spec.image is not None else spec.video
            assert written is not None
            file = self.file_ref(
                (*path, key),
                written,
                spec.sha256,
                self.vars,
                pin_path=(*path, "sha256"),
                whole_render=kind is MediaType.REFERENCE_VIDEO,
            )
            voice = None
            if spec.voice is not None:
                voice = self.file_ref(
                    (*path, "voice"), spec.voice, spec.voice_sha256, self.vars, pin_path=(*path, "voice_sha256")
                )
            elif spec.voice_sha256 is not None:
                self.problem((*path, "voice_sha256"), "pins a voice, but the reference has no voice")
            if file is None or (spec.voice is not None and voice is None):
                continue
            reference = Reference(name=name, kind=kind, file=file, voice=voice, origin=path)
            self.scope.refs[name] = _Defined(reference, self.path, path)
            self.out.references.append((self.path, reference))

    def file_ref(
        self,
        path: Path,
        raw: str | RenderSpec,
        pin: str | None,
        context: Mapping[str, Any],
        *,
        shot: str | None = None,
        spec: str | None = None,
        pin_path: Path | None = None,
        field_name: str | None = None,
        whole_render: bool = False,
    ) -> FileRef | None:
        """The file a spec value names: a path relative to the file it is written in (`spec`), a
        URL, or another shot's render. `whole_render`: a table means the video, not one frame."""
        spec = spec or self.path
        if pin is not None and not _SHA256.fullmatch(pin):
            self.problem(
                pin_path or path,
                "must be 64 lowercase hex digits (the sha256 of what the URL serves)",
                shot=shot,
                spec=spec,
            )
            return None
        if isinstance(raw, RenderSpec):
            render = self.render_of(path, raw, context, shot=shot, spec=spec, whole=whole_render)
            if render is not None and pin is not None:
                self.problem(
                    pin_path or path,
                    "sha256 pins only apply to URLs; a render is hashed when it is made",
                    shot=shot,
                    severity=Severity.WARNING,
                    spec=spec,
                )
            return render
        text = self.render(path, raw, context, shot=shot, spec=spec, field_name=field_name)
        if text is None:
            return None
        text = text.strip()
        scheme = text.split(":", 1)[0].lower() if ":" in text[:12] else ""
        if scheme in ("http", "https"):
            return RemoteFile(url=text, sha256=pin)
        if scheme and len(scheme) > 1:
            self.problem(
                path,
                f"'{scheme}:' links are not supported; use a file path (relative to this spec) or an https:// URL",
                shot=shot,
                spec=spec,
                field_name=field_name,
            )
            return None
        if not text:
            self.problem(
                path,
                "is empty; give a file path relative to this spec, or an https:// URL",
                shot=shot,
                spec=spec,
                field_name=field_name,
            )
            return None
        if pin is not None:
            self.problem(
                pin_path or path,
                "sha256 pins only apply to URLs; local files are hashed automatically",
                shot=shot,
                severity=Severity.WARNING,
                spec=spec,
            )
        joined = text if posixpath.isabs(text) else posixpath.join(posixpath.dirname(spec), text)
        return LocalFile(path=posixpath.normpath(joined))

    def render_of(
        self, path: Path, raw: RenderSpec, context: Mapping[str, Any], *, shot: str | None, spec: str, whole: bool
    ) -> RenderOf | None:
        """`{ shot = "walk", frame = "last" }`: whether that shot exists is the planner's to say."""
        shot_id = self.render((*path, "shot"), raw.shot, context, shot=shot, spec=spec)
        if shot_id is None:
            return None
        shot_id = shot_id.strip()
        if not shot_id:
            self.problem(
                (*path, "shot"),
                'is empty; name the shot whose render to use, e.g. { shot = "garden-walk" }',
                shot=shot,
                spec=spec,
            )
            return None
        if not _ID_PATTERN.fullmatch(shot_id):
            self.problem(
                (*path, "shot"),
                f"{shown(shot_id, 40)} is not a shot id (letters, digits, '.', '_' and '-')",
                shot=shot,
                spec=spec,
            )
            return None
        if whole:
            if raw.frame is not None:
                self.problem(
                    (*path, "frame"),
                    "a reference video is the whole render of the shot; to use one frame, write "
                    'image = { shot = "...", frame = ... } instead',
                    shot=shot,
                    spec=spec,
                )
                return None
            return RenderOf(shot=shot_id)
        frame = self.frame((*path, "frame"), raw.frame, context, shot=shot, spec=spec)
        return None if frame is None else RenderOf(shot=shot_id, frame=frame)

    def frame(
        self, path: Path, raw: str | int | float | None, context: Mapping[str, Any], *, shot: str | None, spec: str
    ) -> str | float | None:
        """The still to take: "first", "last" (when not given) or seconds ≥ 0 as a float; None when bad."""
        if raw is None:
            return "last"
        value: str | int | float = raw
        templated = isinstance(raw, str) and is_template(raw)
        if isinstance(raw, str):
            rendered = self.render(path, raw, context, shot=shot, spec=spec)
            if rendered is None:
                return None
            value = rendered.strip()
            if value in _FRAMES:
                return value
            if templated and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", value):
                value = float(value)
            else:
                hint = "; write seconds without quotes" if re.fullmatch(r"[+-]?[\d.]+", value) else ""
                self.problem(
                    path,
                    f'must be "first", "last" or a number of seconds from the start, got {shown(value)}{hint}',
                    shot=shot,
                    spec=spec,
                )
                return None
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            self.problem(
                path,
                f"{value} is not a time in the render; give seconds from the start (0 or more)",
                shot=shot,
                spec=spec,
            )
            return None
        return seconds

    def render(
        self,
        path: Path,
        text: str,
        context: Mapping[str, Any],
        *,
        shot: str | None = None,
        spec: str | None = None,
        field_name: str | None = None,
    ) -> str | None:
        """`text` rendered; `spec` is the file it is written in (fragments resolve against its folder)."""
        if self.out.stopped:
            return None  # over the expansion's budget: reported once, where it happened
        try:
            return self.library.templates(spec or self.path).render(text, context)
        except TemplateFailure as failure:
            self.problem(
                path,
                failure.message,
                shot=shot,
                line_offset=failure.template_line,
                spec=spec,
                field_name=field_name,
            )
            self.out.stopped = self.meter.exhausted
            return None

    # -- shots -------------------------------------------------------------------------------

    def expand_shots(self) -> None:
        if self.data is None:
            return
        shots = self.data.get("shots", [])
        if not isinstance(shots, list):
            self.problem(("shots",), "must be an array of tables: write each shot as [[shots]]")
            return
        for index, raw in enumerate(shots):
            if self.out.stopped:
                return
            shot_id = raw.get("id") if isinstance(raw, dict) else None
            spec = self.validated(ShotSpec, raw, ("shots", index), shot=_shot_label(shot_id))
            if spec is not None:
                self.expand_shot(index, spec)

    def setting(self, spec: ShotSpec, name: str, index: int) -> _Defined | None:
        """A shot's value of `name` with where it is written: the shot's own, or a default's."""
        value = getattr(spec, name)
        if value is not None:
            return _Defined(value, self.path, ("shots", index, name))
        return self.scope.defaults.get(name)

    def expand_shot(self, index: int, spec: ShotSpec) -> None:
        path: Path = ("shots", index)
        matrix = spec.matrix or {}
        for name in matrix:
            if not name.isidentifier():
                self.problem(
                    (*path, "matrix", name),
                    f"'{name}' cannot be used in templates; use letters, digits and _",
                    shot=_shot_label(spec.id),
                )
                return
            if name in self.refs:
                self.problem(
                    (*path, "matrix", name),
                    f"'{name}' is both a matrix variable and a reference{self.defined_at(self.scope.refs[name])}; "
                    "rename one",
                    shot=_shot_label(spec.id),
                )
                return
        count = math.prod(len(values) for values in matrix.values())
        if count > self.limits.max_matrix:
            sizes = " × ".join(f"{name}: {len(values)}" for name, values in matrix.items())
            self.problem(
                (*path, "matrix"),
                f"makes {count:,} shots ({sizes}); a shot may make at most {self.limits.max_matrix:,}; "
                "split it into several shots, or raise max_matrix in renderspec.toml",
                shot=_shot_label(spec.id),
            )
            return
        if len(self.out.drafts) + count > self.limits.max_shots:
            self.over_max_shots(index, spec)
            return
        for combo in _combinations(matrix):
            if self.out.stopped:
                return
            context = {**self.vars, **combo}
            draft = self.draft(index, spec, context, combo)
            drafts = self.takes(index, spec, draft, context)
            if len(self.out.drafts) + len(drafts) > self.limits.max_shots:  # takes made it more
                self.over_max_shots(index, spec)
                return
            self.out.drafts.extend(drafts)

    def over_max_shots(self, index: int, spec: ShotSpec) -> None:
        self.problem(
            ("shots", index),
            f"takes the project past {self.limits.max_shots:,} shots, the most it may have; expansion "
            "stopped here (later shots are not checked); raise max_shots in renderspec.toml if it is that big",
            shot=_shot_label(spec.id),
        )
        self.out.stopped = True

    def takes(self, index: int, spec: ShotSpec, draft: ShotDraft, context: Mapping[str, Any]) -> list[ShotDraft]:
        """The shot's takes (`takes = 3`): copies with ids `<id>.takeN` and their own seeds.

        Take 1 is the shot as written, so adding takes never changes a render that exists; `pick`
        only marks one take, so changing it changes no request.
        """
        takes, pick = 1, 1
        written = self.setting(spec, "takes", index)
        if written is not None:
            shot = draft.id if written.path[0] == "shots" else None
            value = self.typed("takes", written.value, written.path, context, shot, spec=written.spec)
            if value is not _INVALID and not 1 <= value <= MAX_TAKES:
                self.problem(
                    written.path,
                    f"{value} is out of range; a shot may have 1–{MAX_TAKES} takes (each take is a paid render)",
                    shot=shot,
                    field_name=None if shot else "defaults.takes",
                    spec=written.spec,
                )
                value = _INVALID
            if value is _INVALID:
                draft.failed = draft.failed | {"takes"}
                return [draft]
            takes = value
        failed = draft.failed
        if spec.pick is not None:
            value = self.typed("pick", spec.pick, ("shots", index, "pick"), context, draft.id)
            if value is not _INVALID and not 1 <= value <= takes:
                self.problem(
                    ("shots", index, "pick"),
                    f"{value} is not one of the shot's takes; pick one of 1–{takes}"
                    + ("" if takes > 1 else " (set takes = N to make several)"),
                    shot=draft.id,
                )
                value = _INVALID
            if value is _INVALID:
                failed = failed | {"pick"}
            else:
                pick = value
        if takes == 1:
            draft.failed = failed
            return [draft]
        result = []
        for number in range(1, takes + 1):
            parameters = draft.parameters
            if number > 1 and not self.ids_only:
                seed = parameters.get("seed")
                if seed is None or (
                    isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_MODULUS
                ):  # a seed out of range is reported as written, on every take
                    parameters = {**parameters, "seed": take_seed(draft.id, number, seed)}
            result.append(
                replace(
                    draft,
                    id=f"{draft.id}.take{number}",
                    media=list(draft.media),
                    parameters=parameters,
                    failed=failed,
                    take=number,
                    take_of=draft.id,
                    picked=number == pick,
                )
            )
        return result

    def draft(
        self,
        index: int,
        spec: ShotSpec,
        context: dict[str, Any],
        combo: dict[str, Any],
    ) -> ShotDraft:
        """The rendered shot; fields that could not be rendered are reported and listed in `failed`."""
        path: Path = ("shots", index)
        failed: set[str] = set()
        label = _shot_label(spec.id)
        shot_id = self.render((*path, "id"), spec.id, context, shot=label)
        if shot_id is None:
            failed.add("id")
            shot_id = spec.id
        shot_id = shot_id.strip()
        if "id" not in failed and not _ID_PATTERN.fullmatch(shot_id):
            shot_id = shown(shot_id, 40)  # names the shot in problems; it never renders
            self.problem(
                (*path, "id"),
                f"{shot_id} is not a usable shot id; use letters, digits, '.', '_' and '-' (it names renders/<id>.mp4), starting with a letter or digit",
                shot=shot_id,
            )
            failed.add("id")
        if self.ids_only:
            return ShotDraft(
                id=shot_id, spec=self.path, index=index, model=DEFAULT_MODEL, prompt="", negative_prompt=None,
                media=[], parameters={}, extra={}, origins={}, matrix=combo, failed=frozenset(failed),
            )  # fmt: skip
        media_names, voices = self.media(index, spec, context, shot_id, failed)
        citations, cited = self.citations(media_names)
        prompt_context = {**self.not_in_media, **context, **citations}
        prompt = self.render((*path, "prompt"), spec.prompt, prompt_context, shot=shot_id)
        if prompt is None:
            failed.add("prompt")
        used = frozenset(cited)
        settings: dict[str, _Defined] = {}
        for name in ("model", *DEFAULT_PARAMETERS, "seed", "negative_prompt", "first_frame", "extra"):
            written = self.setting(spec, name, index)
            if written is not None:
                settings[name] = written
        origins = {name: written.path for name, written in settings.items()}
        origin_files = {name: written.spec for name, written in settings.items() if written.spec != self.path}
        negative = None
        if "negative_prompt" in settings:
            written = settings["negative_prompt"]
            negative = self.render(written.path, written.value, prompt_context, shot=shot_id, spec=written.spec)
            if negative is None:
                failed.add("negative_prompt")
        parameters: dict[str, Any] = {}
        for name, fallback in DEFAULT_PARAMETERS.items():
            written = settings.get(name) or _Defined(fallback, self.path, ())
            parameters[name] = self.typed(name, written.value, written.path, context, shot_id, spec=written.spec)
        if "seed" in settings:
            written = settings["seed"]
            parameters["seed"] = self.typed("seed", written.value, written.path, context, shot_id, spec=written.spec)
        failed.update(name for name, value in parameters.items() if value is _INVALID)
        model = DEFAULT_MODEL
        if "model" in settings:
            written = settings["model"]
            model = (self.render(written.path, written.value, context, shot=shot_id, spec=written.spec) or "").strip()
            if not model:
                failed.add("model")
        extra: dict[str, Any] | None = {}
        if "extra" in settings:
            written = settings["extra"]
            extra = self.extra(written.value, written.path, context, shot_id, spec=written.spec)
        if extra is None:
            failed.add("extra")
        media = [self.media_item(name, voices.get(name)) for name in media_names]
        if "first_frame" in settings:
            written = settings["first_frame"]
            frame = self.file_ref(written.path, written.value, None, context, shot=shot_id, spec=written.spec)
            if frame is None:
                failed.add("first_frame")
            else:
                media.append(
                    MediaItem(type=MediaType.FIRST_FRAME, file=frame, origin=written.path, origin_file=written.spec)
                )
        return ShotDraft(
            id=shot_id,
            spec=self.path,
            index=index,
            model=model,
            prompt=prompt or "",
            negative_prompt=negative,
            media=media,
            parameters=parameters,
            extra=extra or {},
            origins=origins,
            origin_files=origin_files,
            matrix=combo,
            cited=used,
            ratio_on_shot=spec.ratio is not None,
            failed=frozenset(failed),
            sources=self.library.sources_read(self.source),  # explain: what this shot was made from
        )

    def media(
        self, index: int, spec: ShotSpec, context: Mapping[str, Any], shot_id: str, failed: set[str]
    ) -> tuple[list[str], dict[str, tuple[FileRef | None, Path | None]]]:
        """The references the shot names, in order, and the voices it sets for them (None: no voice)."""
        path: Path = ("shots", index, "media")
        names: list[str] = []
        voices: dict[str, tuple[FileRef | None, Path | None]] = {}
        for position, entry in enumerate(spec.media):
            table, written = (entry, entry.ref) if isinstance(entry, MediaSpec) else (None, entry)
            name = self.render(path, written, context, shot=shot_id)
            if name is None:
                failed.add("media")
                continue
            name = name.strip()
            if name not in self.refs:
                self.problem(
                    path,
                    f"media[{position}] names {shown(name)}, which is not a reference of this file"
                    f"{' or of the files it uses' if self.uses else ''}; known references: {self.known_references()}",
                    shot=shot_id,
                    field_name="media",
                )
                failed.add("media")
                continue
            if name in names:
                self.problem(path, f"'{name}' is listed twice in media", shot=shot_id, field_name="media")
                failed.add("media")
                continue
            names.append(name)
            if table is None:
                continue
            where = f"media[{position}].voice"
            if table.voice is True:
                self.problem(
                    path,
                    f'voice = true is what the name alone means; write "{name}", a voice file for this shot, '
                    "or false to leave the voice out",
                    shot=shot_id,
                    field_name=where,
                )
                failed.add("media")
            elif table.voice is False:
                voices[name] = (None, None)
                if self.refs[name].voice is None:
                    self.problem(
                        path,
                        f"'{name}' has no voice to leave out; write \"{name}\" alone",
                        shot=shot_id,
                        field_name=where,
                        severity=Severity.WARNING,
                    )
                if table.voice_sha256 is not None:
                    self.problem(path, "voice_sha256 pins a voice, but voice = false", shot=shot_id, field_name=where)
                    failed.add("media")
            elif table.voice is not None:
                voice = self.file_ref(
                    path, table.voice, table.voice_sha256, context, shot=shot_id, field_name=where, pin_path=path
                )
                if voice is None:
                    failed.add("media")
                else:
                    voices[name] = (voice, path)
            elif table.voice_sha256 is not None:
                self.problem(
                    path,
                    'voice_sha256 pins a voice, but this entry gives none; add voice = "..."',
                    shot=shot_id,
                    field_name=where,
                )
                failed.add("media")
        return names, voices

    def known_references(self) -> str:
        """The references a shot of this file may name: its own first, then by the file defining them."""
        by_file: dict[str, list[str]] = {}
        for name, defined in sorted(self.scope.refs.items()):
            by_file.setdefault(defined.spec, []).append(name)
        own = by_file.pop(self.path, [])
        parts = [", ".join(own)] if own else []
        parts += [f"from {spec}: {', '.join(names)}" for spec, names in sorted(by_file.items())]
        return "; ".join(parts) or "none defined in this file or its uses"

    def citations(self, media_names: Sequence[str]) -> tuple[dict[str, Any], set[str]]:
        """`image N` / `video N` per reference in media order; a set that fills as they print."""
        cited: set[str] = set()
        numbers = {MediaType.REFERENCE_IMAGE: 0, MediaType.REFERENCE_VIDEO: 0}
        result: dict[str, Any] = {}
        for name in media_names:
            kind = self.refs[name].kind
            numbers[kind] += 1
            word = "image" if kind is MediaType.REFERENCE_IMAGE else "video"
            result[name] = _TrackedCitation(f"{word} {numbers[kind]}", name, cited)
        return result, cited

    def media_item(self, name: str, voice: tuple[FileRef | None, Path | None] | None) -> MediaItem:
        reference = self.refs[name]
        own_voice, voice_origin = voice if voice is not None else (reference.voice, None)
        return MediaItem(
            type=reference.kind,
            file=reference.file,
            voice=own_voice,
            reference=reference.name,
            origin=reference.origin,
            origin_file=self.scope.refs[name].spec,
            voice_origin=voice_origin,
        )

    def typed(
        self,
        name: str,
        value: Any,
        origin: Path | None,
        context: Mapping[str, Any],
        shot: str | None,
        *,
        spec: str | None = None,
    ) -> Any:
        """Renders a templated typed parameter ("{{ d }}") and converts it; reports bad values."""
        if not isinstance(value, str) or name in _STR_PARAMETERS:
            if isinstance(value, str):
                rendered = self.render(origin or (), value, context, shot=shot, spec=spec)
                return _INVALID if rendered is None else rendered.strip()
            return value
        if not is_template(value):
            kind = "an integer" if name in _INT_PARAMETERS else "true or false"
            self.problem(
                origin or (),
                f"must be {kind}, got the string {value!r}; write it without quotes",
                shot=shot,
                field_name=name if shot else _field_name(origin or ()),
                spec=spec,
            )
            return _INVALID
        rendered = self.render(origin or (), value, context, shot=shot, spec=spec)
        if rendered is None:
            return _INVALID
        rendered = rendered.strip()
        if name in _INT_PARAMETERS and re.fullmatch(r"[+-]?\d+", rendered):
            return int(rendered)
        if name in _BOOL_PARAMETERS and rendered.lower() in ("true", "false"):
            return rendered.lower() == "true"
        kind = "an integer" if name in _INT_PARAMETERS else "true or false"
        self.problem(
            origin or (),
            f"template gave {shown(rendered)}, which is not {kind}",
            shot=shot,
            field_name=name if shot else _field_name(origin or ()),
            spec=spec,
        )
        return _INVALID

    def extra(
        self, raw: Any, origin: Path, context: Mapping[str, Any], shot: str, *, spec: str
    ) -> dict[str, Any] | None:
        result: dict[str, Any] = {}
        for key, value in raw.items():
            where: Path = (*origin, key)
            if key in PARAMETER_FIELDS or key in SHOT_FIELDS:
                self.problem(
                    where,
                    f"'{key}' is a documented field; set it directly instead of under extra",
                    shot=shot,
                    field_name=f"extra.{key}",
                    spec=spec,
                )
                return None
            if isinstance(value, str):
                rendered = self.render(where, value, context, shot=shot, spec=spec)
                if rendered is None:
                    return None
                value = rendered
            result[key] = value
        return result


class _Invalid:
    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Any = _Invalid()


class _TrackedCitation(Citation):
    """A citation that remembers it was printed, so uncited media can be warned about."""

    __slots__ = ("_cited", "_name")

    def __init__(self, text: str, name: str, cited: set[str]) -> None:
        super().__init__(text)
        self._name = name
        self._cited = cited

    def __str__(self) -> str:
        self._cited.add(self._name)
        return self.text


def _combinations(matrix: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
    if not matrix:
        yield {}
        return
    names = list(matrix)
    for values in itertools.product(*(matrix[name] for name in names)):
        yield dict(zip(names, values, strict=True))


def _shot_label(shot_id: Any) -> str | None:
    return shot_id if isinstance(shot_id, str) else None


def _field_name(path: Path) -> str | None:
    if not path:
        return None
    rest = path[2:] if path[0] == "shots" else path
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest).lstrip(".")
    return text or None


def _last_name(path: Path) -> str:
    return next((part for part in reversed(path) if isinstance(part, str)), "")


def _unknown_message(key: str, allowed: Sequence[str]) -> str:
    guess = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{guess[0]}'? " if guess else ""
    return f"unknown field '{key}'; {hint}allowed: {', '.join(allowed)}"


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "too_short": "a non-empty array",
}


_TABLE_MESSAGES: dict[tuple[str | None, str], str] = {
    (RENDER_TAG, "frame"): 'must be "first", "last" or a number of seconds from the start',
    (MEDIA_TAG, "voice"): "must be a voice file's path (or URL) for this shot, or false to leave the voice out",
}
_STRING_OR_TABLE_MESSAGES = {
    "media": 'must be a reference\'s name, or a table such as { ref = "mia", voice = false }',
}
_FILE_MESSAGE = 'must be a file path (relative to this file), an https:// URL, or a table such as { shot = "walk" }'


def _type_message(detail: Mapping[str, Any], table: str | None, name: str) -> str:
    """What a value of the wrong type should have been; `table` is the table form it was read as,
    `name` the key it is written under."""
    got = toml_type(detail.get("input"))
    loc = detail["loc"]
    if loc and loc[-1] == TEXT_TAG:  # neither a string nor a table
        return f"{_STRING_OR_TABLE_MESSAGES.get(name, _FILE_MESSAGE)}, got {got}"
    if (table, name) in _TABLE_MESSAGES:
        return f"{_TABLE_MESSAGES[table, name]}, got {got}"
    expected = _TYPE_NAMES.get(str(detail["type"]))
    if expected:
        return f"must be {expected}, got {got}"
    return f"{detail['msg']} (got {got})"


_UNION_TAGS = ("str", "bool", "int", "float", "list[str]", "dict[str,any]")


def _trim_union_loc(loc: tuple[Any, ...]) -> Path:
    """Drops pydantic's union-branch names ('int', 'str') from an error location."""
    return tuple(
        part
        for part in loc
        if not (
            isinstance(part, str) and (part in _UNION_TAGS or part.startswith(("constrained-", "function-", "tag:")))
        )
    )
