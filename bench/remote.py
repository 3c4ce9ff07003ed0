"""Benchmark: the remote cache against a local S3 server (moto), and the offline plan beside it.

Starts moto's S3 server in a subprocess (`python -m moto.server`, so its CPU is not the client's
process's; `--server thread` runs it in this process instead) and measures:
- transfer: a project of N shots (local provider, 720P 16:9, one duration) faked as built (each
  cache entry a real preview mp4 padded to about --size-kb, its bytes unique per shot, a matching
  lock), then `renderspec push` from it and `renderspec pull` into a fresh clone (specs, settings
  and lock; no cache), each in a fresh interpreter (start-up included), and once in this process
  to count the S3 requests. `pull` verifies each entry completely (record, key, sha256, size, and
  `media.verify_render`, which decodes the last group of pictures).
- lookup: every shot of a generated --shots storyboard on the remote (tiny objects put straight
  into the bucket); `renderspec plan` in a clone with no cache (every shot `remote`), and the
  lookup alone (`Remote.contains`) with its request count.
- offline: the warm no-op plan of bench/plan_noop.py (before and after a build) and the clone's
  `plan --no-remote`; with --baseline REV the same plans of a temporary worktree of REV run
  interleaved with today's, so the comparison shares the machine's load.

Timings are printed, never asserted. Figures are medians of --repeat runs (--transfer-repeat for the
CLI push and pull); in-process runs are one.

Usage: python bench/remote.py [--entries 1000] [--size-kb 100] [--shots 10000] [--repeat 3] [--transfer-repeat 1]
                              [--server subprocess|thread] [--baseline 3ef30eb] [--skip transfer lookup offline]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import plan_noop  # noqa: E402 (the storyboard generator and fake build of the plan benchmark)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1"}
SECONDS = 5  # every transfer shot's duration: one preview serves them all
MB = 1e6


# -- the S3 server ---------------------------------------------------------------------------


@contextlib.contextmanager
def s3_server(kind: str) -> Iterator[str]:
    """moto's S3 server on loopback, in a subprocess or a thread; yields its endpoint URL."""
    if kind == "thread":
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("moto's server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=CREDENTIALS["AWS_REGION"],
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(max_pool_connections=32, s3={"addressing_style": "path"}),
    )


