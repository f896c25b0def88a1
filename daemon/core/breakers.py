"""Account breakers (SPEC §3) on the session's mark-to-market P&L, as effects.

`check(now)` evaluates the breaker on the book's session P&L; a change is persisted (the meta
value and the trading-state row); a trip is recorded as a breaker event and its effects are
handed to the exit desk (close losers, tighten winners to break-even, flatten).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from config.models import Settings
from daemon import format as fmt
from daemon.core.effects import Outbox
from daemon.core.exits import ExitDesk
from daemon.positions import Book
from daemon.trading import META_KEY, TradingControl
from risk.breakers import TOP_LEVEL, effects

CapitalBase = Callable[[], Decimal]


def persist_state(control: TradingControl, reason: str | None, now: datetime, out: Outbox) -> None:
    out.persist("set_meta", key=META_KEY, value=control.to_meta())
    out.persist("set_trading_state", state=control.state.value, since=now, breaker_level=control.level,
                latched=control.latched, reason=control.reason or reason)
    out.metric("set_trading_state", state=control.state.value)
    out.metric("set_breaker_level", level=control.level)


class BreakerDesk:
    def __init__(self, settings: Settings, control: TradingControl, book: Book, exits: ExitDesk,
                 capital_base: CapitalBase):
        self.settings = settings
        self.control = control
        self.book = book
        self.exits = exits
        self.capital_base = capital_base

    def check(self, day: date, now: datetime, out: Outbox) -> None:
        control = self.control
        before_state, before_level = control.state, control.level
        session_pnl = self.book.session_pnl()
        update = control.evaluate(day, session_pnl, self.capital_base())
        if update.event is None and control.state == before_state:
            return
        level = control.level
        name = self.settings.breakers.levels[level - 1].name if level else "clear"
        persist_state(control, name, now, out)
        out.log("warning", "breaker", level=level, name=name, session_pnl=fmt.money(session_pnl),
                trading_state=control.state.value, previous_level=before_level, change=update.event)
        out.notify("breaker", f"breaker level {before_level} -> {level} ({name}, {update.event or 'changed'}): "
                              f"session P&L {fmt.money_text(session_pnl)}, trading state {control.state.value}")
        if update.event != "tripped":
            return
        out.persist("record_breaker_event", level=level, from_state=before_state.value, to_state=control.state.value,
                    session_pnl=session_pnl, at=now, reason=f"{name}: session P&L {fmt.money(session_pnl)}")
        out.metric("observe_breaker_event", level=level)
        fx = effects(level)
        if fx.flatten:
            out.notify("emergency_flatten", f"breaker level {level} ({name}): closing every position; "
                                            f"session P&L {fmt.money_text(session_pnl)}")
            self.exits.close_all(self.book, f"breaker_level_{TOP_LEVEL}_flatten",
                                 f"breaker level {level} ({name}): flatten", now, out)
        elif fx.close_losers:
            self.exits.close_all(self.book, f"breaker_level_{level}_close_loser",
                                 f"breaker level {level} ({name}): close losing positions", now, out,
                                 losers_only=True)
        if fx.tighten_winners_to_break_even and not fx.flatten:
            self.exits.tighten_winners(self.book, now, out)
