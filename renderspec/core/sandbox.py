"""Jinja's immutable sandbox with bounds on memory and work, for templates from untrusted specs.

The sandbox keeps templates away from Python's internals but lets `{{ 'x' * 4000000000 }}` or
two nested `range(99999)` loops run until the machine gives out. `BoundedEnvironment` adds:
- a size bound on every value a template builds (`Limits.max_text`: characters, plus items of
  lists and tables, nested ones included), checked *before* the operations that could build a
  huge value at once (`*`, `**`, `%`, `str.format`, `center`, `replace`, `join`...) and after
  every operator, filter, call, literal and slice;
- a step count charged to the `Meter` for every loop iteration, call, filter, operator,
  comparison, template load and printed value, plus one step per item or per 100 characters of
  the values they go through.
Loops, `~`, literals, slices and comparisons have no hook in Jinja, so the parsed template is
rewritten to pass them through hook filters whose names a template cannot write. Nothing is
evaluated at compile time (`optimized=False`, and a finalize that needs the render's context),
so every check runs while rendering.
"""

from __future__ import annotations

import functools
import inspect
import re
import string
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, pass_eval_context
from jinja2.visitor import NodeTransformer

from renderspec.core.limits import LimitExceeded, Meter

_DIGITS_MAX = 10_000  # Python prints at most 4,300 digits anyway; bigger numbers only cost time
_BITS_MAX = _DIGITS_MAX * 3322 // 1000

# Hook filters for the rewritten template; ":" cannot appear in a filter name a template writes.
_COUNTED = "renderspec:counted"
_JOINED = "renderspec:joined"
_BUILT = "renderspec:built"
_WEIGHED = "renderspec:weighed"

# Steps are kept at about a microsecond of work at most: a loop iteration is one step, while a
# call through the sandbox, a template load or a str.format field costs about eight.
_CALL_STEPS = 8
# Filters run Python code for each item they go through (unique, map, groupby...).
_FILTER_ITEM_STEPS = 2
# Filters written in Python that go through text a character at a time: a step per character.
_SLOW_FILTERS = frozenset(["pprint", "striptags", "title", "urlize", "wordcount", "wordwrap"])

