"""Shared fixtures: a clean environment, hypothesis profiles, and example projects on disk."""

from __future__ import annotations

import io
import math
import os
import shutil
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "tests" / "data" / "example"  # the eight-shot storyboard the build tests count on
SECRET_VARIABLES = ("DASHSCOPE_API_KEY", "APIYI_API_KEY")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's provider settings, keys or AWS credentials (boto3 would fall back to them)."""
    for name in list(os.environ):
        if name.startswith(("RENDERSPEC_", "AWS_")) or name in SECRET_VARIABLES:
            monkeypatch.delenv(name)


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_cli(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
    from renderspec.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env or {}, cwd=cwd, stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


def env_for(service: Any, key: str = "sk-test-build") -> dict[str, str]:
    """The environment that points the real DashScope client at an emulator (or a gateway), by object or URL."""
    url = service if isinstance(service, str) else service.url
    return {"RENDERSPEC_PROVIDER": "dashscope", "RENDERSPEC_BASE_URL": url, "DASHSCOPE_API_KEY": key}


def creates(service: Any) -> list[dict[str, Any]]:
    """Every task the emulator made, with its request: how many paid submissions there were."""
    import httpx

    url = service if isinstance(service, str) else service.url
    return list(httpx.get(f"{url}/_emulator/tasks").json()["tasks"])


def fast(project: Path) -> Path:
    """Polls the emulator every 50 ms (its tasks take a fraction of a second)."""
    (project / "renderspec.toml").write_text("[renderspec]\npoll_interval = 0.05\n")
    return project


def write_png(path: Path, size: tuple[int, int] = (320, 480), colour: tuple[int, int, int] = (200, 100, 50)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def write_wav(path: Path, seconds: float = 2.0, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (int(3000 * math.sin(2 * math.pi * 220 * n / rate)) for n in range(int(rate * seconds)))
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def write_mp4(path: Path, seconds: float = 2.0, size: tuple[int, int] = (320, 240), fps: int = 12) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index in range(int(seconds * fps)):
            frame = av.VideoFrame(size[0], size[1], "yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def example_project(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repository's example storyboard, as a project of its own."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE, root / "specs", ignore=shutil.ignore_patterns("*.py", "*.md"))
    (root / "renderspec.toml").write_text("[renderspec]\n")
    yield root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project with a few valid reference files."""
    root = tmp_path / "proj"
    (root / "specs").mkdir(parents=True)
    (root / "renderspec.toml").write_text("[renderspec]\n")
    write_png(root / "specs" / "refs" / "mia.png")
    write_png(root / "specs" / "refs" / "dress.png", colour=(10, 20, 200))
    write_wav(root / "specs" / "refs" / "mia.wav")
    return root
