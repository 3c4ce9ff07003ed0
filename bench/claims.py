"""Benchmark: several clones build one storyboard at the same moment, sharing a remote cache with claims.

Starts `renderspec emulator` in its own process (each task takes --latency seconds), generates a
storyboard of N shots (bench/plan_noop.py's generator), makes K clones of it that share a folder
remote (or moto's S3 server with --remote s3), starts K real `renderspec build` processes at once
through the paid DashScope client, and counts the creates the emulator received. With claims,
creates equal shots however many builds run; each build renders some shots and fetches the rest.

Usage: python bench/claims.py [--builds 3] [--shots 24] [--latency 2] [--remote folder|s3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_noop import make_project


@contextlib.contextmanager
def emulator(latency: float) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "renderspec",
            "emulator",
            "--port",
            "0",
            "--latency",
            str(latency),
            "--concurrency",
            "256",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"http://\S+", line)
        if url is None:
            raise SystemExit(f"the emulator did not start: {line!r}")
        yield url.group(0)
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def s3_remote() -> Iterator[tuple[str, dict[str, str]]]:
    from remote import s3_client, s3_server  # bench/remote.py

    with s3_server("subprocess") as endpoint:
        s3_client(endpoint).create_bucket(Bucket="claims-bench")
        env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ENDPOINT_URL": endpoint}
        yield "s3://claims-bench/team", env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--shots", type=int, default=24)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds each emulated task takes")
    parser.add_argument("--remote", choices=("folder", "s3"), default="folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        work = Path(scratch)
        if args.remote == "s3":
            url, remote_env = stack.enter_context(s3_remote())
        else:
            (work / "remote").mkdir()
            url, remote_env = str(work / "remote"), {}
        source = work / "source"
        make_project(source, args.shots, 5)
        settings = f'[renderspec]\npoll_interval = 0.2\n\n[renderspec.remote]\nurl = "{url}"\n'
        service = stack.enter_context(emulator(args.latency))
        env = {
            **os.environ,
            **remote_env,
            "RENDERSPEC_PROVIDER": "dashscope",
            "RENDERSPEC_BASE_URL": service,
            "DASHSCOPE_API_KEY": "bench",
        }
        clones = []
        for number in range(args.builds):
            clone = work / f"clone-{number}"
            shutil.copytree(source / "specs", clone / "specs")
            (clone / "renderspec.toml").write_text(settings)
            clones.append(clone)
        started = time.perf_counter()
        builds = [
            subprocess.Popen(
                [sys.executable, "-m", "renderspec", "build", "-j", "8", "--json"],
                cwd=clone,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for clone in clones
        ]
        summaries = []
        for build in builds:
            out, _ = build.communicate(timeout=1800)
            summaries.append((build.returncode, json.loads(out)["summary"] if out.strip() else {}))
        wall = time.perf_counter() - started
        made = httpx.get(f"{service}/_emulator/tasks").json()["tasks"]
        distinct = len({json.dumps(task["request"], sort_keys=True) for task in made})
    print(f"remote: {args.remote}; {args.builds} builds at once of {args.shots} shots; task latency {args.latency} s")
    for number, (code, summary) in enumerate(summaries):
        print(
            f"  build {number}: exit {code}, rendered {summary.get('rendered')}, "
            f"cached or fetched {summary.get('cached')}, failed {summary.get('failed')}"
        )
    print(f"creates: {len(made)} ({distinct} distinct requests) for {args.shots} shots; wall {wall:.1f} s")


if __name__ == "__main__":
    main()
