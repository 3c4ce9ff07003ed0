"""The emulator's HTTP app: the DashScope and APIYI paths, bodies, headers and errors, plus faults.

Decisions where the API notes are unsure (see README, "The emulator"):
- a create without `X-DashScope-Async: enable` is answered 403 `AccessDenied` "current user api
  does not support synchronous calls";
- the upload policy comes under `data` (as third-party clients read it);
- an unknown or purged task answers `UNKNOWN` natively and 404 on APIYI's `/v1/tasks/{id}`;
- result links are signed with an HMAC and refuse requests that carry an Authorization header,
  as OSS does (403 SignatureDoesNotMatch).

One extension no service has: an `X-Renderspec-Shot` header on create (sent only by the local
provider) names the shot, its take, its references and matrix values for the preview to burn in.
`GET /_emulator/tasks` shows, per task, what was read of it and the names of the headers sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import random
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from renderspec.emulator import work
from renderspec.emulator.jobs import Job, JobBoard, State
from renderspec.emulator.preview import Caption, faststart_cut_short
from renderspec.emulator.wire import SHOT_HEADER, CreateRequest, WireError, parse_caption, parse_create

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
APIYI_CREATE_PATH = "/wan/api/v1/services/aigc/video-generation/video-synthesis"
FAILURES = (
    ("InternalError.Algo", "An internal error occurred while generating the video. Please retry later."),
    ("DataInspectionFailed", "Output data may contain inappropriate content."),
)


@dataclass(slots=True)
class EmulatorOptions:
    """How the emulator behaves; the fault rates make it act like the service on a bad day."""

    latency: float = 2.0
    concurrency: int = 2
    throttle: float = 0.0
    error_rate: float = 0.0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    corrupt_rate: float = 0.0
    short_body_rate: float = 0.0  # results sent as a faststart mp4 cut off mid-body, with no Content-Length
    stall_rate: float = 0.0
    stall_seconds: float = 30.0
    retry_after: float | None = 1.0
    url_ttl: float = 86_400.0
    retention: float = 86_400.0
    seed: int | None = None
    key: str | None = None
    workdir: Path | None = None
    hold: bool = False  # a test aid: tasks stay RUNNING until POST /_emulator/release
    # At most this many injected faults (500, 429, cut download, broken download) in a row for one
    # request (same method, path, query and body); then one goes through. A bad day a client with
    # more attempts than this always rides out, whatever order concurrent requests take the dice in.
    max_faults_in_a_row: int | None = None


class Emulator:
    """Owns the task board, the uploads, the rendered previews and the fault dice."""

    def __init__(self, options: EmulatorOptions, *, clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self.clock = clock
        self._own_workdir = options.workdir is None
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="renderspec-emulator-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.uploads = work.Uploads(self.workdir / "uploads")
        self.rng = random.Random(options.seed)
        self._streaks: dict[str, int] = {}  # faults in a row by request; only the event loop touches it
        self.requests: dict[str, int] = {}
        self.secret = secrets.token_bytes(32)
        self.pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="emulator-render")
        self.board = JobBoard(
            clock=clock,
            start_work=self._start_work,
            latency=options.latency,
            concurrency=options.concurrency,
            retention=options.retention,
            hold=options.hold,
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            return
        for leftover in ("uploads", "tasks"):  # a lent folder keeps only the previews memo
            shutil.rmtree(self.workdir / leftover, ignore_errors=True)
        for result in self.workdir.glob("*.mp4"):
            result.unlink(missing_ok=True)

    # -- the app -----------------------------------------------------------------------------

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with anyio.create_task_group() as group:
                group.start_soon(self._ticker)
                yield
                group.cancel_scope.cancel()

        routes = [
            Route(CREATE_PATH, self.create_native, methods=["POST"]),
            Route(APIYI_CREATE_PATH, self.create_apiyi, methods=["POST"]),
            Route("/api/v1/tasks", self.list_tasks, methods=["GET"]),
            Route("/api/v1/tasks/{task_id}", self.query_native, methods=["GET"]),
            Route("/api/v1/tasks/{task_id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/tasks/{task_id}", self.query_apiyi, methods=["GET"]),
            Route("/api/v1/uploads", self.upload_policy, methods=["GET"]),
            Route("/_oss", self.upload_form, methods=["POST"]),
            Route("/_results/{name}", self.result, methods=["GET", "HEAD"]),
            Route("/_emulator/tasks", self.debug_tasks, methods=["GET"]),
            Route("/_emulator/release", self.debug_release, methods=["POST"]),
            Route("/_emulator/release/{task_id}", self.debug_release, methods=["POST"]),
            Route("/_emulator/stats", self.debug_stats, methods=["GET"]),
        ]
        app = Starlette(routes=routes, lifespan=lifespan)
        counts = self.requests

        async def counting(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and not scope["path"].startswith("/_emulator"):
                route = _route_name(scope["path"], scope["method"])
                counts[route] = counts.get(route, 0) + 1
            await app(scope, receive, send)

        return counting  # type: ignore[return-value]

    async def _ticker(self) -> None:
        while True:
            self.board.tick()
            await anyio.sleep(0.05)

    # -- helpers -----------------------------------------------------------------------------

    def _dice(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def _fault(self, rate: float, identity: str) -> bool:
        """The dice for a fault a client retries; past `max_faults_in_a_row` the request goes through.

        The dice roll either way, so a seeded run draws the same numbers with or without the cap.
        """
        hit = self._dice(rate)
        cap = self.options.max_faults_in_a_row
        if cap is None or not hit:
            return hit
        streak = self._streaks.get(identity, 0)
        if streak >= cap:
            return False
        self._streaks[identity] = streak + 1
        return True

    def _got_through(self, identity: str) -> None:
        self._streaks.pop(identity, None)

    def _identity(self, request: Request, body: bytes = b"") -> str:
        return f"{request.method} {request.url.path}?{request.url.query} {hashlib.sha256(body).hexdigest()}"

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            {"request_id": str(uuid.uuid4()), "code": code, "message": message}, status_code=status, headers=headers
        )

    def _gate(self, request: Request, identity: str | None = None, *, last: bool = True) -> Response | None:
        """Authentication and injected server errors, common to every API path.

        `last`: no further fault dice follow for this request, so passing here means it got through.
        """
        identity = identity or self._identity(request)
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not key or (self.options.key is not None and not hmac.compare_digest(key, self.options.key)):
            return self._error(401, "InvalidApiKey", "Invalid API-key provided.")
        if self._fault(self.options.error_rate, identity):
            return self._error(
                500,
                "InternalError",
                "An internal error has occured, please try again later or contact service support.",
            )
        if last:
            self._got_through(identity)
        return None

    def _stamp(self, moment: float | None) -> str | None:
        if moment is None:
            return None
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment)) + f".{int(moment * 1000) % 1000:03d}"

    def _signed_link(self, request: Request, job: Job) -> str:
        expires = math.ceil(self.clock() + self.options.url_ttl)
        signature = self._signature(job.id, expires)
        base = str(request.base_url).rstrip("/")
        return f"{base}/_results/{job.id}.mp4?Expires={expires}&Signature={signature}"

    def _signature(self, job_id: str, expires: int) -> str:
        return hmac.new(self.secret, f"{job_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    # -- create ------------------------------------------------------------------------------

    async def create_native(self, request: Request) -> Response:
        return await self._create(request, "native")

    async def create_apiyi(self, request: Request) -> Response:
        return await self._create(request, "apiyi")

    async def _create(self, request: Request, flavour: str) -> Response:
        raw = await request.body()
        identity = self._identity(request, raw)
        refused = self._gate(request, identity, last=False)
        if refused is not None:
            return refused
        if self._fault(self.options.throttle, identity):
            headers = {"Retry-After": f"{self.options.retry_after:g}"} if self.options.retry_after is not None else None
            return self._error(
                429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.", headers
            )
        if request.headers.get("x-dashscope-async", "").lower() != "enable":
            return self._error(403, "AccessDenied", "current user api does not support synchronous calls")
        self._got_through(identity)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._error(400, "InvalidParameter", "The request body is not valid JSON.")
        try:
            parsed = parse_create(body)
        except WireError as error:
            return self._error(400, error.code, error.message)
        oss_resolve = request.headers.get("x-dashscope-ossresourceresolve", "").lower() == "enable"
        doomed = self.rng.choice(FAILURES) if self._dice(self.options.fail_rate) else None
        extra = {
            "request": parsed,
            "caption": parse_caption(request.headers.get(SHOT_HEADER)),
            "headers": sorted({name.lower() for name in request.headers}),  # names only: values hold the key
        }
        job = self.board.create(body, flavour=flavour, oss_resolve=oss_resolve, doomed=doomed, extra=extra)
        answer = {"request_id": job.request_id, "output": {"task_id": job.id, "task_status": "PENDING"}}
        if self._dice(self.options.drop_rate):
            return _Cut(json.dumps(answer).encode(), keep=0)
        if self._dice(self.options.stall_rate):
            await anyio.sleep(self.options.stall_seconds)
        return JSONResponse(answer)

    def _start_work(self, job: Job) -> None:
        self.pool.submit(self._work, job)

    def _work(self, job: Job) -> None:
        folder = self.workdir / "tasks" / job.id
        try:
            parsed: CreateRequest = job.extra["request"]
            rendered = work.run(
                parsed,
                caption=job.extra.get("caption"),
                memo=self.workdir / "previews",
                folder=folder,
                result=self.workdir / f"{job.id}.mp4",
                oss_resolve=job.oss_resolve,
                uploads=self.uploads,
                now=self.clock(),
            )
        except work.WorkFailure as failure:
            self.board.finish_work(job, error=(failure.code, failure.message))
        except Exception as error:  # noqa: BLE001 - a broken input must fail the task, not the server
            self.board.finish_work(job, error=("InternalError", f"The task failed: {type(error).__name__}"))
        else:
            job.video, job.size, job.input_video_seconds = rendered.path, rendered.size, rendered.input_video_seconds
            self.board.finish_work(job)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- query, cancel, list -----------------------------------------------------------------

    def _lookup(self, request: Request, unknown: Callable[[str], Response]) -> Response | Job:
        """The task a query names, or the answer to give instead (refused, or unknown)."""
        refused = self._gate(request)
        if refused is not None:
            return refused
        task_id = request.path_params["task_id"]
        job = self.board.get(task_id)
        return unknown(task_id) if job is None else job

    async def query_native(self, request: Request) -> Response:
        found = self._lookup(
            request,
            lambda task_id: JSONResponse(
                {"request_id": str(uuid.uuid4()), "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            ),
        )
        return found if isinstance(found, Response) else JSONResponse(self._native_view(request, found))

    def _native_view(self, request: Request, job: Job) -> dict[str, Any]:
        output: dict[str, Any] = {
            "task_id": job.id,
            "task_status": job.state.value,
            "submit_time": self._stamp(job.created),
        }
        if job.scheduled is not None:
            output["scheduled_time"] = self._stamp(job.scheduled)
        if job.ended is not None:
            output["end_time"] = self._stamp(job.ended)
        answer: dict[str, Any] = {"request_id": str(uuid.uuid4()), "output": output}
        parsed: CreateRequest = job.extra["request"]
        if job.state is State.SUCCEEDED:
            output["orig_prompt"] = parsed.prompt
            output["video_url"] = self._signed_link(request, job)
            answer["usage"] = {
                "duration": round(parsed.duration + job.input_video_seconds, 3),
                "input_video_duration": job.input_video_seconds,
                "output_video_duration": parsed.duration,
                "video_count": 1,
                "SR": int(parsed.resolution.removesuffix("P")),
                "ratio": parsed.ratio,
            }
        elif job.state is State.FAILED and job.failure is not None:
            output["code"], output["message"] = job.failure
        return answer

    async def query_apiyi(self, request: Request) -> Response:
        found = self._lookup(
            request,
            lambda _: JSONResponse(
                {"error": {"message": "[UNKNOWN] task not found or expired", "type": "not_found"}}, status_code=404
            ),
        )
        if isinstance(found, Response):
            return found
        job = found
        view: dict[str, Any] = {"task_id": job.id}
        if job.state is State.PENDING:
            view.update(status="submitted", progress=0)
        elif job.state is State.RUNNING:
            elapsed = self.clock() - (job.scheduled or self.clock())
            view.update(status="in_progress", progress=30 if elapsed > self.options.latency / 2 else 10)
        elif job.state is State.SUCCEEDED:
            view.update(status="completed", progress=100, result_url=self._signed_link(request, job))
        else:
            code, message = job.failure or ("Canceled", "The task was canceled.")
            view.update(status="failed", progress=100, error={"message": f"[{code}] {message}"})
        return JSONResponse(view)

    async def cancel(self, request: Request) -> Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        done, state = self.board.cancel(request.path_params["task_id"])
        if not done:
            return self._error(
                400, "UnsupportedOperation", f"Failed to cancel the task, because its status is {state.value}."
            )
        return JSONResponse({"request_id": str(uuid.uuid4())})

    async def list_tasks(self, request: Request) -> Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        params = request.query_params
        jobs = self.board.all()
        if status := params.get("status"):
            jobs = [job for job in jobs if job.state.value == status]
        if model := params.get("model_name"):
            jobs = [job for job in jobs if job.body.get("model") == model]
        for name in ("start_time", "end_time"):
            if value := params.get(name):
                try:
                    moment = time.mktime(time.strptime(value, "%Y%m%d%H%M%S"))
                except ValueError:
                    return self._error(400, "InvalidParameter", f"{name} must be YYYYMMDDhhmmss")
                if name == "start_time":
                    jobs = [job for job in jobs if job.created >= moment]
                else:
                    jobs = [job for job in jobs if job.created <= moment]
        page_no = max(1, int(params.get("page_no", "1") or 1))
        page_size = min(100, max(1, int(params.get("page_size", "10") or 10)))
        page = jobs[(page_no - 1) * page_size : page_no * page_size]
        data = [
            {
                "task_id": job.id,
                "task_status": job.state.value,
                "model_name": job.body.get("model"),
                "submit_time": self._stamp(job.created),
                "end_time": self._stamp(job.ended),
            }
            for job in page
        ]
        return JSONResponse(
            {
                "request_id": str(uuid.uuid4()),
                "output": {"total": len(jobs), "page_no": page_no, "page_size": page_size, "data": data},
            }
        )

    # -- uploads -----------------------------------------------------------------------------

    async def upload_policy(self, request: Request) -> Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        if request.query_params.get("action") != "getPolicy":
            return self._error(400, "InvalidParameter", "action must be getPolicy")
        model = request.query_params.get("model")
        if not model:
            return self._error(400, "InvalidParameter", "model is required")
        upload_dir = f"dashscope-instant/{hashlib.sha256(model.encode()).hexdigest()[:16]}/{time.strftime('%Y-%m-%d', time.localtime(self.clock()))}/{uuid.uuid4().hex[:12]}"
        expires = int(self.clock() + 300)
        policy = json.dumps({"expiration": expires, "upload_dir": upload_dir, "model": model}).encode().hex()
        signature = hmac.new(self.secret, policy.encode(), hashlib.sha256).hexdigest()
        data = {
            "policy": policy,
            "signature": signature,
            "upload_dir": upload_dir,
            "upload_host": str(request.base_url).rstrip("/") + "/_oss",
            "expire_in_seconds": 300,
            "max_file_size_mb": 100,
            "capacity_limit_mb": 999_999,
            "oss_access_key_id": "LTAI-emulator",
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true",
        }
        return JSONResponse({"request_id": str(uuid.uuid4()), "data": data})

    async def upload_form(self, request: Request) -> Response:
        async with request.form(max_part_size=110 * 2**20) as form:
            policy = str(form.get("policy", ""))
            expected = hmac.new(self.secret, policy.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(str(form.get("Signature", "")), expected):
                return _oss_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                )
            terms = json.loads(bytes.fromhex(policy))
            key = str(form.get("key", ""))
            if terms["expiration"] < self.clock():
                return _oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
            if not key.startswith(terms["upload_dir"] + "/"):
                return _oss_error(
                    403, "AccessDenied", "Invalid according to Policy: Policy Condition failed: key starts-with."
                )
            if key in self.uploads and form.get("x-oss-forbid-overwrite") == "true":
                return _oss_error(
                    409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten."
                )
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return _oss_error(400, "InvalidArgument", "The form has no file.")
            data = await upload.read()
            self.uploads.put(key, data, terms["model"], self.clock())
        return Response(status_code=200)

    # -- results -----------------------------------------------------------------------------

    async def result(self, request: Request) -> Response:
        name = request.path_params["name"]
        job = self.board.get(name.removesuffix(".mp4"))
        if request.headers.get("authorization"):
            return _oss_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            expires = int(request.query_params.get("Expires", ""))
        except ValueError:
            return _oss_error(403, "AccessDenied", "Anonymous access is forbidden for this operation.")
        if (
            job is None
            or job.video is None
            or not hmac.compare_digest(request.query_params.get("Signature", ""), self._signature(job.id, expires))
        ):
            return _oss_error(403, "AccessDenied", "Anonymous access is forbidden for this operation.")
        if expires < self.clock():
            return _oss_error(403, "AccessDenied", "Request has expired.")
        identity = self._identity(request)
        if request.method == "GET" and self._fault(self.options.truncate_rate, identity):
            data = job.video.read_bytes()
            return _Cut(data, keep=len(data) // 2, content_type="video/mp4")
        if request.method == "GET" and self._fault(self.options.corrupt_rate, identity):
            broken = bytearray(job.video.read_bytes())
            broken[: min(4096, len(broken))] = bytes(min(4096, len(broken)))  # full length, broken container
            return Response(bytes(broken), media_type="video/mp4")
        if request.method == "GET" and self._fault(self.options.short_body_rate, identity):
            scratch = self.workdir / f"{job.id}.{uuid.uuid4().hex}.faststart.mp4"
            short = await anyio.to_thread.run_sync(faststart_cut_short, job.video, scratch, self.rng.uniform(0.1, 0.9))
            return _unsized(short, content_type="video/mp4")
        self._got_through(identity)
        return FileResponse(job.video, media_type="video/mp4")

    async def debug_stats(self, request: Request) -> Response:
        """Requests served by kind (a test and benchmark aid): create, query, download, ..."""
        return JSONResponse({"requests": dict(sorted(self.requests.items())), "tasks": len(self.board.all())})

    async def debug_release(self, request: Request) -> Response:
        """Lets held tasks end (a test aid): the one in the path, or all of them and the hold itself."""
        task_id = request.path_params.get("task_id")
        released = self.board.release(task_id)
        if released is None:
            return JSONResponse({"released": [], "message": f"no task {task_id}"}, status_code=404)
        return JSONResponse({"released": [job.id for job in released]})

    async def debug_tasks(self, request: Request) -> Response:
        jobs = self.board.all()
        return JSONResponse(
            {
                "tasks": [
                    {
                        "task_id": job.id,
                        "flavour": job.flavour,
                        "status": job.state.value,
                        "submit_time": self._stamp(job.created),
                        "request": job.body,
                        "code": job.failure[0] if job.state is State.FAILED and job.failure else None,
                        "held": job.held,
                        "headers": job.extra.get("headers", []),
                        "caption": _caption_view(job.extra.get("caption")),
                    }
                    for job in jobs
                ]
            }
        )


def _caption_view(caption: Caption | None) -> dict[str, Any] | None:
    """What the emulator understood of a create's `X-Renderspec-Shot` header (None: none, or unreadable)."""
    if caption is None:
        return None
    return {"shot": caption.shot, "take": caption.take, "refs": dict(caption.refs), "matrix": dict(caption.matrix)}


