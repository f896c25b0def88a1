"""Small builders for exit-rule tests: sessions by hand (pure tests need no calendar)."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from config import load_settings
from config.models import Settings
from exits import EXCHANGE_TZ, ExitPosition, ExitState, MarketSnapshot, SessionTimes, evaluate, new_state
from exits.context import ExitContext

SETTINGS: dict[str, Settings] = {name: load_settings(name, env={}) for name in ("0dte", "7dte")}
ZERO = SETTINGS["0dte"]
SEVEN = SETTINGS["7dte"]
ZERO_CFG = ZERO.exits.zero_dte
SEVEN_CFG = SEVEN.exits.seven_dte

DAY = date(2025, 3, 3)  # a Monday, a full session
FRI = date(2025, 2, 28)  # a Friday; 7dte positions expire the next Friday
EXPIRY_7 = date(2025, 3, 7)


def D(text: str | int) -> Decimal:
    return Decimal(str(text))


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EXCHANGE_TZ)


def session(day: date = DAY, close: time = time(16), early: bool = False) -> SessionTimes:
    return SessionTimes(day, at(day, 9, 30), at(day, close.hour, close.minute), early)


def zero_position(qty: int = 10, entry: str = "10.00", entered: datetime | None = None,
                  open_qty: int | None = None) -> ExitPosition:
    entered = entered or at(DAY, 9, 45)
    return ExitPosition(D(entry), entered, qty, qty if open_qty is None else open_qty,
                        entered.date(), "SPY", "0dte")


def seven_position(qty: int = 20, entry: str = "100", entered: datetime | None = None,
                   expiry: date = EXPIRY_7, right: str = "C") -> ExitPosition:
    entered = entered or at(FRI, 10)
    return ExitPosition(D(entry), entered, qty, qty, expiry, "AAPL", "7dte", right)  # type: ignore[arg-type]


def market(price: str | None, when: datetime, vix: str | None = "20", sess: SessionTimes | None = None,
           **extra: object) -> MarketSnapshot:
    sess = sess if sess is not None else session(when.date())
    return MarketSnapshot(None if price is None else D(price), sess, vix=None if vix is None else D(vix),
                          **extra)  # type: ignore[arg-type]


def ctx(position: ExitPosition, price: str | None, when: datetime, **kw: object) -> ExitContext:
    return ExitContext(position, market(price, when, **kw), when)  # type: ignore[arg-type]


def fresh(position: ExitPosition) -> ExitState:
    return new_state(position, SETTINGS[position.profile])


def walk(position: ExitPosition, path: list[tuple[datetime, str]], state: ExitState | None = None,
         **kw: object) -> tuple[list[tuple[str, tuple]], ExitState]:
    """Evaluate a path of (time, price); returns [(price, actions)] and the final state.
    Closes reduce the open quantity as if filled at once."""
    from dataclasses import replace

    state = state or fresh(position)
    out = []
    for when, price in path:
        actions, state = evaluate(position, state, market(price, when, **kw), when, SETTINGS[position.profile])
        sold = sum(a.quantity for a in actions if a.kind in ("close", "partial_close"))
        position = replace(position, open_quantity=position.open_quantity - sold)
        out.append((price, actions))
    return out, state
