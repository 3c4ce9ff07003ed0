"""The command line: parses arguments, builds the real collaborators, maps outcomes to exit codes.

This is the only module that reads the environment and the process's streams; `main` takes them
as arguments so tests drive it directly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from renderspec import __version__
from renderspec.errors import RenderspecError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as an exception instead of exiting the process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="renderspec", description="Declarative, incremental builds of reference-to-video storyboards."
    )
    parser.add_argument("--version", action="version", version=f"renderspec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="parse, expand and validate the specs; print every problem")
    check.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders (default: the project's specs/)")

    plan = commands.add_parser("plan", help="show each shot's key, state, request and estimated cost")
    plan.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders (default: the project's specs/)")
    plan.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    plan.add_argument("--markdown", action="store_true", help="print a Markdown report for a pull-request comment")
    plan.add_argument("--check", action="store_true", help="exit 1 if any shot would render")
    plan.add_argument("--provider", choices=("local", "dashscope", "apiyi"), help="the provider whose keys to compute")

    plan.add_argument(
        "--shot", action="append", default=[], metavar="ID", help="show only this shot (an id or a glob; repeatable)"
    )
    plan.add_argument(
        "--why", action="store_true", help="explain each shot that would render: what differs from its last render"
    )
    _remote_flags(plan)

    explain = commands.add_parser(
        "explain", help="show what differs from the render the lock remembers, and which file it came from"
    )
    explain.add_argument(
        "shots", nargs="*", metavar="SHOT", help="shot ids or globs (default: every shot that would render)"
    )
    explain.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    explain.add_argument(
        "--provider", choices=("local", "dashscope", "apiyi"), help="the provider whose keys to compute"
    )
    _remote_flags(explain, read_only=False)

    build = commands.add_parser("build", help="render what is not cached; update the cache, renders/ and the lock")
    build.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders (default: the project's specs/)")
    build.add_argument(
        "-j", "--jobs", type=int, default=None, metavar="N", help="tasks in flight at the service at once"
    )
    build.add_argument(
        "--keep-going", action="store_true", help="let the other shots finish when one fails (default in CI)"
    )
    build.add_argument("--dry-run", action="store_true", help="show what would render, render nothing")
    build.add_argument("--provider", choices=("local", "dashscope", "apiyi"), help="override the configured provider")
    build.add_argument(
        "--shot",
        action="append",
        default=[],
        metavar="ID",
        help="build only this shot (an id or a glob such as 's05-*'; repeatable)",
    )
    build.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    build.add_argument(
        "--adopt", action="append", default=[], metavar="SHOT=TASK_ID", help="a lost create's task, found by hand"
    )
    build.add_argument(
        "--resubmit", action="append", default=[], metavar="SHOT", help="send a lost create again (may pay twice)"
    )
    build.add_argument(
        "--rerender-missing",
        action="store_true",
        help="pay again for shots the lock says were rendered but no cache holds (state `missing`)",
    )
    build.add_argument("--shard", type=_shard, metavar="K/N", help="render only shard K of N (by key; for CI matrices)")
    build.add_argument("--budget", type=_amount, metavar="AMOUNT", help="refuse or stop before spending more than this")
    build.add_argument("--no-cuts", action="store_true", help="do not make the cuts after the shots")
    _remote_flags(build)

    cut = commands.add_parser(
        "cut", help="write each cut as renders/cuts/NAME.mp4, .otio and .edl (an unchanged cut is not encoded again)"
    )
    cut.add_argument("names", nargs="*", metavar="NAME", help="the cuts to make (default: every cut)")
    cut.add_argument("--provider", choices=("local", "dashscope", "apiyi"), help="the provider whose renders to use")
    cut.add_argument("--force", action="store_true", help="encode the cuts again even when unchanged")

    pull = commands.add_parser(
        "pull", help="fetch what the remote cache holds for the current plan into the cache and renders/"
    )
    pull.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders (default: the project's specs/)")
    pull.add_argument(
        "--shot", action="append", default=[], metavar="ID", help="pull only this shot (an id or a glob; repeatable)"
    )
    pull.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    pull.add_argument("--provider", choices=("local", "dashscope", "apiyi"), help="the provider whose keys to compute")
    _remote_flags(pull, read_only=False, off=False)

    push = commands.add_parser("push", help="upload the local cache entries the remote cache lacks")
    push.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders (default: the project's specs/)")
    push.add_argument("--all", action="store_true", help="every local entry, not just the current plan's")
    push.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    push.add_argument("--provider", choices=("local", "dashscope", "apiyi"), help="the provider whose keys to compute")
    _remote_flags(push, read_only=False, off=False)

    review = commands.add_parser(
        "review", help="write renders/index.html: the cuts, then every shot with its player, prompt, state and cost"
    )
    review.add_argument(
        "--sheet", action="store_true", help="also write contact-sheet.png beside the page (poster frames with ids)"
    )
    review.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="where to write the page, or a folder for its index.html (default: renders/index.html)",
    )
    review.add_argument(
        "--provider", choices=("local", "dashscope", "apiyi"), help="the provider whose keys to compute"
    )

    gc = commands.add_parser("gc", help="drop cache entries that no current spec or the lock refers to")
    gc.add_argument("--dry-run", action="store_true", help="list what would be dropped")

    commands.add_parser(
        "verify", help="re-hash every cache entry; move damaged ones aside and name the shots that render again"
    )

    clean = commands.add_parser("clean", help="remove materialised renders of shots that no longer exist")
    clean.add_argument("--all", action="store_true", help="remove every materialised render (the cache keeps them)")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed")

    schema = commands.add_parser(
        "schema", help="write the JSON Schemas of spec files and renderspec.toml, and a .taplo.toml, for editors"
    )
    schema.add_argument(
        "--out", type=Path, metavar="DIR", help="the folder for the schema files (default: the project's .renderspec/)"
    )
    schema.add_argument(
        "--print",
        choices=("spec", "settings", "taplo"),
        dest="print_document",
        help="print this one document on stdout and write nothing",
    )

    init = commands.add_parser("init", help="start a storyboard: settings, a cast, one shot, reference images")
    init.add_argument("folder", nargs="?", type=Path, metavar="DIR", help="where (default: the current folder)")

    # `renderspec lock merge %O %A %B`: git's merge driver for renderspec.lock (see renderspec/lockmerge.py).
    lock = commands.add_parser("lock", help="work on renderspec.lock").add_subparsers(
        dest="lock_command", metavar="merge", required=True, parser_class=_Parser
    )
    merge = lock.add_parser("merge", help="merge three versions of the lock shot by shot, as git's merge driver")
    merge.add_argument("base", type=Path, metavar="BASE", help="the common ancestor's lock (git's %%O)")
    merge.add_argument("ours", type=Path, metavar="OURS", help="our lock (%%A), replaced by the merged lock")
    merge.add_argument("theirs", type=Path, metavar="THEIRS", help="their lock (%%B)")

    emulator = commands.add_parser("emulator", help="run the local API emulator (DashScope and APIYI contracts)")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8787, help="0 picks a free port (printed on the first line)")
    emulator.add_argument("--latency", type=float, default=2.0, metavar="SECONDS", help="time from create to SUCCEEDED")
    emulator.add_argument("--concurrency", type=int, default=2, metavar="N", help="tasks RUNNING at once")
    emulator.add_argument("--throttle", type=_rate, default=0.0, metavar="P", help="fraction of creates answered 429")
    emulator.add_argument(
        "--error-rate", type=_rate, default=0.0, metavar="P", help="fraction of API requests answered 500"
    )
    emulator.add_argument("--fail-rate", type=_rate, default=0.0, metavar="P", help="fraction of tasks that end FAILED")
    emulator.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction of creates whose connection is cut after the task was made",
    )
    emulator.add_argument(
        "--truncate-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction of result downloads whose connection drops halfway (their Content-Length tells)",
    )
    emulator.add_argument(
        "--corrupt-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction of result downloads served whole but with a broken header",
    )
    emulator.add_argument(
        "--short-body-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction of result downloads served as a faststart mp4 whose body stops early,"
        " with no Content-Length and a clean end (only full verification notices)",
    )
    emulator.add_argument(
        "--stall-rate",
        type=_rate,
        default=0.0,
        metavar="P",
        help="fraction of creates answered only after --stall-seconds",
    )
    emulator.add_argument("--stall-seconds", type=float, default=30.0)
    emulator.add_argument("--url-ttl", type=float, default=86400.0, metavar="SECONDS", help="lifetime of result links")
    emulator.add_argument("--seed", type=int, default=None, metavar="N", help="makes injected faults repeatable")
    emulator.add_argument("--key", default=None, help="the one bearer key accepted (default: any non-empty key)")
    return parser


def _remote_flags(parser: argparse.ArgumentParser, *, read_only: bool = True, off: bool = True) -> None:
    parser.add_argument(
        "--remote", metavar="URL", help="the remote cache to use (overrides settings and RENDERSPEC_REMOTE)"
    )
    if off:
        parser.add_argument("--no-remote", action="store_true", help="do not use the remote cache (stay offline)")
    if read_only:
        parser.add_argument("--remote-read-only", action="store_true", help="read from the remote cache, never write")


def _shard(text: str) -> Any:
    from renderspec.core.shards import parse_shard

    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an amount (a number ≥ 0, in the plan's currency)")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    environment = os.environ if env is None else env
    try:
        args = build_parser().parse_args(argv)
        return _run(args, environment, cwd or Path.cwd(), out, err)
    except _UsageError as error:
        print(error, file=err)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    except RenderspecError as error:
        print(f"renderspec: error: {error}", file=err)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `renderspec plan --json | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("renderspec: interrupted", file=err)
        return 130
    except OSError as error:  # a disk or permission problem no layer translated: still one clear line
        where = f" ({error.filename})" if error.filename else ""
        print(f"renderspec: error: {(error.strerror or str(error)).lower()}{where}", file=err)
        return EXIT_USAGE
    except Exception as error:
        if environment.get("RENDERSPEC_DEBUG"):
            raise
        print(
            f"renderspec: internal error: {type(error).__name__}: {error} "
            "(this is a bug; run again with RENDERSPEC_DEBUG=1 for a traceback and report it)",
            file=err,
        )
        return EXIT_INTERNAL


def _log_to(err: TextIO) -> None:
    """Warnings of renderspec's own loggers go to stderr as plain lines (never a secret: see providers)."""
    logger = logging.getLogger("renderspec")
    for handler in list(logger.handlers):
        if getattr(handler, "renderspec_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("renderspec: %(message)s"))
    handler.setLevel(logging.WARNING)
    handler.renderspec_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)