def environment(endpoint: str | None, remote: str | None, pythonpath: Path | None = None) -> dict[str, str]:
    """What a command runs with: this environment without AWS settings of its own, plus the bench's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "RENDERSPEC_"))}
    env.update(CREDENTIALS)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    if remote:
        env["RENDERSPEC_REMOTE"] = remote
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


# -- running commands ------------------------------------------------------------------------


def timed(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, str]:
    """Wall seconds and stdout of `renderspec ARGV` in a fresh interpreter; exits when it fails."""
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "renderspec", *argv], cwd=cwd, env=dict(env), capture_output=True)
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"renderspec {' '.join(argv)} failed ({run.returncode}): {run.stderr.decode()[-2000:]}")
    return elapsed, run.stdout.decode()


@dataclass
class InProcess:
    seconds: float
    out: str
    requests: int


def in_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> InProcess:
    """`renderspec.cli.main` in this process, with the S3 requests of every backend it opened counted."""
    from renderspec.cli import main
    from renderspec.remote.s3 import S3Backend

    opened: list[S3Backend] = []
    original = S3Backend.__init__

    def recording(self: S3Backend, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    out, err = io.StringIO(), io.StringIO()
    S3Backend.__init__ = recording  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        code = main(list(argv), env=dict(env), cwd=cwd, stdout=out, stderr=err)
        elapsed = time.perf_counter() - started
    finally:
        S3Backend.__init__ = original  # type: ignore[method-assign]
    if code != 0:
        raise SystemExit(f"renderspec {' '.join(argv)} failed in process ({code}): {err.getvalue()[-2000:]}")
    return InProcess(elapsed, out.getvalue(), sum(backend.requests for backend in opened))


# -- results ---------------------------------------------------------------------------------


@dataclass
class Table:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(
        self,
        what: str,
        seconds: Sequence[float] | float,
        *,
        count: int = 0,
        mbytes: float = 0.0,
        requests: int | None = None,
        note: str = "",
    ) -> None:
        runs = [seconds] if isinstance(seconds, float | int) else list(seconds)
        median = statistics.median(runs)
        shown = f"{median:7.2f}" + (f" ({min(runs):.2f}-{max(runs):.2f})" if len(runs) > 1 else "")
        rate = []
        if count:
            rate.append(f"{count / median:,.0f}/s")
        if mbytes:
            rate.append(f"{mbytes / median:.1f} MB/s")
        extra = " ".join([*([f"{requests} req"] if requests is not None else []), note])
        self.rows.append((what, shown, ", ".join(rate), extra.strip()))
        print(f"  {what}: {shown} s {', '.join(rate)} {extra}".rstrip(), flush=True)

    def print(self) -> None:
        widths = [max(len(row[i]) for row in [("run", "wall s", "rate", ""), *self.rows]) for i in range(4)]
        print()
        for row in [("run", "wall s (median, range)", "rate", "requests / notes"), *self.rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


def repeat(times: int, run: Callable[[int], float]) -> list[float]:
    return [run(index) for index in range(times)]


# -- the transfer benchmark ------------------------------------------------------------------


def make_transfer_project(root: Path, shots: int) -> None:
    """N shots of one size and duration over two references (plan_noop's shapes, one duration)."""
    from PIL import Image

    (root / "specs" / "refs").mkdir(parents=True)
    (root / "renderspec.toml").write_text('[renderspec]\nprovider = "local"\n')
    Image.new("RGB", (320, 480), (200, 120, 40)).save(root / "specs" / "refs" / "a.png")
    Image.new("RGB", (320, 480), (30, 90, 200)).save(root / "specs" / "refs" / "b.png")
    refs = '[refs.a]\nimage = "refs/a.png"\n\n[refs.b]\nimage = "refs/b.png"\n'
    for first in range(0, shots, plan_noop.SHOTS_PER_FILE):
        lines = ['[defaults]\nresolution = "720P"\nratio = "16:9"\nseed = 7\n', refs]
        for number in range(first, min(first + plan_noop.SHOTS_PER_FILE, shots)):
            lines.append(
                f'[[shots]]\nid = "shot-{number:05d}"\nmedia = ["a", "b"]\n'
                f'prompt = "{{{{ a }}}} hands {{{{ b }}}} a parcel in scene {number}."\nduration = {SECONDS}\n'
            )
        (root / "specs" / f"part-{first // plan_noop.SHOTS_PER_FILE:03d}.toml").write_text("\n".join(lines))


def padded(video: bytes, size: int, tag: bytes) -> bytes:
    """The mp4 with a trailing `free` box (which players skip) holding `tag`, `size` bytes in all when it can."""
    body = max(len(tag), size - len(video) - 8)
    return video + struct.pack(">I4s", 8 + body, b"free") + tag.ljust(body, b"\0")


def fake_transfer_build(root: Path, size: int) -> tuple[int, float]:
    """Fills the cache and the lock as a build with the local provider would; returns (entries, bytes each)."""
    from renderspec.emulator.preview import PreviewRequest, render_preview
    from renderspec.fsutil import file_sha256
    from renderspec.manifest import LockEntry, Manifest
    from renderspec.media import verify_render
    from renderspec.project import plan_project
    from renderspec.settings import load_settings

    settings = load_settings(root, {})
    project = plan_project(settings, [], root)
    shots = project.plan.shots
    sizes = {(shot.expected_size, shot.duration) for shot in shots}
    if len(sizes) != 1 or None in {shot.expected_size for shot in shots}:
        raise SystemExit(f"the transfer project's shots differ in size or duration: {sizes}")
    (width, height), seconds = next(iter(sizes))
    base = root / "preview.mp4"
    refs = [root / "specs" / "refs" / "a.png", root / "specs" / "refs" / "b.png"]
    render_preview(PreviewRequest(width, height, seconds, "a parcel changes hands", images=refs), base)
    video = base.read_bytes()
    facts = verify_render(base, size=(width, height), seconds=float(seconds))
    store, manifest = project.store, Manifest(root)
    for shot in shots:
        staging = store.staging_file()
        staging.write_bytes(padded(video, size, shot.key.encode()))
        digest, length = file_sha256(staging), staging.stat().st_size
        task_id = f"local-{shot.key[:16]}"
        meta = {
            "shot": shot.id,
            "spec": shot.spec,
            "provider": settings.provider,
            "provider_kind": settings.provider_kind,
            "model": shot.model,
            "task_id": task_id,
            "request_id": None,
            "payload": shot.payload,
            "request_sent": None,
            "duplicates": [],
            "usage": {"duration": seconds},
            "times": {},
            "video_sha256": digest,
            "video_size": length,
            "video": {"codec": facts.codec, "width": facts.width, "height": facts.height, "seconds": facts.seconds},
            "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        store.put(shot.key, staging, meta)
        manifest.set(
            shot.id,
            LockEntry(
                shot.spec,
                shot.key,
                f"renders/{shot.id}.mp4",
                digest,
                shot.model,
                shot.duration,
                shot.resolution,
                shot.ratio,
                task_id,
                video_size=length,
            ),
        )
    manifest.save()
    check = verify_render(store.video_of(shots[0].key), size=(width, height), seconds=float(seconds))
    assert check.width == width, "a padded preview must still verify"
    return len(shots), float(length)


def clone(source: Path, target: Path, settings: str | None = None) -> Path:
    """What `git clone` gives a teammate: specs, settings and lock; no cache, no renders."""
    shutil.copytree(source / "specs", target / "specs")
    shutil.copy2(source / "renderspec.lock", target / "renderspec.lock")
    if settings is None:
        shutil.copy2(source / "renderspec.toml", target / "renderspec.toml")
    else:
        (target / "renderspec.toml").write_text(settings)
    return target


def fresh(project: Path) -> None:
    """Back to a fresh clone: no cache, no renders."""
    for name in ("cache", "renders"):
        shutil.rmtree(project / name, ignore_errors=True)


def verify_cost(video: Path, count: int) -> float:
    """Seconds per entry that `media.verify_render` alone takes (one thread), over `count` calls."""
    from renderspec.media import verify_render

    started = time.perf_counter()
    for _ in range(count):
        verify_render(video, size=(1280, 720), seconds=float(SECONDS))
    return (time.perf_counter() - started) / count


def bench_transfer(args: argparse.Namespace, endpoint: str, work: Path, table: Table) -> None:
    print(f"transfer: {args.entries} entries of ~{args.size_kb} KB", flush=True)
    a = work / "a"
    make_transfer_project(a, args.entries)
    started = time.perf_counter()
    entries, each = fake_transfer_build(a, args.size_kb * 1000)
    print(f"  (faked the build in {time.perf_counter() - started:.1f} s: {entries} entries of {each:,.0f} bytes)")
    total = entries * each / MB
    s3_client(endpoint).create_bucket(Bucket="transfer")
    url = "s3://transfer/push-{}"

    def push(index: int) -> float:
        seconds, out = timed(["push"], a, environment(endpoint, url.format(index)))
        if f"pushed {entries} of {entries}" not in out:
            raise SystemExit(f"push did not push every entry: {out[-500:]}")
        return seconds

    table.add("push (CLI, fresh prefix each)", repeat(args.transfer_repeat, push), count=entries, mbytes=total)
    run = in_process(["push"], a, environment(endpoint, url.format("in-process")))
    table.add("push (in process)", run.seconds, count=entries, mbytes=total, requests=run.requests)
    seconds, out = timed(["push"], a, environment(endpoint, url.format(0)))
    table.add("push again (all there: a lookup)", seconds, note=out.strip().splitlines()[-1][:40])

    b = clone(a, work / "b")

    def pull(index: int) -> float:
        fresh(b)
        seconds, out = timed(["pull"], b, environment(endpoint, url.format(0)))
        if f"pulled {entries} " not in out:
            raise SystemExit(f"pull did not fetch every entry: {out[-500:]}")
        return seconds

    table.add("pull (CLI, into a fresh clone)", repeat(args.transfer_repeat, pull), count=entries, mbytes=total)
    fresh(b)
    run = in_process(["pull"], b, environment(endpoint, url.format(0)))
    table.add("pull (in process)", run.seconds, count=entries, mbytes=total, requests=run.requests)
    seconds, _ = timed(["pull"], b, environment(endpoint, url.format(0)))
    table.add("pull again (all cached)", seconds)
    sample = next((b / "renders").glob("*.mp4"))
    per = verify_cost(sample, 20)
    table.add(f"verify_render alone x{entries} (1 thread)", per * entries, note=f"{per * 1000:.0f} ms each")


# -- the lookup benchmark --------------------------------------------------------------------


def plan_keys(root: Path) -> list[str]:
    from renderspec.project import plan_project
    from renderspec.settings import load_settings

    return [shot.key for shot in plan_project(load_settings(root, {}), [], root, with_states=False).plan.shots]


def populate(endpoint: str, bucket: str, prefix: str, keys: Sequence[str]) -> float:
    """Puts a meta.json and a video.mp4 (tiny bodies) for each key straight into the bucket."""
    client = s3_client(endpoint)
    client.create_bucket(Bucket=bucket)

    def put(key: str) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/v1/objects/{key}/video.mp4", Body=b"v")
        client.put_object(Bucket=bucket, Key=f"{prefix}/v1/objects/{key}/meta.json", Body=b"{}")

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))
    return time.perf_counter() - started


