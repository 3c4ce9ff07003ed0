"""A shot's request and files judged against its model's rules, before anything is paid for.

Checks return findings (field, message, severity) and never stop at the first: the planner
attaches files, lines and shot ids. File checks are separate so that a reference used by a
thousand shots is reported once, where it is defined.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from renderspec.core.model import FileFacts, FileRef, LocalFile, RemoteFile, RenderOf, ShotDraft
from renderspec.core.problems import Severity, shown, shown_path
from renderspec.core.rules import MODELS, FileKind, FileRule, MediaType, ModelRules

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Finding:
    field: str
    message: str
    severity: Severity = Severity.ERROR


def _error(field: str, message: str) -> Finding:
    return Finding(field, message)


def _warning(field: str, message: str) -> Finding:
    return Finding(field, message, Severity.WARNING)


def unknown_model(model: str) -> Finding:
    known = ", ".join(sorted(MODELS))
    return _error("model", f"{shown(model)} is not a model renderspec knows; known models: {known}")


def check_shot(draft: ShotDraft, rules: ModelRules) -> Iterator[Finding]:
    """The request-level rules: text lengths, media counts and kinds, parameter ranges.

    Fields that already failed to render are skipped, so one mistake gives one line.
    """
    for finding in _all_checks(draft, rules):
        if finding.field.split(".", 1)[0] not in draft.failed:
            yield finding


def _all_checks(draft: ShotDraft, rules: ModelRules) -> Iterator[Finding]:
    yield from _check_text(draft, rules)
    yield from _check_media(draft, rules)
    yield from _check_parameters(draft, rules)
    for name in draft.extra:
        yield _warning(
            f"extra.{name}",
            f"'{name}' is not a documented parameter of {rules.model}; it is sent as written "
            "and the service may reject or ignore it",
        )


def _check_text(draft: ShotDraft, rules: ModelRules) -> Iterator[Finding]:
    if not draft.prompt.strip():
        yield _error("prompt", "is empty; describe what happens in the shot")
    elif len(draft.prompt) > rules.prompt_max:
        yield _error(
            "prompt",
            f"is {len(draft.prompt)} characters after rendering; allowed at most {rules.prompt_max}",
        )
    if draft.negative_prompt is not None and len(draft.negative_prompt) > rules.negative_prompt_max:
        yield _error(
            "negative_prompt",
            f"is {len(draft.negative_prompt)} characters after rendering; allowed at most {rules.negative_prompt_max}",
        )


def _check_media(draft: ShotDraft, rules: ModelRules) -> Iterator[Finding]:
    references = draft.references
    low, high = rules.references
    images = sum(1 for item in references if item.type is MediaType.REFERENCE_IMAGE)
    videos = len(references) - images
    if not low <= len(references) <= high:
        found = f"{len(references)} reference{'s' if len(references) != 1 else ''}"
        if references:
            found += f" ({images} image{'s' if images != 1 else ''}, {videos} video{'s' if videos != 1 else ''})"
        yield _error("media", f"has {found}; {rules.model} takes {low}–{high} reference images and videos together")
    for item in references:
        if item.type not in rules.reference_kinds:
            allowed = " and ".join(kind.value.removeprefix("reference_") + "s" for kind in rules.reference_kinds)
            yield _error(
                "media",
                f"reference '{item.reference}' is a {item.type.value.removeprefix('reference_')}; {rules.model} accepts only {allowed}",
            )
        if item.voice is not None and rules.voice is None:
            yield _error("media", f"reference '{item.reference}' has a voice; {rules.model} takes no voice clips")
    if draft.first_frame is not None and not rules.has_first_frame:
        yield _error("first_frame", f"{rules.model} takes no first frame")
    for item in references if "prompt" not in draft.failed else ():
        if item.reference is not None and item.reference not in draft.cited:
            yield _warning(
                "media",
                f"reference '{item.reference}' is in media but the prompt never cites it (write {{{{ {item.reference} }}}} in the prompt)",
            )


def _check_parameters(draft: ShotDraft, rules: ModelRules) -> Iterator[Finding]:
    params = draft.parameters
    duration = params["duration"]
    low, high = rules.durations
    has_video = any(item.type is MediaType.REFERENCE_VIDEO for item in draft.references)
    if not isinstance(duration, int) or isinstance(duration, bool):
        yield _error("duration", f"must be an integer number of seconds, got {duration!r}")
    elif not low <= duration <= high:
        yield _error("duration", f"{duration} s is out of range; allowed {low}–{high} s")
    elif has_video and rules.duration_max_with_video is not None and duration > rules.duration_max_with_video:
        yield _error(
            "duration",
            f"{duration} s is too long with a reference video; allowed {low}–{rules.duration_max_with_video} s "
            "when any reference is a video",
        )
    if params["resolution"] not in rules.resolutions:
        yield _error(
            "resolution",
            f"{_shown_value(params['resolution'])} is not allowed; {rules.model} takes {', '.join(rules.resolutions)} (uppercase P)",
        )
    if params["ratio"] not in rules.ratios:
        yield _error(
            "ratio", f"{_shown_value(params['ratio'])} is not allowed; {rules.model} takes {', '.join(rules.ratios)}"
        )
    if draft.first_frame is not None and draft.ratio_on_shot and rules.ratio_ignored_with_first_frame:
        yield _warning("ratio", "is ignored with a first_frame: the video follows the first frame's aspect ratio")
    for name in ("prompt_extend", "watermark"):
        if not isinstance(params[name], bool):
            yield _error(name, f"must be true or false, got {params[name]!r}")
    if "seed" in params:
        seed = params["seed"]
        seed_low, seed_high = rules.seeds
        if not isinstance(seed, int) or isinstance(seed, bool):
            yield _error("seed", f"must be an integer, got {seed!r}")
        elif not seed_low <= seed <= seed_high:
            yield _error("seed", f"{seed} is out of range; allowed {seed_low}–{seed_high}")


def rule_for_role(rules: ModelRules, role: MediaType | None) -> FileRule | None:
    """The file rule of a media role; `None` as the role means a voice clip."""
    if role is None:
        return rules.voice
    if role is MediaType.REFERENCE_VIDEO:
        return rules.video
    return rules.image


def check_file(file: FileRef, rule: FileRule, facts: Mapping[str, FileFacts | None]) -> Iterator[Finding]:
    """A file's kind, format, size, pixels and length against one role's rule."""
    if isinstance(file, RemoteFile):
        if file.sha256 is None:
            pin = "voice_sha256" if rule.kind is FileKind.AUDIO else "sha256"  # a voice has its own pin
            yield _warning(
                "",
                f"{shown_path(file.url)} is not pinned: if what it serves changes, the cache cannot notice; "
                f'add {pin} = "<hex digest>" to pin it',
            )
        return
    if isinstance(file, RenderOf):
        path, fact = file.label, facts.get(file.fact_id)
        if fact is None:
            return  # the upstream shot is not planned: reported there
    else:
        assert isinstance(file, LocalFile)
        path, fact = shown_path(file.path), facts.get(file.path)
    if fact is None:
        yield _error("", f"file not found: {path} (paths are relative to the spec file's folder)")
        return
    if fact.refusal is not None:
        yield _error("", f"{path}: {fact.refusal}")
        return
    if fact.error is not None or fact.kind is None:
        reason = f": {fact.error}" if fact.error else ""
        yield _error("", f"{path} is not a readable {rule.kind.value}{reason}")
        return
    if fact.kind is not rule.kind:
        yield _error(
            "",
            f"{path} is {_article(fact.kind)} {fact.kind.value} ({(fact.format or '?').upper()}), not {_article(rule.kind)} {rule.kind.value}",
        )
        return
    if fact.format not in rule.formats:
        allowed = ", ".join(name.upper() for name in rule.formats)
        yield _error(
            "", f"{path} is {(fact.format or 'unknown').upper()}; allowed {rule.kind.value} formats: {allowed}"
        )
    if fact.size > rule.max_bytes:
        yield _error("", f"{path} is {fact.size / MB:.1f} MB; allowed at most {rule.max_bytes // MB} MB")
    if rule.side is not None and fact.width and fact.height:
        low, high = rule.side
        if not (low <= fact.width <= high and low <= fact.height <= high):
            yield _error("", f"{path} is {fact.width}x{fact.height} px; each side must be {low}–{high} px")
        if rule.max_aspect is not None:
            aspect = max(fact.width, fact.height) / min(fact.width, fact.height)
            if aspect > rule.max_aspect:
                limit = f"{rule.max_aspect:g}"
                yield _error(
                    "",
                    f"{path} is {fact.width}x{fact.height} px, aspect {aspect:.1f}:1; allowed between 1:{limit} and {limit}:1",
                )
    if rule.seconds is not None:
        low_s, high_s = rule.seconds
        if fact.seconds is None:
            yield _error("", f"{path}: its length could not be read; allowed {low_s:g}–{high_s:g} s")
        elif not low_s <= fact.seconds <= high_s:
            yield _error("", f"{path} is {fact.seconds:.2f} s long; allowed {low_s:g}–{high_s:g} s")


def _shown_value(value: object) -> str:
    return shown(value) if isinstance(value, str) else repr(value)


def _article(kind: FileKind) -> str:
    return "an" if kind.value[0] in "aeiou" else "a"
