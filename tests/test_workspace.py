"""The workspace lock, the store's atomic read-only entries, the journal and the lock file's determinism."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest

from renderspec.errors import StorageError, WorkspaceError
from renderspec.journal import Journal
from renderspec.manifest import LockEntry, Manifest
from renderspec.store import LocalStore
from renderspec.workspace import workspace_lock

KEY_A, KEY_B = "ab" * 32, "cd" * 32


class Notice(io.StringIO):
    """A stream that tells waiting tests the moment something is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Event()

    def write(self, text: str) -> int:
        count = super().write(text)
        self.written.set()
        return count


def test_a_second_build_waits_and_says_who_holds_the_lock(tmp_path: Path) -> None:
    notice = Notice()
    entered = threading.Event()
    with workspace_lock(tmp_path, wait=False):
        with (
            pytest.raises(WorkspaceError, match=r"held by renderspec build \(pid \d+"),
            workspace_lock(tmp_path, wait=False),
        ):
            pass

        def second() -> None:
            with workspace_lock(tmp_path, wait=True, notice=notice):
                entered.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert notice.written.wait(timeout=60), "the waiting build never said who holds the lock"
        assert not entered.is_set()
        assert notice.getvalue().startswith("waiting for renderspec build (pid")
    thread.join(timeout=60)
    assert entered.is_set()


def test_store_entries_appear_whole_read_only_and_damage_is_a_miss(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    video = store.staging_file()
    video.write_bytes(b"x" * 100)
    entry = store.put(KEY_A, video, {"video_size": 100, "video_sha256": "0" * 64})
    assert store.has(KEY_A) and store.has(KEY_A, 100) and not store.has(KEY_A, 99)
    assert entry.video.read_bytes() == b"x" * 100 and not video.exists()
    assert os.stat(entry.video).st_mode & 0o222 == 0 and os.stat(entry.video.parent / "meta.json").st_mode & 0o222 == 0
    os.chmod(entry.video, 0o644)
    entry.video.write_bytes(b"short")
    assert store.get(KEY_A) is None
    assert "damaged cache entry" in store.warnings[0]


def test_a_failed_put_leaves_no_entry_and_no_staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Atomic: a put that dies half-way (here: writing its record) leaves the key absent, not half there."""
    store = LocalStore(tmp_path / "cache")
    video = store.staging_file()
    video.write_bytes(b"x" * 100)

    def full_disk(path: Path, data: bytes, *, mode: int | None = None) -> None:
        raise StorageError(OSError(28, "No space left on device"), path)

    monkeypatch.setattr("renderspec.store.write_atomic", full_disk)
    with pytest.raises(StorageError, match="no space left on device while writing"):
        store.put(KEY_A, video, {"video_size": 100, "video_sha256": "0" * 64})
    assert not store.has(KEY_A) and store.get(KEY_A) is None
    assert not store.path_of(KEY_A).exists()
    assert [p.name for p in store.folder.iterdir() if p.name.startswith(".stage")] == []


def test_keys_that_are_not_content_keys_never_become_paths(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    for bad in ("../../outside/x", "AB" * 32, "a" * 63, "g" * 64):
        assert not store.has(bad) and store.get(bad) is None
        store.remove(bad)  # nothing happens
        with pytest.raises(ValueError):
            store.path_of(bad)


def test_journal_records_survive_and_damaged_ones_are_moved_aside(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journal.write(KEY_A, shot="a", sent_at=1.0)
    journal.write(KEY_A, task_id="t1")
    (tmp_path / "journal" / f"{KEY_B}.json").write_text("{")
    (tmp_path / "journal" / "broken.json").write_text("[1, 2]")
    records = journal.records()
    assert records[KEY_A].task_id == "t1" and records[KEY_A].sent_at == 1.0
    assert set(records) == {KEY_A}
    assert len(journal.warnings) == 2 and all("moved to" in warning for warning in journal.warnings)
    assert len(list((tmp_path / "journal" / "damaged").iterdir())) == 2
    journal.forget(KEY_A)
    assert KEY_A not in journal.records()


def _entry(key: str, task: str) -> LockEntry:
    return LockEntry(
        spec="specs/a.toml",
        key=key,
        output="renders/x.mp4",
        video_sha256="ef" * 32,
        video_size=1234,
        model="wan2.7-r2v",
        duration=5,
        resolution="720P",
        ratio="16:9",
        task_id=task,
    )


def test_the_lock_is_sorted_deterministic_and_only_rewritten_on_change(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    manifest.set("b-shot", _entry(KEY_B, "t2"))
    manifest.set("a-shot", _entry(KEY_A, "t1"))
    assert manifest.save()
    text = (tmp_path / "renderspec.lock").read_text()
    assert text.index("[shots.a-shot]") < text.index("[shots.b-shot]") and "[tasks]" not in text
    reloaded = Manifest.load(tmp_path)
    assert reloaded.entries == manifest.entries
    assert not reloaded.save()
    reloaded.set("a-shot", _entry(KEY_A, "t9"))
    assert reloaded.save()
    changed = [
        line for line in (tmp_path / "renderspec.lock").read_text().splitlines() if line not in text.splitlines()
    ]
    assert changed == ['task_id = "t9"']


def test_a_damaged_lock_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "renderspec.lock").write_text("version = [")
    with pytest.raises(WorkspaceError, match=r"renderspec\.lock is not valid TOML"):
        Manifest.load(tmp_path)


def test_a_garbage_lock_memo_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    manifest.set("a-shot", _entry(KEY_A, "t1"))
    manifest.save()
    memo = tmp_path / "memo"
    memo.mkdir()
    Manifest.load(tmp_path, memo_dir=memo)
    saved = json.loads((memo / "lock-memo.json").read_text())
    saved["data"]["shots"]["a-shot"]["key"] = "../../escape"
    (memo / "lock-memo.json").write_text(json.dumps(saved))
    assert Manifest.load(tmp_path, memo_dir=memo).entries["a-shot"].key == KEY_A
    (memo / "lock-memo.json").write_text("[" * 100_000)
    assert Manifest.load(tmp_path, memo_dir=memo).entries["a-shot"].key == KEY_A