def bench_lookup(args: argparse.Namespace, endpoint: str, built: Path, work: Path, table: Table) -> Path:
    """`plan` of a clone whose every shot is on the remote; returns the clone (for the offline plan)."""
    from renderspec.remote.s3 import S3Backend
    from renderspec.remote.tier import Remote

    print(f"lookup: {args.shots} shots, all on the remote", flush=True)
    keys = plan_keys(built)
    took = populate(endpoint, "lookup", "team", keys)
    print(f"  (put {2 * len(keys):,} objects into the bucket in {took:.1f} s)")
    c = clone(built, work / "c")
    remote = environment(endpoint, "s3://lookup/team")
    timed(["plan", "--no-remote"], c, remote)  # the clone's first plan hashes its references
    table.add(
        f"plan, {len(keys)} shots, all remote (CLI)", repeat(args.repeat, lambda _: timed(["plan"], c, remote)[0])
    )
    run = in_process(["plan", "--json"], c, remote)
    states = {shot["state"] for shot in __import__("json").loads(run.out)["shots"]}
    table.add("plan --json, all remote (in process)", run.seconds, requests=run.requests, note=f"states {states}")

    def lookup(_: int) -> float:
        backend = S3Backend("lookup", "team", env=remote, endpoint=endpoint)
        tier = Remote(backend)
        started = time.perf_counter()
        found = tier.contains(keys)
        elapsed = time.perf_counter() - started
        requests.append(backend.requests)
        tier.close()
        if len(found) != len(keys):
            raise SystemExit(f"the lookup found {len(found)} of {len(keys)}")
        return elapsed

    requests: list[int] = []
    seconds = repeat(args.repeat, lookup)
    table.add(f"Remote.contains({len(keys)} keys)", seconds, count=len(keys), requests=max(requests))
    return c


