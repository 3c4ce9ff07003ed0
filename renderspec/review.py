"""`renderspec review`: one static page to watch the storyboard, and a contact sheet for a pull request.

The page (`renders/index.html`) plays offline, from a file:// URL or a CI artifact: no server, no
CDN, no script; every URL in it is relative. It shows the cuts in `renders/cuts/` first, then every
shot in storyboard order with a poster frame, an inline player, its prompt with each citation
("image 1") shown as the reference's name and thumbnail, and its state, key, duration and estimated
cost; a shot's takes sit side by side with the pick marked, and a shot with no current render is a
placeholder saying why. Everything a spec wrote is escaped: prompts are user text.

Stills (poster frames, reference thumbnails) are small JPEGs in `review/` beside the page, named by
the sha256 of the file they show, so one is made only when that file changed; the ones no longer
shown are removed. Building the page from plain data (`page_html`) is pure; `write_review` is the
command's I/O.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import quote

from renderspec import reporting
from renderspec.core.model import LocalFile, PlannedShot, RemoteFile, RenderOf, ShotDraft, State
from renderspec.core.rules import MediaType
from renderspec.fsutil import file_sha256, write_atomic
from renderspec.manifest import Manifest
from renderspec.outputs import RendersIndex, vouch
from renderspec.project import plan_project
from renderspec.settings import Settings

if TYPE_CHECKING:
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import FreeTypeFont, ImageFont

EXIT_OK, EXIT_INVALID = 0, 2
PAGE_NAME = "index.html"
SHEET_NAME = "contact-sheet.png"
STILLS_FOLDER = "review"
CUTS_FOLDER = "cuts"

POSTER_BOX = (640, 640)  # the page shows players about 480 px wide: sharp on a 1.5x screen, ~30 KB a still
THUMB_BOX = (160, 160)
SHEET_COLUMNS = 6
SHEET_TILE = (240, 135)  # 16:9; other shapes are letterboxed. Six columns: 1,524 px, fits a PR comment
SHEET_MAX_SHOTS = 120  # 20 rows, 3,800 px tall: a longer sheet is no use in a comment (the page has them all)
_STILL_NAME = re.compile(r"[0-9a-f]{20}-[a-z0-9.-]+\.jpg")
_CITATION = re.compile(r"\b(image|video) ([1-9][0-9]*)\b([^\w\s]*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RefView:
    """One media item of a shot's request, as the page shows it."""

    name: str
    """The reference's name in the spec (`mia`), or `first frame`."""
    label: str
    """How the prompt cites it: `image 1`, `video 2`; `first frame` for the first frame."""
    thumb: str | None = None
    """Its thumbnail's URL, relative to the page (None: a remote file, or a render not made yet)."""
    note: str = ""


@dataclass(frozen=True, slots=True)
class ShotView:
    """A planned shot with what the page needs: where its render and stills are, or why there is no render."""

    shot: PlannedShot
    refs: tuple[RefView, ...] = ()
    line: int | None = None
    video: str | None = None
    """The URL of `renders/<id>.mp4` when it holds this shot's current render."""
    poster: str | None = None
    missing: str = ""
    """Why there is no video (shown in the placeholder)."""


@dataclass(frozen=True, slots=True)
class CutView:
    name: str
    video: str
    poster: str | None = None
    seconds: float | None = None
    files: tuple[tuple[str, str], ...] = ()
    """(label, URL) of the cut's other files (its OTIO timeline, its EDL)."""


@dataclass(frozen=True, slots=True)
class ReviewPage:
    shots: tuple[ShotView, ...]
    cuts: tuple[CutView, ...] = ()
    sheet: str | None = None
    """The contact sheet's URL, when it was written with the page."""


# ---------------------------------------------------------------------------------------------
# The page, from plain data (pure)


