"""Alibaba Cloud Model Studio (DashScope) native endpoints, and their temporary `oss://` uploads."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx

from renderspec.errors import OutcomeUnknown, Rejected
from renderspec.providers.base import MemoryUploadMemo, Submitted, TaskState, TaskStatus, TaskSummary, UploadMemo
from renderspec.providers.http import HttpEngine, json_object

BASE_URLS: Mapping[str, str] = {
    "beijing": "https://dashscope.aliyuncs.com",
    "singapore": "https://dashscope-intl.aliyuncs.com",
}
CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
UPLOAD_LIFETIME = 48 * 3600
UPLOAD_MARGIN = 6 * 3600  # reuse a link only while it has hours to live: a task may wait in queue
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

    async def create(self, body: Mapping[str, Any]) -> Submitted:
        headers = {"X-DashScope-Async": "enable"}
        if _mentions_oss(body):
            headers["X-DashScope-OssResourceResolve"] = "enable"
        response = await self.engine.call("POST", CREATE_PATH, json=body, headers=headers, idempotent=False)
        return submitted_from(response, who="the service", hint="check the service's task list before sending it again")

    async def query(self, task_id: str) -> TaskStatus:
        response = await self.engine.call("GET", f"/api/v1/tasks/{task_id}")
        answer = json_object(response)
        output: dict[str, Any] = answer["output"] if isinstance(answer.get("output"), dict) else {}
        usage: dict[str, Any] = answer["usage"] if isinstance(answer.get("usage"), dict) else {}
        raw_status = str(output.get("task_status", "")) or "UNKNOWN"
        times = {name: str(output[name]) for name in ("submit_time", "scheduled_time", "end_time") if output.get(name)}
        return TaskStatus(
            task_id=task_id,
            state=parse_state(raw_status),
            raw_status=raw_status,
            video_url=output.get("video_url"),
            code=output.get("code"),
            message=output.get("message"),
            request_id=answer.get("request_id"),
            usage=usage,
            times=times,
            unknown_fields=tuple(sorted(set(output) - KNOWN_OUTPUT)),
            raw=answer,
        )

    async def cancel(self, task_id: str) -> None:
        await self.engine.call("POST", f"/api/v1/tasks/{task_id}/cancel", idempotent=True)

    async def recent_tasks(self, model: str, since_epoch: float) -> list[TaskSummary] | None:
        start = time.strftime("%Y%m%d%H%M%S", time.localtime(since_epoch))
        summaries: list[TaskSummary] = []
        for page in range(1, 21):
            params = {"start_time": start, "model_name": model, "page_no": str(page), "page_size": "100"}
            answer = json_object(await self.engine.call("GET", "/api/v1/tasks", params=params))
            container: dict[str, Any] = answer["output"] if isinstance(answer.get("output"), dict) else answer
            items = container.get("data") or []
            for item in items:
                if isinstance(item, dict) and item.get("task_id"):
                    summaries.append(
                        TaskSummary(
                            str(item["task_id"]),
                            parse_state(item.get("task_status")),
                            item.get("model_name"),
                            item.get("submit_time"),
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
        self._uploads.put(sha256, where, model, url, now + UPLOAD_LIFETIME - UPLOAD_MARGIN)
        return url

    async def download(self, url: str, destination: Path) -> int:
        return await self.engine.download(url, destination)

    async def aclose(self) -> None:
        await self.engine.aclose()


def submitted_from(response: httpx.Response, *, who: str, hint: str) -> Submitted:
    """The task id of a create answer (DashScope's shape, which APIYI passes through).

    A 2xx answer without one is an unknown outcome: the task may exist, so it must not be resent.
    """
    try:
        answer = response.json()
        output = answer["output"]
        return Submitted(
            task_id=str(output["task_id"]),
            request_id=answer.get("request_id"),
            status=str(output.get("task_status", "PENDING")),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise OutcomeUnknown(
            f"{who} accepted the create request but its answer has no task id: {response.text[:200]!r}", hint=hint
        ) from error


def _mentions_oss(body: Mapping[str, Any]) -> bool:
    media = body.get("input", {}).get("media", [])
    return any(str(item.get(field, "")).startswith("oss://") for item in media for field in ("url", "reference_voice"))
