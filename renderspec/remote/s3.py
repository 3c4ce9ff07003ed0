"""The S3 backend: the remote cache's blob operations on an S3-compatible bucket (AWS, MinIO, R2, B2, moto).

boto3 does the signing, the connection pool and the retries (botocore's "standard" mode, as many
attempts as the RetryPolicy allows); this module batches existence questions into listings,
refuses short or oversized bodies, and turns every botocore failure into one `RemoteError`
through `S3Backend._translated`, never with a credential in its message. Credentials come from
the environment Mapping the caller hands in, falling back to boto3's own chain (profiles, SSO,
instance roles). The credentials need s3:ListBucket and s3:GetObject to read (S3 answers 403,
not 404, for a missing object when ListBucket is not granted), s3:PutObject and s3:DeleteObject
to write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from renderspec.errors import (
    RemoteDenied,
    RemoteError,
    RemoteMissing,
    RemoteUnavailable,
    RemoteUnusable,
    SettingsError,
    StorageError,
    WorkspaceError,
)
from renderspec.providers.http import RetryPolicy
from renderspec.remote.backend import MAX_SMALL

CHUNK = 2**20
HEAD_LIMIT = 64  # up to this many paths, HEADs in parallel beat listing a prefix that may hold thousands
WORKERS = 16
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
DENIED_HINT = (
    "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE; "
    "reading needs s3:ListBucket and s3:GetObject, writing s3:PutObject and s3:DeleteObject"
)
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
        "AccountProblem",
    }
)
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
BUSY_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable"})
REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})


class Body(Protocol):
    """What download reads: botocore's StreamingBody, or a stand-in in tests."""

    def read(self, amt: int | None = None, /) -> bytes: ...

    def close(self) -> None: ...


