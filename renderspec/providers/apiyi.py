"""The APIYI proxy: DashScope's create body on `/wan/api/v1/...`, its own task query on `/v1/tasks/{id}`.

APIYI has no upload API. Local files go as `data:` URIs when they are small enough and the
project allows it, or through a publisher (the user's S3-compatible bucket) that returns a link.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from renderspec.core.model import ShotLabels
from renderspec.errors import Rejected
from renderspec.providers.base import Submitted, TaskState, TaskStatus, TaskSummary
from renderspec.providers.dashscope import sent_facts, submitted_from
from renderspec.providers.http import HttpEngine, json_object, link_field, text_field

BASE_URL = "https://api.apiyi.com"
CREATE_PATH = "/wan/api/v1/services/aigc/video-generation/video-synthesis"
STATES: Mapping[str, TaskState] = {
    "submitted": TaskState.PENDING,
    "queued": TaskState.PENDING,
    "in_progress": TaskState.RUNNING,
    "completed": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.CANCELED,
    "canceled": TaskState.CANCELED,
}
KNOWN_FIELDS = frozenset({"task_id", "status", "progress", "result_url", "error", "fail_reason"})
_CODE_PREFIX = re.compile(r"^\[([A-Za-z0-9_.]+)\]\s*")

Publisher = Callable[[Path, str], Awaitable[str]]


class ApiyiProvider:
    name = "apiyi"
    kind = "wan"

    def __init__(
        self,
        engine: HttpEngine,
        *,
        poll_interval: float = 10.0,
        data_uri_max_bytes: int = 0,
        publisher: Publisher | None = None,
    ) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self._data_uri_max = data_uri_max_bytes
        self._publisher = publisher

    async def create(self, body: Mapping[str, Any], *, labels: ShotLabels | None = None) -> Submitted:
        """Sends the documented request only: `labels` are for the local emulator, never the service."""
        response = await self.engine.call(
            "POST", CREATE_PATH, json=body, headers={"X-DashScope-Async": "enable"}, idempotent=False
        )
        return submitted_from(
            response, who="APIYI", hint="look the shot up on https://api.apiyi.com/task before building again"
        )

    async def query(self, task_id: str) -> TaskStatus:
        try:
            response = await self.engine.call("GET", f"/v1/tasks/{task_id}")
        except Rejected as error:
            if error.status == 404:
                return TaskStatus(
                    task_id=task_id, state=TaskState.UNKNOWN, raw_status="not found", message=error.message
                )
            raise
        answer = json_object(response, who="APIYI")
        raw_status = text_field(answer.get("status"), 40) or ""
        code, message = _failure(answer)
        link = link_field(answer.get("result_url"), who="APIYI", task_id=task_id, name="result_url")
        return TaskStatus(
            task_id=task_id,
            state=STATES.get(raw_status.lower(), TaskState.OTHER),
            raw_status=raw_status,
            video_url=link,
            code=code,
            message=message,
            unknown_fields=tuple(sorted(set(answer) - KNOWN_FIELDS)),
            raw=answer,
        )

    async def cancel(self, task_id: str) -> None:
        raise Rejected("APIYI has no cancel endpoint; the task will run to its end")

    async def recent_tasks(self, model: str, since_epoch: float, until_epoch: float) -> list[TaskSummary] | None:
        return None  # APIYI has no task list: a lost create needs a person (--adopt / --resubmit)

    def request_facts(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        return sent_facts(body)  # the body is DashScope's; APIYI's query reports none of it

    async def upload(self, path: Path, sha256: str, model: str) -> str:
        size = (await anyio.Path(path).stat()).st_size
        if size <= self._data_uri_max:
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            content = await anyio.Path(path).read_bytes()
            return f"data:{kind};base64,{base64.b64encode(content).decode()}"
        if self._publisher is not None:
            return await self._publisher(path, sha256)
        raise Rejected(
            f"APIYI cannot take the local file {path.name}: it has no upload API",
            hint="configure [renderspec.apiyi] s3_bucket to publish files, allow data URIs, or use https:// URLs in the spec",
        )

    async def download(self, url: str, destination: Path) -> int:
        return await self.engine.download(url, destination)

    async def aclose(self) -> None:
        await self.engine.aclose()


def _failure(answer: Mapping[str, Any]) -> tuple[str | None, str | None]:
    error = answer.get("error")
    text = (
        error.get("message")
        if isinstance(error, dict)
        else error
        if isinstance(error, str)
        else answer.get("fail_reason")
    )
    text = text_field(text)
    if not text:
        return None, None
    match = _CODE_PREFIX.match(text)
    if match:
        return match.group(1), text[match.end() :]
    return None, text
