"""The planner: expanded drafts plus file facts in, validated shots with requests and keys out.

Pure: the caller reads spec files and computes file facts (digests, pixel sizes, lengths); this
module only decides. Every problem of the whole project is reported, not just the first.
"""

from __future__ import annotations

import difflib
from collections import ChainMap, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from renderspec.core.cuts import cut_problems
from renderspec.core.expansion import DEFAULT_MODEL, Expansion
from renderspec.core.keys import key_of, key_payload
from renderspec.core.locations import Path
from renderspec.core.model import (
    FileFacts,
    FileRef,
    LocalFile,
    MediaItem,
    PlannedShot,
    RemoteFile,
    RenderOf,
    ShotDraft,
    ShotLabels,
    State,
)
from renderspec.core.problems import Problem, Severity, sort_key
from renderspec.core.rules import FileKind, MediaType, ModelRules, output_size, rules_for
from renderspec.core.validation import Finding, check_file, check_shot, rule_for_role, unknown_model


@dataclass(frozen=True, slots=True)
class Pricing:
    """Per-second prices by model and resolution; models not listed use their rules' defaults."""

    currency: str = "CNY"
    per_second: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def price(self, rules: ModelRules, resolution: str) -> float | None:
        table = self.per_second.get(rules.model, rules.prices)
        return table.get(resolution)


@dataclass(slots=True)
class Plan:
    shots: list[PlannedShot]
    problems: list[Problem]
    expansion: Expansion
    planner: _Planner | None = None

    def resolve(self, shot_id: str) -> PlannedShot | None:
        """A waiting shot keyed again with the renders that exist now (see `_Planner.resolve`)."""
        return self.planner.resolve(shot_id) if self.planner is not None else None

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if not problem.is_error]

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def line_of(self, shot: PlannedShot) -> int | None:
        return self.expansion.line_of(shot.spec, ("shots", shot.index))


def plan(
    expansion: Expansion,
    facts: Mapping[str, FileFacts | None],
    *,
    provider_kind: str,
    pricing: Pricing | None = None,
    elsewhere: Mapping[str, Sequence[str]] | None = None,
    renders: Mapping[str, FileFacts] | None = None,
) -> Plan:
    """Validates every draft against its model's rules and files; keys and prices the valid ones.

    `elsewhere` holds the ids of the project's spec files that were not planned, with their places
    (`FILE:LINE`): a planned shot may not reuse one of them either. `renders` says, per key, what
    is known of that render's video (at least its sha256): a shot using another shot's render is
    keyed by it, and waits while it is not known.
    """
    planner = _Planner(expansion, facts, provider_kind, pricing or Pricing(), {} if renders is None else renders)
    problems = list(expansion.problems)
    report = _Reporter(expansion, problems)
    elsewhere = elsewhere or {}
    duplicates = _duplicate_ids(expansion.drafts, elsewhere)
    report.duplicates(duplicates, elsewhere)
    bad_references = _check_references(expansion, facts, report)
    order = _Order(expansion.drafts, elsewhere, report)
    planned: dict[int, PlannedShot] = {}
    checked_frames: set[tuple[str, Path, str, str]] = set()
    for position in order.positions:
        draft = expansion.drafts[position]
        if draft.id in duplicates or draft.take_of in duplicates or position in order.blocked:
            continue
        shot = planner.one(draft, report, bad_references, checked_frames)
        if shot is not None:
            planned[position] = shot
    shots = [planned[position] for position in sorted(planned)]
    problems += cut_problems(expansion.cuts, shots, elsewhere)
    problems = sorted(dict.fromkeys(problems), key=sort_key)
    return Plan(shots=shots, problems=problems, expansion=expansion, planner=planner)


