"""Exit rules on the book (SPEC §5, §3's position levels), as effects.

Every rule that fires is recorded as an exit event and the exit state after each evaluation
is recorded, both BEFORE any order follows (in effect order: the journal writes them first),
so a restart never fires a rule twice. Every close goes to the same execution as entries
with orderRef `tradingd:<profile>:x<exit event id>:<n>`; the position's stop gives up the
contracts first (`follow_stop` is called before the exit's parent starts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from broker.parent import ParentOrder
from config.models import Settings
from daemon import format as fmt
from daemon.core.effects import Outbox
from daemon.core.ids import Counter
from daemon.core.ports import QuoteSource, SessionLookup
from daemon.positions import LivePosition
from exits import policy
from exits.action import ExitAction
from exits.bands import idle_band, price_band
from exits.breakeven import tighten_to_breakeven
from exits.combo import credit_initial_state, credit_take_profit
from exits.context import ExitContext, remaining
from exits.errors import ExitInputError
from exits.market import MarketSnapshot
from exits.state import ExitState

STOP_FILL_RULE = "protective_stop"
SendExit = Callable[[LivePosition, ParentOrder, datetime, Outbox], None]
FollowStop = Callable[[LivePosition, datetime, Outbox], None]


class ExitDesk:
    def __init__(self, settings: Settings, quotes: QuoteSource, sessions: SessionLookup,
                 previous_close: dict[str, Decimal], send: SendExit, follow_stop: FollowStop,
                 event_ids: Counter | None = None,
                 market_events: Callable[[str, datetime], dict[str, Any]] | None = None):
        self.settings = settings
        self.profile = settings.profile.name
        self.quotes = quotes
        self.sessions = sessions
        self.previous_close = previous_close
        self.send = send
        self.follow_stop = follow_stop
        self.event_ids = event_ids or Counter()
        self.max_age = settings.gate.max_quote_age_s
        self.vix_key = settings.profile.vix_symbol
        self.market_events = market_events  # SPEC §10.1: earnings date, today's macro releases
        self.hints: dict[int, Any] = {}  # position id -> its last price band (edges tried first next time)

    def market(self, position: LivePosition, now: datetime) -> MarketSnapshot:
        quote = self.quotes.get(position.key)
        price = None
        if quote is not None and quote.usable and quote.age_s(now) <= self.max_age:
            mid = quote.mid
            price = mid if mid is not None and mid > 0 else None
        under = self.quotes.get(position.underlying)
        vix = self.quotes.get(self.vix_key)
        return MarketSnapshot(
            option_price=price, session=self.sessions(now.date()),
            underlying_price=None if under is None or under.mid is None or under.mid <= 0 else under.mid,
            vix=None if vix is None or vix.mid is None or vix.mid <= 0 else vix.mid,
            previous_underlying_close=self.previous_close.get(position.underlying),
            **({} if self.market_events is None else self.market_events(position.underlying, now)))

    def on_quote(self, position: LivePosition, price: float, vix: float | None, now: datetime, out: Outbox) -> None:
        """A quote of the position's option (`price` its mid as a float): inside the position's band
        nothing can fire and the exact evaluation is skipped; outside it the policy runs exactly."""
        band = position.band
        if band is not None and band.holds(price, now, vix, position.mark):
            return
        self.evaluate(position, now, out, with_band=True)

    def evaluate(self, position: LivePosition, now: datetime, out: Outbox, with_band: bool = False) -> None:
        """The profile's exit policy on one position; the state and every fired rule recorded, then acted on."""
        if position.band is not None:
            self.hints[position.id] = position.band
        position.band = None
        if not position.entry_complete or position.open_qty <= 0:
            return
        view = position.exit_view(self.profile)
        market = self.market(position, now)
        combo = position.combo
        credit = combo is not None and combo.credit
        try:
            state = position.exit_state
            if credit and state.stop_price is None:  # SPEC §9: the credit stop replaces the hard stop
                assert combo is not None
                state = credit_initial_state(view.entry_price, combo.value_offset, self.settings.multileg, state)
            actions, state = policy.evaluate(view, state, market, now, self.settings)
            if credit and remaining(view, state) > 0:
                assert combo is not None
                more, state = credit_take_profit(ExitContext(view, market, now), state, combo.value_offset,
                                                 self.settings.multileg)
                actions = actions + more
        except ExitInputError as exc:
            out.log("error", "exit_evaluation_failed", position_id=position.id, code=exc.code, error=str(exc))
            out.metric("observe_bad_event", code=exc.code)
            return
        self.act(position, actions, state, now, out)
        if with_band and not actions and not credit:  # the band knows the profile's rules, not the credit's  # quiet now, or only the state moved (a new 7dte peak): band the new state
            if market.option_price is None:  # no premium (a bid of 0): only the time rules can act
                position.band = idle_band(view, state, market, now, self.settings, position.mark)
            else:
                position.band = price_band(view, state, market, now, self.settings, self.hints.get(position.id))

    def act(self, position: LivePosition, actions: tuple[ExitAction, ...], state: ExitState, now: datetime,
            out: Outbox) -> None:
        if state != position.exit_state:
            position.exit_state = state
            out.persist("save_exit_state", position_id=position.id, state=state.to_record(), at=now)
        for action in actions:
            event_id = self.event_ids()
            out.persist("record_exit_event", position_id=position.id, rule=action.rule, kind=action.kind,
                        quantity=action.quantity, reason=action.reason, at=now, event_id=event_id)
            out.metric("observe_exit", rule=action.rule)
            if action.kind in ("close", "partial_close"):
                self._send_exit(position, action.quantity, f"x{event_id}", action, now, out)
            elif action.kind == "tighten_stop":
                out.log("info", "exit", position_id=position.id, underlying=position.underlying, rule=action.rule,
                        contracts=action.quantity, price=fmt.price(action.stop_price), kind="tighten_stop",
                        reason=action.reason)
                self.follow_stop(position, now, out)
            else:
                out.log("warning", "exit", position_id=position.id, underlying=position.underlying,
                        rule=action.rule, contracts=0, price=fmt.price(position.mark), mark_pnl_pct=pct(position),
                        kind="alert", reason=action.reason)

    def _send_exit(self, position: LivePosition, quantity: int, source_id: str, action: ExitAction, now: datetime,
                   out: Outbox) -> None:
        qty = min(quantity, position.closable)
        out.log("info", "exit", position_id=position.id, underlying=position.underlying, rule=action.rule,
                contracts=qty, price=fmt.price(position.mark), mark_pnl_pct=pct(position), kind=action.kind,
                reason=action.reason)
        if qty <= 0:
            return
        position.pending_exit += qty
        self.follow_stop(position, now, out)  # the stop gives up these contracts before the exit may sell them
        self.send(position, ParentOrder(self.profile, source_id, position.contract, "SELL", qty, kind="exit",
                                        combo=position.combo), now, out)

    def close_all(self, positions: Iterable[LivePosition], rule: str, reason: str, now: datetime, out: Outbox,
                  losers_only: bool = False) -> list[int]:
        """Close what is open (or only the losing positions), recorded as exit events of `rule`."""
        closing = []
        for position in positions:
            if position.closable <= 0:
                continue
            if losers_only and position.price() >= position.record.entry_price:
                continue
            qty = position.closable
            state = replace(position.exit_state, fired=position.exit_state.fired | {rule},
                            quantity_closed=min(position.record.original_qty,
                                                position.exit_state.quantity_closed + qty))
            self.act(position, (ExitAction("close", qty, reason, rule),), state, now, out)
            closing.append(position.id)
        return closing

    def tighten_winners(self, positions: Iterable[LivePosition], now: datetime, out: Outbox) -> None:
        for position in positions:
            if position.closable <= 0 or position.mark is None:
                continue
            actions, state = tighten_to_breakeven(position.exit_view(self.profile), position.exit_state,
                                                  position.mark)
            self.act(position, actions, state, now, out)

    def stop_filled(self, position: LivePosition, quantity: int, price: Decimal, at: datetime, out: Outbox) -> None:
        """The broker's stop sold contracts: an exit event like any close; the rules count them as closed."""
        kind = "close" if position.open_qty == 0 else "partial_close"
        state = replace(position.exit_state, quantity_closed=min(position.record.original_qty,
                                                                 position.exit_state.quantity_closed + quantity))
        position.exit_state = state
        out.persist("save_exit_state", position_id=position.id, state=state.to_record(), at=at)
        reason = f"protective stop filled at the broker at {price}"
        out.persist("record_exit_event", position_id=position.id, rule=STOP_FILL_RULE, kind=kind, quantity=quantity,
                    reason=reason, at=at, event_id=self.event_ids())
        out.metric("observe_exit", rule=STOP_FILL_RULE)
        out.log("warning", "exit", position_id=position.id, underlying=position.underlying, rule=STOP_FILL_RULE,
                contracts=quantity, price=fmt.price(price), pnl_pct=pct(position, price), kind=kind, reason=reason)

    def interrupted(self, position: LivePosition, now: datetime, out: Outbox) -> None:
        """After a restart: contracts the rules asked to close that are still open (their order died with the
        old process) are sent again; nothing is re-fired."""
        asked = position.exit_state.quantity_closed - (position.record.original_qty - position.open_qty)
        qty = min(asked, position.closable)
        if qty <= 0:
            return
        kind = "close" if qty == position.open_qty else "partial_close"
        event_id = self.event_ids()
        out.persist("record_exit_event", position_id=position.id, rule="resume_exit", kind=kind, quantity=qty,
                    reason="exit interrupted by a restart, sent again", at=now, event_id=event_id)
        self._send_exit(position, qty, f"x{event_id}",
                        ExitAction("partial_close", qty, "resume interrupted exit", "resume_exit"), now, out)


def pct(position: LivePosition, at_price: Decimal | None = None) -> str | None:
    """P&L on the premium at `at_price` (a fill's price: `pnl_pct`) or, on a line that is not a fill
    (an alert, the decision to close), at the mark (`mark_pnl_pct`): never the one for the other."""
    entry = position.record.entry_price
    if at_price is None:
        return fmt.pct_text(position.unrealized_pct) if position.unrealized_pct is not None else None
    return None if entry <= 0 else fmt.pct_text((at_price - entry) / entry)
