"""Alibaba Cloud Model Studio (DashScope) native endpoints, and their temporary `oss://` uploads."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx

from renderspec.core.keys import is_task_id
from renderspec.core.model import ShotLabels
from renderspec.errors import OutcomeUnknown, Rejected
from renderspec.providers.base import MemoryUploadMemo, Submitted, TaskState, TaskStatus, TaskSummary, UploadMemo
from renderspec.providers.http import HttpEngine, json_object, link_field, parse_json, text_field

BASE_URLS: Mapping[str, str] = {
    "beijing": "https://dashscope.aliyuncs.com",
    "singapore": "https://dashscope-intl.aliyuncs.com",
}
CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
UPLOAD_LIFETIME = 48 * 3600
UPLOAD_MARGIN = 6 * 3600  # reuse a link only while it has hours to live: a task may wait in queue
TIME_FIELDS = ("submit_time", "scheduled_time", "end_time")
KNOWN_OUTPUT = frozenset(
    {
        "task_id",
        "task_status",
        "submit_time",
        "scheduled_time",
        "end_time",
        "orig_prompt",
        "actual_prompt",
        "video_url",
        "code",
        "message",
        "task_metrics",
    }
)


def parse_state(value: Any) -> TaskState:
    try:
        return TaskState(str(value).upper())
    except ValueError:
        return TaskState.OTHER


class DashScopeProvider:
    """The native API. `oss://` links need the resolve header, which create adds when they appear."""

    name = "dashscope"
    kind = "wan"

    def __init__(
        self,
        engine: HttpEngine,
        *,
        poll_interval: float = 15.0,
        uploads: UploadMemo | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self._uploads = uploads or MemoryUploadMemo()
        self._clock = clock
        self._upload_locks: dict[tuple[str, str], anyio.Lock] = {}

    async def create(self, body: Mapping[str, Any], *, labels: ShotLabels | None = None) -> Submitted:
        """Sends the documented request only: `labels` are for the local emulator, never the service."""
        return await self._create(body, {})

    async def _create(self, body: Mapping[str, Any], extra_headers: Mapping[str, str]) -> Submitted:
        headers = {"X-DashScope-Async": "enable", **extra_headers}
        if _mentions_oss(body):
            headers["X-DashScope-OssResourceResolve"] = "enable"
        response = await self.engine.call("POST", CREATE_PATH, json=body, headers=headers, idempotent=False)
        return submitted_from(response, who="the service", hint="check the service's task list before sending it again")

    async def query(self, task_id: str) -> TaskStatus:
        response = await self.engine.call("GET", f"/api/v1/tasks/{task_id}")
        answer = json_object(response)
        output: dict[str, Any] = answer["output"] if isinstance(answer.get("output"), dict) else {}
        usage: dict[str, Any] = answer["usage"] if isinstance(answer.get("usage"), dict) else {}
        raw_status = text_field(output.get("task_status")) or "UNKNOWN"
        times = {name: str(output[name])[:40] for name in TIME_FIELDS if isinstance(output.get(name), str)}
        return TaskStatus(
            task_id=task_id,
            state=parse_state(raw_status),
            raw_status=raw_status,
            video_url=link_field(output.get("video_url"), who="the service", task_id=task_id, name="video_url"),
            code=text_field(output.get("code")),
            message=text_field(output.get("message")),
            request_id=text_field(answer.get("request_id")),
            usage=usage,
            times=times,
            unknown_fields=tuple(sorted(set(output) - KNOWN_OUTPUT)),
            raw=answer,
            request_facts=_reported_facts(output, usage),
        )

    def request_facts(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return sent_facts(body)

    async def cancel(self, task_id: str) -> None:
        await self.engine.call("POST", f"/api/v1/tasks/{task_id}/cancel", idempotent=True)

    async def recent_tasks(self, model: str, since_epoch: float, until_epoch: float) -> list[TaskSummary] | None:
        window = {"start_time": _list_time(since_epoch), "end_time": _list_time(until_epoch), "model_name": model}
        summaries: list[TaskSummary] = []
        for page in range(1, 21):
            params = {**window, "page_no": str(page), "page_size": "100"}
            answer = json_object(await self.engine.call("GET", "/api/v1/tasks", params=params))
            container: dict[str, Any] = answer["output"] if isinstance(answer.get("output"), dict) else answer
            items = container.get("data")
            items = items if isinstance(items, list) else []
            for item in items:
                if isinstance(item, dict) and is_task_id(item.get("task_id")):
                    summaries.append(
                        TaskSummary(
                            str(item["task_id"]),
                            parse_state(item.get("task_status")),
                            text_field(item.get("model_name")),
                            _service_time(item.get("submit_time")),
                        )
                    )
            if len(items) < 100:
                break
        return summaries

    async def upload(self, path: Path, sha256: str, model: str) -> str:
        # One upload per file and model, however many shots ask for it at once.
        async with self._upload_locks.setdefault((sha256, model), anyio.Lock()):
            return await self._upload(path, sha256, model)

    async def _upload(self, path: Path, sha256: str, model: str) -> str:
        now = self._clock()
        where = f"{self.name}@{self.engine.base_url}"  # links are bound to one account and region
        cached = self._uploads.get(sha256, where, model, now)
        if cached is not None:
            return cached
        answer = json_object(
            await self.engine.call("GET", "/api/v1/uploads", params={"action": "getPolicy", "model": model})
        )
        policy = answer.get("data") or answer.get("output")
        if not isinstance(policy, dict) or "upload_host" not in policy:
            raise Rejected(f"the upload policy answer has no upload_host: {str(answer)[:200]}")
        key = f"{policy['upload_dir']}/{sha256[:16]}{path.suffix.lower()}"
        form = {
            "OSSAccessKeyId": str(policy.get("oss_access_key_id", "")),
            "Signature": str(policy.get("signature", "")),
            "policy": str(policy.get("policy", "")),
            "key": key,
            "x-oss-object-acl": str(policy.get("x_oss_object_acl", "private")),
            "x-oss-forbid-overwrite": str(policy.get("x_oss_forbid_overwrite", "true")),
            "success_action_status": "200",
        }
        await self.engine.upload_form(str(policy["upload_host"]), form, path)
        url = f"oss://{key}"
        # The memo writes (and fsyncs) a file: off the event loop.
        await anyio.to_thread.run_sync(
            self._uploads.put, sha256, where, model, url, now + UPLOAD_LIFETIME - UPLOAD_MARGIN
        )
        return url

    async def download(self, url: str, destination: Path) -> int:
        return await self.engine.download(url, destination)

    async def aclose(self) -> None:
        await self.engine.aclose()


def submitted_from(response: httpx.Response, *, who: str, hint: str) -> Submitted:
    """The task id of a create answer (DashScope's shape, which APIYI passes through).

    A 2xx answer without a usable one is an unknown outcome: the task may exist, so it must not be
    resent; it is looked for at the service instead.
    """
    try:
        answer = parse_json(response)
        output = answer["output"]
        task_id = output["task_id"]
    except (ValueError, KeyError, TypeError) as error:
        raise OutcomeUnknown(
            f"{who} accepted the create request but its answer has no task id: {response.text[:200]!r}", hint=hint
        ) from error
    if not is_task_id(task_id):
        raise OutcomeUnknown(
            f"{who} accepted the create request but answered a task id renderspec cannot use: {str(task_id)[:80]!r}",
            hint=hint,
        )
    return Submitted(
        task_id=task_id,
        request_id=text_field(answer.get("request_id")),
        status=str(output.get("task_status", "PENDING"))[:40],
    )


def sent_facts(body: Mapping[str, Any]) -> dict[str, Any]:
    """What DashScope reports about a task made from `body`: model, prompt, length, resolution, ratio.

    Defaults are the service's own; the ratio is left out with a first frame (the frame decides it).
    """
    body_input: Mapping[str, Any] = body["input"] if isinstance(body.get("input"), dict) else {}
    parameters: Mapping[str, Any] = body["parameters"] if isinstance(body.get("parameters"), dict) else {}
    media: list[Any] = body_input["media"] if isinstance(body_input.get("media"), list) else []
    facts: dict[str, Any] = {
        "model": body.get("model"),
        "prompt": body_input.get("prompt"),
        "duration": parameters.get("duration", 5),
        "resolution": parameters.get("resolution", "1080P"),
    }
    if not any(isinstance(item, dict) and item.get("type") == "first_frame" for item in media):
        facts["ratio"] = parameters.get("ratio", "16:9")
    return facts


def _reported_facts(output: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any] | None:
    """The task's facts from a query answer, once it carries the prompt (DashScope: when it has finished)."""
    prompt = output.get("orig_prompt")
    if not isinstance(prompt, str):
        return None
    facts: dict[str, Any] = {"prompt": prompt}
    duration, tier, ratio = usage.get("output_video_duration"), usage.get("SR"), usage.get("ratio")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        facts["duration"] = duration
    if isinstance(tier, int | str) and not isinstance(tier, bool) and str(tier).isdigit():
        facts["resolution"] = f"{tier}P"
    if isinstance(ratio, str):
        facts["ratio"] = ratio
    return facts


def _list_time(epoch: float) -> str:
    """The list's time filter: `YYYYMMDDhhmmss` in this machine's local time (see README, Decisions)."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(max(0.0, epoch)))


def _service_time(value: Any) -> float | None:
    """`YYYY-MM-DD HH:MM:SS.mmm` (local time, as the list filter) as epoch seconds."""
    if not isinstance(value, str):
        return None
    whole, _, fraction = value.strip().partition(".")
    try:
        moment = time.mktime(time.strptime(whole, "%Y-%m-%d %H:%M:%S"))
    except (ValueError, OverflowError):
        return None
    return moment + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def _mentions_oss(body: Mapping[str, Any]) -> bool:
    media = body.get("input", {}).get("media", [])
    return any(str(item.get(field, "")).startswith("oss://") for item in media for field in ("url", "reference_voice"))
