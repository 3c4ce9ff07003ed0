"""`renderspec review`: the page's content and escaping, placeholders, takes, stills and the contact sheet.

These read the HTML itself; tests/test_review_browser.py opens the page in headless Chromium.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from renderspec.core.model import LocalFile, PlannedShot, RenderOf, State
from renderspec.review import RefView, ReviewPage, ShotView, page_html, prompt_html, relative_url
from tests.conftest import fast, run_cli, write_mp4, write_png

SPEC = """
[refs.mia]
image = "refs/mia.png"
[refs.dress]
image = "refs/dress.png"

[[shots]]
id = "one"
media = ["mia", "dress"]
prompt = "{{ mia }} wears {{ dress }}. <script>alert('one')</script> & \\"quotes\\" <b>bold</b>"
duration = 2

[[shots]]
id = "two"
media = ["dress"]
prompt = "{{ dress }} on a hanger"
duration = 3
"""


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def planned(shot_id: str, **fields: Any) -> PlannedShot:
    """A hand-made planned shot (what the planner would give), for pages built from plain data."""
    values: dict[str, Any] = {
        "id": shot_id,
        "spec": "specs/a.toml",
        "index": 0,
        "key": "ab" * 32,
        "request": {"model": "wan2.7-r2v", "input": {"prompt": "image 1 waves", "media": []}, "parameters": {}},
        "payload": {},
        "expected_size": (1280, 720),
        "model": "wan2.7-r2v",
        "duration": 5,
        "resolution": "720P",
        "ratio": "16:9",
        "digests": {},
        "input_video_seconds": 0.0,
        "cost": 3.0,
        "currency": "CNY",
    }
    values.update(fields)
    return PlannedShot(**values)


def test_a_prompt_is_escaped_and_no_spec_text_becomes_markup(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(SPEC)
    run = run_cli("review", cwd=project)
    assert run.code == 0, run.err
    page = (project / "renders" / "index.html").read_text()
    assert "<script" not in page and "<b>bold" not in page
    assert (
        "&lt;script&gt;alert(&#x27;one&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot; &lt;b&gt;bold&lt;/b&gt;" in page
    )
    parsed = Tags(page)
    assert not parsed.all("script")
    assert "<script>alert('one')</script>" in "".join(parsed.text)  # shown as text, exactly as written


def test_shots_without_a_render_are_placeholders_saying_why_never_a_video(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(SPEC)
    run = run_cli("review", cwd=project)
    assert run.code == 0, run.err
    assert "review: wrote renders/index.html: 2 shots (0 rendered, 2 not rendered)" in run.out
    page = (project / "renders" / "index.html").read_text()
    parsed = Tags(page)
    assert parsed.all("video") == []
    placeholders = [attrs for attrs in parsed.all("div") if attrs.get("class") == "placeholder"]
    assert [attrs["data-shot"] for attrs in placeholders] == ["one", "two"]
    assert page.count("<b>not rendered</b>") == 2 and "new shot: renderspec build renders it" in page
    assert "2 shots, 0 rendered, 2 not rendered" in page and "a build would render 2 shots, est. ¥3.00" in page


def test_each_shot_in_plan_order_with_state_key_duration_cost_and_citations(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(SPEC)
    assert run_cli("review", cwd=project).code == 0
    page = (project / "renders" / "index.html").read_text()
    assert page.index('id="shot-one"') < page.index('id="shot-two"')
    assert "2 s" in page and "est. ¥1.20" in page and "est. ¥1.80" in page
    assert '<span class="state state-new">new</span>' in page
    # the citations are the references' names, with their thumbnails (one still per file, by content)
    assert re.search(
        r'<span class=cite title="image 1"><img src="review/[0-9a-f]{20}-image.jpg" alt="">mia</span>', page
    )
    assert re.search(
        r'<span class=cite title="image 2"><img src="review/[0-9a-f]{20}-image.jpg" alt="">dress</span>', page
    )
    stills = sorted(p.name for p in (project / "renders" / "review").iterdir())
    assert len(stills) == 2  # mia and dress, though dress is cited twice
    for img in Tags(page).all("img"):
        assert (project / "renders" / str(img["src"])).is_file()


def test_citations_map_through_the_media_order_and_unknown_numbers_stay_as_written() -> None:
    refs = [
        RefView(name="ava", label="image 1", thumb="review/a.jpg"),
        RefView(name="walk", label="video 1", thumb=None, note="remote file"),
        RefView(name="ben", label="image 2", thumb="review/b.jpg"),
    ]
    shown = prompt_html("Image 2 meets image 1 in video 1; image 3 is <none>.", refs)
    assert shown == (
        '<span class=cite title="Image 2"><img src="review/b.jpg" alt="">ben</span> meets '
        '<span class=cite title="image 1"><img src="review/a.jpg" alt="">ava</span> in '
        '<span class=nw><span class=cite title="video 1">walk</span>;</span> image 3 is &lt;none&gt;.'
    )
    assert prompt_html("image 12 and image 1x", refs) == "image 12 and image 1x"


def test_takes_sit_side_by_side_with_the_pick_marked() -> None:
    takes = [
        planned(
            f"hero.take{n}",
            take=n,
            take_of="hero",
            picked=n == 2,
            request={"input": {"prompt": "waves"}, "parameters": {"seed": 6 + n}},
        )
        for n in (1, 2, 3)
    ]
    views = [
        ShotView(shot=takes[0], video="hero.take1.mp4", poster="review/1.jpg"),
        ShotView(shot=takes[1], video="hero.take2.mp4"),
        ShotView(shot=takes[2].with_state(State.NEW, ("new shot",)), missing="new shot"),
    ]
    alone = planned("after", index=1)
    page = page_html(ReviewPage(shots=(*views, ShotView(shot=alone, missing="x"))))
    article = page[page.index('<article class="shot takes" id="shot-hero">') : page.index('id="shot-after"')]
    assert "<h3>hero <small>3 takes</small></h3>" in article
    row = Tags(article)
    figures = [attrs for attrs in row.all("figure")]
    assert [attrs["id"] for attrs in figures] == ["shot-hero.take1", "shot-hero.take2", "shot-hero.take3"]
    assert [attrs["class"] for attrs in figures] == ["take", "take picked", "take"]
    assert article.count("<span class=pick>pick</span>") == 1
    assert article.index("<b>take 2</b> <span class=pick>pick</span>") > article.index("<b>take 1</b>")
    assert [attrs["src"] for attrs in row.all("video")] == ["hero.take1.mp4", "hero.take2.mp4"]
    assert "seed 8" in article and article.count("<p class=prompt>") == 1  # one prompt for the takes
    assert '<div class=placeholder style="aspect-ratio: 1280 / 720" data-shot="hero.take3">' in article


def test_the_page_links_only_relative_urls_and_escapes_urls() -> None:
    shot = planned("odd")
    cut = ReviewPage(
        shots=(ShotView(shot=shot, video="odd.mp4"),),
        cuts=(),
        sheet="contact-sheet.png",
    )
    page = page_html(cut)
    for url in re.findall(r'(?:src|href|poster)="([^"]*)"', page):
        assert not re.match(r"[a-z]+:|/", url), url
    assert relative_url(Path("/p/renders/cuts/my cut #1.mp4"), Path("/p/renders")) == "cuts/my%20cut%20%231.mp4"
    assert relative_url(Path("/p/renders/a.mp4"), Path("/p/site")) == "../renders/a.mp4"


def test_references_made_of_other_renders_and_remote_files_have_notes_not_broken_images() -> None:
    from renderspec.review import Renders, Stills, collect

    shot = planned(
        "next",
        request={
            "input": {
                "prompt": "image 1 sits",
                "media": [
                    {"type": "reference_image", "url": RenderOf(shot="hero", frame="last", upstream_key="c" * 64)},
                    {"type": "first_frame", "url": LocalFile("specs/refs/missing.png")},
                ],
            }
        },
        state=State.WAITING,
        waiting_on=("hero",),
        reasons=("waiting on hero",),
    )

    class NoRenders(Renders):
        def current(self, shot_id: str, key: str | None = None, sha256: str | None = None) -> tuple[Path | None, str]:
            raise AssertionError("a waiting shot has no render to look for")

    warnings: list[str] = []
    stills = Stills(Path("/nonexistent/review"), Path("/nonexistent"), warnings.append)
    renders = NoRenders(Path("/nonexistent"), "renders", None, None)  # type: ignore[arg-type]
    [view] = collect([shot], [], root=Path("/nonexistent"), renders=renders, stills=stills)
    assert view.video is None and view.missing == "waiting on hero"
    assert [(ref.name, ref.label, ref.thumb, ref.note) for ref in view.refs] == [
        ("image 1", "image 1", None, "the last frame of shot hero, not rendered yet"),
        ("first frame", "first frame", None, ""),
    ]
    assert len(warnings) == 1 and "missing.png" in warnings[0]
    page = page_html(ReviewPage(shots=(view,)))
    assert "<b>waiting</b>" in page and "<img" not in page


def _render(project: Path) -> None:
    fast(project)
    run = run_cli("build", "--provider", "local", cwd=project)
    assert run.code == 0, run.out + run.err


def test_stills_are_made_once_per_content_and_the_unused_ones_removed(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(SPEC)
    _render(project)
    assert run_cli("review", cwd=project).code == 0
    folder = project / "renders" / "review"
    first = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert len(first) == 4  # two posters, two reference thumbnails
    page = project / "renders" / "index.html"
    written = (page.read_bytes(), page.stat().st_mtime_ns)
    assert run_cli("review", cwd=project).code == 0
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == first  # nothing made again
    assert (page.read_bytes(), page.stat().st_mtime_ns) == written  # the same page, not even rewritten

    write_png(project / "specs" / "refs" / "dress.png", colour=(0, 200, 0))
    (folder / "stranger.txt").write_text("not a still: left alone")
    _render(project)  # both shots cite dress: both render again
    assert run_cli("review", cwd=project).code == 0
    after = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    kept = set(first) & set(after)
    assert len(kept) == 1 and after[next(iter(kept))] == first[next(iter(kept))]  # mia's thumbnail
    assert len(after) == 5 and "stranger.txt" in after


def test_a_changed_render_is_not_shown_as_the_shot(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(SPEC)
    _render(project)
    video = project / "renders" / "two.mp4"
    video.unlink()
    write_mp4(video, seconds=1.0)
    (project / "renders" / "one.mp4").unlink()
    assert run_cli("review", cwd=project).code == 0
    page = (project / "renders" / "index.html").read_text()
    assert "<video" not in page
    assert "renders/two.mp4 changed since renderspec wrote it: renderspec build restores it" in page
    assert "renders/one.mp4 is not there: renderspec build restores it from the cache" in page


def test_a_stale_shot_shows_the_reason_not_its_older_render(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(SPEC)
    _render(project)
    (project / "specs" / "a.toml").write_text(SPEC.replace("on a hanger", "on a chair"))
    assert run_cli("review", cwd=project).code == 0
    page = (project / "renders" / "index.html").read_text()
    assert [attrs["data-shot"] for attrs in Tags(page).all("video")] == ["one"]
    assert "prompt changed: renderspec build renders it again" in page
    assert (project / "renders" / "two.mp4").is_file()  # still there, just not shown as this shot


def test_cuts_come_first_with_their_files(project: Path) -> None:
    (project / "specs" / "a.toml").write_text(SPEC)
    cuts = project / "renders" / "cuts"
    write_mp4(cuts / "master.mp4", seconds=2.0)
    (cuts / "master.otio").write_text("{}")
    write_mp4(cuts / "b-roll.mp4", seconds=1.0)
    run = run_cli("review", cwd=project)
    assert run.code == 0 and "2 cuts" in run.out
    page = (project / "renders" / "index.html").read_text()
    videos = Tags(page).all("video")
    assert [(v["data-cut"], v["src"]) for v in videos] == [("b-roll", "cuts/b-roll.mp4"), ("master", "cuts/master.mp4")]
    assert all((project / "renders" / str(v["poster"])).is_file() for v in videos)
    assert '<b>master</b> · 2 s · <a href="cuts/master.otio">OTIO</a>' in page
    assert page.index("<section class=cuts>") < page.index("<section class=shots>")


def test_out_and_sheet(project: Path) -> None:
    from PIL import Image

    (project / "specs" / "a.toml").write_text(SPEC)
    for number in range(3, 10):
        with (project / "specs" / "a.toml").open("a") as spec:
            spec.write(
                f'[[shots]]\nid = "extra-{number}"\nmedia = ["mia"]\nprompt = "{{{{ mia }}}} nods"\nduration = 2\n'
            )
    _render(project)
    (project / "site").mkdir()
    run = run_cli("review", "--sheet", "--out", "site", cwd=project)
    assert run.code == 0, run.err
    assert "review: wrote site/index.html: 9 shots (9 rendered, 0 not rendered)" in run.out
    assert "review: wrote site/contact-sheet.png" in run.out
    page = (project / "site" / "index.html").read_text()
    assert 'src="../renders/one.mp4"' in page and 'poster="review/' in page
    assert '<a href="contact-sheet.png">contact sheet</a>' in page
    with Image.open(project / "site" / "contact-sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width <= 1600 and sheet.height < sheet.width
    assert not (project / "renders" / "index.html").exists()


def test_invalid_specs_write_nothing(project: Path) -> None:
    (project / "specs" / "a.toml").write_text('[[shots]]\nid = "x"\nprompt = "hi"\nduration = 99\n')
    run = run_cli("review", cwd=project)
    assert run.code == 2 and "duration" in run.err
    assert not (project / "renders").exists()


@pytest.mark.parametrize("argv", [["review", "--bogus"], ["review", "--out"]])
def test_usage_errors(project: Path, argv: list[str]) -> None:
    assert run_cli(*argv, cwd=project).code == 2


def test_the_contact_sheet_of_a_long_storyboard_stops_at_a_size_a_comment_can_show(tmp_path: Path) -> None:
    from PIL import Image

    from renderspec.review import SHEET_MAX_SHOTS, Stills, contact_sheet

    views = [ShotView(shot=planned(f"s{number:03d}", index=number), missing="new") for number in range(130)]
    data = contact_sheet(views, Stills(tmp_path / "review", tmp_path, print))
    with Image.open(io.BytesIO(data)) as sheet:
        assert sheet.width <= 1600
        assert sheet.height == 44 + (SHEET_MAX_SHOTS // 6) * (135 + 40 + 12) + 12