_PRINTF_FIELD = re.compile(r"%(%|(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?)")
_DIGITS = re.compile(r"\d+")
_FORMATTER = string.Formatter()


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every render charged to `meter` and every value bounded."""

    intercepted_binops = frozenset(["+", "*", "**", "%"])

    def __init__(self, meter: Meter, **options: Any) -> None:
        super().__init__(optimized=False, finalize=_printed, **options)
        self.meter = meter
        self.cap = meter.limits.max_text
        self.load_steps = _CALL_STEPS  # an include copies the render's variables: see `begin_render`
        # lipsum makes random text: a memory bomb with big arguments, and a new cache key each plan.
        self.globals.pop("lipsum", None)
        self.filters = {name: self._bounded_filter(name, function) for name, function in self.filters.items()}
        self.tests = {name: self._bounded_test(test) for name, test in self.tests.items()}
        self.filters.update(
            {_COUNTED: self._counted, _JOINED: self._joined, _BUILT: self._built, _WEIGHED: self._weighed}
        )

    # -- Jinja's hooks -------------------------------------------------------------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Rewrite().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree  # type: ignore[no-any-return]

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        steps = _CALL_STEPS + _weight(owner)
        for value in (*args, *kwargs.values()):
            steps += 1 + _weight(value)
        self.meter.charge(steps)
        if isinstance(obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (self._counted(args[0]), *args[1:])
        if isinstance(owner, str | bytes | int) and not isinstance(owner, bool):
            size, args = _method_size(owner, obj.__name__, args, kwargs, self.cap)
            if size > self.cap:
                raise _too_big(f"{obj.__name__}()", self.cap)
        return self._made(super().call(context, obj, *args, **kwargs), _called(obj))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.meter.charge(1 + _weight(left) + _weight(right))
        _check_binop(operator, left, right, self.cap)
        return self._made(super().call_binop(context, operator, left, right), f"`{operator}`")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        text: str = value.__self__
        cap = self.cap

        def bounded(*args: Any, **kwargs: Any) -> str:
            if value.__name__ == "format_map":
                mapping = args[0] if len(args) == 1 and isinstance(args[0], Mapping) else {}
                size, fields = _format_size(text, (), mapping, cap)
            else:
                size, fields = _format_size(text, args, kwargs, cap)
            self.meter.charge(_CALL_STEPS * fields)
            if size > cap:
                raise _too_big(f"{value.__name__}()", cap)
            return formatter(*args, **kwargs)

        return functools.update_wrapper(bounded, formatter)

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        self.meter.charge(self.load_steps)
        return super().get_template(name, parent, globals)

    def select_template(
        self,
        names: Iterable[str | Template],
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        self.meter.charge(self.load_steps)
        return super().select_template(names, parent, globals)

    # -- checks ----------------------------------------------------------------------------------

    def begin_render(self, variables: int) -> None:
        """Starts a render with that many variables (an include copies them all)."""
        self.meter.begin_render()
        self.load_steps = _CALL_STEPS + variables // 50

    def check_printed(self, value: Any) -> None:
        """Charges a value about to be printed and refuses one too long to print."""
        size, visits = _footprint(value, self.cap)
        self.meter.charge(visits + size // 100)
        self.meter.check_text(size)

    def _made(self, value: Any, what: str, per_char: bool = False) -> Any:
        """`value`, once charged for and found within the size a template may build."""
        if isinstance(value, str):
            self.meter.charge(len(value) if per_char else len(value) // 100)
            if len(value) > self.cap:
                raise _too_big(what, self.cap)
            return value
        if value is None or isinstance(value, int | float):
            return value
        size, visits = _footprint(value, self.cap)
        self.meter.charge(visits + (size if per_char else size // 100))
        if size > self.cap:
            raise _too_big(what, self.cap)
        return value

    def _bounded_filter(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        guard = _FILTER_GUARDS.get(name)
        skip = 1 if hasattr(function, "jinja_pass_arg") else 0  # the context Jinja passes first
        # Jinja's async-aware wrappers take the context themselves; the signature of the function
        # inside lists it only when that function asks for it too.
        inner = inspect.unwrap(function)
        unlisted = 0 if hasattr(inner, "jinja_pass_arg") else skip
        signature = inspect.signature(inner) if guard is not None else None
        per_char = name in _SLOW_FILTERS
        what = f"filter {name}"

        @functools.wraps(function)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            values = [*args[skip:], *kwargs.values()]
            self.meter.charge(1 + len(values) + _weights(values, per_char, _FILTER_ITEM_STEPS))
            if guard is not None and signature is not None:
                try:
                    bound = signature.bind(*args[unlisted:], **kwargs)
                except TypeError:
                    pass  # the filter itself says what is wrong with its arguments
                else:
                    bound.apply_defaults()
                    if guard(bound.arguments, self.cap) > self.cap:
                        raise _too_big(what, self.cap)
                    args, kwargs = (*args[:unlisted], *bound.args), bound.kwargs
            return self._made(function(*args, **kwargs), what, per_char)

        return bounded

    def _bounded_test(self, function: Any) -> Any:  # Jinja types tests as plain `function`
        @functools.wraps(function)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            values = [*args, *kwargs.values()]
            self.meter.charge(1 + len(values) + _weights(values))
            return function(*args, **kwargs)

        return bounded

    # -- hook filters of the rewritten template --------------------------------------------------

    def _counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        charge = self.meter.charge
        for item in iterable:
            charge(1)
            yield item

    def _joined(self, parts: tuple[Any, ...]) -> str:
        texts = [str(part) for part in parts]
        length = sum(len(text) for text in texts)
        self.meter.charge(1 + len(texts) + length // 100)
        if length > self.cap:
            raise _too_big("`~`", self.cap)
        return "".join(texts)

    def _built(self, value: Any) -> Any:
        return self._made(value, "a list, table or slice")

    def _weighed(self, value: Any) -> Any:
        self.meter.charge(1 + _weight(value))
        return value


@pass_eval_context  # not pass_environment: with that, Jinja prints constants at compile time
def _printed(eval_ctx: EvalContext, value: Any) -> Any:
    environment: BoundedEnvironment = eval_ctx.environment  # type: ignore[assignment]
    environment.check_printed(value)
    return value


class _Rewrite(NodeTransformer):
    """Routes what Jinja has no hook for through the hook filters of `BoundedEnvironment`."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _hook(_COUNTED, node.iter)
        return node

    def visit_TemplateData(self, node: nodes.TemplateData) -> nodes.Node:
        # As a constant, literal text goes through finalize like any printed value: a loop that
        # prints a long text is charged for it even inside a macro or {% set %} block.
        return nodes.Const(node.data, lineno=node.lineno)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _hook(_JOINED, nodes.Tuple(node.nodes, "load", lineno=node.lineno))

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _hook(_BUILT, node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _hook(_BUILT, node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return _hook(_BUILT, node) if node.ctx == "load" else node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        return _hook(_BUILT, node) if isinstance(node.arg, nodes.Slice) else node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = _hook(_WEIGHED, node.expr)
        for operand in node.ops:
            operand.expr = _hook(_WEIGHED, operand.expr)
        return node


def _hook(name: str, node: nodes.Node) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _called(obj: Any) -> str:
    """How a message names a call: `f()` for a macro or method named f."""
    name = None if isinstance(obj, Undefined) else getattr(obj, "__name__", None) or getattr(obj, "name", None)
    return f"{name}()" if isinstance(name, str) else "a call"


def _too_big(what: str, cap: int) -> LimitExceeded:
    return LimitExceeded(
        f"{what} would make a value of more than {cap:,} characters or items, the most a template may build"
    )


def _too_many_digits(what: str) -> LimitExceeded:
    return LimitExceeded(
        f"{what} would make a number of more than {_DIGITS_MAX:,} digits, the most a template may build"
    )


def _weight(value: Any, per_char: bool = False, item_steps: int = 1) -> int:
    """Steps for going once through `value`: per item, and per 100 characters (each when `per_char`)."""
    if isinstance(value, str | bytes):
        return len(value) if per_char else len(value) // 100
    if value is None or isinstance(value, int | float | Undefined) or not isinstance(value, Collection):
        return 0
    return len(value) * item_steps


def _weights(values: Iterable[Any], per_char: bool = False, item_steps: int = 1) -> int:
    return sum(_weight(value, per_char, item_steps) for value in values)


def _footprint(value: Any, cap: int) -> tuple[int, int]:
    """Characters plus items (plus digits of big numbers) in `value`, nested values included, and
    how many values were visited to find out; stops counting once past `cap`."""
    size = visits = 0
    pending = [value]
    while pending and size <= cap:
        item = pending.pop()
        visits += 1
        if isinstance(item, str | bytes):
            size += len(item)
        elif isinstance(item, int) and item.bit_length() > 64:
            size += item.bit_length() * 3 // 10  # decimal digits, never more than it prints
        elif isinstance(item, range):
            size += len(item)
        elif isinstance(item, Namespace):  # prints as its attributes
            pending.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, Collection) and not isinstance(item, Undefined):
            size += len(item)
            if size <= cap:
                pending.extend(item)
                if isinstance(item, Mapping):
                    pending.extend(item.values())
    return size, visits


def _size(value: Any, cap: int) -> int:
    return _footprint(value, cap)[0]


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _check_binop(operator: str, left: Any, right: Any, cap: int) -> None:
    """Refuses an operation before it builds a value (or a number) past the limits."""
    what = f"`{operator}`"
    if operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > _BITS_MAX:
                raise _too_many_digits(what)
            return
        for count, sequence in ((left, right), (right, left)):
            if _is_sequence(sequence) and isinstance(count, int) and max(1, _size(sequence, cap)) * count > cap:
                raise _too_big(what, cap)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and _pow_bits(left, right) > _BITS_MAX:
            raise _too_many_digits(what)
    elif operator == "+":
        if _is_sequence(left) and _is_sequence(right) and _size(left, cap) + _size(right, cap) > cap:
            raise _too_big(what, cap)
    elif operator == "%" and isinstance(left, str) and _printf_size(left, right, cap) > cap:
        raise _too_big(what, cap)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _pow_bits(base: int, exponent: int) -> int:
    """At least how many bits `base ** exponent` has, for a positive exponent."""
    return 0 if abs(base) <= 1 else (abs(base).bit_length() - 1) * exponent


def _printf_size(text: str, values: Any, cap: int) -> int:
    """At most how long `text % values` is: widths and precisions can ask for a billion spaces."""
    fields = [match for match in _PRINTF_FIELD.finditer(text) if match.group(1) != "%"]
    numbers = [_number(part) for match in fields for part in match.group(2, 3) if part and part != "*"]
    if any("*" in (match.group(2), match.group(3)) for match in fields):
        items = values if isinstance(values, tuple) else (values,)
        numbers += [item for item in items if isinstance(item, int)]
    return len(text) + len(fields) * (_size(values, cap) + max(numbers, default=0))


def _format_size(text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], cap: int) -> tuple[int, int]:
    """At most how long `text.format(*args, **kwargs)` is (see `_printf_size`), and its fields."""
    try:
        specs = [spec or "" for _, field, spec, _ in _FORMATTER.parse(text) if field is not None]
    except ValueError:
        return 0, 0  # format() itself says what is wrong
    values = (*args, *kwargs.values())
    numbers = [_number(digits) for spec in specs for digits in _DIGITS.findall(spec)]
    if any("{" in spec for spec in specs):  # a width taken from the arguments
        numbers += [value for value in values if isinstance(value, int)]
    return len(text) + len(specs) * (_size(values, cap) + max(numbers, default=0)), len(specs)


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else 10**18


