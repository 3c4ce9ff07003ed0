"""Problems found while planning: one line each, pointing at the place to fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


def sort_key(problem: Problem) -> tuple[str, int, str, str]:
    return (problem.file, problem.line or 0, problem.shot or "", problem.field or "")