def page_html(page: ReviewPage) -> str:
    """The whole page. The same data gives the same text (no clock, no absolute path in it)."""
    shots = [view.shot for view in page.shots]
    rendered = sum(1 for view in page.shots if view.video is not None)
    title = f"renderspec review: {_count(len(shots), 'shot')}"
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header class=top>",
        "<h1>Storyboard review</h1>",
        f"<p class=summary>{_e(_summary(shots, rendered))}</p>",
    ]
    if page.sheet:
        parts.append(f'<p class=links><a href="{_e(page.sheet)}">contact sheet</a></p>')
    if page.shots:
        parts.append("<nav aria-label=shots>")
        parts += [
            f'<a href="#shot-{_e(view.shot.id)}" class="dot-{_e(view.shot.state)}">{_e(view.shot.id)}</a>'
            for view in page.shots
        ]
        parts.append("</nav>")
    parts.append("</header>")
    if page.cuts:
        parts.append("<section class=cuts><h2>Cuts</h2>")
        parts += [_cut_html(cut) for cut in page.cuts]
        parts.append("</section>")
    parts.append("<section class=shots><h2>Shots</h2>")
    if not page.shots:
        parts.append("<p class=empty>This storyboard has no shots yet.</p>")
    for group in groups(page.shots):
        parts.append(_takes_html(group) if group[0].shot.take_of is not None else _shot_html(group[0]))
    parts += [
        "</section>",
        "<footer>Written by <code>renderspec review</code>. Videos play from the renders folder beside this page.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def groups(views: Sequence[ShotView]) -> list[list[ShotView]]:
    """Shots in plan order, a shot's takes (consecutive in the plan) gathered into one group."""
    grouped: list[list[ShotView]] = []
    for view in views:
        take_of = view.shot.take_of
        if take_of is not None and grouped and grouped[-1][0].shot.take_of == take_of:
            grouped[-1].append(view)
        else:
            grouped.append([view])
    return grouped


def prompt_html(prompt: str, refs: Iterable[RefView]) -> str:
    """The prompt, escaped, with each citation (`image 1`, `video 2`) shown as its reference's name and thumbnail.

    Citations are matched as the service reads them (any case); a number the shot's media does not
    have is left as written.
    """
    by_label = {ref.label: ref for ref in refs}
    parts: list[str] = []
    last = 0
    for match in _CITATION.finditer(prompt):
        ref = by_label.get(f"{match.group(1).lower()} {int(match.group(2))}")
        if ref is None:
            continue
        parts.append(_e(prompt[last : match.start()]))
        thumb = f'<img src="{_e(ref.thumb)}" alt="">' if ref.thumb else ""
        cited = f"{match.group(1)} {match.group(2)}"
        cite = f'<span class=cite title="{_e(cited)}">{thumb}{_e(ref.name)}</span>'
        # what sticks to the citation ("image 3." or "image 1's") stays on its line
        parts.append(f"<span class=nw>{cite}{_e(match.group(3))}</span>" if match.group(3) else cite)
        last = match.end()
    parts.append(_e(prompt[last:]))
    return "".join(parts)


def _shot_html(view: ShotView) -> str:
    shot = view.shot
    return "\n".join(
        [
            f'<article class=shot id="shot-{_e(shot.id)}">',
            f"<div class=stage>{_player(view)}</div>",
            "<div class=about>",
            f'<h3><a href="#shot-{_e(shot.id)}">{_e(shot.id)}</a> {_state(shot)}</h3>',
            _facts(view),
            _words(view),
            "</div>",
            "</article>",
        ]
    )


def _takes_html(group: Sequence[ShotView]) -> str:
    first = group[0].shot
    chosen = next((view for view in group if view.shot.picked), group[0])
    takes = []
    for view in group:
        shot = view.shot
        pick = " <span class=pick>pick</span>" if shot.picked else ""
        takes.append(
            "\n".join(
                [
                    f'<figure class="take{" picked" if shot.picked else ""}" id="shot-{_e(shot.id)}">',
                    f"<div class=stage>{_player(view)}</div>",
                    f"<figcaption><b>take {shot.take}</b>{pick} {_state(shot)}{_facts(view)}</figcaption>",
                    "</figure>",
                ]
            )
        )
    return "\n".join(
        [
            f'<article class="shot takes" id="shot-{_e(first.take_of or first.id)}">',
            f"<h3>{_e(first.take_of or first.id)} <small>{_count(len(group), 'take')}</small></h3>",
            "<div class=take-row>",
            *takes,
            "</div>",
            f"<div class=about>{_words(chosen)}</div>",
            "</article>",
        ]
    )


def _player(view: ShotView) -> str:
    shot = view.shot
    if view.video is None:
        word = "waiting" if shot.state is State.WAITING else "not rendered"
        return (
            f'<div class=placeholder style="aspect-ratio: {_aspect(shot)}" data-shot="{_e(shot.id)}">'
            f"<b>{word}</b><span>{_e(view.missing)}</span></div>"
        )
    poster = f' poster="{_e(view.poster)}"' if view.poster else ""
    return (
        f'<video controls preload="metadata" playsinline src="{_e(view.video)}"{poster}'
        f' data-shot="{_e(shot.id)}" data-duration="{shot.duration}"></video>'
    )


def _facts(view: ShotView) -> str:
    shot = view.shot
    where = f"{shot.spec}:{view.line}" if view.line else shot.spec
    seed = shot.request.get("parameters", {}).get("seed")
    items = [
        f"{shot.duration} s",
        f"{_e(shot.resolution)} {_e(shot.ratio or 'frame')}",
        f"est. {_e(reporting.money(shot.cost, shot.currency))}",
        f'key <code title="{_e(shot.key)}">{_e(reporting.shown_key(shot))}</code>',
    ]
    if seed is not None and shot.take is not None:
        items.append(f"seed {_e(str(seed))}")
    items.append(f"<span class=where>{_e(where)}</span>")
    why = "; ".join(shot.reasons)
    return (
        "<p class=facts>"
        + " · ".join(f"<span>{item}</span>" for item in items)
        + (f"<br><span class=why>{_e(why)}</span>" if why and shot.state is not State.CACHED else "")
        + "</p>"
    )


def _words(view: ShotView) -> str:
    request = view.shot.request.get("input", {})
    parts = [f"<p class=prompt>{prompt_html(str(request.get('prompt', '')), view.refs)}</p>"]
    negative = request.get("negative_prompt")
    if negative:
        parts.append(f"<p class=negative><b>negative:</b> {_e(str(negative))}</p>")
    if view.refs:
        parts.append("<ul class=refs>")
        for ref in view.refs:
            thumb = f'<img src="{_e(ref.thumb)}" alt="{_e(ref.name)}">' if ref.thumb else "<span class=nothumb></span>"
            note = f" <small>{_e(ref.note)}</small>" if ref.note else ""
            label = "" if ref.label == ref.name else f" <small>{_e(ref.label)}</small>"
            parts.append(f"<li>{thumb}<span><b>{_e(ref.name)}</b>{label}{note}</span></li>")
        parts.append("</ul>")
    return "\n".join(parts)


def _cut_html(cut: CutView) -> str:
    poster = f' poster="{_e(cut.poster)}"' if cut.poster else ""
    seconds = f" · {_clock(cut.seconds)}" if cut.seconds is not None else ""
    files = "".join(f' · <a href="{_e(url)}">{_e(label)}</a>' for label, url in cut.files)
    return (
        f'<figure class=cut id="cut-{_e(cut.name)}">'
        f'<video controls preload="metadata" playsinline src="{_e(cut.video)}"{poster} data-cut="{_e(cut.name)}"></video>'
        f"<figcaption><b>{_e(cut.name)}</b>{seconds}{files}</figcaption></figure>"
    )


def _state(shot: PlannedShot) -> str:
    return f'<span class="state state-{_e(shot.state)}">{_e(shot.state)}</span>'


def _summary(shots: Sequence[PlannedShot], rendered: int) -> str:
    if not shots:
        return "no shots"
    total = reporting.totals(shots)
    seconds = sum(shot.duration for shot in shots)
    text = f"{_count(len(shots), 'shot')}, {rendered} rendered, {len(shots) - rendered} not rendered; {_clock(seconds)} in all"
    if total["to_render"]:
        text += f"; a build would render {_count(total['to_render'], 'shot')}, est. {reporting.estimated_cost(total)}"
    return text


def _aspect(shot: PlannedShot) -> str:
    if shot.expected_size:
        return f"{shot.expected_size[0]} / {shot.expected_size[1]}"
    if shot.ratio and ":" in shot.ratio:
        width, height = shot.ratio.split(":", 1)
        if width.isdigit() and height.isdigit():
            return f"{width} / {height}"
    return "16 / 9"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}" if whole >= 60 else f"{seconds:g} s"


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'s' if number != 1 else ''}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_CSS = """
:root { color-scheme: dark; --bg: #121212; --card: #1d1d1f; --line: #333; --text: #e6e6e6; --dim: #9a9a9a;
  --accent: #f0b429; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1440px; padding: 16px 24px 48px; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 12px; color: var(--dim); }
h3 { font-size: 16px; margin: 0 0 6px; } h3 a { color: inherit; text-decoration: none; }
a { color: #8ab4f8; } code { font-size: 12px; } small { color: var(--dim); font-weight: normal; }
.summary { margin: 0; color: var(--dim); }
nav { display: flex; flex-wrap: wrap; gap: 4px 10px; margin-top: 10px; font-size: 12px; }
nav a { text-decoration: none; color: var(--dim); }
nav a::before { content: "\\25CF "; color: #666; }
.dot-cached::before { color: #5fb35f; } .dot-waiting::before { color: #c678dd; }
.dot-stale::before, .dot-missing::before { color: #e5a50a; } .dot-new::before { color: #61afef; }
video { display: block; width: 100%; background: #000; border-radius: 6px; }
.cuts { display: grid; gap: 16px; }
.cut { margin: 0; max-width: 960px; } .cut figcaption { margin-top: 6px; }
.cut video { max-height: 70vh; object-fit: contain; }
.shot { display: grid; grid-template-columns: minmax(0, 480px) minmax(0, 1fr); gap: 16px 20px; padding: 16px;
  margin-bottom: 14px; background: var(--card); border: 1px solid var(--line); border-radius: 10px; }
.shot .stage video, .placeholder { max-height: 480px; object-fit: contain; }
.placeholder { display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 6px;
  width: 100%; padding: 12px; border: 2px dashed #555; border-radius: 6px; color: var(--dim); text-align: center;
  background: repeating-linear-gradient(45deg, #181818 0 12px, #1c1c1c 12px 24px); }
.placeholder b { font-size: 15px; text-transform: uppercase; letter-spacing: .06em; color: var(--text); }
.takes { grid-template-columns: 1fr; }
.take-row { display: flex; gap: 14px; overflow-x: auto; }
.take { flex: 0 0 min(360px, 80%); margin: 0; padding: 8px; border: 2px solid transparent; border-radius: 8px; }
.take.picked { border-color: var(--accent); }
.take figcaption { margin-top: 6px; } .take .facts { margin: 4px 0 0; }
.pick { background: var(--accent); color: #000; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 600; }
.state { font-size: 12px; font-weight: normal; padding: 1px 7px; border-radius: 9px; background: #333; }
.state-cached { background: #234d23; } .state-new { background: #1f3f5f; } .state-waiting { background: #4b2a55; }
.state-stale, .state-missing { background: #5c4510; } .state-remote { background: #1f4f4f; }
.facts { margin: 0 0 10px; color: var(--dim); font-size: 13px; } .why { color: #e5c07b; }
.prompt { white-space: pre-wrap; margin: 0 0 8px; font-size: 15px; }
.negative { color: var(--dim); margin: 0 0 8px; white-space: pre-wrap; }
.cite { display: inline-flex; align-items: center; gap: 4px; padding: 0 6px 0 2px; border-radius: 4px;
  background: #2d2d33; border: 1px solid #444; font-weight: 600; white-space: nowrap; }
.nw { white-space: nowrap; }
.cite img { height: 1.5em; width: auto; border-radius: 3px; }
.refs { display: flex; flex-wrap: wrap; gap: 10px; list-style: none; margin: 0; padding: 0; }
.refs li { display: flex; align-items: center; gap: 8px; padding: 4px 10px 4px 4px; background: #26262a;
  border-radius: 6px; }
.refs img, .nothumb { display: block; height: 56px; width: auto; max-width: 100px; border-radius: 4px; }
.nothumb { width: 56px; background: #333; }
.refs span { display: flex; flex-direction: column; }
footer { margin-top: 32px; color: var(--dim); font-size: 12px; }
@media (max-width: 760px) { .shot { grid-template-columns: 1fr; } }
"""


