"""The command line: parses arguments, builds the real collaborators, maps outcomes to exit codes.

This is the only module that reads the environment and the process's streams; `main` takes them
as arguments so tests drive it directly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

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
    plan.add_argument("--check", action="store_true", help="exit 1 if any shot would render")
    plan.add_argument("--provider", choices=("local", "dashscope", "apiyi"), help="the provider whose keys to compute")
    return parser


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
    except Exception as error:
        if environment.get("RENDERSPEC_DEBUG"):
            raise
        print(
            f"renderspec: internal error: {type(error).__name__}: {error} "
            "(this is a bug; run again with RENDERSPEC_DEBUG=1 for a traceback and report it)",
            file=err,
        )
        return EXIT_INTERNAL


def _run(args: argparse.Namespace, env: Mapping[str, str], cwd: Path, out: TextIO, err: TextIO) -> int:
    from renderspec import reporting
    from renderspec.project import plan_project
    from renderspec.settings import find_root, load_settings

    root = find_root(cwd)
    settings = load_settings(root, env, getattr(args, "provider", None))
    result = plan_project(settings, args.paths, cwd)
    plan = result.plan

    if args.command == "check":
        reporting.print_problems(plan.problems, out)
        print(reporting.problem_summary(plan, len(result.spec_files)), file=out)
        return EXIT_FAILED if plan.errors else EXIT_OK

    # plan
    reporting.print_problems(plan.problems, err)
    if args.json:
        reporting.write_json(reporting.plan_document(plan), out)
    elif plan.is_valid:
        if out.isatty():
            reporting.rich_plan(plan, out)
        else:
            reporting.plain_plan(plan, out)
    if not plan.is_valid:
        print(reporting.problem_summary(plan, len(result.spec_files)), file=err)
        return EXIT_USAGE
    if args.check and any(shot.state != "cached" for shot in plan.shots):
        return EXIT_FAILED
    return EXIT_OK