# -- the offline plan, today and before ------------------------------------------------------


@contextlib.contextmanager
def baseline_tree(revision: str | None, work: Path) -> Iterator[Path | None]:
    if revision is None:
        yield None
        return
    tree = work / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), revision], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


def bench_offline(args: argparse.Namespace, clone_c: Path | None, work: Path, table: Table) -> None:
    """plan_noop's warm and built no-op plans (and the clone's offline plan), today and at --baseline."""
    with baseline_tree(args.baseline, work) as tree:
        trees: dict[str, tuple[Path, dict[str, str]]] = {"today": (REPO, environment(None, None, REPO))}
        if tree is not None:
            trees[args.baseline] = (tree, environment(None, None, tree))
            print(f"offline plans: today and {args.baseline}, interleaved", flush=True)
        else:
            print("offline plans (no --baseline)", flush=True)
        projects: dict[str, Path] = {}
        for name, (source, env) in trees.items():
            where = subprocess.run(
                [sys.executable, "-c", "import renderspec; print(renderspec.__file__)"],
                env=env,
                cwd=work,  # not the repository: `python -c` imports from its working folder first
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            if not where.startswith(str(source)):
                raise SystemExit(f"{name}: renderspec comes from {where}, not {source}")
            projects[name] = work / f"noop-{name}"
            plan_noop.make_project(projects[name], args.shots, 50)
            table.add(f"[{name}] cold plan, {args.shots} shots", timed(["plan"], projects[name], env)[0])

        def interleaved(label: str, runs: Mapping[str, tuple[Sequence[str], Path]]) -> None:
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeat):
                for name, (argv, cwd) in runs.items():
                    seconds[name].append(timed(argv, cwd, trees[name][1])[0])
            for name, each in seconds.items():
                table.add(f"[{name}] {label} ({' '.join(runs[name][0])})", each)

        interleaved("warm no-op", {name: (["plan"], root) for name, root in projects.items()})
        for name, (source, env) in trees.items():
            code = f"import sys; sys.path.insert(0, {str(source / 'bench')!r}); import plan_noop, pathlib; "
            code += f"plan_noop.fake_build(pathlib.Path({str(projects[name])!r}))"
            subprocess.run([sys.executable, "-c", code], env=env, cwd=projects[name], check=True)
            timed(["plan"], projects[name], env)  # the first plan after a build parses the new lock once
        interleaved("built no-op", {name: (["plan"], root) for name, root in projects.items()})
        if clone_c is not None:
            runs: dict[str, tuple[Sequence[str], Path]] = {"today": (["plan", "--no-remote"], clone_c)}
            for name in trees:
                if name != "today":  # before the remote cache there was no --no-remote: a plain plan is offline
                    runs[name] = (["plan"], clone(projects[name], work / f"c-{name}"))
                    timed(["plan"], runs[name][1], trees[name][1])  # its first plan hashes the references
            interleaved("clone without cache", runs)


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1000, help="entries pushed and pulled")
    parser.add_argument("--size-kb", type=int, default=100, help="bytes of each entry's video, in KB")
    parser.add_argument("--shots", type=int, default=10000, help="shots of the lookup and offline plans")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each CLI timing (the median is shown)")
    parser.add_argument(
        "--transfer-repeat", type=int, default=1, help="CLI runs of push and pull (a pull of 1,000 is minutes here)"
    )
    parser.add_argument("--server", choices=("subprocess", "thread"), default="subprocess", help="where moto runs")
    parser.add_argument("--baseline", metavar="REV", help="also time the offline plans at REV (a temporary worktree)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("transfer", "lookup", "offline"))
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {Path('/proc/loadavg').read_text().strip()}")
    print(f"S3: moto's server in a {args.server}")
    table = Table()
    work = Path(tempfile.mkdtemp(prefix="renderspec-remote-bench-"))
    try:
        with s3_server(args.server) as endpoint:
            if "transfer" not in args.skip:
                bench_transfer(args, endpoint, work, table)
            built = work / "built"
            if {"lookup", "offline"} - set(args.skip):
                plan_noop.make_project(built, args.shots, 50)
                plan_noop.fake_build(built)
            clone_c = None if "lookup" in args.skip else bench_lookup(args, endpoint, built, work, table)
            if "offline" not in args.skip:
                bench_offline(args, clone_c, work, table)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table.print()
    print(f"load {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