# ---------------------------------------------------------------------------------------------
# Collecting the page from the project (files, stills)


class Stills:
    """Poster frames and thumbnails in one folder, each named by the sha256 of the file it shows.

    A still is made only when its file is absent (so only when what it shows changed); a still that
    cannot be made is a warning and no image, never a broken one.
    """

    def __init__(self, folder: Path, page_dir: Path, warn: Callable[[str], None]) -> None:
        self.folder = folder
        self.page_dir = page_dir
        self.warn = warn
        self.used: dict[str, Path] = {}
        self.by_url: dict[str, Path] = {}

    def still(self, name: str, produce: Callable[[], bytes], what: str) -> str | None:
        """The URL of the still `name` (made by `produce` when missing), or None when it cannot be made."""
        import av
        from PIL import Image

        path = self.folder / name
        if not path.is_file():
            try:
                data = produce()
            except (OSError, ValueError, av.FFmpegError, Image.DecompressionBombError) as error:
                self.warn(f"review: no picture of {what}: {error}")
                return None
            write_atomic(path, data)
        url = relative_url(path, self.page_dir)
        self.used[name] = path
        self.by_url[url] = path
        return url

    def poster(self, video: Path, sha256: str, at: str | float, what: str) -> str | None:
        from renderspec.media import extract_frame, thumbnail_jpeg

        return self.still(
            f"{sha256[:20]}-{_frame_tag(at)}.jpg", lambda: thumbnail_jpeg(extract_frame(video, at), POSTER_BOX), what
        )

    def thumbnail(self, file: Path, sha256: str, *, video_at: str | float | None, what: str) -> str | None:
        """A small picture of an image file, or of one frame of a video file (`video_at`)."""
        from renderspec.media import extract_frame, thumbnail_jpeg

        if video_at is None:
            return self.still(f"{sha256[:20]}-image.jpg", lambda: thumbnail_jpeg(file, THUMB_BOX), what)
        tag = f"{_frame_tag(video_at)}-thumb"
        return self.still(
            f"{sha256[:20]}-{tag}.jpg", lambda: thumbnail_jpeg(extract_frame(file, video_at), THUMB_BOX), what
        )

    def path_of(self, url: str | None) -> Path | None:
        """The file of a still this page shows, by its URL."""
        return self.by_url.get(url) if url is not None else None

    def prune(self) -> int:
        """Removes the stills this page no longer shows (only files named as stills are)."""
        removed = 0
        if not self.folder.is_dir():
            return 0
        for path in self.folder.iterdir():
            if _STILL_NAME.fullmatch(path.name) and path.name not in self.used and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _frame_tag(at: str | float) -> str:
    return at if isinstance(at, str) else f"t{at:g}"