class _Order:
    """The drafts in an order where every shot comes after the shots whose renders it uses.

    An unknown shot or a cycle is a located error; the shots caught in it (and those that use
    them) are `blocked` and never planned.
    """

    def __init__(self, drafts: Sequence[ShotDraft], elsewhere: Mapping[str, Sequence[str]], report: _Reporter) -> None:
        self.drafts = drafts
        self.report = report
        self.names = _shot_names(drafts)
        self.positions: list[int] = []
        self.blocked: set[int] = set()
        self.elsewhere = elsewhere
        state: dict[int, int] = {}  # 1: on the path, 2: placed
        for position in range(len(drafts)):
            self._visit(position, state)
        # a shot is blocked when anything it uses is: each comes after its upstream, so one pass settles it
        for position in self.positions:
            if any(up < 0 or up in self.blocked for up in self._upstream(position, report=False)):
                self.blocked.add(position)

    def _visit(self, root: int, state: dict[int, int]) -> None:
        """Places `root` after its upstream shots: a depth-first walk with its own stack (chains may be long)."""
        if root in state:
            return
        path: list[int] = []
        stack: list[tuple[int, Iterator[int]]] = []

        def enter(position: int) -> None:
            state[position] = 1
            path.append(position)
            stack.append((position, iter(self._upstream(position))))

        enter(root)
        while stack:
            position, upstream = stack[-1]
            following = next(upstream, None)
            if following is None:
                stack.pop()
                path.pop()
                state[position] = 2
                self.positions.append(position)
                continue
            if following < 0:
                self.blocked.add(position)
            elif state.get(following) == 1:
                self._cycle([*path[path.index(following) :], following])
            elif following not in state:
                enter(following)

    def _upstream(self, position: int, *, report: bool = True) -> list[int]:
        """The positions of the shots whose renders the draft uses; -1 for a name that is no shot."""
        draft = self.drafts[position]
        found = []
        for item, ref in _render_refs(draft):
            upstream = self.names.get(ref.shot)
            if upstream is None and report:
                self._unknown(draft, item, ref)
            found.append(-1 if upstream is None else upstream)
        return found

    def _cycle(self, cycle: list[int]) -> None:
        ids = [self.drafts[position].id for position in cycle]
        chain = " → ".join(ids)
        for position in dict.fromkeys(cycle[:-1]):
            draft = self.drafts[position]
            self.blocked.add(position)
            for item, ref in _render_refs(draft):
                if self.names.get(ref.shot) in cycle:
                    what = "uses its own render" if len(cycle) == 2 else f"is part of a cycle ({chain})"
                    self.report.at(
                        item.origin_file or draft.spec,
                        item.origin,
                        Finding(
                            _origin_field(item),
                            f"{what}: a shot can only use the renders of shots that do not use its own",
                        ),
                        shot=draft.id,
                    )

    def _unknown(self, draft: ShotDraft, item: MediaItem, ref: RenderOf) -> None:
        if ref.shot in self.elsewhere:
            message = (
                f"uses the render of shot {ref.shot}, which is in a spec file not planned now; "
                "plan the whole project to see this shot"
            )
            self.report.at(
                item.origin_file or draft.spec, item.origin, Finding(_origin_field(item), message, Severity.WARNING)
            )
            return
        close = difflib.get_close_matches(ref.shot, list(self.names), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        self.report.at(
            item.origin_file or draft.spec,
            item.origin,
            Finding(_origin_field(item), f"names shot {ref.shot}, which is not in the project{hint}"),
            shot=draft.id,
        )


def _render_refs(draft: ShotDraft) -> list[tuple[MediaItem, RenderOf]]:
    return [(item, item.file) for item in draft.media if isinstance(item.file, RenderOf)]


def _origin_field(item: MediaItem) -> str:
    if item.type is MediaType.FIRST_FRAME:
        return "first_frame"
    return f"refs.{item.reference}" if item.reference else "media"


def _shot_names(drafts: Sequence[ShotDraft]) -> dict[str, int]:
    """What `{ shot = NAME }` may name: every shot id, and a shot with takes by its own id (its pick)."""
    names: dict[str, int] = {}
    for position, draft in enumerate(drafts):
        names.setdefault(draft.id, position)
    for position, draft in enumerate(drafts):
        if draft.take_of is not None and draft.picked:
            names.setdefault(draft.take_of, position)
    return names


class _Planner:
    """Plans one draft at a time; kept by the Plan so a build can key a waiting shot once its upstream exists."""

    def __init__(
        self,
        expansion: Expansion,
        facts: Mapping[str, FileFacts | None],
        provider_kind: str,
        pricing: Pricing,
        renders: Mapping[str, FileFacts],
    ) -> None:
        self.expansion = expansion
        self.facts = facts
        self.provider_kind = provider_kind
        self.pricing = pricing
        self.renders: Mapping[str, FileFacts] = renders
        self.names = _shot_names(expansion.drafts)
        self.planned: dict[str, PlannedShot] = {}  # by shot id, as last planned

    def one(
        self,
        draft: ShotDraft,
        report: _Reporter,
        bad_references: set[tuple[str, str]],
        checked_frames: set[tuple[str, Path, str, str]],
    ) -> PlannedShot | None:
        rules = rules_for(draft.model)
        if rules is None:
            if "model" not in draft.failed:
                report.shot(draft, unknown_model(draft.model))
            return None
        draft, facts, upstream, waiting, ok = self._resolved(draft, report)
        ok = ok and draft.is_complete
        for finding in check_shot(draft, rules):
            report.shot(draft, finding)
            ok = ok and finding.severity is not Severity.ERROR
        for item in draft.media:
            if item.reference is not None and not isinstance(item.file, RenderOf):
                # a reference is keyed by the file defining it, which `uses` may make another than the shot's
                ok = ok and (item.origin_file or draft.spec, item.reference) not in bad_references
                ok = _check_shot_voice(draft, item, rules, facts, report, checked_frames) and ok
                for finding in _voice_length(draft, item, facts):
                    report.shot(draft, finding)
                continue
            rule = rule_for_role(rules, item.type)
            if rule is None:
                continue
            spec = item.origin_file or draft.spec  # a first frame may come from an imported [defaults]
            seen = (spec, item.origin, str(item.file), rules.model)
            findings = list(check_file(item.file, rule, facts))
            if any(finding.severity is Severity.ERROR for finding in findings):
                ok = False
            if seen not in checked_frames:
                checked_frames.add(seen)
                on_shot = item.origin[:1] == ("shots",)
                for finding in findings:
                    report.at(
                        spec,
                        item.origin,
                        finding,
                        shot=draft.id if on_shot or isinstance(item.file, RenderOf) else None,
                        field_name=_origin_field(item),
                    )
        if not ok:
            return None
        shot = _planned(draft, rules, facts, self.provider_kind, self.pricing, tuple(upstream), tuple(waiting))
        self.planned[shot.id] = shot
        return shot

    def _resolved(
        self, draft: ShotDraft, report: _Reporter
    ) -> tuple[ShotDraft, Mapping[str, FileFacts | None], list[str], list[str], bool]:
        """The draft with each upstream render named by its shot's key (and video, once rendered)."""
        refs = _render_refs(draft)
        if not refs:
            return draft, self.facts, [], [], True
        extra: dict[str, FileFacts | None] = {}
        upstream: list[str] = []
        waiting: list[str] = []
        media: list[MediaItem] = []
        ok = True
        for item in draft.media:
            ref = item.file
            if not isinstance(ref, RenderOf):
                media.append(item)
                continue
            position = self.names.get(ref.shot)
            source = self.planned.get(self.expansion.drafts[position].id) if position is not None else None
            if source is None:
                ok = False  # not planned: its own problems say why
                media.append(item)
                continue
            video = self.renders.get(source.key) if not source.waiting_on else None
            resolved = replace(ref, shot=source.id, upstream_key=source.key, sha256=video.sha256 if video else None)
            if isinstance(ref.frame, float | int) and ref.frame > source.duration:
                report.at(
                    item.origin_file or draft.spec,
                    item.origin,
                    Finding(
                        _origin_field(item),
                        f"asks for the frame at {ref.frame:g} s of shot {source.id}, which is {source.duration} s long",
                    ),
                    shot=draft.id,
                )
                ok = False
            extra[resolved.fact_id] = _render_facts(resolved, source, video)
            upstream.append(source.id)
            if video is None:
                waiting.append(source.id)
            media.append(replace(item, file=resolved))
        return (
            replace(draft, media=media),
            ChainMap(extra, self.facts),  # type: ignore[arg-type]
            list(dict.fromkeys(upstream)),
            list(dict.fromkeys(waiting)),
            ok,
        )

    def resolve(self, shot_id: str) -> PlannedShot | None:
        """The shot planned again now that more renders may exist (None when it cannot be planned).

        The `renders` mapping handed to `plan` is asked again: the edge's reads the cache as it is
        now. Its upstream shots were planned again before it (a build resolves a chain in order), so
        a chain's later links see the real keys of the earlier ones.
        """
        position = self.names.get(shot_id)
        if position is None or self.expansion.drafts[position].id != shot_id:
            return None  # a shot's own id names its pick: only a planned id is resolved
        return self.one(self.expansion.drafts[position], _Reporter(self.expansion, []), set(), set())


def _render_facts(ref: RenderOf, source: PlannedShot, video: FileFacts | None) -> FileFacts:
    """What validation needs to know of another shot's render (or one frame of it) before it exists."""
    width, height = source.expected_size or (None, None)
    if ref.frame is None:
        return FileFacts(
            sha256=video.sha256 if video else "",
            size=video.size if video else 0,
            kind=FileKind.VIDEO,
            format="mp4",
            width=width,
            height=height,
            seconds=float(source.duration),
        )
    return FileFacts(sha256="", size=0, kind=FileKind.IMAGE, format="png", width=width, height=height)


def request_body(draft: ShotDraft, rules: ModelRules) -> dict[str, Any]:
    """The JSON body the service receives, with files still as LocalFile/RemoteFile values."""
    media: list[dict[str, Any]] = []
    for item in draft.media:
        entry: dict[str, Any] = {"type": item.type.value, "url": item.file}
        if item.voice is not None:
            entry["reference_voice"] = item.voice
        media.append(entry)
    body_input: dict[str, Any] = {"prompt": draft.prompt}
    if draft.negative_prompt is not None:
        body_input["negative_prompt"] = draft.negative_prompt
    body_input["media"] = media
    parameters = dict(draft.parameters)
    if draft.first_frame is not None and rules.ratio_ignored_with_first_frame:
        parameters.pop("ratio", None)  # ignored by the service: keeping it would only churn keys
    parameters.update(draft.extra)
    return {"model": draft.model, "input": body_input, "parameters": parameters}


def _planned(
    draft: ShotDraft,
    rules: ModelRules,
    facts: Mapping[str, FileFacts | None],
    provider_kind: str,
    pricing: Pricing,
    upstream: tuple[str, ...] = (),
    waiting: tuple[str, ...] = (),
) -> PlannedShot:
    request = request_body(draft, rules)
    payload = key_payload(provider_kind, request, facts)
    digests: dict[str, str] = {}
    video_seconds: float | None = 0.0
    for item in draft.media:
        for ref in (item.file, item.voice):
            if isinstance(ref, LocalFile):
                fact = facts.get(ref.path)
                digests[ref.path] = fact.sha256 if fact else ""
        if item.type is MediaType.REFERENCE_VIDEO and video_seconds is not None:
            seconds = _seconds(item.file, facts)
            video_seconds = None if seconds is None else video_seconds + seconds
    duration = int(draft.parameters["duration"])
    price = pricing.price(rules, draft.parameters["resolution"])
    cost = None
    if price is not None and video_seconds is not None:
        cost = round((duration + video_seconds) * price, 4)
    return PlannedShot(
        id=draft.id,
        spec=draft.spec,
        index=draft.index,
        key=key_of(payload),
        payload=payload,
        expected_size=_expected_size(draft, facts),
        request=request,
        model=draft.model,
        duration=duration,
        resolution=draft.parameters["resolution"],
        ratio=request["parameters"].get("ratio"),
        digests=digests,
        input_video_seconds=video_seconds,
        cost=cost,
        currency=pricing.currency,
        sources=draft.sources,
        labels=shot_labels(draft),
        take=draft.take,
        take_of=draft.take_of,
        picked=draft.picked,
        upstream=upstream,
        waiting_on=waiting,
        state=State.WAITING if waiting else State.NEW,
        reasons=(f"waiting on {', '.join(waiting)}",) if waiting else ("new shot",),
    )


def _expected_size(draft: ShotDraft, facts: Mapping[str, FileFacts | None]) -> tuple[int, int] | None:
    """The render's pixel size, where the rules table (or the first frame's shape) fixes it."""
    resolution, ratio = draft.parameters["resolution"], draft.parameters["ratio"]
    frame = draft.first_frame
    if frame is None:
        return output_size(resolution, ratio)
    fact = _fact(frame.file, facts)
    if fact is None or not fact.width or not fact.height:
        return None
    return output_size(resolution, ratio, (fact.width, fact.height))


def _seconds(ref: FileRef, facts: Mapping[str, FileFacts | None]) -> float | None:
    fact = _fact(ref, facts)
    return fact.seconds if fact else None


def _fact(ref: FileRef, facts: Mapping[str, FileFacts | None]) -> FileFacts | None:
    if isinstance(ref, LocalFile):
        return facts.get(ref.path)
    return facts.get(ref.fact_id) if isinstance(ref, RenderOf) else None


def _duplicate_ids(drafts: list[ShotDraft], elsewhere: Mapping[str, Sequence[str]]) -> dict[str, list[ShotDraft]]:
    """Ids claimed more than once. A shot with takes claims its own id too, through its pick:
    `renders/<id>.mp4`, the lock's `[shots.<id>]` and `{ shot = "<id>" }` all name the pick."""
    by_id: dict[str, list[ShotDraft]] = defaultdict(list)
    for draft in drafts:
        by_id[draft.id].append(draft)
        if draft.take_of is not None and draft.picked:
            by_id[draft.take_of].append(draft)
    return {shot_id: group for shot_id, group in by_id.items() if len(group) + len(elsewhere.get(shot_id, ())) > 1}


def _check_references(
    expansion: Expansion, facts: Mapping[str, FileFacts | None], report: _Reporter
) -> set[tuple[str, str]]:
    """Checks each reference's files once, against every model that uses it."""
    models: dict[tuple[str, str], set[str]] = defaultdict(set)
    for draft in expansion.drafts:
        for item in draft.references:
            if item.reference is not None:
                models[(item.origin_file or draft.spec, item.reference)].add(draft.model)
    bad: set[tuple[str, str]] = set()
    for spec, reference in expansion.references:
        messages: set[str] = set()
        for model in sorted(models.get((spec, reference.name)) or {DEFAULT_MODEL}):
            rules = rules_for(model)
            if rules is None:
                continue
            roles: list[tuple[str, FileRef | None, MediaType | None]] = [
                ("image" if reference.kind is MediaType.REFERENCE_IMAGE else "video", reference.file, reference.kind),
                ("voice", reference.voice, None),
            ]
            for key, file, role in roles:
                rule = rule_for_role(rules, role)
                if file is None or rule is None or isinstance(file, RenderOf):
                    continue  # a render is checked with each shot that uses it
                for finding in check_file(file, rule, facts):
                    if finding.severity is Severity.ERROR:
                        bad.add((spec, reference.name))
                    if finding.message in messages:
                        continue
                    messages.add(finding.message)
                    report.at(spec, (*reference.origin, key), finding, field_name=f"refs.{reference.name}.{key}")
    return bad


def _check_shot_voice(
    draft: ShotDraft,
    item: MediaItem,
    rules: ModelRules,
    facts: Mapping[str, FileFacts | None],
    report: _Reporter,
    checked: set[tuple[str, Path, str, str]],
) -> bool:
    """A voice the shot gives a reference (`{ ref = "ben", voice = "..." }`) checked as a voice clip,
    reported once where it is written; False when it may not be sent."""
    rule = rule_for_role(rules, None)
    if item.voice is None or item.voice_origin is None or rule is None:
        return True  # the reference's own voice is checked with the reference; no rule: check_shot says so
    findings = list(check_file(item.voice, rule, facts))
    seen = (draft.spec, item.voice_origin, str(item.voice), rules.model)
    if seen not in checked:
        checked.add(seen)
        for finding in findings:
            report.at(draft.spec, item.voice_origin, finding, shot=draft.id, field_name="media")
    return not any(finding.severity is Severity.ERROR for finding in findings)


def _voice_length(draft: ShotDraft, item: MediaItem, facts: Mapping[str, FileFacts | None]) -> Iterator[Finding]:
    """A voice clip longer than the shot is cut off by the service: worth a warning, not an error."""
    voice, duration = item.voice, draft.parameters.get("duration")
    if not isinstance(voice, LocalFile) or not isinstance(duration, int) or isinstance(duration, bool):
        return
    fact = facts.get(voice.path)
    if fact is not None and fact.seconds is not None and fact.seconds > duration + 0.05:
        yield Finding(
            "media",
            f"the voice of '{item.reference}' ({voice.path}) is {fact.seconds:.1f} s long, "
            f"longer than the shot's {duration} s: the end of it is not heard",
            Severity.WARNING,
        )


class _Reporter:
    """Turns findings into problems with files, lines and shot ids."""

    def __init__(self, expansion: Expansion, problems: list[Problem]) -> None:
        self.expansion = expansion
        self.problems = problems

    def at(
        self, spec: str, path: Path, finding: Finding, *, shot: str | None = None, field_name: str | None = None
    ) -> None:
        self.problems.append(
            Problem(
                file=spec,
                line=self.expansion.line_of(spec, path),
                shot=shot,
                field=field_name or finding.field,
                message=finding.message,
                severity=finding.severity,
            )
        )

    def shot(self, draft: ShotDraft, finding: Finding) -> None:
        """Reports at the shot, or once at [defaults] when the value came from there."""
        name = finding.field.split(".", 1)[0]
        path = draft.origins.get(name, ("shots", draft.index, name))
        if path[:1] == ("defaults",):  # the defaults of the shot's file, or of a file it `uses`
            spec = draft.origin_files.get(name, draft.spec)
            self.at(spec, path, finding, field_name=f"defaults.{finding.field}")
        else:  # a shot's takes share its spec: one problem of them all is said once, of the shot
            self.at(draft.spec, path, finding, shot=draft.take_of or draft.id)

    def duplicates(self, duplicates: Mapping[str, list[ShotDraft]], elsewhere: Mapping[str, Sequence[str]]) -> None:
        for shot_id, group in duplicates.items():
            places = [f"{d.spec}:{self.expansion.line_of(d.spec, ('shots', d.index, 'id')) or '?'}" for d in group]
            places = list(dict.fromkeys([*places, *elsewhere.get(shot_id, ())]))
            count = len(group) + len(elsewhere.get(shot_id, ()))
            reported: set[tuple[str, int]] = set()
            for draft in group:
                if (draft.spec, draft.index) in reported:  # one matrix entry: one error, not one per combination
                    continue
                reported.add((draft.spec, draft.index))
                siblings = [other for other in group if (other.spec, other.index) == (draft.spec, draft.index)]
                varying = sorted(
                    name for name in draft.matrix if len({repr(other.matrix.get(name)) for other in siblings}) > 1
                )
                hint = ""
                if varying:
                    names = ", ".join(varying)
                    example = "-".join(f"{{{{ {name} }}}}" for name in varying)
                    hint = f' (the id does not use the matrix variable{"s" if len(varying) > 1 else ""} {names}: e.g. id = "{shot_id}-{example}")'
                elif draft.matrix:
                    hint = ' (add the matrix variables to the id, e.g. id = "walk-{{ side }}")'
                self.at(
                    draft.spec,
                    ("shots", draft.index, "id"),
                    Finding(
                        "id",
                        f"'{shot_id}' is used by {count} shots ({', '.join(places)}); shot ids must be unique across the project{hint}",
                    ),
                    shot=shot_id,
                )


# -- labels for previews ------------------------------------------------------------------------


def shot_labels(draft: ShotDraft) -> ShotLabels:
    """Who the shot is, for the local emulator's previews: citations numbered as the prompt's are
    (images and videos apart, in media order), each with its reference's name (or file's)."""
    numbers = {MediaType.REFERENCE_IMAGE: 0, MediaType.REFERENCE_VIDEO: 0}
    refs: list[tuple[str, str]] = []
    for item in draft.media:
        name = item.reference or _file_name(item.file)
        if item.type is MediaType.FIRST_FRAME:
            refs.append(("first frame", name))
            continue
        numbers[item.type] += 1
        refs.append((f"{'image' if item.type is MediaType.REFERENCE_IMAGE else 'video'} {numbers[item.type]}", name))
    matrix = tuple((str(name), _as_text(value)) for name, value in draft.matrix.items())
    return ShotLabels(shot=draft.take_of or draft.id, take=draft.take, refs=tuple(refs), matrix=matrix)


def _file_name(file: FileRef) -> str:
    if isinstance(file, LocalFile):
        return file.path.rsplit("/", 1)[-1]
    if isinstance(file, RemoteFile):
        return file.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or file.url
    at = f"{file.frame} frame" if isinstance(file.frame, str) else f"{file.frame:g} s" if file.frame is not None else ""
    return f"{file.shot}, {at}" if at else f"{file.shot}"


def _as_text(value: Any) -> str:
    """A matrix value as the spec writes it: `left`, `9:16`, `2`, `true`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
