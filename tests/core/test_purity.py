"""The core stays pure: no I/O libraries, no clock, no environment (style.md, rule 2)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import renderspec.core

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


def test_core_modules_import_nothing_that_does_io() -> None:
    offenders = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("renderspec.")
                and not node.module.startswith("renderspec.core")
            ):
                offenders.append(f"{path.name}: {node.module} (edges must not be imported by the core)")
    assert offenders == []


def test_importing_the_planner_loads_no_io_library() -> None:
    code = "import sys, renderspec.core.planning, renderspec.core.expansion; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not loaded & {"httpx", "anyio", "av", "PIL", "rich"}
