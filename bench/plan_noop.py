"""Benchmark: cold and warm (no-op) `renderspec plan` of generated storyboards.

Generates a project of N shots over M reference images in a temporary folder, then times the
real command in a fresh interpreter (start-up included) and reads its peak memory:
- cold: no digest memo yet, every reference file is hashed and probed;
- warm: nothing changed since the last plan, so no file contents are read;
- built: as after a full build: every shot in renderspec.lock and in the cache, all `cached`.

Usage: python bench/plan_noop.py [--shots 1000 10000] [--refs 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHOTS_PER_FILE = 500


def make_project(root: Path, shots: int, refs: int) -> None:
    from PIL import Image

    (root / "specs" / "refs").mkdir(parents=True)
    (root / "specs" / "fragments").mkdir()
    (root / "renderspec.toml").write_text('[renderspec]\nprovider = "local"\n')
    (root / "specs" / "fragments" / "style.j2").write_text("Soft {{ light }} light, 35mm film.\n")
    for index in range(refs):
        colour = (index * 37 % 256, index * 91 % 256, index * 53 % 256)
        Image.new("RGB", (320, 480), colour).save(root / "specs" / "refs" / f"r{index}.png")
    for first in range(0, shots, SHOTS_PER_FILE):
        lines = ['[defaults]\nresolution = "720P"\nseed = 7\n\n[vars]\nlight = "dusk"\n']
        for index in range(refs):
            lines.append(f'[refs.r{index}]\nimage = "refs/r{index}.png"\n')
        for number in range(first, min(first + SHOTS_PER_FILE, shots)):
            a, b = number % refs, (number + 1) % refs
            style = " {% include 'fragments/style.j2' %}" if number % 100 == 0 else ""
            lines.append(
                f'[[shots]]\nid = "shot-{number:05d}"\nmedia = ["r{a}", "r{b}"]\n'
                f'prompt = "{{{{ r{a} }}}} meets {{{{ r{b} }}}} in scene {number}, {{{{ light }}}} light.{style}"\n'
                f"duration = {2 + number % 8}\n"
            )
        (root / "specs" / f"part-{first // SHOTS_PER_FILE:03d}.toml").write_text("\n".join(lines))


def fake_build(root: Path) -> None:
    """Writes the lock and cache entries a full build would leave (tiny stand-in videos)."""
    from renderspec.manifest import LockEntry, Manifest

    document = json.loads(
        subprocess.run(
            [sys.executable, "-m", "renderspec", "plan", "--json"], cwd=root, capture_output=True, check=True
        ).stdout
    )
    manifest = Manifest(root)
    for shot in document["shots"]:
        key = shot["key"]
        folder = root / "cache" / "objects" / key[:2] / key
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "video.mp4").write_bytes(b"0")
        (folder / "meta.json").write_text(
            json.dumps({"format": 1, "key": key, "video_size": 1, "video_sha256": "0" * 64, "payload": None})
        )
        manifest.set(
            shot["id"],
            LockEntry(
                shot["spec"],
                key,
                f"renders/{shot['id']}.mp4",
                "0" * 64,
                shot["model"],
                shot["duration"],
                shot["resolution"],
                shot["ratio"],
                "task-" + key[:8],
                video_size=1,
            ),
        )
    manifest.save()


def run_plan(root: Path, *extra: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `renderspec plan` in a fresh interpreter."""
    command = [sys.executable, "-m", "renderspec", "plan", *extra]
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(command, cwd=root, stdout=sink, stderr=subprocess.PIPE)
        assert process.stderr is not None
        errors = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"plan failed ({process.returncode}): {errors.decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--refs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per size (best is shown)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'shots':>6} {'refs':>5} {'run':<12} {'wall s':>7} {'peak MB':>8}")
    for shots in args.shots:
        root = Path(tempfile.mkdtemp(prefix="renderspec-bench-"))
        try:
            make_project(root, shots, args.refs)
            cold = run_plan(root)
            print(f"{shots:>6} {args.refs:>5} {'cold':<12} {cold[0]:>7.2f} {cold[1]:>8.0f}")
            for label, extra in (("warm", ()), ("warm --json", ("--json",))):
                best = min((run_plan(root, *extra) for _ in range(args.repeat)), key=lambda r: r[0])
                print(f"{shots:>6} {args.refs:>5} {label:<12} {best[0]:>7.2f} {best[1]:>8.0f}")
            fake_build(root)
            run_plan(root)  # the first plan after a build parses the new lock once
            for label, extra in (("built", ()), ("built --check", ("--check",))):
                best = min((run_plan(root, *extra) for _ in range(args.repeat)), key=lambda r: r[0])
                print(f"{shots:>6} {args.refs:>5} {label:<12} {best[0]:>7.2f} {best[1]:>8.0f}")
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
