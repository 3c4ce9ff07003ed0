"""Finding and reading spec files and fragments, tagged with project-relative paths."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from renderspec.core.expansion import SpecRefused
from renderspec.core.model import SourceFile
from renderspec.core.problems import Problem
from renderspec.core.templating import FragmentRefused
from renderspec.errors import SettingsError

SETTINGS_FILE = "renderspec.toml"  # never a spec, even when a folder scan meets it


def _resolved(path: Path) -> Path:
    """The path with symlinks followed; as written (made absolute) when they loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError for a symlink loop
        return path.absolute()


def display_path(path: Path, root: Path) -> str:
    """Project-relative POSIX path when inside the project, else the absolute path."""
    absolute = _resolved(path)
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(absolute, root)).as_posix()


def spec_paths(arguments: Sequence[str], root: Path, defaults: Sequence[str], cwd: Path) -> list[Path]:
    """Spec files named on the command line (files or folders), or the project's `specs/`."""
    named = [cwd / argument for argument in arguments] if arguments else [root / item for item in defaults]
    found: dict[Path, None] = {}
    for path in named:
        if path.is_file():
            found.setdefault(_resolved(path))
        elif path.is_dir():
            for candidate in sorted(path.rglob("*.toml")):
                hidden = any(part.startswith(".") for part in candidate.relative_to(path).parts)
                if not hidden and candidate.name != SETTINGS_FILE:
                    found.setdefault(_resolved(candidate))  # a loop: reading it says so, at its path
        else:
            raise SettingsError(f"no such spec file or folder: {path}")
    return list(found)


def read_sources(paths: Sequence[Path], root: Path) -> tuple[list[SourceFile], list[Problem]]:
    sources: list[SourceFile] = []
    problems: list[Problem] = []
    for path in paths:
        shown = display_path(path, root)
        try:
            data = path.read_bytes()
        except OSError as error:
            problems.append(Problem(file=shown, message=f"cannot be read: {error.strerror}"))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line, column, byte = _not_utf8(data, error)
            message = f"is not UTF-8 text (byte {byte:#04x} at column {column}); save the file as UTF-8"
            problems.append(Problem(file=shown, line=line, message=message))
            continue
        sources.append(SourceFile(path=shown, text=text))
    return sources, problems


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> tuple[int, int, int]:
    """The line and column of the first byte that is not UTF-8, and that byte."""
    line = data[: error.start].count(b"\n") + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
    return line, column, data[error.start]


class _Outside(Exception):
    """A project-relative path that resolves outside the project through a symlink."""


def _inside(root: Path, real_root: Path, path: str) -> Path | None:
    """The file a project-relative path names, resolved; None when it cannot name one in the project.

    Raises _Outside when the path resolves outside the project through a symlink.
    """
    if path.startswith("/") or path == ".." or path.startswith("../"):
        return None
    try:
        resolved = (root / path).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not resolved.is_relative_to(real_root):
        raise _Outside("resolves outside the project (through a symlink)")
    return resolved


class FragmentFiles:
    """The FragmentSource of a project: reads fragment files on demand, inside the project only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()
        self._texts: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path not in self._texts:
            self._texts[path] = self._read(path)  # a refusal is raised each time, never memoised as text
        return self._texts[path]

    def _read(self, path: str) -> str | None:
        """The fragment's text; None when it is missing or resolves outside the project (symlinks followed)."""
        try:
            resolved = _inside(self.root, self._real_root, path)
        except _Outside as error:
            raise FragmentRefused(f"{error}; keep fragments in the project") from None
        if resolved is None:
            return None
        try:
            return resolved.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None


class SpecFiles:
    """The SpecSource of a project: reads the spec files that `uses` names, inside the project only.

    Expansion asks once per file (it parses each file once, however many files use it).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()

    def __call__(self, path: str) -> str | None:
        try:
            resolved = _inside(self.root, self._real_root, path)
        except _Outside as error:
            raise SpecRefused(f"{error}; keep shared spec files in the project") from None
        if resolved is None or not resolved.is_file():
            return None
        try:
            data = resolved.read_bytes()
        except OSError as error:
            raise SpecRefused(f"cannot be read: {error.strerror}") from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            line, column, byte = _not_utf8(data, error)
            raise SpecRefused(
                f"is not UTF-8 text (byte {byte:#04x} at line {line}, column {column}); save the file as UTF-8"
            ) from None