def _replace_size(text: Any, old: Any, new: Any, count: Any) -> int:
    alike = isinstance(text, str | bytes) and type(old) is type(text) and type(new) is type(text)
    if not alike:
        return 0  # replace() itself says what is wrong
    times: int = text.count(old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * max(0, len(new) - len(old))


def _method_size(
    owner: Any, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], cap: int
) -> tuple[int, tuple[Any, ...]]:
    """At most how big `owner.name(*args)` is for the methods that can grow a value, and the
    arguments to call it with (a generator handed to `join` is read into a list first)."""
    if isinstance(owner, int):
        if name == "to_bytes":
            return _int(args[0] if args else kwargs.get("length", 1)), args
        return 0, args
    if name in ("center", "ljust", "rjust", "zfill") and args:
        return max(len(owner), _int(args[0])), args
    if name == "expandtabs":
        tabsize = _int(args[0] if args else kwargs.get("tabsize", 8))
        tabs = owner.count(b"\t") if isinstance(owner, bytes) else owner.count("\t")
        return len(owner) + tabs * tabsize, args
    if name == "replace" and len(args) >= 2:
        return _replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1)), args
    if name == "join" and args:
        items = args[0] if isinstance(args[0], Collection) else list(args[0])
        return _size(items, cap) + len(owner) * len(items), (items, *args[1:])
    if name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(value) for value in args[0].values() if isinstance(value, str)), default=1)
        return len(owner) * max(1, longest), args
    return 0, args


