"""Sandboxed Jinja rendering of template strings, with citations and shared fragments.

Every string value of a spec may be a template. Rendering runs in Jinja's immutable sandbox with
undefined names as errors. Fragments (`{% include "fragments/style.j2" %}`) are read through a
`FragmentSource` the caller hands in, so this module never touches the disk. The sandbox is
bounded (see sandbox.py): every render is charged to the expansion's `Meter` and no rendered
value may pass `Limits.max_text`. Templates that only substitute plain names (`{{ mia }} walks`)
skip Jinja's compiler: output, limits and errors are the same, and planning thousands of shots
stays fast. Templates also note which fragment files their renders read (with the sha256 of
each one's text), so a render can later say where a changed prompt line came from.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

import jinja2
from jinja2.environment import Template
from jinja2.exceptions import SecurityError

from renderspec.core.limits import DEFAULT_LIMITS, LimitExceeded, Meter
from renderspec.core.model import SourceFile
from renderspec.core.sandbox import BoundedEnvironment

FragmentSource = Callable[[str], str | None]
"""Returns the text of a project-relative fragment path, or None when there is no such file;
raises FragmentRefused when the file may not be read (it resolves outside the project)."""


class FragmentRefused(Exception):
    """A fragment exists but may not be used; the message says why."""


_SIMPLE_NAME = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_JINJA_WORDS = frozenset(
    ["true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "recursive"]
)


class TemplateFailure(Exception):
    """A template could not be rendered; `message` says why in words for the spec author."""

    def __init__(self, message: str, *, template_line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.template_line = template_line


class Citation:
    """A reference's name inside a prompt: renders as `image 2` or `video 1`."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Citation({self.text!r})"


