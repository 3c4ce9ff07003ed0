"""The remote tier on a shared folder: what exists, what is verified, in which order entries are written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest

from renderspec.core.keys import key_of
from renderspec.errors import InvalidOutput, RemoteUnavailable
from renderspec.providers.base import Secret
from renderspec.remote.folder import FolderBackend
from renderspec.remote.tier import Remote, meta_path, signature_of, video_path
from renderspec.store import LocalStore

PAYLOAD = {"key_version": 1, "provider_kind": "emulator", "request": {"model": "wan2.7-r2v", "input": {"prompt": "x"}}}
KEY = key_of(PAYLOAD)


def fine(path: Path) -> None:
    """A probe that accepts any video (the bytes here are not an mp4; the record is what is under test)."""


def entry(tmp_path: Path, data: bytes = b"not really an mp4 " * 100) -> tuple[LocalStore, Any]:
    local = LocalStore(tmp_path / "a" / "cache")
    video = tmp_path / "video.mp4"
    video.write_bytes(data)
    import hashlib

    meta = {
        "payload": PAYLOAD,
        "video_sha256": hashlib.sha256(data).hexdigest(),
        "video_size": len(data),
        "task_id": "task-1",
    }
    return local, local.put(KEY, video, meta)


def test_an_entry_is_written_video_first_and_meta_last_so_a_cut_upload_never_exists(tmp_path: Path) -> None:
    _, made = entry(tmp_path)
    order: list[str] = []

    class Recording(FolderBackend):
        def upload(self, path: str, source: Path) -> None:
            order.append(path)
            super().upload(path, source)

        def write(self, path: str, data: bytes) -> None:
            order.append(path)
            raise RemoteUnavailable("the connection dropped", remote=self.url)

    remote = Remote(Recording(tmp_path / "remote"))
    (tmp_path / "remote").mkdir()
    assert remote.push(made) is False
    assert order == [video_path(KEY), meta_path(KEY)]
    assert (tmp_path / "remote" / video_path(KEY)).is_file()
    assert Remote(FolderBackend(tmp_path / "remote")).contains([KEY]) == set()  # a video alone is no entry
    assert remote.unshared == 1 and len(remote.warnings) == 1


def test_a_pushed_entry_is_fetched_whole_into_another_cache(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    _, made = entry(tmp_path)
    assert Remote(FolderBackend(tmp_path / "remote")).push(made)
    reader = Remote(FolderBackend(tmp_path / "remote"))
    assert reader.contains([KEY, "f" * 64]) == {KEY}
    other = LocalStore(tmp_path / "b" / "cache")
    fetched = reader.fetch(KEY, other, fine)
    assert fetched is not None and fetched.video.read_bytes() == made.video.read_bytes()
    assert other.check(KEY) is None


def tamper(tmp_path: Path, change: Any) -> Remote:
    (tmp_path / "remote").mkdir(exist_ok=True)
    _, made = entry(tmp_path)
    Remote(FolderBackend(tmp_path / "remote")).push(made)
    meta_file = tmp_path / "remote" / meta_path(KEY)
    meta = json.loads(meta_file.read_text())
    change(meta, tmp_path / "remote" / video_path(KEY))
    meta_file.write_text(json.dumps(meta))
    return Remote(FolderBackend(tmp_path / "remote"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda meta, video: meta["payload"]["request"]["input"].update(prompt="y"), "does not hash to its key"),
        (lambda meta, video: meta.update(video_size=meta["video_size"] + 1), "bytes, its record says"),
        (lambda meta, video: meta.update(video_sha256="0" * 64), "sha256"),
        (lambda meta, video: meta.update(format=2), "format"),
        (lambda meta, video: meta.update(key="0" * 64), "names another key"),
    ],
    ids=["payload", "size", "sha256", "format", "key"],
)
def test_an_entry_that_fails_verification_never_reaches_the_local_cache(
    tmp_path: Path, change: Any, reason: str
) -> None:
    remote = tamper(tmp_path, change)
    local = LocalStore(tmp_path / "b" / "cache")
    assert remote.fetch(KEY, local, fine) is None
    assert remote.fetch(KEY, local, fine) is None  # asked twice, reported once
    assert local.keys() == set() and not list((tmp_path / "b").rglob("*.mp4"))
    assert len(remote.warnings) == 1 and reason in remote.warnings[0], remote.warnings
    assert KEY not in remote.contains([KEY])  # and the plan no longer offers it


def test_a_video_that_does_not_play_as_the_shot_expects_is_refused(tmp_path: Path) -> None:
    remote = tamper(tmp_path, lambda meta, video: None)

    def wrong_size(path: Path) -> None:
        raise InvalidOutput("the video is 640x360, not 1280x720")

    local = LocalStore(tmp_path / "b" / "cache")
    assert remote.fetch(KEY, local, wrong_size) is None
    assert local.keys() == set() and "1280x720" in remote.warnings[0]


def test_signatures_bind_the_whole_record_to_the_key(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    _, made = entry(tmp_path)
    secret = Secret("team-key")
    Remote(FolderBackend(tmp_path / "remote"), signing_key=secret).push(made)
    stored = json.loads((tmp_path / "remote" / meta_path(KEY)).read_text())
    assert stored["signature"] == signature_of(stored, secret)
    assert Remote(FolderBackend(tmp_path / "remote"), signing_key=secret).fetch(
        KEY, LocalStore(tmp_path / "b" / "cache"), fine
    )
    stored["task_id"] = "task-2"  # any change to the record breaks the signature
    (tmp_path / "remote" / meta_path(KEY)).write_text(json.dumps(stored))
    reader = Remote(FolderBackend(tmp_path / "remote"), signing_key=secret)
    assert reader.fetch(KEY, LocalStore(tmp_path / "c" / "cache"), fine) is None
    assert "signature does not match" in reader.warnings[0]


def test_an_entry_the_remote_holds_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    _, made = entry(tmp_path)
    remote = Remote(FolderBackend(tmp_path / "remote"))
    assert remote.push(made)
    before = (tmp_path / "remote" / meta_path(KEY)).read_bytes()
    shutil.rmtree(tmp_path / "a")
    _, again = entry(tmp_path)
    assert remote.push(again) is False
    assert (tmp_path / "remote" / meta_path(KEY)).read_bytes() == before


def test_a_video_larger_than_its_record_says_is_not_downloaded_past_that_size(tmp_path: Path) -> None:
    remote = tamper(tmp_path, lambda meta, video: video.write_bytes(video.read_bytes() * 50))
    read: list[int] = []

    class Watching(FolderBackend):
        def download(self, path: str, target: Path, limit: int | None = None) -> int:
            try:
                return super().download(path, target, limit)
            finally:
                read.append(target.stat().st_size if target.exists() else 0)

    watching = Remote(Watching(tmp_path / "remote"))
    local = LocalStore(tmp_path / "b" / "cache")
    assert watching.fetch(KEY, local, fine) is None
    assert read == [0] and "more than" in watching.warnings[0] and not watching.offline
    assert local.keys() == set()
    del remote


def test_an_entry_listed_but_gone_when_fetched_is_guarded_not_paid_for(tmp_path: Path) -> None:
    """A network blip between the listing and the fetch must not turn someone's paid render into a new payment."""
    from renderspec.core.model import State
    from renderspec.sharing import fetch_shots

    (tmp_path / "remote").mkdir()
    _, made = entry(tmp_path)

    class Flaky(FolderBackend):
        def read(self, path: str, limit: int = 4 * 2**20) -> bytes:
            raise RemoteUnavailable("the connection was reset", remote=self.url)

    remote = Remote(Flaky(tmp_path / "remote"))

    class Shot:
        id, key, state = "s01", KEY, State.REMOTE

        def with_state(self, state: State, reasons: tuple[str, ...]) -> tuple[State, tuple[str, ...]]:
            return state, reasons

    class Project:
        store = LocalStore(tmp_path / "b" / "cache")

        class manifest:
            entries: ClassVar[dict[str, Any]] = {}

    got = fetch_shots(Project(), None, [Shot()], remote, tolerance=0.0)  # type: ignore[arg-type]
    assert got.refused["s01"][0] is State.MISSING and "could not be fetched" in got.refused["s01"][1][0]
    del made


def test_a_read_only_remote_never_writes(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    _, made = entry(tmp_path)
    remote = Remote(FolderBackend(tmp_path / "remote"), read_only=True)
    assert not remote.writable and remote.push(made) is False
    assert list((tmp_path / "remote").rglob("*")) == []
    assert remote.unshared == 0  # chosen, not a failure: nothing to report as unshared