def _run(args: argparse.Namespace, env: Mapping[str, str], cwd: Path, out: TextIO, err: TextIO) -> int:
    _log_to(err)
    if args.command == "emulator":
        return _emulator(args, out)
    if args.command == "lock":
        from renderspec.lockmerge import merge_lock_files

        return merge_lock_files(cwd / args.base, cwd / args.ours, cwd / args.theirs, err)
    if args.command == "schema":
        return _schema(args, env, cwd, out, err)
    if args.command == "init":
        from renderspec.scaffold import init_project

        init_project(cwd / args.folder if args.folder else cwd, cwd, out)
        return EXIT_OK
    from renderspec import reporting
    from renderspec.core.model import State
    from renderspec.project import plan_project
    from renderspec.settings import RemoteFlags, find_root, load_settings

    root = find_root(cwd)
    flags = RemoteFlags(
        url=getattr(args, "remote", None),
        off=getattr(args, "no_remote", False),
        read_only=getattr(args, "remote_read_only", False),
    )
    if flags.url is not None and not flags.url.strip():
        raise _UsageError(f"renderspec {args.command}: --remote needs a URL (--no-remote turns the remote off)")
    settings = load_settings(root, env, getattr(args, "provider", None), flags)
    if settings.project.remote.url:
        from renderspec.remote import check_url

        check_url(settings.project.remote.url)  # a bad URL is a settings error in every command, `check` too
    if args.command == "build":
        return _build(args, settings, env, cwd, out, err)
    if args.command == "cut":
        from renderspec.cuts import run_cut

        return run_cut(settings, args.names, cwd, out, err, force=args.force)
    if args.command in ("pull", "push"):
        from renderspec import sharing

        if args.command == "pull":
            return sharing.pull(settings, env, args.paths, args.shot, cwd, out, err, as_json=args.json)
        return sharing.push(settings, env, args.paths, cwd, out, err, everything=args.all, as_json=args.json)
    if args.command == "review":
        from renderspec.review import write_review

        page = cwd / args.out if args.out else None
        if page is not None and (page.is_dir() or str(args.out).endswith(("/", os.sep))):
            page = page / "index.html"  # a folder: the page goes in it, as index.html
        return write_review(settings, cwd, out, err, page=page, sheet=args.sheet)
    if args.command in ("gc", "clean", "verify"):
        from renderspec import housekeeping

        if args.command == "gc":
            return housekeeping.gc(settings, cwd, out, dry_run=args.dry_run)
        if args.command == "clean":
            return housekeeping.clean(settings, cwd, out, dry_run=args.dry_run, everything=args.all)
        return housekeeping.verify(settings, cwd, out)
    remote = None
    if args.command in ("plan", "explain"):
        from renderspec.remote import open_remote

        if args.command == "plan" and args.json and args.markdown:
            raise _UsageError("renderspec plan: --json and --markdown print different documents; pick one")
        if args.command == "plan" and args.why and args.markdown:
            raise _UsageError(
                "renderspec plan: --markdown already shows each changed prompt; --why is for text and --json"
            )

        remote = open_remote(settings.project.remote, env, root)
    try:
        paths = getattr(args, "paths", [])
        result = plan_project(settings, paths, cwd, with_states=args.command != "check", remote=remote)
    finally:
        if remote is not None:
            remote.close()
    if args.command == "explain":
        from renderspec import explaining

        return explaining.run(result, args.shots, root, out, err, as_json=args.json, remote=remote is not None)
    plan = result.plan
    if args.command == "plan" and args.shot and plan.is_valid:
        from dataclasses import replace

        from renderspec.core.selection import select_shots

        plan = replace(plan, shots=select_shots(plan.shots, args.shot))

    if args.command == "check":
        reporting.print_problems(plan.problems, out)
        print(reporting.problem_summary(plan, len(result.spec_files)), file=out)
        return EXIT_FAILED if plan.errors else EXIT_OK

    # plan
    reporting.print_problems(plan.problems, err)
    explanations = None
    if args.why and plan.is_valid:
        from renderspec import explaining

        rendering = [shot for shot in plan.shots if shot.state.renders]
        explanations = explaining.explain(result, rendering, root, remote_configured=remote is not None)
    if args.json:
        document = reporting.plan_document(plan)
        if explanations is not None:
            explaining.attach(document, explanations)
        reporting.write_json(document, out)
    elif args.markdown:
        from renderspec import markdown

        out.write(
            markdown.plan_comment(plan.shots, result.previous)
            if plan.is_valid
            else markdown.problems_comment(plan.problems)
        )
    elif plan.is_valid:
        if out.isatty():
            reporting.rich_plan(plan, out)
        else:
            reporting.plain_plan(plan, out)
        if explanations:
            print(file=out)
            explaining.write_text(explanations, out)
        from renderspec.cuts import stale_cut_lines  # the cuts the next build makes again, one line each

        for line in stale_cut_lines(settings, result):
            print(line, file=out)
    if not plan.is_valid:
        print(reporting.problem_summary(plan, len(result.spec_files)), file=err)
        return EXIT_USAGE
    if args.check and any(shot.state not in (State.CACHED, State.REMOTE) for shot in plan.shots):
        return EXIT_FAILED
    return EXIT_OK


