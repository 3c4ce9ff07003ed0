"""Problems found while planning: one line each, pointing at the place to fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or suspicious) in a spec, with where it is and what is allowed."""

    file: str
    message: str
    line: int | None = None
    shot: str | None = None
    field: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        """`FILE:LINE: shot ID: FIELD: message`, leaving out the parts that are not known."""
        parts = [f"{self.file}:{self.line}" if self.line else self.file]
        if self.shot:
            parts.append(f"shot {self.shot}")
        if self.field:
            parts.append(self.field)
        message = self.message if self.is_error else f"warning: {self.message}"
        return ": ".join([*parts, message])

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "shot": self.shot,
            "field": self.field,
            "severity": self.severity.value,
            "message": self.message,
        }


def shown(text: str, limit: int = 80) -> str:
    """`text` quoted for a message: escaped like repr (one line), and cut short when long, saying
    how long it was, so that a templated value cannot stretch a problem over pages."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def shown_path(path: str) -> str:
    """A path for a message: as written when short and printable, else `shown`."""
    return path if len(path) <= 200 and path.isprintable() else shown(path)


def sort_key(problem: Problem) -> tuple[str, int, str, str]:
    return (problem.file, problem.line or 0, problem.shot or "", problem.field or "")


def toml_type(value: Any) -> str:
    """A parsed TOML value as a message names what was written: `number 7`, `an array`, `string 'x'`."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
