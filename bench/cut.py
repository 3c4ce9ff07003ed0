"""Benchmark: how long a cut of 24 preview shots (two minutes of 720P) takes to encode.

Makes 24 five-second 1280x720 previews with the emulator's preview encoder (the example's
references, a voice on every third), then times `write_cut` on them twice: the fast path (every
shot already has the cut's format, so the video packets are copied and only the audio is encoded
again) and the re-encode path (every frame decoded and encoded, as when one shot has another size,
a trim between keyframes or a slate). With --cli it also renders a 24-shot storyboard through the
local provider and times `renderspec cut` in a fresh interpreter (planning and start-up included).
Goal: 10 s or less.

Usage: python bench/cut.py [--shots 24] [--seconds 5] [--repeat 3] [--cli]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from renderspec.cutting import CutVideo, Piece, write_cut
from renderspec.emulator.preview import PreviewRequest, render_preview

REPO = Path(__file__).resolve().parents[1]
REFS = REPO / "specs" / "refs"
PROMPT = "image 1 wearing the gown from image 2 walks slowly through the garden; the light fades. "


def previews(folder: Path, shots: int, seconds: int) -> list[Path]:
    made = []
    for number in range(shots):
        path = folder / f"s{number:02d}.mp4"
        images = [REFS / "mia.png", REFS / "dress.png"] if number % 2 else [REFS / "garden.jpg"]
        voice = REFS / "mia.wav" if number % 3 == 0 else None
        request = PreviewRequest(1280, 720, seconds, f"shot {number}: {PROMPT}", images=images, voice=voice)
        render_preview(request, path)
        made.append(path)
    return made


def timed(pieces: list[Piece], out: Path, *, copy: bool, repeat: int) -> tuple[float, CutVideo]:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        made = write_cut(pieces, out, allow_copy=copy)
        best = min(best, time.perf_counter() - started)
    return best, made


def cli_run(shots: int, seconds: int) -> tuple[float, str]:
    """`renderspec cut` on a built 24-shot storyboard, in a fresh interpreter: the user's wall time."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "specs" / "refs").mkdir(parents=True)
        for name in ("mia.png", "dress.png", "garden.jpg", "mia.wav"):
            (root / "specs" / "refs" / name).write_bytes((REFS / name).read_bytes())
        (root / "renderspec.toml").write_text("[renderspec]\n")
        ids = [f"s{n:02d}" for n in range(shots)]
        spec = '[refs.mia]\nimage = "refs/mia.png"\n[refs.garden]\nimage = "refs/garden.jpg"\n'
        spec += f"[defaults]\nduration = {seconds}\n"
        for n, shot_id in enumerate(ids):
            ref = "mia" if n % 2 else "garden"
            cite = "{{ " + ref + " }}"
            spec += f'[[shots]]\nid = "{shot_id}"\nmedia = ["{ref}"]\nprompt = "shot {n}: {cite} in the light"\n'
        (root / "specs" / "shots.toml").write_text(spec)
        env = {**os.environ, "RENDERSPEC_PROVIDER": "local"}
        renderspec = [sys.executable, "-m", "renderspec"]
        subprocess.run([*renderspec, "build", "-j", "8"], cwd=root, env=env, check=True, capture_output=True)
        (root / "specs" / "cuts.toml").write_text(f"[cuts.master]\nshots = {ids!r}\n".replace("'", '"'))
        started = time.perf_counter()
        done = subprocess.run([*renderspec, "cut"], cwd=root, env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([*renderspec, "cut"], cwd=root, env=env, check=True, capture_output=True)
        return wall, f"{done.stdout.strip()}\n  again, unchanged: {time.perf_counter() - started:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=24)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli", action="store_true", help="also time `renderspec cut` on a built storyboard")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        paths = previews(Path(folder), args.shots, args.seconds)
        print(f"{args.shots} previews of {args.seconds} s made in {time.perf_counter() - started:.1f} s")
        pieces = [Piece(path.stem, path) for path in paths]
        print(f"{'path':<34} {'best s':>7} {'cut s':>6} {'size MB':>8}")
        for label, copy in (("fast (video copied, audio encoded)", True), ("re-encode (every frame)", False)):
            out = Path(folder) / f"cut-{copy}.mp4"
            best, made = timed(pieces, out, copy=copy, repeat=args.repeat)
            assert made.copied == copy, made.why_encoded
            print(f"{label:<34} {best:>7.2f} {made.seconds:>6.1f} {out.stat().st_size / 1e6:>8.1f}")
    if args.cli:
        wall, said = cli_run(args.shots, args.seconds)
        print(f"`renderspec cut`, fresh interpreter: {wall:.2f} s\n  {said}")


if __name__ == "__main__":
    main()