def relative_url(target: Path, page_dir: Path) -> str:
    """`target` as a URL relative to a page in `page_dir` (works from file:// and from any web server)."""
    relative = os.path.relpath(os.path.abspath(target), os.path.abspath(page_dir))
    return quote(relative.replace(os.sep, "/"), safe="/")


@dataclass(frozen=True, slots=True)
class Renders:
    """What renders/ holds, as the lock and the renders index vouch for it."""

    root: Path
    renders: str
    manifest: Manifest
    index: RendersIndex

    @property
    def folder(self) -> Path:
        return self.root / self.renders

    def current(self, shot_id: str, key: str | None = None, sha256: str | None = None) -> tuple[Path | None, str]:
        """renders/<id>.mp4 and its sha256 when it holds the lock's render of `key` (or of video `sha256`),
        else None and why not."""
        entry = self.manifest.entries.get(shot_id)
        rel = f"{self.renders.rstrip('/')}/{shot_id}.mp4"
        if (
            entry is None
            or (key is not None and entry.key != key)
            or (sha256 is not None and entry.video_sha256 != sha256)
        ):
            return None, ""
        path = self.root / rel
        if not path.exists():
            return None, f"{rel} is not there: renderspec build restores it from the cache"
        if vouch(path, rel, {entry.video_sha256}, self.index, frozenset()) is None:
            return None, f"{rel} changed since renderspec wrote it: renderspec build restores it"
        return path, entry.video_sha256


