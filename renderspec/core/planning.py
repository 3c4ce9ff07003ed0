"""The planner: expanded drafts plus file facts in, validated shots with requests and keys out.

Pure: the caller reads spec files and computes file facts (digests, pixel sizes, lengths); this
module only decides. Every problem of the whole project is reported, not just the first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from renderspec.core.expansion import DEFAULT_MODEL, Expansion
from renderspec.core.keys import key_of, key_payload
from renderspec.core.locations import Path
from renderspec.core.model import FileFacts, FileRef, LocalFile, MediaItem, PlannedShot, ShotDraft
from renderspec.core.problems import Problem, Severity, sort_key
from renderspec.core.rules import MediaType, ModelRules, output_size, rules_for
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
) -> Plan:
    """Validates every draft against its model's rules and files; keys and prices the valid ones.

    `elsewhere` holds the ids of the project's spec files that were not planned, with their places
    (`FILE:LINE`): a planned shot may not reuse one of them either.
    """
    pricing = pricing or Pricing()
    problems = list(expansion.problems)
    report = _Reporter(expansion, problems)
    elsewhere = elsewhere or {}
    duplicates = _duplicate_ids(expansion.drafts, elsewhere)
    report.duplicates(duplicates, elsewhere)
    bad_references = _check_references(expansion, facts, report)
    checked_frames: set[tuple[str, Path, str, str]] = set()
    shots: list[PlannedShot] = []
    for draft in expansion.drafts:
        rules = rules_for(draft.model)
        if rules is None:
            if "model" not in draft.failed:
                report.shot(draft, unknown_model(draft.model))
            continue
        ok = draft.is_complete and draft.id not in duplicates
        for finding in check_shot(draft, rules):
            report.shot(draft, finding)
            ok = ok and finding.severity is not Severity.ERROR
        for item in draft.media:
            if item.reference is not None:
                # a reference is keyed by the file defining it, which `uses` may make another than the shot's
                ok = ok and (item.origin_file or draft.spec, item.reference) not in bad_references
                ok = _check_shot_voice(draft, item, rules, facts, report, checked_frames) and ok
                for finding in _voice_length(draft, item, facts):
                    report.shot(draft, finding)
                continue
            frame_rule = rule_for_role(rules, item.type)
            if frame_rule is None:
                continue
            spec = item.origin_file or draft.spec  # a first frame may come from an imported [defaults]
            seen = (spec, item.origin, str(item.file), rules.model)
            findings = list(check_file(item.file, frame_rule, facts))
            if any(finding.severity is Severity.ERROR for finding in findings):
                ok = False
            if seen not in checked_frames:
                checked_frames.add(seen)
                on_shot = item.origin[:1] == ("shots",)
                for finding in findings:
                    report.at(spec, item.origin, finding, shot=draft.id if on_shot else None, field_name="first_frame")
        if ok:
            shots.append(_planned(draft, rules, facts, provider_kind, pricing))
    problems = sorted(dict.fromkeys(problems), key=sort_key)
    return Plan(shots=shots, problems=problems, expansion=expansion)


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
    )


def _expected_size(draft: ShotDraft, facts: Mapping[str, FileFacts | None]) -> tuple[int, int] | None:
    """The render's pixel size, where the rules table (or the first frame's shape) fixes it."""
    resolution, ratio = draft.parameters["resolution"], draft.parameters["ratio"]
    frame = draft.first_frame
    if frame is None:
        return output_size(resolution, ratio)
    fact = facts.get(frame.file.path) if isinstance(frame.file, LocalFile) else None
    if fact is None or not fact.width or not fact.height:
        return None
    return output_size(resolution, ratio, (fact.width, fact.height))


def _seconds(ref: FileRef, facts: Mapping[str, FileFacts | None]) -> float | None:
    if not isinstance(ref, LocalFile):
        return None
    fact = facts.get(ref.path)
    return fact.seconds if fact else None


def _duplicate_ids(drafts: list[ShotDraft], elsewhere: Mapping[str, Sequence[str]]) -> dict[str, list[ShotDraft]]:
    by_id: dict[str, list[ShotDraft]] = defaultdict(list)
    for draft in drafts:
        by_id[draft.id].append(draft)
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
                if file is None or rule is None:
                    continue
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
        else:
            self.at(draft.spec, path, finding, shot=draft.id)

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
