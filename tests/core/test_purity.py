"""The core stays pure: no I/O libraries, no clock, no environment (style.md, rule 2)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import renderspec
import renderspec.core

PACKAGE = Path(renderspec.__file__).parent
CORE = Path(renderspec.core.__file__).parent
FORBIDDEN = {
    "httpx",
    "anyio",
    "av",
    "PIL",
    "rich",
    "os",
    "pathlib",
    "time",
    "random",
    "subprocess",
    "socket",
    "asyncio",
    "shutil",
}
# What the core may import from its own project: itself, and the exception tree (which imports
# nothing from renderspec, checked below). Edges such as fsutil or the providers point inward at
# the core, never the other way.
INWARD = ("renderspec.core", "renderspec.errors")


def _package_of(path: Path) -> str:
    """`renderspec.core` for renderspec/core/planning.py and for renderspec/core/__init__.py."""
    return ".".join(("renderspec", *path.parent.relative_to(PACKAGE).parts))


def imported_modules(source: str, package: str) -> Iterator[tuple[int, str]]:
    """Every module or module attribute a source imports, by absolute name, with its line.

    `from X import Y` counts as importing `X.Y`, since Y may be a module (`from renderspec import
    fsutil`); relative imports are resolved against `package`, the package the source lives in.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{module}" if module else base
            for alias in node.names:
                yield node.lineno, module if alias.name == "*" else f"{module}.{alias.name}"


def offences(source: str, name: str, package: str = "renderspec.core") -> list[str]:
    found = []
    for line, module in imported_modules(source, package):
        if module.split(".")[0] in FORBIDDEN:
            found.append(f"{name}:{line}: {module} (does I/O)")
        elif module.split(".")[0] == "renderspec" and not any(
            module == inward or module.startswith(inward + ".") for inward in INWARD
        ):
            found.append(f"{name}:{line}: {module} (edges must not be imported by the core)")
    return sorted(set(found))


def test_core_modules_import_nothing_that_does_io() -> None:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        found += offences(path.read_text(), str(path.relative_to(PACKAGE)), _package_of(path))
    assert found == []


def test_the_exception_tree_the_core_may_import_imports_nothing_from_renderspec() -> None:
    source = (PACKAGE / "errors.py").read_text()
    assert [module for _, module in imported_modules(source, "renderspec") if module.startswith("renderspec")] == []


ESCAPES = {
    "io library": "import httpx",
    "io library from": "from anyio import sleep",
    "edge module by path": "from renderspec.fsutil import file_sha256",
    "edge module from the package": "from renderspec import fsutil",
    "edge module imported whole": "import renderspec.fsutil",
    "the package itself": "import renderspec",
    "edge module relatively": "from .. import fsutil",
    "edge module relatively by path": "from ..providers.base import Provider",
    "edge module from a sibling subpackage": "from ..emulator import app",
}


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_every_way_out_of_the_core_is_caught(source: str) -> None:
    assert len(offences(source, "planning.py")) >= 1


INSIDE = {
    "core by path": "from renderspec.core.model import FileFacts",
    "core from the package": "from renderspec.core import keys",
    "core relatively": "from .model import FileFacts",
    "core package relatively": "from . import keys",
    "the exception tree": "from renderspec.errors import SpecError",
    "the exception tree relatively": "from .. import errors",
    "standard library": "import json\nfrom collections.abc import Mapping",
}


@pytest.mark.parametrize("source", INSIDE.values(), ids=INSIDE.keys())
def test_imports_that_stay_inside_are_allowed(source: str) -> None:
    assert offences(source, "planning.py") == []


def test_importing_the_planner_loads_no_io_library() -> None:
    code = "import sys, renderspec.core.planning, renderspec.core.expansion; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not loaded & {"httpx", "anyio", "av", "PIL", "rich"}