def _indent_size(arguments: dict[str, Any], cap: int) -> int:
    text, width = arguments["s"], arguments["width"]
    pad = len(width) if isinstance(width, str) else _int(width)
    lines = text.count("\n") + 2 if isinstance(text, str) else 1
    return _size(text, cap) + pad * lines


def _wordwrap_size(arguments: dict[str, Any], cap: int) -> int:
    text, wrap = arguments["s"], arguments["wrapstring"]
    if not isinstance(text, str):
        return 0
    # Every output line holds at least one character of the text; tabs become up to 8 spaces.
    return len(text) + 7 * text.count("\t") + len(wrap if isinstance(wrap, str) else "\n") * (len(text) + 1)


def _join_size(arguments: dict[str, Any], cap: int) -> int:
    items, separator = arguments["value"], arguments["d"]
    if isinstance(items, Undefined):
        return 0
    if not isinstance(items, Collection):
        items = arguments["value"] = list(items)
    return _size(items, cap) + len(separator if isinstance(separator, str) else "") * len(items)


def _sum_size(arguments: dict[str, Any], cap: int) -> int:
    start = arguments["start"]
    if not isinstance(start, int | float | Undefined):
        # Adding lists copies the growing result each time: quadratic, so templates add numbers only.
        raise LimitExceeded("filter sum adds numbers only in templates (start must be a number); use a loop instead")
    return 0


def _round_size(arguments: dict[str, Any], cap: int) -> int:
    precision = arguments["precision"]
    if isinstance(precision, int) and abs(precision) > _DIGITS_MAX:  # round() computes 10 ** precision
        raise _too_many_digits("filter round")
    return 0


def _tojson_size(arguments: dict[str, Any], cap: int) -> int:
    value, indent = arguments["value"], arguments["indent"]
    size = _size(value, cap)
    if indent is None:
        return size
    pad = len(indent) if isinstance(indent, str) else _int(indent)
    return (size + 1) * (2 + pad * _depth(value, cap))


def _urlize_size(arguments: dict[str, Any], cap: int) -> int:
    text = arguments["value"]
    if not isinstance(text, str):
        return 0
    extra = sum(len(arguments[name] or "") for name in ("target", "rel") if isinstance(arguments[name], str | None))
    # A link is at least four characters ("a.io") and becomes <a href="..." ...>...</a>.
    return 3 * len(text) + (len(text) // 4 + 1) * (60 + extra)


def _depth(value: Any, cap: int) -> int:
    deepest, visits = 0, 0
    pending = [(value, 1)]
    while pending and visits <= cap:
        item, depth = pending.pop()
        visits += 1
        if isinstance(item, str | bytes | Undefined) or not isinstance(item, Collection):
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, Mapping) else item))
    return deepest


_FILTER_GUARDS: dict[str, Callable[[dict[str, Any], int], int]] = {
    "batch": lambda a, cap: (
        _size(a["value"], cap)
        + (_int(a["linecount"]) * (1 + _size(a["fill_with"], cap)) if a["fill_with"] is not None else 0)
    ),
    "center": lambda a, cap: max(_size(a["value"], cap), _int(a["width"])),
    "format": lambda a, cap: _printf_size(str(a["value"]), a["kwargs"] or a["args"], cap),
    "indent": _indent_size,
    "join": _join_size,
    "replace": lambda a, cap: _replace_size(a["s"], a["old"], a["new"], a["count"]),
    "round": _round_size,
    "slice": lambda a, cap: _size(a["value"], cap) + _int(a["slices"]) * (1 + _size(a["fill_with"], cap)),
    "sum": _sum_size,
    "tojson": _tojson_size,
    "urlize": _urlize_size,
    "wordwrap": _wordwrap_size,
}
"""For the filters that can grow a value: at most how big their result is, from their arguments."""
