"""Conditional writes, what claims stand on: of writers racing from one version, exactly one wins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any

import pytest

from renderspec.errors import RemoteMissing
from renderspec.remote.backend import is_conditional
from renderspec.remote.folder import FolderBackend

PATH = "v1/claims/" + "ab" * 32 + ".json"


@pytest.fixture(params=["folder", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "folder":
        (tmp_path / "remote").mkdir()
        yield FolderBackend(tmp_path / "remote")
        return
    from renderspec.remote.s3 import S3Backend

    endpoint = request.getfixturevalue("s3_endpoint")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = S3Backend(f"claims-{uuid.uuid4().hex[:10]}", "team", env=env, endpoint=endpoint)
    s3._client.create_bucket(Bucket=s3.bucket)
    yield s3
    s3.close()


def test_a_write_succeeds_only_from_the_version_it_read(backend: Any) -> None:
    assert is_conditional(backend)
    with pytest.raises(RemoteMissing):
        backend.read_versioned(PATH)
    first = backend.create(PATH, b"one")
    assert first is not None
    assert backend.create(PATH, b"two") is None  # something is there: no second create
    assert backend.read_versioned(PATH) == (b"one", first)
    second = backend.replace(PATH, b"two", first)
    assert second is not None and second != first
    assert backend.replace(PATH, b"three", first) is None  # stale: someone wrote since
    assert backend.read_versioned(PATH) == (b"two", second)
    assert backend.remove(PATH, first) is False
    assert backend.remove(PATH, second) is True
    with pytest.raises(RemoteMissing):
        backend.read_versioned(PATH)
    assert backend.replace(PATH, b"four", second) is None  # gone: nothing to replace
    assert backend.create(PATH, b"five") is not None  # and free to claim again


def test_of_racing_writers_exactly_one_wins(tmp_path: Path) -> None:
    """On a shared folder (moto's server does not make its check-and-put atomic, real S3 does)."""
    (tmp_path / "remote").mkdir()
    racers = 8
    barrier = Barrier(racers)

    def create(number: int) -> str | None:
        backend = FolderBackend(tmp_path / "remote")  # one per racer, as separate machines would have
        barrier.wait()
        return backend.create(PATH, f"racer {number}".encode())

    with ThreadPoolExecutor(racers) as pool:
        won = [number for number, version in enumerate(pool.map(create, range(racers))) if version is not None]
    assert len(won) == 1
    data, version = FolderBackend(tmp_path / "remote").read_versioned(PATH)
    assert data == f"racer {won[0]}".encode()

    def replace(number: int) -> str | None:
        backend = FolderBackend(tmp_path / "remote")
        barrier.wait()
        return backend.replace(PATH, f"taker {number}".encode(), version)

    with ThreadPoolExecutor(racers) as pool:
        won = [number for number, new in enumerate(pool.map(replace, range(racers))) if new is not None]
    assert len(won) == 1
    assert FolderBackend(tmp_path / "remote").read_versioned(PATH)[0] == f"taker {won[0]}".encode()


def test_plain_http_servers_cannot_hold_claims() -> None:
    from renderspec.remote.webdav import HttpBackend

    assert not is_conditional(HttpBackend("http://127.0.0.1:9/x", env={}))