class NotInMedia:
    """A reference the template names although the shot's `media` does not include it."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        raise TemplateFailure(
            f"cites reference '{self.name}', which is not in this shot's media; add it to media or remove the citation"
        )


def is_template(text: str) -> bool:
    # Called for every string of every shot: plain `in` tests beat a generator by 5x here.
    return "{" in text and ("{{" in text or "{%" in text or "{#" in text)


def text_sha256(text: str) -> str:
    """The sha256 of a spec's or fragment's text (UTF-8): what a render records of the sources it read."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _FragmentLoader(jinja2.BaseLoader):
    def __init__(self, base_dir: str, source: FragmentSource) -> None:
        self._base_dir = base_dir
        self._source = source
        self.digests: dict[str, str] = {}
        """The sha256 of every fragment loaded, by project-relative path (Jinja loads each once)."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = posixpath.normpath(posixpath.join(self._base_dir, template))
        if posixpath.isabs(template) or path == ".." or path.startswith("../"):
            raise TemplateFailure(f"fragment '{template}' is outside the project; keep fragments in the project")
        try:
            text = self._source(path)
        except FragmentRefused as refused:
            raise TemplateFailure(f"fragment '{template}' {refused}") from None
        if text is None:
            raise TemplateFailure(f"fragment '{template}' not found (looked for {path})")
        self.digests[path] = text_sha256(text)
        return text, path, lambda: True


class _RecordingEnvironment(BoundedEnvironment):
    """The bounded sandbox, noting each fragment a render includes, imports or extends.

    Jinja loads a fragment once and then serves it from its cache, so the loader alone cannot say
    which render used it: every use passes through `get_template` or `select_template`.
    """

    def __init__(self, meter: Meter, **options: Any) -> None:
        super().__init__(meter, **options)
        self.read: set[str] = set()

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        template = super().get_template(name, parent, globals)
        self._note(template)
        return template

    def select_template(
        self,
        names: Iterable[str | Template],
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        template = super().select_template(names, parent, globals)
        self._note(template)
        return template

    def _note(self, template: Template) -> None:
        if template.filename is not None:  # the loader names a fragment by its project-relative path
            self.read.add(template.filename)


class Templates:
    """Renders the template strings of one spec file; fragments resolve against its folder.

    Every render is charged to `meter`, which one expansion shares between all its files.
    """

    def __init__(self, base_dir: str, fragments: FragmentSource, meter: Meter | None = None) -> None:
        self._meter = meter or Meter(DEFAULT_LIMITS)
        self._loader = _FragmentLoader(base_dir, fragments)
        self._env = _RecordingEnvironment(
            self._meter,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            loader=self._loader,
        )
        self._compiled: dict[str, jinja2.Template] = {}
        self._spec_digests: dict[str, str] = {}

    def sources_read(self, spec: SourceFile) -> dict[str, str]:
        """The spec file and the fragments rendered since the last call, each with the sha256 of its text.

        Called once per shot, after its templates rendered: what the shot's request was made from.
        """
        digest = self._spec_digests.get(spec.path)
        if digest is None:
            digest = self._spec_digests[spec.path] = text_sha256(spec.text)
        read = {path: self._loader.digests[path] for path in sorted(self._env.read) if path in self._loader.digests}
        self._env.read.clear()
        return {spec.path: digest, **read}

    def render(self, text: str, context: Mapping[str, Any]) -> str:
        """The rendered text; raises TemplateFailure with a message fit for `renderspec check`."""
        if not is_template(text):
            return text
        simple = _render_simple(text, context, self._meter)
        rendered = simple if simple is not None else self._render_jinja(text, context)
        try:
            self._meter.keep_text(len(rendered))
        except LimitExceeded as error:
            raise TemplateFailure(error.message) from None
        return rendered

    def _render_jinja(self, text: str, context: Mapping[str, Any]) -> str:
        self._env.begin_render(len(context))
        try:
            template = self._compiled.get(text)
            if template is None:
                template = self._env.from_string(text)
                self._compiled[text] = template
            # Piece by piece, so that output past the limit stops the render instead of piling up.
            pieces: list[str] = []
            length = 0
            for piece in template.generate(context):
                length += len(piece)
                self._meter.check_text(length)
                pieces.append(piece)
            return "".join(pieces)
        except TemplateFailure:
            raise
        except LimitExceeded as error:
            raise TemplateFailure(error.message) from None
        except jinja2.TemplateSyntaxError as error:
            where = f" in fragment {error.filename or error.name} line {error.lineno}" if error.name else ""
            raise TemplateFailure(
                f"template syntax error{where}: {error.message}",
                template_line=None if error.name else error.lineno,
            ) from None
        except jinja2.UndefinedError as error:
            raise TemplateFailure(_undefined_message(str(error), context)) from None
        except SecurityError as error:
            raise TemplateFailure(f"not allowed in templates (sandbox): {error}") from None
        except RecursionError:
            raise TemplateFailure(
                "template recursion too deep (does a fragment include itself, or a macro call itself?)"
            ) from None
        except Exception as error:  # noqa: BLE001 - any template bug becomes a spec problem
            raise TemplateFailure(f"template failed: {type(error).__name__}: {error}") from None


def _render_simple(text: str, context: Mapping[str, Any], meter: Meter) -> str | None:
    """Fast path for templates made only of `{{ name }}` substitutions; None when not one.

    Checks the whole text first, then renders, so that errors come in the order Jinja finds them.
    """
    if "{%" in text or "{#" in text or "\r" in text:
        return None
    parts: list[tuple[str, str]] = []
    position = 0
    for match in _SIMPLE_NAME.finditer(text):
        literal, name = text[position : match.start()], match.group(1)
        # "{{{a}}" lexes as "{{" + "{a}}" in Jinja
        if "{{" in literal or literal.endswith("{") or name in _JINJA_WORDS:
            return None
        parts.append((literal, name))
        position = match.end()
    tail = text[position:]
    if "{{" in tail:
        return None
    pieces: list[str] = []
    length = 0
    for literal, name in parts:
        length += len(literal)
        _check_text(meter, length)
        if name not in context:
            raise TemplateFailure(_undefined_message(f"'{name}' is undefined", context))
        value = _to_text(context[name])
        length += len(value)
        _check_text(meter, length)
        pieces += (literal, value)
    pieces.append(tail)
    _check_text(meter, length + len(tail))
    return "".join(pieces)


def _check_text(meter: Meter, length: int) -> None:
    try:
        meter.check_text(length)
    except LimitExceeded as error:
        raise TemplateFailure(error.message) from None


def _to_text(value: Any) -> str:
    # What Jinja prints for a value without autoescape; kept identical so both paths agree.
    return str(value)


def _undefined_message(jinja_message: str, context: Mapping[str, Any]) -> str:
    names = ", ".join(sorted(str(name) for name in context)) or "none"
    return f"undefined name in template: {jinja_message}; defined here: {names}"
