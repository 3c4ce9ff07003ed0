"""Spec text to shot drafts: parse TOML, check its shape, expand matrices, render templates.

Every problem found is collected with its file, line, shot and field; a broken part of a file
never hides the problems of the other parts.
"""

from __future__ import annotations

import difflib
import itertools
import math
import posixpath
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from renderspec.core.limits import DEFAULT_LIMITS, Limits, Meter
from renderspec.core.locations import Locator, Path
from renderspec.core.model import FileRef, LocalFile, MediaItem, Reference, RemoteFile, ShotDraft, SourceFile
from renderspec.core.problems import Problem, Severity, shown
from renderspec.core.rules import MediaType
from renderspec.core.spec import PARAMETER_FIELDS, SHOT_FIELDS, Parameters, RefSpec, ShotSpec
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
_INT_PARAMETERS = ("duration", "seed")
_BOOL_PARAMETERS = ("prompt_extend", "watermark")
_STR_PARAMETERS = ("resolution", "ratio")
_TOP_LEVEL = ("defaults", "vars", "refs", "shots")
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_M = TypeVar("_M", bound=BaseModel)
_TOML_LINE = re.compile(r"\((?:at line (\d+), column (\d+)|at end of document)\)")
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


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
    the shots after that point were not expanded.
    """

    drafts: list[ShotDraft] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    references: list[tuple[str, Reference]] = field(default_factory=list)
    locators: dict[str, Locator] = field(default_factory=dict)
    stopped: bool = False

    def line_of(self, spec: str, path: Sequence[str | int]) -> int | None:
        locator = self.locators.get(spec)
        return locator.line_of(path) if locator else None

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
    sources: Iterable[SourceFile], fragments: FragmentSource, limits: Limits = DEFAULT_LIMITS, *, ids_only: bool = False
) -> Expansion:
    """Parses and expands every spec file within `limits`; pure apart from the fragment reads handed in.

    With `ids_only`, only each shot's id is rendered (its drafts hold nothing else): what checking one
    file against the ids of the others needs, at a fraction of the cost.
    """
    expansion = Expansion()
    meter = Meter(limits)
    for source in sources:
        if expansion.stopped:
            break
        _FileExpander(source, fragments, expansion, meter, ids_only=ids_only).run()
    return expansion


class _FileExpander:
    def __init__(
        self, source: SourceFile, fragments: FragmentSource, out: Expansion, meter: Meter, *, ids_only: bool = False
    ) -> None:
        self.source = source
        self.ids_only = ids_only
        self.out = out
        self.meter = meter
        self.limits = meter.limits
        self.locator = Locator(source.text)
        out.locators[source.path] = self.locator
        self.base_dir = posixpath.dirname(source.path)
        self.templates = Templates(self.base_dir, fragments, meter)
        self.refs: dict[str, Reference] = {}
        self.not_in_media: dict[str, NotInMedia] = {}
        self.vars: dict[str, Any] = {}

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
    ) -> None:
        line = self.locator.line_of(path) if path else None
        if line is not None and line_offset:
            line += line_offset - 1
        self.out.problems.append(
            Problem(
                file=self.source.path,
                line=line,
                shot=shot,
                field=field_name if field_name is not None else _field_name(path),
                message=message,
                severity=severity,
            )
        )

    # -- stages ------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            data = tomllib.loads(self.source.text)
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
                    file=self.source.path,
                    line=line,
                    message=f"invalid TOML{where}: {reason}" + (f"; {hint}" if hint else ""),
                )
            )
            return
        for key in data:
            if key not in _TOP_LEVEL:
                self.problem((key,), _unknown_message(key, _TOP_LEVEL), field_name=key)
        defaults = self.defaults(data.get("defaults", {}))
        self.vars = self.read_vars(data.get("vars", {}))
        self.read_refs(data.get("refs", {}))  # even for ids: a matrix variable named like a reference makes no shot
        shots = data.get("shots", [])
        if not isinstance(shots, list):
            self.problem(("shots",), "must be an array of tables: write each shot as [[shots]]")
            return
        for index, raw in enumerate(shots):
            if self.out.stopped:
                return
            shot_id = raw.get("id") if isinstance(raw, dict) else None
            spec = self.validated(ShotSpec, raw, ("shots", index), shot=_shot_label(shot_id))
            if spec is not None:
                self.expand_shot(index, spec, defaults)

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
                if detail["type"] == "extra_forbidden":
                    message = _unknown_message(str(detail["loc"][-1]), allowed)
                elif detail["type"] == "missing":
                    message = "is required"
                else:
                    message = _type_message(detail)
                self.problem(loc, message, shot=shot)
            return None

    def defaults(self, raw: Any) -> Parameters:
        """The valid part of [defaults]: a bad default is reported once, and shots still expand."""
        defaults = self.validated(Parameters, raw, ("defaults",))
        if defaults is not None:
            return defaults
        if not isinstance(raw, dict):
            return Parameters()
        good = {}
        for key, value in raw.items():
            try:
                Parameters.model_validate({key: value})
            except ValidationError:
                continue
            good[key] = value
        return Parameters.model_validate(good)

    def read_vars(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.problem(("vars",), 'must be a table of names and values, e.g. [vars] light = "dusk"')
            return {}
        for name in raw:
            if not name.isidentifier():
                self.problem(("vars", name), f"'{name}' cannot be used in templates; use letters, digits and _")
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
            if name in self.vars:
                self.problem(
                    path,
                    f"'{name}' is both a reference and a variable in [vars]; rename one",
                    field_name=f"refs.{name}",
                )
                continue
            if (spec.image is None) == (spec.video is None):
                self.problem(path, 'needs exactly one of image = "..." or video = "..."', field_name=f"refs.{name}")
                continue
            kind = MediaType.REFERENCE_IMAGE if spec.image is not None else MediaType.REFERENCE_VIDEO
            key = "image" if spec.image is not None else "video"
            file = self.file_ref((*path, key), spec.image or spec.video or "", spec.sha256, self.vars)
            voice = None
            if spec.voice is not None:
                voice = self.file_ref((*path, "voice"), spec.voice, spec.voice_sha256, self.vars)
            elif spec.voice_sha256 is not None:
                self.problem((*path, "voice_sha256"), "pins a voice, but the reference has no voice")
            if file is None or (spec.voice is not None and voice is None):
                continue
            reference = Reference(name=name, kind=kind, file=file, voice=voice, origin=path)
            self.refs[name] = reference
            self.not_in_media[name] = NotInMedia(name)
            self.out.references.append((self.source.path, reference))

    def file_ref(
        self,
        path: Path,
        raw: str,
        pin: str | None,
        context: Mapping[str, Any],
        *,
        shot: str | None = None,
    ) -> FileRef | None:
        text = self.render(path, raw, context, shot=shot)
        if text is None:
            return None
        text = text.strip()
        if pin is not None and not _SHA256.fullmatch(pin):
            self.problem(
                path[:-1] + (("sha256",) if path[-1] != "voice" else ("voice_sha256",)),
                "must be 64 lowercase hex digits (the sha256 of what the URL serves)",
                shot=shot,
            )
            return None
        scheme = text.split(":", 1)[0].lower() if ":" in text[:12] else ""
        if scheme in ("http", "https"):
            return RemoteFile(url=text, sha256=pin)
        if scheme and len(scheme) > 1:
            self.problem(
                path,
                f"'{scheme}:' links are not supported; use a file path (relative to this spec) or an https:// URL",
                shot=shot,
            )
            return None
        if not text:
            self.problem(path, "is empty; give a file path relative to this spec, or an https:// URL", shot=shot)
            return None
        if pin is not None:
            self.problem(
                path,
                "sha256 pins only apply to URLs; local files are hashed automatically",
                shot=shot,
                severity=Severity.WARNING,
            )
        joined = text if posixpath.isabs(text) else posixpath.join(self.base_dir, text)
        return LocalFile(path=posixpath.normpath(joined))

    def render(self, path: Path, text: str, context: Mapping[str, Any], *, shot: str | None = None) -> str | None:
        if self.out.stopped:
            return None  # over the expansion's budget: reported once, where it happened
        try:
            return self.templates.render(text, context)
        except TemplateFailure as failure:
            self.problem(path, failure.message, shot=shot, line_offset=failure.template_line)
            self.out.stopped = self.meter.exhausted
            return None

    # -- shots -------------------------------------------------------------------------------

    def expand_shot(self, index: int, spec: ShotSpec, defaults: Parameters) -> None:
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
                    f"'{name}' is both a matrix variable and a reference; rename one",
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
            self.problem(
                path,
                f"takes the project past {self.limits.max_shots:,} shots, the most it may have; expansion "
                "stopped here (later shots are not checked); raise max_shots in renderspec.toml if it is that big",
                shot=_shot_label(spec.id),
            )
            self.out.stopped = True
            return
        for combo in _combinations(matrix):
            if self.out.stopped:
                return
            context = {**self.vars, **combo}
            self.out.drafts.append(self.draft(index, spec, defaults, context, combo))

    def draft(
        self,
        index: int,
        spec: ShotSpec,
        defaults: Parameters,
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
                id=shot_id, spec=self.source.path, index=index, model=DEFAULT_MODEL, prompt="", negative_prompt=None,
                media=[], parameters={}, extra={}, origins={}, matrix=combo, failed=frozenset(failed),
            )  # fmt: skip
        media_names: list[str] = []
        for position, raw_name in enumerate(spec.media):
            name = self.render((*path, "media"), raw_name, context, shot=shot_id)
            if name is None:
                failed.add("media")
                continue
            name = name.strip()
            if name not in self.refs:
                known = ", ".join(sorted(self.refs)) or "none defined in this file"
                self.problem(
                    (*path, "media"),
                    f"media[{position}] names {shown(name)}, which is not a reference of this file; known references: {known}",
                    shot=shot_id,
                    field_name="media",
                )
                failed.add("media")
            elif name in media_names:
                self.problem((*path, "media"), f"'{name}' is listed twice in media", shot=shot_id, field_name="media")
                failed.add("media")
            else:
                media_names.append(name)

        citations, cited = self.citations(media_names)
        prompt_context = {**self.not_in_media, **context, **citations}
        prompt = self.render((*path, "prompt"), spec.prompt, prompt_context, shot=shot_id)
        if prompt is None:
            failed.add("prompt")
        used = frozenset(cited)
        origins: dict[str, Path] = {}
        values: dict[str, Any] = {}
        for name in ("model", *DEFAULT_PARAMETERS, "seed", "negative_prompt", "first_frame", "extra"):
            shot_value = getattr(spec, name)
            if shot_value is not None:
                values[name], origins[name] = shot_value, (*path, name)
            elif getattr(defaults, name) is not None:
                values[name], origins[name] = getattr(defaults, name), ("defaults", name)
        negative = None
        if "negative_prompt" in values:
            negative = self.render(origins["negative_prompt"], values["negative_prompt"], prompt_context, shot=shot_id)
            if negative is None:
                failed.add("negative_prompt")
        parameters: dict[str, Any] = {}
        for name, fallback in DEFAULT_PARAMETERS.items():
            parameters[name] = self.typed(name, values.get(name, fallback), origins.get(name), context, shot_id)
        if "seed" in values:
            parameters["seed"] = self.typed("seed", values["seed"], origins["seed"], context, shot_id)
        failed.update(name for name, value in parameters.items() if value is _INVALID)
        model = DEFAULT_MODEL
        if "model" in values:
            model = (self.render(origins["model"], values["model"], context, shot=shot_id) or "").strip()
            if not model:
                failed.add("model")
        extra = self.extra(values.get("extra"), origins.get("extra"), context, shot_id)
        if extra is None:
            failed.add("extra")
        media = [self.media_item(self.refs[name]) for name in media_names]
        if "first_frame" in values:
            frame = self.file_ref(origins["first_frame"], values["first_frame"], None, context, shot=shot_id)
            if frame is None:
                failed.add("first_frame")
            else:
                media.append(MediaItem(type=MediaType.FIRST_FRAME, file=frame, origin=origins["first_frame"]))
        return ShotDraft(
            id=shot_id,
            spec=self.source.path,
            index=index,
            model=model,
            prompt=prompt or "",
            negative_prompt=negative,
            media=media,
            parameters=parameters,
            extra=extra or {},
            origins=origins,
            matrix=combo,
            cited=used,
            ratio_on_shot=spec.ratio is not None,
            failed=frozenset(failed),
            sources=self.templates.sources_read(self.source),  # explain: what this shot was made from
        )

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

    def media_item(self, reference: Reference) -> MediaItem:
        return MediaItem(
            type=reference.kind,
            file=reference.file,
            voice=reference.voice,
            reference=reference.name,
            origin=reference.origin,
        )

    def typed(self, name: str, value: Any, origin: Path | None, context: Mapping[str, Any], shot: str) -> Any:
        """Renders a templated typed parameter ("{{ d }}") and converts it; reports bad values."""
        if not isinstance(value, str) or name in _STR_PARAMETERS:
            if isinstance(value, str):
                rendered = self.render(origin or (), value, context, shot=shot)
                return _INVALID if rendered is None else rendered.strip()
            return value
        if not is_template(value):
            kind = "an integer" if name in _INT_PARAMETERS else "true or false"
            self.problem(
                origin or (),
                f"must be {kind}, got the string {value!r}; write it without quotes",
                shot=shot,
                field_name=name,
            )
            return _INVALID
        rendered = self.render(origin or (), value, context, shot=shot)
        if rendered is None:
            return _INVALID
        rendered = rendered.strip()
        if name in _INT_PARAMETERS and re.fullmatch(r"[+-]?\d+", rendered):
            return int(rendered)
        if name in _BOOL_PARAMETERS and rendered.lower() in ("true", "false"):
            return rendered.lower() == "true"
        kind = "an integer" if name in _INT_PARAMETERS else "true or false"
        self.problem(origin or (), f"template gave {shown(rendered)}, which is not {kind}", shot=shot, field_name=name)
        return _INVALID

    def extra(self, raw: Any, origin: Path | None, context: Mapping[str, Any], shot: str) -> dict[str, Any] | None:
        if raw is None:
            return {}
        result: dict[str, Any] = {}
        for key, value in raw.items():
            where: Path = (*(origin or ()), key)
            if key in PARAMETER_FIELDS or key in SHOT_FIELDS:
                self.problem(
                    where,
                    f"'{key}' is a documented field; set it directly instead of under extra",
                    shot=shot,
                    field_name=f"extra.{key}",
                )
                return None
            if isinstance(value, str):
                rendered = self.render(where, value, context, shot=shot)
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
    if path[0] == "shots":
        rest = [str(part) for part in path[2:]]
        return ".".join(rest) if rest else None
    return ".".join(str(part) for part in path)


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


def _type_message(detail: Mapping[str, Any]) -> str:
    expected = _TYPE_NAMES.get(str(detail["type"]))
    got = detail.get("input")
    shown = _toml_type(got)
    if expected:
        return f"must be {expected}, got {shown}"
    return f"{detail['msg']} (got {shown})"


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


_UNION_TAGS = ("str", "bool", "int", "float", "list[str]", "dict[str,any]")


def _trim_union_loc(loc: tuple[Any, ...]) -> Path:
    """Drops pydantic's union-branch names ('int', 'str') from an error location."""
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and (part in _UNION_TAGS or part.startswith(("constrained-", "function-"))))
    )
