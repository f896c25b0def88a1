"""One evaluation's inputs bundled, with the few derived facts every rule agrees on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from exits.action import ExitAction
from exits.errors import ExitInputError
from exits.market import MarketSnapshot
from exits.position import ExitPosition
from market.session import EXCHANGE_TZ
from exits.state import ExitState

RuleResult = tuple[tuple[ExitAction, ...], ExitState]
NOTHING: tuple[ExitAction, ...] = ()


@dataclass(frozen=True, slots=True)
class ExitContext:
    """`dte`: calendar days from now's exchange date to expiry (0 on expiry day, negative after);
    `in_regular_hours`: inside the session (open inclusive, close exclusive); `live_price`: the
    premium, only while options trade (outside regular hours a mark is stale); `entry`: the entry
    price. All are worked out once here, not by each rule that asks (a dozen times per evaluation,
    where a property would run a Python call each time)."""

    position: ExitPosition
    market: MarketSnapshot
    now: datetime
    dte: int = field(init=False)
    in_regular_hours: bool = field(init=False)
    live_price: Decimal | None = field(init=False)
    entry: Decimal = field(init=False)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ExitInputError("bad_time", "now must be timezone-aware")
        # Bands, expiry days and close-outs are exchange-local, whatever zone the caller used.
        now = self.now.astimezone(EXCHANGE_TZ)
        object.__setattr__(self, "now", now)
        session = self.market.session
        if session is not None and session.day != now.date():
            raise ExitInputError("bad_session", f"market session is for {session.day}, not now's date {now.date()}")
        object.__setattr__(self, "dte", (self.position.expiry - now.date()).days)
        in_hours = session is not None and session.contains(now)
        object.__setattr__(self, "in_regular_hours", in_hours)
        object.__setattr__(self, "live_price", self.market.option_price if in_hours else None)
        object.__setattr__(self, "entry", self.position.entry_price)

    def price_at(self, profit: Decimal) -> Decimal:
        """The premium at which the position shows `profit` (0.05 = +5 %)."""
        return self.entry * (1 + profit)

    def profit(self, price: Decimal) -> Decimal:
        return (price - self.entry) / self.entry


def remaining(position: ExitPosition, state: ExitState) -> int:
    """Contracts still to be closed: never more than the broker holds, nor than the rules have left."""
    return max(0, min(position.open_quantity, position.original_quantity - state.quantity_closed))


def close(ctx: ExitContext, state: ExitState, quantity: int, rule: str, reason: str,
          fired: tuple[str, ...] = (), profit_taking: bool = False) -> RuleResult:
    """Ask to sell `quantity` (capped at what remains); `close` when that is everything."""
    left = remaining(ctx.position, state)
    quantity = min(quantity, left)
    new_state = replace(state, fired=state.fired | set(fired))
    if quantity <= 0:
        return NOTHING, new_state
    kind = "close" if quantity == left else "partial_close"
    new_state = replace(new_state, quantity_closed=state.quantity_closed + quantity,
                        profit_closed=state.profit_closed + (quantity if profit_taking else 0))
    return (ExitAction(kind, quantity, reason, rule),), new_state


def close_all(ctx: ExitContext, state: ExitState, rule: str, reason: str, fired: tuple[str, ...] = ()) -> RuleResult:
    return close(ctx, state, remaining(ctx.position, state), rule, reason, fired)


def alert(state: ExitState, rule: str, reason: str) -> RuleResult:
    """A once-only alert: the rule id is remembered so it is never sent twice."""
    return (ExitAction("alert", 0, reason, rule),), replace(state, fired=state.fired | {rule})
