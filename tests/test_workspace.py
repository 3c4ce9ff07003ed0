"""The workspace lock, the cache's atomic entries and the lock file's determinism."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from renderspec.cache import Cache, workspace_lock
from renderspec.errors import WorkspaceError
from renderspec.manifest import LockEntry, Manifest


def test_a_second_build_waits_and_says_who_holds_the_lock(tmp_path: Path) -> None:
    notice = io.StringIO()
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
        time.sleep(0.2)
        assert not entered.is_set()
        assert notice.getvalue().startswith("waiting for renderspec build (pid")
    thread.join(timeout=5)
    assert entered.is_set()


def test_cache_entries_appear_whole_and_damage_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    video = cache.staging_file()
    video.write_bytes(b"x" * 100)
    entry = cache.put("ab" * 32, video, {"video_size": 100, "video_sha256": "s"})
    assert cache.has("ab" * 32) and entry.video.read_bytes() == b"x" * 100
    assert not video.exists()
    entry.video.write_bytes(b"short")
    assert cache.get("ab" * 32) is None
    assert "damaged cache entry" in cache.warnings[0]


def test_journal_records_survive_and_damaged_ones_are_skipped(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.record("k1", shot="a", sent_at=1.0)
    cache.record("k1", task_id="t1")
    (tmp_path / "journal" / "broken.json").write_text("{")
    journal = cache.journal()
    assert journal["k1"]["task_id"] == "t1" and journal["k1"]["sent_at"] == 1.0
    assert len(cache.warnings) == 1
    cache.forget("k1")
    assert "k1" not in cache.journal()


def _entry(key: str, task: str) -> LockEntry:
    return LockEntry(
        spec="specs/a.toml",
        key=key,
        output="renders/x.mp4",
        video_sha256="v",
        model="wan2.7-r2v",
        duration=5,
        resolution="720P",
        ratio="16:9",
        task_id=task,
    )


def test_the_lock_is_sorted_deterministic_and_only_rewritten_on_change(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    manifest.set("b-shot", _entry("k2", "t2"))
    manifest.set("a-shot", _entry("k1", "t1"))
    assert manifest.save()
    text = (tmp_path / "renderspec.lock").read_text()
    assert text.index("[shots.a-shot]") < text.index("[shots.b-shot]") < text.index("[tasks]")
    reloaded = Manifest.load(tmp_path)
    assert reloaded.entries == manifest.entries
    assert not reloaded.save()
    reloaded.set("a-shot", _entry("k1", "t9"))
    assert reloaded.save()
    changed = [
        line for line in (tmp_path / "renderspec.lock").read_text().splitlines() if line not in text.splitlines()
    ]
    assert changed == ['a-shot = "t9"']


def test_a_damaged_lock_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "renderspec.lock").write_text("version = [")
    with pytest.raises(WorkspaceError, match=r"renderspec\.lock cannot be read"):
        Manifest.load(tmp_path)
