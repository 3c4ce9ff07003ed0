"""Benchmark: build throughput against the emulator, in a separate process, as a user would run it.

N shots (two reference images, 2 s at 720P, differing by seed) are built with `-j J` against
`renderspec emulator --latency L --concurrency J`. Printed: wall time against the ideal N / J x L,
the HTTP requests per shot the emulator served, and the build's peak memory. The emulator encodes
each distinct preview once (previews do not depend on the seed), so what is measured is
renderspec's own overhead, not the video encoder.

Usage: python bench/build_throughput.py [--shots 200 2000] [--jobs 20] [--latency 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def make_project(root: Path, shots: int, poll: float) -> None:
    from PIL import Image

    (root / "specs" / "refs").mkdir(parents=True)
    Image.new("RGB", (320, 480), (200, 120, 40)).save(root / "specs" / "refs" / "a.png")
    Image.new("RGB", (480, 320), (40, 120, 200)).save(root / "specs" / "refs" / "b.png")
    (root / "renderspec.toml").write_text(f"[renderspec]\npoll_interval = {poll}\nsubmit_rate = 500\n")
    lines = [
        '[defaults]\nresolution = "720P"\nduration = 2\n\n[refs.a]\nimage = "refs/a.png"\n[refs.b]\nimage = "refs/b.png"\n'
    ]
    for number in range(shots):
        lines.append(
            f'[[shots]]\nid = "take-{number:05d}"\nmedia = ["a", "b"]\nprompt = "{{{{ a }}}} dances with {{{{ b }}}}"\nseed = {number}\n'
        )
    (root / "specs" / "takes.toml").write_text("\n".join(lines))


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between task queries")
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores; -j {args.jobs}, latency {args.latency:g} s, poll every {args.poll:g} s"
    )
    print(
        f"{'shots':>6} {'plan s':>7} {'build s':>8} {'ideal s':>8} {'over %':>7} {'create':>7} {'query':>6} {'download':>9} {'upload':>7} {'peak MB':>8}"
    )
    for shots in args.shots:
        root = Path(tempfile.mkdtemp(prefix="renderspec-throughput-"))
        emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "renderspec",
                "emulator",
                "--port",
                "0",
                "--latency",
                str(args.latency),
                "--concurrency",
                str(args.jobs),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().strip().removeprefix("listening on ")
            make_project(root, shots, args.poll)
            env = {
                **os.environ,
                "RENDERSPEC_PROVIDER": "dashscope",
                "RENDERSPEC_BASE_URL": url,
                "DASHSCOPE_API_KEY": "bench",
            }
            plan_s, _, _, _ = timed([sys.executable, "-m", "renderspec", "plan"], root, env)
            wall, peak, code, output = timed(
                [sys.executable, "-m", "renderspec", "build", "-j", str(args.jobs), "--keep-going"], root, env
            )
            if code != 0:
                raise SystemExit(f"build failed ({code}):\n{output[-3000:]}")
            stats = httpx.get(f"{url}/_emulator/stats").json()["requests"]
            ideal = shots / args.jobs * args.latency
            per = {name: stats.get(name, 0) / shots for name in ("create", "query", "download")}
            print(
                f"{shots:>6} {plan_s:>7.2f} {wall:>8.2f} {ideal:>8.1f} {100 * (wall - ideal - plan_s) / ideal:>7.1f} "
                f"{per['create']:>7.2f} {per['query']:>6.2f} {per['download']:>9.2f} {stats.get('upload', 0):>7} {peak:>8.0f}"
            )
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