class S3Backend:
    """One bucket and prefix; one boto3 client shared by every thread (boto3 clients are thread-safe)."""

    page_size = 1000  # names per listing page: S3's most; tests lower it to see pagination on a few hundred names

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        env: Mapping[str, str],
        endpoint: str | None = None,
        region: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        try:
            import boto3.session
            import botocore.session
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError
        except ImportError:
            raise SettingsError(
                "an s3:// remote needs boto3", hint="pip install 'renderspec[s3]', or use an https:// or folder remote"
            ) from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.requests = 0
        """HTTP requests sent so far, retries included (counted by a botocore hook): what benchmarks watch."""
        self._count_lock = threading.Lock()
        self._bucket_seen = False  # set once any request reached the bucket: a 404 then means a missing key
        # Kept only to scrub them out of server messages: they must never reach an error's text.
        self._secrets = tuple(env[name] for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if env.get(name))

        key_id, secret = env.get("AWS_ACCESS_KEY_ID") or None, env.get("AWS_SECRET_ACCESS_KEY") or None
        if (key_id is None) != (secret is None):
            given, absent = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")[:: 1 if key_id else -1]
            raise RemoteDenied(
                f"{given} is set but {absent} is not", remote=self.url, hint="set both, or neither to use AWS_PROFILE"
            )
        endpoint = endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
        region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        policy = retry or RetryPolicy()
        options: dict[str, Any] = {
            # total_max_attempts counts the first try, as RetryPolicy.attempts does (max_attempts would not)
            "retries": {"total_max_attempts": max(1, policy.attempts), "mode": "standard"},
            "connect_timeout": 10,
            "read_timeout": 60,
            "max_pool_connections": 32,
        }
        if endpoint:
            # MinIO, moto and most S3-compatible services want path-style addresses, and refuse the
            # flexible checksum headers boto3 sends by default since 1.36.
            options["s3"] = {"addressing_style": "path"}
            if "request_checksum_calculation" in Config.OPTION_DEFAULTS:  # botocore >= 1.36 has them
                options["request_checksum_calculation"] = "when_required"
                options["response_checksum_validation"] = "when_required"
        core = botocore.session.Session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=quick_timestamp)
        try:
            session = boto3.session.Session(
                botocore_session=core,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
                profile_name=env.get("AWS_PROFILE") or None,
                region_name=region,
            )
            self._client: Any = session.client("s3", endpoint_url=endpoint, config=Config(**options))
        except BotoCoreError as error:
            raise self._translated(error, "") from error
        except ValueError as error:  # botocore's answer to an endpoint that is not a URL
            raise RemoteError(f"{self.url}: the endpoint {endpoint!r} is not a URL", remote=self.url) from error
        self._client.meta.events.register("before-send.s3", self._count)

    def __repr__(self) -> str:
        return f"S3Backend({self.url!r})"

    def exists(self, paths: Collection[str]) -> set[str]:
        """Which of `paths` exist: parallel HEADs for a few, else parallel listings of at most ~16 prefixes."""
        wanted = set(paths)
        if not wanted:
            return set()
        if len(wanted) <= HEAD_LIMIT:
            ordered = sorted(wanted)
            with ThreadPoolExecutor(min(WORKERS, len(ordered)), thread_name_prefix="s3-head") as pool:
                found = {path for path, present in zip(ordered, pool.map(self._has, ordered), strict=True) if present}
            if not found and not self._bucket_seen:
                self._check_bucket()  # a HEAD's 404 cannot tell a missing bucket from a missing key
            return found
        names = {self._name(path): path for path in wanted}
        groups = listing_prefixes(names)
        with ThreadPoolExecutor(min(WORKERS, len(groups)), thread_name_prefix="s3-list") as pool:
            listings = pool.map(lambda group: self._listed(group, names.keys()), groups)
            return {names[name] for listing in listings for name in listing}

    def read(self, path: str, limit: int = MAX_SMALL) -> bytes:
        with self._answering(path):
            response = self._client.get_object(Bucket=self.bucket, Key=self._name(path))
            body: Body = response["Body"]
            try:
                length: int | None = response.get("ContentLength")
                if length is not None and length > limit:
                    raise self._too_large(path, length, limit)
                data = body.read(limit + 1)
            finally:
                body.close()
        if len(data) > limit:
            raise self._too_large(path, len(data), limit)
        if length is not None and len(data) != length:
            raise RemoteUnavailable(
                f"{self._where(path)} ended after {len(data)} of {length} bytes", remote=self.url, hint="try again"
            )
        return data

    def download(self, path: str, target: Path, limit: int | None = None) -> int:
        with self._answering(path):
            response = self._client.get_object(Bucket=self.bucket, Key=self._name(path))
            length = response.get("ContentLength")
            if limit is not None and isinstance(length, int) and length > limit:
                response["Body"].close()
                raise RemoteUnusable(f"{self._where(path)} has {length} bytes, more than {limit}", remote=self.url)
            return receive(response["Body"], target, length, self._where(path), self.url, limit)

    def upload(self, path: str, source: Path) -> None:
        # One PUT (S3 takes up to 5 GB in one); a multipart upload would only pay off far above a render's size.
        try:
            file = open(source, "rb")  # noqa: SIM115 (closed below, after the PUT that reads it)
        except OSError as error:
            raise WorkspaceError(f"cannot read {source}: {error.strerror or error}") from error
        with file, self._answering(path):
            self._client.put_object(Bucket=self.bucket, Key=self._name(path), Body=file)

    def write(self, path: str, data: bytes) -> None:
        with self._answering(path):
            self._client.put_object(Bucket=self.bucket, Key=self._name(path), Body=data)

    def delete(self, path: str) -> None:
        with suppress(RemoteMissing), self._answering(path):  # S3 says 204 for an absent key; some clones 404
            self._client.delete_object(Bucket=self.bucket, Key=self._name(path))

    # -- conditional writes (claims): S3's ETag is the version ---------------------------------

    def read_versioned(self, path: str, limit: int = MAX_SMALL) -> tuple[bytes, str]:
        with self._answering(path):
            response = self._client.get_object(Bucket=self.bucket, Key=self._name(path))
            body: Body = response["Body"]
            try:
                data = body.read(limit + 1)
            finally:
                body.close()
        if len(data) > limit:
            raise self._too_large(path, len(data), limit)
        return data, str(response["ETag"])

    def create(self, path: str, data: bytes) -> str | None:
        return self._conditional_put(path, data, IfNoneMatch="*")

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        return self._conditional_put(path, data, IfMatch=version)

    def remove(self, path: str, version: str) -> bool:
        try:
            with self._answering(path):
                self._client.delete_object(Bucket=self.bucket, Key=self._name(path), IfMatch=version)
        except RemoteError as error:
            if _lost_race(error) or isinstance(error, RemoteMissing):
                return False
            raise
        return True

    def _conditional_put(self, path: str, data: bytes, **condition: str) -> str | None:
        try:
            with self._answering(path):
                answer = self._client.put_object(Bucket=self.bucket, Key=self._name(path), Body=data, **condition)
        except RemoteError as error:
            if _lost_race(error) or ("IfMatch" in condition and isinstance(error, RemoteMissing)):
                return None
            raise
        return str(answer["ETag"])

    def close(self) -> None:
        self._client.close()

    # -- internals

    def _name(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def _where(self, path: str) -> str:
        return f"s3://{self.bucket}/{self._name(path)}"

    def _count(self, **_: Any) -> None:
        # A before-send handler that returned something would replace the response: this returns None.
        with self._count_lock:
            self.requests += 1

    def _has(self, path: str) -> bool:
        try:
            with self._answering(path):
                self._client.head_object(Bucket=self.bucket, Key=self._name(path))
        except RemoteMissing:
            return False
        return True

    def _check_bucket(self) -> None:
        """Raises when the bucket does not exist (a listing names NoSuchBucket where a HEAD only says 404)."""
        with self._answering(""):
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._name(""), MaxKeys=1)

    def _listed(self, group: str, names: Collection[str]) -> set[str]:
        """The object names under `group` that are among `names`, page by page (1,000 names a page)."""
        found: set[str] = set()
        relative = group[len(self.prefix) + 1 :] if self.prefix else group
        # Pages by hand: botocore's paginator reloads its models from disk on every get_paginator().
        asked: dict[str, Any] = {"Bucket": self.bucket, "Prefix": group, "MaxKeys": self.page_size}
        with self._answering(f"{relative}*"):
            while True:
                page = self._client.list_objects_v2(**asked)
                found.update(item["Key"] for item in page.get("Contents", ()) if item["Key"] in names)
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    return found
                asked["ContinuationToken"] = token

    def _too_large(self, path: str, size: int, limit: int) -> RemoteError:
        return RemoteUnusable(
            f"{self._where(path)} is {size} bytes, more than the {limit} a record may have",
            remote=self.url,
            hint="the remote holds something renderspec did not write there",
        )

    @contextmanager
    def _answering(self, path: str) -> Iterator[None]:
        """Runs one request's worth of boto3 calls, turning what they raise into a RemoteError."""
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        try:
            yield
        except (BotoCoreError, ClientError, HTTPError) as error:  # urllib3's: what botocore let through unwrapped
            raise self._translated(error, path) from error
        self._bucket_seen = True

    def _translated(self, error: Exception, path: str) -> RemoteError:
        """The RemoteError that says what `error` means for `path`; the one place botocore errors are read."""
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            CredentialRetrievalError,
            HTTPClientError,
            IncompleteReadError,
            NoCredentialsError,
            PartialCredentialsError,
            ProfileNotFound,
        )
        from urllib3.exceptions import HTTPError

        where = self._where(path) if path else self.url
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            told = self._scrubbed(str(error.response.get("Error", {}).get("Message") or code or status))[:200]
            if code in DENIED_CODES or status in (401, 403):
                return RemoteDenied(f"{where}: access denied ({code or status})", remote=self.url, hint=DENIED_HINT)
            if code == "NoSuchBucket":
                return RemoteError(
                    f"{self.url}: the bucket {self.bucket!r} does not exist",
                    remote=self.url,
                    hint="check the remote URL, and the endpoint for services other than AWS",
                )
            if code in MISSING_CODES or status == 404:
                return RemoteMissing(f"{where} is not on the remote", remote=self.url)
            if code in BUSY_CODES or status >= 500 or status == 429:
                return RemoteUnavailable(
                    f"{where}: the remote kept failing ({code or status}: {told})",
                    remote=self.url,
                    hint="try again later",
                )
            if code in REGION_CODES:
                return RemoteError(
                    f"{where}: the bucket is in another region ({told})",
                    remote=self.url,
                    hint="set the remote's region (AWS_REGION, or region in renderspec.toml)",
                )
            return RemoteError(f"{where}: the remote refused the request ({code or status}: {told})", remote=self.url)
        if isinstance(error, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
            return RemoteDenied(f"{self.url}: no usable AWS credentials", remote=self.url, hint=DENIED_HINT)
        if isinstance(error, ProfileNotFound):
            return RemoteDenied(
                f"{self.url}: the AWS profile named by AWS_PROFILE is not configured",
                remote=self.url,
                hint="check AWS_PROFILE and ~/.aws/config",
            )
        if isinstance(error, ConnectionError | HTTPClientError | IncompleteReadError | HTTPError):
            reason = self._scrubbed(str(error))[:200]
            return RemoteUnavailable(
                f"{where}: cannot reach the remote ({reason})", remote=self.url, hint="try again later"
            )
        return RemoteError(f"{where}: {type(error).__name__}: {self._scrubbed(str(error))[:200]}", remote=self.url)

    def _scrubbed(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text


def listing_prefixes(names: Collection[str]) -> list[str]:
    """The prefixes whose listings cover `names`: their common prefix split by the next character.

    For names that differ from a hex character on (`.../v1/objects/<key>/...`) that is at most 16
    listings, which run in parallel; fewer, longer listings would serialise on pagination.
    """
    common = os.path.commonprefix(list(names))  # noqa: RUF071 (character-wise on purpose: keys are split by hex digit)
    if any(len(name) == len(common) for name in names):
        return [common]  # one name is the common prefix itself: its listing already covers the rest
    return sorted({name[: len(common) + 1] for name in names})


def quick_timestamp(value: Any) -> Any:
    """A listing's LastModified, parsed without dateutil (which took most of the time a 1,000-name page costs).

    Extended ISO 8601, what every listing holds, is one `fromisoformat`; anything else (HTTP dates
    in headers, epoch numbers) goes to botocore's own parser.
    """
    if isinstance(value, str) and len(value) >= 19 and value[10] == "T":
        with suppress(ValueError):
            return datetime.fromisoformat(value)
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


def receive(body: Body, target: Path, expected: int | None, where: str, remote: str, limit: int | None = None) -> int:
    """Streams `body` into `target` a chunk at a time and returns the size; fewer bytes than announced is an error.

    On any failure `target` is removed: a short file is never left where a whole one is expected.
    """
    from botocore.exceptions import BotoCoreError

    received = 0
    try:
        try:
            with open(target, "wb") as file:
                while chunk := body.read(CHUNK):
                    file.write(chunk)
                    received += len(chunk)
                    if limit is not None and received > limit:
                        raise RemoteUnusable(f"{where} has more than {limit} bytes", remote=remote)
        except BotoCoreError:
            raise  # some are OSErrors too (read timeouts): the network's fault, not the disk's
        except OSError as error:
            raise StorageError(error, target) from error
        finally:
            body.close()
        if expected is not None and received != expected:
            raise RemoteUnavailable(
                f"{where} ended after {received} of {expected} bytes", remote=remote, hint="try again"
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return received


def _lost_race(error: RemoteError) -> bool:
    """A conditional write another writer beat: 412 Precondition Failed, or 409 while a rival write was in flight."""
    cause = error.__cause__
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")
