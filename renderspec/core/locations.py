"""Line numbers for places in a TOML document, found only when a problem needs one.

tomllib returns plain values without positions, so this scans the text for table headers and
`key =` lines and maps a value path such as ("shots", 3, "prompt") to its line. The scan runs
at most once per file, and only for files that have a problem, so the happy path pays nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]")
_KEY_LINE = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_DOTTED_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")

Path = tuple[str | int, ...]


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _DOTTED_PART.findall(text))


class Locator:
    """Maps value paths of one TOML text to 1-based line numbers, best effort."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: dict[Path, int] | None = None

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of `path`, or of its nearest enclosing table or key when it has none."""
        lines = self._index()
        probe = tuple(path)
        while probe:
            if probe in lines:
                return lines[probe]
            probe = probe[:-1]
        return None

    def item_line(self, path: Sequence[str | int], index: int) -> int | None:
        """The line where item `index` of the array at `path` starts, when that array is written
        inline after `key =` (possibly over several lines); else the line of `path` itself."""
        line = self.line_of(path)
        if line is None or self._lines is None or tuple(path) not in self._lines:
            return line
        starts = _item_lines(self._text, line)
        return starts[index] if 0 <= index < len(starts) else line

    def _index(self) -> dict[Path, int]:
        if self._lines is None:
            self._lines = _scan(self._text)
        return self._lines


def _scan(text: str) -> dict[Path, int]:
    lines: dict[Path, int] = {}
    array_counts: dict[tuple[str, ...], int] = {}
    current: Path = ()
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if match := _ARRAY_HEADER.match(raw):
            name = _split_key(match.group(1))
            index = array_counts.get(name, -1) + 1
            array_counts[name] = index
            current = (*_resolve(name[:-1], array_counts), name[-1], index)
            lines.setdefault(current[:-1], number)
            lines[current] = number
        elif match := _TABLE_HEADER.match(raw):
            name = _split_key(match.group(1))
            current = _resolve(name, array_counts)
            lines.setdefault(current, number)
        elif match := _KEY_LINE.match(raw):
            key = _split_key(match.group(1))
            for depth in range(1, len(key) + 1):
                lines.setdefault((*current, *key[:depth]), number)
            rest = raw[match.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
                    break
    return lines


def _resolve(name: tuple[str, ...], array_counts: dict[tuple[str, ...], int]) -> Path:
    """Turns `shots.extra` into ("shots", 2, "extra") when `[[shots]]` is an array of tables."""
    resolved: list[str | int] = []
    for depth, part in enumerate(name, start=1):
        resolved.append(part)
        prefix = name[:depth]
        if prefix in array_counts:
            resolved.append(array_counts[prefix])
    return tuple(resolved)


def _item_lines(text: str, line: int) -> list[int]:
    """Line numbers where each item of the inline array after the `=` on `line` begins.

    A small scanner: strings (basic, literal, multi-line), comments and nested brackets are
    skipped, so only the outer array's commas separate items.
    """
    lines = text.splitlines(keepends=True)
    offset = sum(len(each) for each in lines[: line - 1])
    equals = text.find("=", offset)
    position = equals + 1
    while 0 < position < len(text) and text[position] in " \t":
        position += 1
    if equals < 0 or position >= len(text) or text[position] != "[":  # not an array written inline here
        return []
    number = line
    starts: list[int] = []
    depth, expecting = 1, True
    position += 1
    while position < len(text) and depth > 0:
        char = text[position]
        if char == "\n":
            number += 1
        elif char == "#":
            end = text.find("\n", position)
            position = len(text) if end < 0 else end
            continue
        elif char in "\"'":
            if depth == 1 and expecting:
                starts.append(number)
                expecting = False
            end = _string_end(text, position)
            number += text.count("\n", position, end)
            position = end
            continue
        elif char in "[{":
            if depth == 1 and expecting:
                starts.append(number)
                expecting = False
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 1:
            expecting = True
        elif not char.isspace() and depth == 1 and expecting:
            starts.append(number)
            expecting = False
        position += 1
    return starts


def _string_end(text: str, start: int) -> int:
    """The index just past the string that opens at `start`."""
    quote = text[start]
    if text.startswith(quote * 3, start):
        end = text.find(quote * 3, start + 3)
        return len(text) if end < 0 else end + 3
    position = start + 1
    while position < len(text) and text[position] not in (quote, "\n"):
        position += 2 if quote == '"' and text[position] == "\\" else 1
    return position + 1