def collect(
    shots: Sequence[PlannedShot],
    drafts: Sequence[ShotDraft],
    *,
    root: Path,
    renders: Renders,
    stills: Stills,
    line_of: Callable[[PlannedShot], int | None] = lambda shot: None,
) -> list[ShotView]:
    """Each shot's view: its render and poster where renders/ holds its current render, its references' thumbnails."""
    by_id = {draft.id: draft for draft in drafts}
    views: list[ShotView] = []
    for shot in shots:
        refs = tuple(_refs(shot, by_id.get(shot.id), root, renders, stills))
        view = ShotView(shot=shot, refs=refs, line=line_of(shot))
        video, found = (None, "") if shot.waiting_on else renders.current(shot.id, key=shot.key)
        if video is not None:
            poster = stills.poster(video, found, shot.duration / 2, f"shot {shot.id}")
            view = replace(view, video=relative_url(video, stills.page_dir), poster=poster)
        else:
            view = replace(view, missing=found or _why_not(shot))
        views.append(view)
    return views


def _why_not(shot: PlannedShot) -> str:
    why = "; ".join(shot.reasons)
    if shot.state is State.WAITING:
        return why
    if shot.state is State.NEW:
        return "new shot: renderspec build renders it"
    if shot.state is State.STALE:
        return f"{why}: renderspec build renders it again"
    if shot.state is State.MISSING:
        return "paid for, but neither cache holds it: renderspec pull, or build --rerender-missing"
    if shot.state is State.REMOTE:
        return "on the remote cache: renderspec pull fetches it"
    return "not in renders/: renderspec build puts it there"


