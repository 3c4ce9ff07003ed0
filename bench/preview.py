"""Benchmark: how long the emulator takes to render a preview video.

Renders the example storyboard's references as 5 s 720P and 15 s 1080P previews (with a voice
track, two images and a reference video, and the names the local provider's header gives) and
prints the best wall time of a few runs.

Usage: python bench/preview.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from renderspec.emulator.preview import Caption, PreviewRequest, render_preview

REFS = Path(__file__).resolve().parents[1] / "specs" / "refs"
CASES = [("5 s 720P 16:9", 1280, 720, 5), ("10 s 720P 9:16", 720, 1280, 10), ("15 s 1080P 16:9", 1920, 1080, 15)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    prompt = "image 1 wearing the gown from image 2 walks slowly through the garden; video 1 rests on a table. " * 2
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'preview':<18} {'best s':>7} {'size KB':>8}")
        for label, width, height, seconds in CASES:
            request = PreviewRequest(
                width=width,
                height=height,
                seconds=seconds,
                prompt=prompt,
                images=[REFS / "mia.png", REFS / "dress.png"],
                videos=[REFS / "bottle.mp4"],
                voice=REFS / "mia.wav",
                caption=Caption(
                    shot="garden-walk",
                    take=1,
                    refs=(("image 1", "mia"), ("image 2", "dress"), ("video 1", "bottle")),
                    matrix=(("side", "left"),),
                ),
            )
            out = Path(folder) / "preview.mp4"
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                render_preview(request, out)
                best = min(best, time.perf_counter() - started)
            print(f"{label:<18} {best:>7.2f} {out.stat().st_size / 1024:>8.0f}")


if __name__ == "__main__":
    main()