def _build(args: argparse.Namespace, settings: Any, env: Mapping[str, str], cwd: Path, out: TextIO, err: TextIO) -> int:
    from renderspec.build import BuildArguments, run_build

    adopt = {}
    for item in args.adopt:
        shot, sep, task = item.partition("=")
        if not sep or not shot or not task:
            raise _UsageError(f"renderspec build: --adopt takes SHOT=TASK_ID, got {item!r}")
        adopt[shot] = task
    if args.jobs is not None and args.jobs < 1:
        raise _UsageError("renderspec build: -j must be at least 1")
    arguments = BuildArguments(
        paths=args.paths,
        jobs=args.jobs,
        keep_going=args.keep_going,
        dry_run=args.dry_run,
        shots=args.shot,
        json=args.json,
        adopt=adopt,
        resubmit=args.resubmit,
        rerender_missing=args.rerender_missing,
        shard=args.shard,
        budget=args.budget,
        cuts=not args.no_cuts,
    )
    return run_build(settings, env, arguments, cwd, out, err)


def _schema(args: argparse.Namespace, env: Mapping[str, str], cwd: Path, out: TextIO, err: TextIO) -> int:
    from renderspec import schema
    from renderspec.settings import find_root, load_settings

    root = find_root(cwd)
    try:
        specs = load_settings(root, env).project.specs
    except RenderspecError as error:  # a broken renderspec.toml is just what the settings schema helps to fix
        specs = ["specs"]
        print(f"renderspec: note: the .taplo.toml rules assume specs/ ({error})", file=err)
    files = schema.SchemaFiles.at(cwd / args.out if args.out else root / schema.SCHEMA_FOLDER, root, specs)
    if args.print_document:
        schema.print_document(args.print_document, files, out)
    else:
        schema.write_schemas(files, root, out)
    return EXIT_OK


def _emulator(args: argparse.Namespace, out: TextIO) -> int:
    from renderspec.emulator.app import EmulatorOptions
    from renderspec.emulator.server import serve

    options = EmulatorOptions(
        latency=args.latency,
        concurrency=args.concurrency,
        throttle=args.throttle,
        error_rate=args.error_rate,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        truncate_rate=args.truncate_rate,
        corrupt_rate=args.corrupt_rate,
        short_body_rate=args.short_body_rate,
        stall_rate=args.stall_rate,
        stall_seconds=args.stall_seconds,
        url_ttl=args.url_ttl,
        seed=args.seed,
        key=args.key,
    )
    try:
        serve(options, host=args.host, port=args.port, out=out)
    except OSError as error:
        print(f"renderspec: error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
