"""Remote caches for the team-flow tests, each a real server (or folder) that the tests start themselves.

A peer gives the URL and environment a clone needs, and lets a test look at and tamper with what
is stored, as an attacker or a failing disk would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANARY_USER = "ann"
CANARY_PASSWORD = "canary-pw-8d1f33c0"  # must never appear in any output, file or log but the server's auth check


@dataclass
class Peer:
    kind: str
    url: str
    env: dict[str, str]
    root: Path | None = None  # folder and WebDAV peers store plain files here
    s3: Any = None  # a boto3 client, for the S3 peer
    bucket: str = ""
    prefix: str = ""
    server: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def files(self) -> dict[str, bytes]:
        """Every stored object, by path under the remote's prefix."""
        if self.root is not None:
            return {
                str(path.relative_to(self.root)): path.read_bytes()
                for path in sorted(self.root.rglob("*"))
                if path.is_file()
            }
        found: dict[str, bytes] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :].lstrip("/")
                found[name] = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
        return found

    def metas(self) -> list[str]:
        return [name for name in self.files() if name.endswith("/meta.json")]

    def replace(self, name: str, data: bytes) -> None:
        if self.root is not None:
            (self.root / name).write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}", Body=data)