def _refs(
    shot: PlannedShot, draft: ShotDraft | None, root: Path, renders: Renders, stills: Stills
) -> Iterable[RefView]:
    """The request's media in order, numbered as the prompt cites them, named as the spec names them."""
    media = shot.request.get("input", {}).get("media", [])
    names: list[str | None] = [None] * len(media)
    if draft is not None and len(draft.media) == len(media):
        names = [item.reference for item in draft.media]
    numbers = {MediaType.REFERENCE_IMAGE: 0, MediaType.REFERENCE_VIDEO: 0}
    for entry, name in zip(media, names, strict=True):
        kind = MediaType(entry["type"])
        if kind in numbers:
            numbers[kind] += 1
            label = f"{'image' if kind is MediaType.REFERENCE_IMAGE else 'video'} {numbers[kind]}"
        else:
            label = "first frame"
        thumb, note = _ref_thumbnail(shot, entry["url"], kind, root, renders, stills, name or label)
        if entry.get("reference_voice") is not None:
            note = ", ".join(filter(None, [note, "with voice"]))
        yield RefView(name=name or label, label=label, thumb=thumb, note=note)


def _ref_thumbnail(
    shot: PlannedShot,
    file: object,
    kind: MediaType,
    root: Path,
    renders: Renders,
    stills: Stills,
    name: str,
) -> tuple[str | None, str]:
    what = f"{name} of shot {shot.id}"
    if isinstance(file, LocalFile):
        path = root / file.path
        sha256 = shot.digests.get(file.path) or ""
        if not sha256:
            try:
                sha256 = file_sha256(path)
            except OSError as error:
                stills.warn(f"review: no picture of {what}: {error}")
                return None, ""
        video_at = "first" if kind is MediaType.REFERENCE_VIDEO else None
        return stills.thumbnail(path, sha256, video_at=video_at, what=what), ""
    if isinstance(file, RenderOf):
        if file.sha256 is None:
            return None, f"{file.label}, not rendered yet"
        video, sha256 = renders.current(file.shot, sha256=file.sha256)
        if video is None:
            return None, file.label
        at = file.frame if file.frame is not None else "first"
        return stills.thumbnail(video, sha256, video_at=at, what=what), file.label
    if isinstance(file, RemoteFile):
        return None, "remote file"
    return None, ""


