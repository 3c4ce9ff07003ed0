"""Benchmark: how long verifying a downloaded render takes (`renderspec.media.verify_render`).

Times two 8 s 720P H.264/AAC mp4s: an emulator preview (still panels, one keyframe, so the "last
group of pictures" is the whole video) and footage-like video (every frame moves, a keyframe every
2 s, a few Mbit/s, like a real render). Prints the median and best wall time of `--repeat` runs.

Usage: python bench/verify.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from renderspec.emulator.preview import PreviewRequest, render_preview
from renderspec.media import verify_render

REFS = Path(__file__).resolve().parents[1] / "specs" / "refs"
SECONDS, WIDTH, HEIGHT, FPS = 8, 1280, 720, 30


def write_footage(path: Path) -> None:
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = np.random.default_rng(7).integers(0, 48, (HEIGHT, WIDTH, 3))
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS, options={"g": str(2 * FPS), "preset": "veryfast"})
        video.width, video.height, video.pix_fmt, video.bit_rate = WIDTH, HEIGHT, "yuv420p", 4_000_000
        audio = container.add_stream("aac", rate=48_000, layout="mono")
        for number in range(SECONDS * FPS):
            pixels = np.stack([(xs + 4 * number) % 256, (ys + 2 * number) % 256, (xs + ys) % 256], axis=-1) + noise
            frame = av.VideoFrame.from_ndarray(np.clip(pixels, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = number, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(SECONDS * 48_000) / 48_000)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = av.AudioFrame.from_ndarray(tone[start : start + 1024].reshape(1, -1), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 48_000, start, Fraction(1, 48_000)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        preview = Path(folder) / "preview.mp4"
        render_preview(
            PreviewRequest(
                width=WIDTH,
                height=HEIGHT,
                seconds=SECONDS,
                prompt="image 1 wearing the gown from image 2 walks slowly through the garden",
                images=[REFS / "mia.png", REFS / "dress.png", REFS / "garden.jpg"],
                voice=REFS / "mia.wav",
            ),
            preview,
        )
        footage = Path(folder) / "footage.mp4"
        write_footage(footage)
        print(f"{'8 s 720P':<10} {'size KB':>8} {'median ms':>10} {'best ms':>8}")
        for label, path in (("preview", preview), ("footage", footage)):
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                verify_render(path, size=(WIDTH, HEIGHT), seconds=SECONDS)
                times.append(time.perf_counter() - started)
            size = path.stat().st_size // 1024
            print(f"{label:<10} {size:>8} {statistics.median(times) * 1000:>10.1f} {min(times) * 1000:>8.1f}")


if __name__ == "__main__":
    main()
