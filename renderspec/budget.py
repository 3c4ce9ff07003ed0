"""`build --budget`: what a build may spend, checked before it starts and before every create.

The estimate is the plan's (`PlannedShot.cost`, one per key); no invoice is read. Before the
build, `estimate` totals the shots that would be paid for and the build refuses when that is over
the limit or not known. While it runs, the executor asks `Budget.reserve` under its submit lock
before each create, so what was spent plus what is in flight never passes the limit, even when
the estimate grows mid-build (a task the service lost is sent again, and the lost one still
counts: it may have been billed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from renderspec.core.model import PlannedShot
from renderspec.reporting import money


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the shots that would be paid for cost, one per key; `unknown` have no price."""

    total: float
    shots: int
    unknown: tuple[PlannedShot, ...]


def estimate(shots: Iterable[PlannedShot]) -> Estimate:
    unique = {shot.key: shot for shot in shots if shot.state.renders}.values()  # one key is paid once
    unknown = tuple(shot for shot in unique if shot.cost is None)
    return Estimate(round(sum(shot.cost or 0.0 for shot in unique), 4), len(unique), unknown)


def refusal(limit: float, found: Estimate, currency: str) -> str | None:
    """Why a build with this estimate may not start under `limit` (None: it may)."""
    budget = money(limit, currency)
    if found.unknown:
        names = ", ".join(shot.id for shot in found.unknown[:20]) + (", ..." if len(found.unknown) > 20 else "")
        return (
            f"the budget is {budget} but the cost of {len(found.unknown)} shot{'s' if len(found.unknown) != 1 else ''} "
            f"to render is unknown (no price for their model and resolution): {names}; set their prices in "
            "[renderspec] prices, or build without a budget (nothing was submitted)"
        )
    if found.total > limit + 1e-9:
        return (
            f"this build would cost about {money(found.total, currency)} ({found.shots} "
            f"shot{'s' if found.shots != 1 else ''} to render), over the budget of {budget}; nothing was submitted. "
            "Raise --budget (or budget in renderspec.toml), or build fewer shots with --shot or --shard"
        )
    return None


class Budget:
    """The running estimate of one build against its limit: spent (or resumed) plus in flight.

    Once a create is refused, every later one is too: the build stops submitting rather than
    picking cheaper shots out of order, and what is in flight finishes.
    """

    def __init__(self, limit: float, currency: str) -> None:
        self.limit = limit
        self.currency = currency
        self.committed = 0.0  # paid, or in flight and presumed paid
        self.exhausted = False

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit - self.committed)

    def charge(self, cost: float | None) -> None:
        """A task already at the service (resumed from the journal): it counts, and is never refused."""
        self.committed += cost or 0.0

    def reserve(self, cost: float | None) -> str | None:
        """May a create estimated at `cost` be sent now? None: yes, and it is counted; else why not."""
        if not self.exhausted and cost is not None and self.committed + cost <= self.limit + 1e-9:
            self.committed += cost
            return None
        if self.exhausted:
            return (
                f"not submitted: the build stopped submitting at its budget of {money(self.limit, self.currency)}; "
                "raise --budget and build again to render it"
            )
        self.exhausted = True
        price = money(cost, self.currency) if cost is not None else "an unknown amount"
        return (
            f"not submitted: it would cost about {price} and the budget of {money(self.limit, self.currency)} "
            f"has {money(self.remaining, self.currency)} left (spent or in flight: "
            f"{money(self.committed, self.currency)}); raise --budget and build again to render it"
        )

    def release(self, cost: float | None) -> None:
        """A create that cost nothing after all (refused, or its task failed: not billed)."""
        self.committed = max(0.0, self.committed - (cost or 0.0))
