"""Planning from strings: core tests need no files, only text and made-up file facts."""

from __future__ import annotations

from collections.abc import Mapping

from renderspec.core.expansion import expand
from renderspec.core.limits import DEFAULT_LIMITS, Limits
from renderspec.core.model import FileFacts, SourceFile
from renderspec.core.planning import Plan, plan
from renderspec.core.rules import FileKind

IMAGE = FileFacts(sha256="a" * 64, size=50_000, kind=FileKind.IMAGE, format="png", width=480, height=640)
IMAGE_2 = FileFacts(sha256="b" * 64, size=60_000, kind=FileKind.IMAGE, format="jpeg", width=960, height=540)
VIDEO = FileFacts(sha256="c" * 64, size=900_000, kind=FileKind.VIDEO, format="mp4", width=640, height=360, seconds=3.0)
VOICE = FileFacts(sha256="d" * 64, size=64_000, kind=FileKind.AUDIO, format="wav", seconds=2.0)
FRAME = FileFacts(sha256="e" * 64, size=70_000, kind=FileKind.IMAGE, format="png", width=1280, height=720)

STANDARD_FACTS: dict[str, FileFacts | None] = {
    "specs/refs/mia.png": IMAGE,
    "specs/refs/dress.png": IMAGE_2,
    "specs/refs/bottle.mp4": VIDEO,
    "specs/refs/mia.wav": VOICE,
    "specs/refs/start.png": FRAME,
}

HEADER = """
[refs.mia]
image = "refs/mia.png"
voice = "refs/mia.wav"
[refs.dress]
image = "refs/dress.png"
[refs.bottle]
video = "refs/bottle.mp4"
"""


def plan_text(
    *texts: str,
    facts: Mapping[str, FileFacts | None] | None = None,
    fragments: Mapping[str, str] | None = None,
    provider_kind: str = "emulator",
    limits: Limits = DEFAULT_LIMITS,
    shared: Mapping[str, str] | None = None,
) -> Plan:
    """Plans `texts` as specs/s0.toml, specs/s1.toml...; `shared` holds spec files that only `uses`
    reads (by project path, e.g. "specs/cast.toml")."""
    sources = [SourceFile(path=f"specs/s{index}.toml", text=text) for index, text in enumerate(texts)]
    expansion = expand(sources, dict(fragments or {}).get, limits, specs=dict(shared or {}).get)
    return plan(expansion, dict(STANDARD_FACTS if facts is None else facts), provider_kind=provider_kind)


def shot(body: str, header: str = HEADER) -> str:
    """A spec with the standard references and one [[shots]] table holding `body`."""
    return f"{header}\n[[shots]]\n{body}\n"


def messages(result: Plan) -> list[str]:
    return [problem.format() for problem in result.problems]


def errors(result: Plan) -> list[str]:
    return [problem.format() for problem in result.errors]
