"""The review page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Opened from a file:// URL, as a reviewer opens a CI artifact: every image loads, every player
reports its shot's duration, nothing is fetched from anywhere but the disk, and the console stays
clean. Skipped only where Chromium is absent and RENDERSPEC_REQUIRE_BROWSER is unset; `.ci/run`
installs Chromium and sets it, so CI never skips this silently.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from renderspec.media import probe
from tests.conftest import fast, run_cli, write_mp4

CHROMIUM = Path("/usr/bin/chromium")
# Read at import: the autouse fixture clears RENDERSPEC_* variables before each test runs.
REQUIRE_BROWSER = bool(os.environ.get("RENDERSPEC_REQUIRE_BROWSER"))
# What Chromium needs here (root, no GPU, a closed network); Playwright adds --headless and a fresh
# empty profile (--user-data-dir) of its own.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SPEC = """
[refs.mia]
image = "refs/mia.png"
[refs.dress]
image = "refs/dress.png"
[refs.walk]
video = "refs/walk.mp4"

[[shots]]
id = "dawn"
media = ["mia", "dress"]
prompt = "{{ mia }} in {{ dress }} opens the window. <img src=x onerror=alert(1)>"
duration = 2

[[shots]]
id = "walk"
media = ["mia", "walk"]
ratio = "9:16"
prompt = "{{ mia }} walks the path of {{ walk }}."
duration = 3
"""
NOON = """
[[shots]]
id = "noon"
media = ["dress"]
prompt = "{{ dress }} dries in the sun."
duration = %d
"""

LATER = """
[[shots]]
id = "dusk"
media = ["dress"]
prompt = "{{ dress }} hangs by the window at dusk."
duration = 4
"""


def _browser_or_skip() -> None:
    if CHROMIUM.exists():
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"RENDERSPEC_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)")
    pytest.skip(
        f"headless Chromium is not installed at {CHROMIUM} (apt-get install chromium); "
        "set RENDERSPEC_REQUIRE_BROWSER=1 to make its absence a failure"
    )


def test_the_review_page_plays_offline_in_chromium(project: Path, tmp_path: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    fast(project)
    write_mp4(project / "specs" / "refs" / "walk.mp4", seconds=2.0, size=(320, 240))
    spec = project / "specs" / "a.toml"
    spec.write_text(SPEC + NOON % 2)
    built = run_cli("build", "--provider", "local", cwd=project)
    assert built.code == 0, built.out + built.err
    # since the build: noon made longer (stale: renders/noon.mp4 is its 2 s render), dusk added (new)
    spec.write_text(SPEC + NOON % 4 + LATER)
    cut = write_mp4(project / "renders" / "cuts" / "master.mp4", seconds=2.5)
    run = run_cli("review", "--provider", "local", cwd=project)
    assert run.code == 0, run.err
    durations = {
        shot["id"]: shot["duration"] for shot in json.loads(run_cli("plan", "--json", cwd=project).out)["shots"]
    }
    expected = {"dawn": 2, "walk": 3, "noon": 4, "dusk": 4}
    assert durations == expected
    cut_seconds = probe(cut).seconds
    assert cut_seconds is not None
    page_url = (project / "renders" / "index.html").as_uri()

    started = time.monotonic()
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "requestfailed",
                lambda request: (
                    None
                    if _stopped_after_metadata(request)
                    else problems.append(f"failed: {request.url} {request.failure}")
                ),
            )
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_url, wait_until="load")
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every(v => v.readyState >= 1 || v.error)", timeout=20_000
            )
            players = page.evaluate(
                """[...document.querySelectorAll('video')].map(v => ({
                    shot: v.dataset.shot || null, cut: v.dataset.cut || null, duration: v.duration,
                    error: v.error && v.error.message, poster: v.poster}))"""
            )
            images = page.evaluate("[...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
            posters = page.evaluate(
                """Promise.all([...document.querySelectorAll('video[poster]')].map(v => new Promise(done => {
                    const image = new Image(); image.onload = () => done(image.naturalWidth);
                    image.onerror = () => done(0); image.src = v.poster; })))"""
            )
            placeholders = page.evaluate(
                "['noon', 'dusk'].map(id => { const p = document.querySelector(`[data-shot=${id}]`); return [p.tagName, p.innerText]; })"
            )
            page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        finally:
            browser.close()
    seconds = time.monotonic() - started

    assert problems == []
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert len(images) >= 5 and all(complete and width > 0 for _, complete, width in images), images
    assert len(posters) == 3 and all(width > 0 for width in posters), posters
    assert [player["cut"] for player in players if player["cut"]] == ["master"]
    for player in players:
        assert player["error"] is None, player
        want = cut_seconds if player["cut"] else durations[player["shot"]]
        assert abs(player["duration"] - want) <= 0.1, (player, want)
    assert sorted(player["shot"] for player in players if player["shot"]) == ["dawn", "walk"]
    for tag, text in placeholders:
        assert tag == "DIV" and "NOT RENDERED" in text.upper()
    assert (tmp_path / "review.png").stat().st_size > 10_000
    assert seconds < 30, f"the browser part took {seconds:.1f} s"


def _stopped_after_metadata(request: Any) -> bool:
    """With preload="metadata" Chromium reads a video's header and may abort the rest of the file: no failure."""
    return request.resource_type == "media" and "ERR_ABORTED" in str(request.failure)
