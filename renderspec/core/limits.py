"""How much one expansion of the specs may cost, and what it has spent so far.

Specs are untrusted input (CI checks pull requests), so a template or a matrix must not be able
to exhaust the machine. The limits are plain numbers; `Meter` counts what one `expand()` call
spends against them. Template work is counted in steps (sandbox.py charges them): a loop
iteration, filter, operator or printed value is one step, a call or an include eight, and going
through a long value one more per item or per 100 characters, so that a step stays around a
microsecond of work at most.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """The ceilings of one expansion; `max_matrix` and `max_shots` come from renderspec.toml."""

    max_text: int = 100_000
    """Characters of one rendered value, and the size of any value a template builds (characters
    of text plus items of lists and tables, nested ones included): 20x the API's longest prompt."""
    max_steps: int = 100_000
    """Steps of work in one template render (a tenth of a second or less)."""
    max_total_steps: int = 5_000_000
    """Steps of all template renders of one expansion together (a few seconds); a legitimate
    template takes tens of steps, so 50,000 shots of them fit within it."""
    max_total_text: int = 50_000_000
    """Characters of all rendered values of one expansion together (what the plan holds)."""
    max_matrix: int = 10_000
    """Combinations one shot's matrix may make."""
    max_shots: int = 50_000
    """Shots of the whole project after matrix expansion."""


DEFAULT_LIMITS = Limits()


class LimitExceeded(Exception):
    """A template asked for more than a limit allows; `message` says which, for the spec author."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Meter:
    """Steps and rendered text spent by one expansion; every template render charges it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self.text = 0
        self.exhausted = False
        """True once the expansion as a whole went over budget: nothing more should be rendered."""
        self._render_end = limits.max_total_steps

    def begin_render(self) -> None:
        """Starts the step allowance of one template render."""
        self._render_end = min(self.steps + self.limits.max_steps, self.limits.max_total_steps)

    def charge(self, steps: int) -> None:
        self.steps += steps
        if self.steps <= self._render_end:
            return
        self.steps = self._render_end  # what was refused was not spent
        if self._render_end < self.limits.max_total_steps:
            raise LimitExceeded(
                f"template takes more than {self.limits.max_steps:,} steps of work (loop iterations, calls, "
                "filters; long values count more); make its loops shorter"
            )
        self.exhausted = True
        raise LimitExceeded(
            f"templates took more than {self.limits.max_total_steps:,} steps of work in all; "
            "expansion stopped here (later shots are not checked); make loops shorter"
        )

    def check_text(self, length: int) -> None:
        """Refuses a rendered value longer than `max_text` characters."""
        if length > self.limits.max_text:
            raise LimitExceeded(
                f"renders to more than {self.limits.max_text:,} characters, the most a template may make; "
                "is a loop or a variable much longer than meant?"
            )

    def keep_text(self, length: int) -> None:
        """Counts a rendered value the plan keeps; refuses it once all of them pass `max_total_text`."""
        self.text += length
        if self.text > self.limits.max_total_text:
            self.exhausted = True
            raise LimitExceeded(
                f"templates rendered more than {self.limits.max_total_text:,} characters in all; "
                "expansion stopped here (later shots are not checked)"
            )