def _cuts(folder: Path, stills: Stills) -> list[CutView]:
    """The cuts another command wrote into renders/cuts/ (NAME.mp4, beside NAME.otio and NAME.edl when made)."""
    from renderspec.media import probe

    cuts: list[CutView] = []
    for path in sorted(folder.glob("*.mp4")) if folder.is_dir() else []:
        if path.name.startswith(".") or not path.is_file():
            continue  # a cut being written (a hidden temporary file), or not a file
        try:
            sha256 = file_sha256(path)
        except OSError as error:
            stills.warn(f"review: cut {path.name} cannot be read: {error}")
            continue
        files = tuple(
            (label, relative_url(path.with_suffix(suffix), stills.page_dir))
            for label, suffix in (("OTIO", ".otio"), ("EDL", ".edl"))
            if path.with_suffix(suffix).is_file()
        )
        cuts.append(
            CutView(
                name=path.stem,
                video=relative_url(path, stills.page_dir),
                poster=stills.poster(path, sha256, "first", f"cut {path.stem}"),
                seconds=probe(path).seconds,
                files=files,
            )
        )
    return cuts


# ---------------------------------------------------------------------------------------------
# The contact sheet


def contact_sheet(views: Sequence[ShotView], stills: Stills) -> bytes:
    """A PNG grid of the shots' poster frames with their ids, at most 1,600 px wide (a pull-request comment).

    The first SHEET_MAX_SHOTS shots, in plan order; the heading says how many more the page has.
    """
    import io

    from PIL import Image, ImageDraw, ImageFont

    everything = views
    views = views[:SHEET_MAX_SHOTS]
    tile_w, tile_h = SHEET_TILE
    gap, label_h, head_h = 12, 40, 44
    columns = max(1, min(SHEET_COLUMNS, len(views)))
    rows = max(1, -(-len(views) // columns))
    width = gap + columns * (tile_w + gap)
    height = head_h + rows * (tile_h + label_h + gap) + gap
    sheet = Image.new("RGB", (max(width, 480), height), (24, 24, 26))
    draw = ImageDraw.Draw(sheet)
    big, small = ImageFont.load_default(size=18), ImageFont.load_default(size=13)
    rendered = sum(1 for view in everything if view.video is not None)
    heading = (
        f"renderspec review: {_count(len(everything), 'shot')}, {rendered} rendered, "
        f"{len(everything) - rendered} not rendered"
    )
    if len(everything) > len(views):
        heading += f"; the first {len(views)} shown"
    draw.text((gap, 14), heading, fill=(230, 230, 230), font=big)
    for number, view in enumerate(views):
        x = gap + (number % columns) * (tile_w + gap)
        y = head_h + (number // columns) * (tile_h + label_h + gap)
        draw.rectangle((x, y, x + tile_w - 1, y + tile_h - 1), fill=(0, 0, 0))
        poster = stills.path_of(view.poster)
        if poster is not None:
            with Image.open(poster) as opened:
                image = opened.convert("RGB")
            image.thumbnail((tile_w, tile_h), Image.Resampling.LANCZOS)
            sheet.paste(image, (x + (tile_w - image.width) // 2, y + (tile_h - image.height) // 2))
        else:
            word = "no picture" if view.video else "waiting" if view.shot.state is State.WAITING else "not rendered"
            draw.rectangle((x, y, x + tile_w - 1, y + tile_h - 1), outline=(110, 110, 110), width=2)
            text_w = draw.textlength(word, font=big)
            draw.text((x + (tile_w - text_w) / 2, y + tile_h / 2 - 10), word, fill=(170, 170, 170), font=big)
        shot = view.shot
        label = shot.id
        detail = f"{shot.duration} s · {shot.state}" + (" · pick" if shot.take is not None and shot.picked else "")
        draw.text((x, y + tile_h + 4), _fit(draw, label, big, tile_w), fill=(240, 240, 240), font=big)
        draw.text((x, y + tile_h + 24), _fit(draw, detail, small, tile_w), fill=(160, 160, 160), font=small)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _fit(draw: ImageDraw, text: str, font: FreeTypeFont | ImageFont, width: int) -> str:
    """`text` cut to `width` pixels, with an ellipsis where it had to stop."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


# ---------------------------------------------------------------------------------------------
# The command


def write_review(
    settings: Settings, cwd: Path, out: TextIO, err: TextIO, *, page: Path | None = None, sheet: bool = False
) -> int:
    """`renderspec review [--sheet] [--out PATH]`: 0 written, 2 the specs are invalid (nothing is written)."""
    project = plan_project(settings, [], cwd)
    plan = project.plan
    if not reporting.is_usable(plan, len(project.spec_files), err):
        return EXIT_INVALID
    renders = Renders(settings.root, settings.project.renders, project.manifest, RendersIndex(settings.cache_dir))
    page_path = page if page is not None else renders.folder / PAGE_NAME
    page_dir = page_path.parent
    stills = Stills(page_dir / STILLS_FOLDER, page_dir, lambda line: print(line, file=err))
    views = collect(
        plan.shots, plan.expansion.drafts, root=settings.root, renders=renders, stills=stills, line_of=plan.line_of
    )
    cuts = _cuts(renders.folder / CUTS_FOLDER, stills)
    sheet_url = None
    if sheet:
        sheet_path = page_dir / SHEET_NAME
        _write_if_changed(sheet_path, contact_sheet(views, stills))
        sheet_url = relative_url(sheet_path, page_dir)
    _write_if_changed(page_path, page_html(ReviewPage(shots=tuple(views), cuts=tuple(cuts), sheet=sheet_url)).encode())
    stills.prune()
    rendered = sum(1 for view in views if view.video is not None)
    shown = _shown_path(page_path, cwd)
    cut_note = f", {_count(len(cuts), 'cut')}" if cuts else ""
    print(
        f"review: wrote {shown}: {_count(len(views), 'shot')} ({rendered} rendered, "
        f"{len(views) - rendered} not rendered){cut_note}; open {page_path.resolve().as_uri()}",
        file=out,
    )
    if sheet:
        print(f"review: wrote {_shown_path(page_dir / SHEET_NAME, cwd)}", file=out)
    return EXIT_OK


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    write_atomic(path, data)


def _shown_path(path: Path, cwd: Path) -> str:
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path)