def _route_name(path: str, method: str) -> str:
    if path.endswith("/video-synthesis"):
        return "create"
    if path.startswith("/_results/"):
        return "download"
    if path.startswith("/api/v1/uploads") or path == "/_oss":
        return "upload"
    if path.endswith("/cancel"):
        return "cancel"
    if path in ("/api/v1/tasks",):
        return "list"
    if path.startswith(("/api/v1/tasks/", "/v1/tasks/")):
        return "query"
    return f"{method} {path}"


def _oss_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{uuid.uuid4().hex}</RequestId></Error>'
    return Response(body, status_code=status, media_type="application/xml")


class _Cut(Response):
    """A response whose connection dies after `keep` of its bytes: what a dropped link looks like."""

    def __init__(self, body: bytes, *, keep: int, content_type: str = "application/json") -> None:
        super().__init__(status_code=200)
        self._full = body
        self._keep = keep
        self._content_type = content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", self._content_type.encode()), (b"content-length", str(len(self._full)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if self._keep:
            await send({"type": "http.response.body", "body": self._full[: self._keep], "more_body": True})
        # Returning without the rest makes the server close the connection mid-response.


def _unsized(body: bytes, *, content_type: str) -> StreamingResponse:
    """A response sent chunked, with no Content-Length, that ends cleanly: a short body looks whole."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    return StreamingResponse(chunks(), media_type=content_type)
