"""Publishing local files to the user's S3-compatible bucket as presigned GET links (for APIYI).

APIYI has no upload API, so a local reference must sit somewhere the service can fetch it. The
object key is the file's content hash, so a file is uploaded once per bucket; links are reused
from the upload memo until shortly before they expire. Credentials are handed in by the CLI from
the environment; they sign links but never leave this machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from renderspec.errors import Rejected, SettingsError, Unavailable
from renderspec.providers.base import MemoryUploadMemo, Secret, UploadMemo

LINK_LIFETIME = 48 * 3600
LINK_MARGIN = 6 * 3600


@dataclass(frozen=True, slots=True)
class S3Target:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str
    access_key_id: str
    secret_access_key: Secret
    session_token: Secret | None = None


class S3Publisher:
    def __init__(
        self, target: S3Target, *, uploads: UploadMemo | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise SettingsError(
                "publishing local files for APIYI needs boto3",
                hint="pip install 'renderspec[s3]', or use https:// URLs in the spec",
            ) from None
        self.target = target
        self._uploads = uploads or MemoryUploadMemo()
        self._clock = clock
        self._locks: dict[str, anyio.Lock] = {}
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=target.endpoint_url,
            region_name=target.region,
            aws_access_key_id=target.access_key_id,
            aws_secret_access_key=target.secret_access_key.reveal(),
            aws_session_token=target.session_token.reveal() if target.session_token else None,
            config=Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}),
        )

    def __repr__(self) -> str:
        return f"S3Publisher(bucket={self.target.bucket!r}, endpoint={self.target.endpoint_url!r})"

    async def __call__(self, path: Path, sha256: str) -> str:
        async with self._locks.setdefault(sha256, anyio.Lock()):  # one upload per file at a time
            return await self._link(path, sha256)

    async def _link(self, path: Path, sha256: str) -> str:
        where = f"s3@{self.target.endpoint_url or 'aws'}/{self.target.bucket}"
        now = self._clock()
        cached = self._uploads.get(sha256, where, "any", now)
        if cached is not None:
            return cached
        key = f"{self.target.prefix}{sha256}{path.suffix.lower()}"
        url = await anyio.to_thread.run_sync(self._publish, path, key)
        await anyio.to_thread.run_sync(self._uploads.put, sha256, where, "any", url, now + LINK_LIFETIME - LINK_MARGIN)
        return url

    def _publish(self, path: Path, key: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                self._client.head_object(Bucket=self.target.bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
                self._client.upload_file(str(path), self.target.bucket, key)
            link: str = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.target.bucket, "Key": key}, ExpiresIn=LINK_LIFETIME
            )
            return link
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            raise Rejected(
                f"publishing {path.name} to bucket {self.target.bucket} failed: {code}", code=code
            ) from error
        except BotoCoreError as error:
            raise Unavailable(
                f"publishing {path.name} to bucket {self.target.bucket} failed: {type(error).__name__}"
            ) from error
