"""kill -9 at random moments, on a bad day at the service, while a storyboard is edited: is any shot
paid for twice, and does every cached render hold what its key says?

Starts `renderspec emulator` in its own process with throttling, 500s, dropped and stalled create
answers and cut downloads; then, again and again, starts `renderspec build` (the DashScope client
pointed at the emulator), kills it with SIGKILL after a random delay, and now and then edits a
shot's prompt. Finally it lets a build finish and prints:

- kills, creates (tasks the service made), distinct request bodies among them (equal: nothing paid twice);
- cache entries whose task was asked to render exactly their key's request (prompt, parameters,
  media kinds), and those that were not (must be 0);
- renders in renders/ whose bytes equal their cache entry's.

    .venv/bin/python bench/kill_loop.py [--kills 60] [--seed 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
EXTRA = """
[refs.mia]
image = "refs/mia.png"
[[shots]]
id = "extra-{{ n }}"
matrix = { n = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }
media = ["mia"]
prompt = "{{ mia }} counts to {{ n }}, version VERSION"
duration = 2
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="renderspec-kill-loop-"))
    project = work / "project"
    shutil.copytree(REPO / "specs", project / "specs", ignore=shutil.ignore_patterns("*.py"))
    (project / "renderspec.toml").write_text("[renderspec]\npoll_interval = 0.1\n")
    version = 1
    (project / "specs" / "extra.toml").write_text(EXTRA.replace("VERSION", str(version)))
    emulator = subprocess.Popen(
        [sys.executable, "-m", "renderspec", "emulator", "--port", "0", "--latency", "1.5", "--concurrency", "8",
         "--throttle", "0.2", "--error-rate", "0.05", "--drop-rate", "0.15", "--stall-rate", "0.05",
         "--stall-seconds", "2", "--truncate-rate", "0.1", "--seed", str(args.seed)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert emulator.stdout is not None
    url = emulator.stdout.readline().split()[-1]
    env = {
        **os.environ,
        "RENDERSPEC_PROVIDER": "dashscope",
        "RENDERSPEC_BASE_URL": url,
        "DASHSCOPE_API_KEY": "sk-kill-loop",
    }
    build = [sys.executable, "-m", "renderspec", "build", "--keep-going", "-j", "8"]
    kills = edits = 0
    started = time.monotonic()
    try:
        for number in range(args.kills):
            child = subprocess.Popen(build, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 4.0))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
            child.wait()
            if number % 7 == 6:  # an edit between builds: tasks of the old version are still paid for
                version += 1
                edits += 1
                (project / "specs" / "extra.toml").write_text(EXTRA.replace("VERSION", str(version)))
        finals = 0
        while True:
            finals += 1
            done = subprocess.run(build, cwd=project, env=env, capture_output=True, text=True)
            if done.returncode == 0 or finals >= 5:
                break
        tasks = httpx.get(f"{url}/_emulator/tasks").json()["tasks"]
    finally:
        emulator.send_signal(signal.SIGINT)
        emulator.wait(timeout=30)
    report(project, tasks, kills, edits, finals, done.returncode, time.monotonic() - started)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    project: Path, tasks: list[dict[str, Any]], kills: int, edits: int, finals: int, code: int, seconds: float
) -> None:
    by_id = {task["task_id"]: task for task in tasks}
    bodies = {json.dumps(task["request"], sort_keys=True) for task in tasks}
    matching = mismatched = 0
    for meta_path in (project / "cache" / "objects").rglob("meta.json"):
        meta = json.loads(meta_path.read_text())
        task = by_id.get(meta["task_id"])
        wanted = meta["payload"]["request"]
        if task is not None and same_request(task["request"], wanted):
            matching += 1
        else:
            mismatched += 1
    lock = (project / "renderspec.lock").read_text()
    renders = sorted((project / "renders").glob("*.mp4"))
    intact = sum(1 for path in renders if f'video_sha256 = "{hashlib.sha256(path.read_bytes()).hexdigest()}"' in lock)
    print(f"kills (SIGKILL mid-build)          {kills}")
    print(f"edits between builds               {edits}")
    print(f"final builds until exit 0          {finals} (last exit {code})")
    print(f"creates (tasks the service made)   {len(tasks)}")
    print(f"distinct request bodies            {len(bodies)}")
    print(f"cache entries matching their key   {matching}")
    print(f"cache entries NOT matching         {mismatched}")
    print(f"renders equal to their lock entry  {intact} of {len(renders)}")
    print(f"wall time                          {seconds:.0f} s")


def same_request(sent: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """The task was asked for the key's request: same prompt, parameters and media kinds (links differ by design)."""

    def text(request: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in request["input"].items() if name != "media"}

    kinds = [item["type"] for item in sent["input"]["media"]] == [item["type"] for item in wanted["input"]["media"]]
    return kinds and text(sent) == text(wanted) and sent["parameters"] == wanted["parameters"]


if __name__ == "__main__":
    raise SystemExit(main())
