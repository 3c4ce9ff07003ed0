"""Judging a create request's JSON body as the service would, independently of the client's code.

It reads plain JSON values (never renderspec's request models), so a serialisation bug in the
client cannot be silently agreed to; only the limits and enums (`core.rules`) are shared data.
It also reads the emulator's own extension, the `X-Renderspec-Shot` header (see `parse_caption`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from renderspec.core.rules import MODELS, MediaType, ModelRules
from renderspec.emulator.preview import Caption

SHOT_HEADER = "X-Renderspec-Shot"
"""An emulator-only request header: who the shot is, for the preview to burn in. Only the local
provider sends it, and only to the emulator it started; no real service documents it."""
CAPTION_MAX = 8192  # characters of header value read; a longer one is ignored
CAPTION_TEXT_MAX = 200  # characters of each id, name or value kept


class WireError(Exception):
    """A 400 answer: `code` and `message` as the service would send them."""

    def __init__(self, message: str, code: str = "InvalidParameter") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class WireMedia:
    type: MediaType
    url: str
    voice: str | None


@dataclass(frozen=True, slots=True)
class CreateRequest:
    model: str
    rules: ModelRules
    prompt: str
    negative_prompt: str | None
    media: tuple[WireMedia, ...]
    resolution: str
    ratio: str
    duration: int
    seed: int | None


_SERVICE_DEFAULTS = {"resolution": "1080P", "ratio": "16:9", "duration": 5, "prompt_extend": True, "watermark": False}


def parse_create(body: Any) -> CreateRequest:
    """The validated request, or WireError with the service's kind of message."""
    if not isinstance(body, dict):
        raise WireError(
            "The request body must be a JSON object.", "BadRequest.EmptyInput" if body is None else "InvalidParameter"
        )
    model = body.get("model")
    if not model:
        raise WireError("Model can not be empty.", "BadRequest.EmptyModel")
    if not isinstance(model, str) or model not in MODELS:
        raise WireError("Model not exist.")
    rules = MODELS[model]
    payload = body.get("input")
    if not isinstance(payload, dict) or not payload:
        raise WireError("Field required: input", "BadRequest.EmptyInput")
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise WireError("Field required: input.prompt")
    if len(prompt) > rules.prompt_max:
        raise WireError(f"Range of input length should be [1, {rules.prompt_max}]: input.prompt")
    negative = payload.get("negative_prompt")
    if negative is not None and (not isinstance(negative, str) or len(negative) > rules.negative_prompt_max):
        raise WireError(f"Range of input length should be [0, {rules.negative_prompt_max}]: input.negative_prompt")
    media = _parse_media(payload.get("media"), rules)
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise WireError("json: cannot unmarshal into Go struct field .parameters of type object")
    values = {**_SERVICE_DEFAULTS, **parameters}
    duration = _go_int(values["duration"], "duration")
    for name in ("prompt_extend", "watermark"):
        if not isinstance(values[name], bool):
            raise WireError(
                f"json: cannot unmarshal {_go_type(values[name])} into Go struct field .parameters.{name} of type bool"
            )
    seed = None
    if "seed" in values:
        seed = _go_int(values["seed"], "seed")
        low, high = rules.seeds
        if not low <= seed <= high:
            raise WireError(f"The seed must be in [{low}, {high}]: parameters.seed")
    resolution, ratio = values["resolution"], values["ratio"]
    if resolution not in rules.resolutions:
        raise WireError(
            f"The resolution {resolution!r} is not supported; use one of {', '.join(rules.resolutions)}: parameters.resolution"
        )
    if ratio not in rules.ratios:
        raise WireError(f"The ratio {ratio!r} is not supported; use one of {', '.join(rules.ratios)}: parameters.ratio")
    low, high = rules.durations
    has_video = any(item.type is MediaType.REFERENCE_VIDEO for item in media)
    if has_video and rules.duration_max_with_video is not None:
        high = rules.duration_max_with_video
    if not low <= duration <= high:
        raise WireError(
            f"The duration must be in [{low}, {high}] when {'a reference video is' if has_video else 'no reference video is'} given: parameters.duration"
        )
    return CreateRequest(
        model=model,
        rules=rules,
        prompt=prompt,
        negative_prompt=negative,
        media=media,
        resolution=resolution,
        ratio=ratio,
        duration=duration,
        seed=seed,
    )


def _parse_media(raw: Any, rules: ModelRules) -> tuple[WireMedia, ...]:
    if not raw:
        raise WireError("Field required: input.media")
    if not isinstance(raw, list):
        raise WireError("json: cannot unmarshal into Go struct field .input.media of type array")
    items: list[WireMedia] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise WireError(f"input.media[{index}] must be an object")
        kind = entry.get("type")
        allowed = {*rules.reference_kinds, *([MediaType.FIRST_FRAME] if rules.has_first_frame else [])}
        if kind not in {item.value for item in allowed}:
            raise WireError(
                f"input.media[{index}].type should be one of {', '.join(sorted(item.value for item in allowed))}"
            )
        url = entry.get("url")
        if not isinstance(url, str) or not url:
            raise WireError(f"Field required: input.media[{index}].url")
        voice = entry.get("reference_voice")
        media_type = MediaType(kind)
        if voice is not None:
            if not isinstance(voice, str) or not voice:
                raise WireError(f"input.media[{index}].reference_voice must be a URL string")
            if media_type is MediaType.FIRST_FRAME or rules.voice is None:
                raise WireError(
                    f"input.media[{index}].reference_voice is only allowed on reference_image or reference_video"
                )
        items.append(WireMedia(type=media_type, url=url, voice=voice))
    references = sum(1 for item in items if item.type is not MediaType.FIRST_FRAME)
    frames = len(items) - references
    low, high = rules.references
    if not low <= references <= high:
        raise WireError(
            f"The number of reference_image and reference_video must be in [{low}, {high}], got {references}"
        )
    if frames > 1:
        raise WireError(f"At most one first_frame is allowed, got {frames}")
    return tuple(items)


def _go_int(value: Any, name: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        kind = _go_type(value)
        raise WireError(f"json: cannot unmarshal {kind} into Go struct field .parameters.{name} of type int")
    return int(value)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "number"


def parse_caption(value: str | None) -> Caption | None:
    """Who the shot is, from the `X-Renderspec-Shot` header: JSON such as
    `{"shot": "turn-left", "take": 1, "refs": {"image 1": "mia"}, "matrix": {"side": "left"}}`.

    The header is an aid to the eye, never part of the request: anything missing, malformed or
    too long is ignored (None), and the preview falls back to the request's own text.
    """
    if not value or len(value) > CAPTION_MAX:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("shot"), str) or not data["shot"].strip():
        return None
    take = data.get("take")
    if isinstance(take, bool) or not isinstance(take, int) or not 1 <= take <= 10_000:
        take = None
    refs: dict[Any, Any] = data["refs"] if isinstance(data.get("refs"), dict) else {}
    matrix: dict[Any, Any] = data["matrix"] if isinstance(data.get("matrix"), dict) else {}
    return Caption(
        shot=_short(data["shot"]),
        take=take,
        refs=tuple((_short(str(key)), _short(name)) for key, name in refs.items() if isinstance(name, str))[:32],
        matrix=tuple(
            (_short(str(key)), _short(value if isinstance(value, str) else json.dumps(value)))
            for key, value in matrix.items()
            if isinstance(value, str | int | float | bool)
        )[:32],
    )


def _short(text: str) -> str:
    return " ".join(text.split())[:CAPTION_TEXT_MAX]
