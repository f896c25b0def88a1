"""Positions in motion: entries sent, fills applied, exit rules run, breaker effects, flattening.

Every exit rule that fires is stored as an exit event, and the exit state after each
evaluation is stored, both BEFORE any order follows (the intent write that precedes an order
waits for them on the store's single writer), so a restart never fires a rule twice. Every
close goes through the same executor as entries (exits cross the spread and never give up),
with orderRef `tradingd:<profile>:x<exit event id>:<n>`.

The position's stop resting at the broker (`protection.StopDesk`) follows every change: placed
on the entry fills, shrunk before an exit order goes out (so the two never sell the same
contract), raised when the rules tighten the stop, cancelled when the position closes. A fill
of that stop is the broker closing contracts on its own: applied once like any fill, recorded
as an exit event (`protective_stop`), and never counted against a working exit.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from broker.base import BrokerError
from broker.execution import ExecutionError, ExecutionResult, ParentOrder
from broker.order_ref import parent_ref
from market.types import Fill
from daemon import format as fmt
from daemon import notifications as tell
from daemon.store.journal import StoreUnavailable
from daemon.store.ops_positions import apply_to_position
from daemon.store.records import FillOutcome, FillRecord, PositionRecord
from daemon.store.types import quantize_money
from exits import policy
from exits.action import ExitAction
from exits.breakeven import tighten_to_breakeven
from exits.errors import ExitInputError
from exits.market import MarketSnapshot
from exits.state import ExitState
from risk.breakers import TOP_LEVEL, effects

# The engine these desks serve is typed loosely: a desk never imports its engine (no import cycle);
# daemon/core's desks take narrow collaborators instead.
Engine = Any

if TYPE_CHECKING:
    from daemon.entries import Intake
    from daemon.positions import LivePosition


STOP_FILL_RULE = "protective_stop"


class ExitDesk:
    def __init__(self, engine: Engine):
        self.engine = engine
        # Fills come from the worker and, after a reconnect, from the broker's reconciler: one at a time,
        # so a position's record is never overwritten by an older one.
        self._fill_lock = asyncio.Lock()
        self._snapshots_asked: dict[str, datetime] = {}  # SPEC §4.4: a fresh snapshot per bad quote, paced

    # ------------------------------------------------------------------ entries

    async def open_entry(self, intake: Intake) -> None:
        """An accepted decision: a position row, its option subscribed, the parent order under way."""
        eng = self.engine
        decision, signal = intake.decision, intake.signal
        assert decision is not None and signal is not None
        now = eng.clock.now()
        if intake.position is not None:  # scale-in: more of an open position
            position = intake.position
            contract = position.contract
        else:
            assert intake.selection is not None and intake.selection.contract is not None
            contract = intake.selection.contract
            # durable: the entry goes on only once its position row is committed (SPEC §6.2)
            record = await eng.journal.durable("open_position", contract=contract, opened_at=now,
                                               signal_id=signal.id)
            from daemon.positions import LivePosition

            position = LivePosition(record=record, contract=contract, exit_state=ExitState(),
                                    session_ref=Decimal(0))
            eng.book.add(position)
        try:
            await eng.broker.subscribe([contract.key])  # already streaming since the choice: this only makes sure
        except BrokerError as exc:
            eng.log.warning("subscribe_failed", code=exc.code, option=contract.key, error=str(exc))
        ref = parent_ref(eng.profile, signal.id, eng.settings.execution.order_ref_prefix)
        eng.bind_order(ref, position.id)
        position.entry_complete = False
        position.entry_pending += decision.contracts
        position.entry_limit = position.entry_limit or (decision.contract_value or Decimal(0)) / contract.multiplier
        parent = ParentOrder(eng.profile, signal.id, contract, "BUY", decision.contracts, kind="entry")
        eng.spawn(self._entry(position, parent), name=f"entry-{signal.id}")

    async def _entry(self, position: LivePosition, parent: ParentOrder) -> None:
        eng = self.engine
        result = await self._execute(parent)
        position.entry_pending = max(0, position.entry_pending - parent.quantity)
        position.entry_complete = position.entry_pending == 0
        self._log_parent(position, parent, result)
        # refused (a child without a durable intent: store_unavailable) or unfilled: nothing bought
        if (result is None or result.filled == 0) and position.record.original_qty == 0:
            await eng.settle_fills()
            if position.record.original_qty == 0 and position.id in eng.book.positions:
                eng.journal.append("close_position", position_id=position.id, closed_at=eng.clock.now(),
                                   reason="entry_unfilled")
                eng.book.remove(position.id)
                await eng.broker.unsubscribe([position.key])
                eng.log.warning("entry_unfilled", position_id=position.id, underlying=position.underlying)
                return
        await self.evaluate(position, eng.clock.now())

    async def _execute(self, parent: ParentOrder) -> ExecutionResult | None:
        """The parent worked to its end; None when it was refused or broke. Never raises (but for a
        cancellation): the caller must always give back the contracts it reserved (`pending_exit`)."""
        try:
            return await self.engine.executor.execute(parent)
        except ExecutionError as exc:
            self.engine.log.error("order_refused", order_ref=parent.source_id, code=exc.code, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - else a failed exit would hold its contracts for ever
            self.engine.log.exception("order_failed", order_ref=parent.source_id, code="execution_failed",
                                      error=repr(exc))
        return None

    def _log_parent(self, position: LivePosition, parent: ParentOrder, result: ExecutionResult | None) -> None:
        eng = self.engine
        if result is None:
            return
        eng.log.info("order", position_id=position.id, order_ref=result.parent_ref, underlying=position.underlying,
                     side=parent.side, contracts=f"{result.filled}/{result.requested}",
                     avg_price=fmt.price(result.avg_price), status=result.status.value,
                     pnl_pct=_pct(position, result.avg_price) if parent.side == "SELL" and result.avg_price else None,
                     slippage=fmt.price(result.slippage_vs_mid), underfilled=result.underfilled or None,
                     walk=fmt.limit_walk(result))
        if eng.metrics is not None:
            eng.metrics.observe_order(result.status.value if not result.underfilled else "underfilled", level="parent")

    # ------------------------------------------------------------------ fills

    async def apply_fill(self, fill: Fill) -> FillOutcome:
        """Apply one execution exactly once (by exec id), in memory, and journal it (SPEC §6.2: the
        book, not the store, decides what the exits do next; the store applies the same record with
        the same arithmetic, `ops_positions.apply_to_position`, when it writes it)."""
        async with self._fill_lock:
            outcome = await self._apply_in_memory(fill)
            if outcome.new:
                await self._applied(fill, outcome)
            return outcome

    async def _apply_in_memory(self, fill: Fill) -> FillOutcome:
        eng = self.engine
        if fill.exec_id in eng._exec_ids:
            return FillOutcome(new=False, fill=fill_record(fill, None, Decimal(0)), position=None)
        position_id = eng._intent_positions.get(fill.order_id)
        if position_id is None:
            position_id = eng.order_position(fill.order_ref)
        position = None if position_id is None else eng.book.get(position_id)
        if (position_id is None and eng.journal.available) or (position_id is not None and position is None):
            # An order this process did not send, or a position not in the book: only the store knows
            # which position it belongs to. Rare; it needs the store (while it is away: applied alone).
            try:
                outcome = await eng.journal.durable("apply_fill", fill=fill, position_id=position_id)
            except StoreUnavailable:
                pass  # journaled below with the position it names; the store applies it when it returns
            else:
                eng._exec_ids.add(fill.exec_id)
                return outcome  # type: ignore[no-any-return]
        outcome = apply_fill_to(position.record if position is not None else None, fill)
        eng._exec_ids.add(fill.exec_id)
        eng.journal.append("apply_fill", fill=fill, position_id=position_id)
        return outcome

    async def _applied(self, fill: Fill, outcome: FillOutcome) -> None:
        eng = self.engine
        by_stop = eng.stops.on_fill(fill)
        record = outcome.position
        position = None if record is None else eng.book.get(record.id)
        if record is not None and position is None and record.status == "open":
            position = eng._live_position(record, None, None)
            eng.book.add(position)
        realized = outcome.fill.realized_pnl
        if position is not None and record is not None:
            before = position.record
            eng.book.record_fill(position, outcome.fill, before)
            position.record = record
            if fill.side == "SELL" and not by_stop:
                position.pending_exit = max(0, position.pending_exit - fill.quantity)
        eng.realized_total += realized
        quote = eng.quotes.get(fill.contract.key)
        mid = None if quote is None else quote.mid
        eng.log.info("fill", order_id=fill.order_id, order_ref=fill.order_ref,
                     position_id=None if record is None else record.id, underlying=fill.contract.underlying,
                     side=fill.side, contracts=fill.quantity, price=fmt.price(fill.price), mid=fmt.price(mid),
                     slippage=None if mid is None else fmt.price((fill.price - mid) * (1 if fill.side == "BUY" else -1)),
                     realized=fmt.money(realized) if fill.side == "SELL" else None, option=fill.contract.key)
        if eng.metrics is not None:
            slip = None if not mid else (fill.price - mid) / mid * (1 if fill.side == "BUY" else -1)
            eng.metrics.observe_fill(side=fill.side, contracts=fill.quantity, slippage_vs_mid=slip)
        tell.notify("fill", f"{fill.side} {fill.quantity} {fill.contract.key} at {fmt.price(fill.price)}"
                            + (f", realized {fmt.money_text(realized)}" if fill.side == "SELL" else ""))
        if outcome.unmatched_qty:
            eng.log.error("fill_beyond_position", order_ref=fill.order_ref, unmatched=outcome.unmatched_qty)
        if by_stop and position is not None:
            await self._stop_filled(position, fill)
        if record is not None and record.status == "closed":
            eng.book.remove(record.id)
            eng.book.closed_today.append(record.id)
            eng.stops.cancel_soon(record.id)
            await eng.broker.unsubscribe([record.contract_key])
            eng.log.info("position_closed", position_id=record.id, underlying=record.underlying,
                         realized=fmt.money(record.realized_pnl), reason=record.close_reason, option=record.contract_key)
        elif position is not None:
            eng.stops.follow_soon(position)

    async def _stop_filled(self, position: LivePosition, fill: Fill) -> None:
        """The broker's stop sold contracts: an exit event like any close, and the rules count them as closed."""
        eng = self.engine
        kind = "close" if position.open_qty == 0 else "partial_close"
        state = replace(position.exit_state, quantity_closed=min(position.record.original_qty,
                                                                 position.exit_state.quantity_closed + fill.quantity))
        position.exit_state = state
        eng.journal.append("save_exit_state", position_id=position.id, state=state.to_record(), at=fill.at)
        reason = f"protective stop filled at the broker at {fill.price}"
        eng.journal.append("record_exit_event", position_id=position.id, rule=STOP_FILL_RULE, kind=kind,
                           quantity=fill.quantity, reason=reason, at=fill.at, event_id=eng.next_exit_event_id())
        if eng.metrics is not None:
            eng.metrics.observe_exit(STOP_FILL_RULE)
        eng.log.warning("exit", position_id=position.id, underlying=position.underlying, rule=STOP_FILL_RULE,
                        contracts=fill.quantity, price=fmt.price(fill.price), pnl_pct=_pct(position, fill.price),
                        kind=kind, reason=reason)

    # ------------------------------------------------------------------ exit rules

    def market(self, position: LivePosition, now: datetime) -> MarketSnapshot:
        eng = self.engine
        quote = eng.quotes.get(position.key)
        price = None
        if quote is not None and quote.usable and quote.age_s(now) <= eng.settings.gate.max_quote_age_s:
            mid = quote.mid
            price = mid if mid is not None and mid > 0 else None
        under = eng.quotes.get(position.underlying)
        vix = eng.quotes.get(eng.settings.profile.vix_symbol)
        return MarketSnapshot(
            option_price=price, session=eng.sessions(now.date()),
            underlying_price=None if under is None or under.mid is None or under.mid <= 0 else under.mid,
            vix=None if vix is None or vix.mid is None or vix.mid <= 0 else vix.mid,
            previous_underlying_close=eng.previous_close.get(position.underlying),
            **eng.regime.exit_events(position.underlying, now))  # SPEC §10.1: earnings, macro day

    async def evaluate(self, position: LivePosition, now: datetime) -> None:
        """Run the profile's exit policy on one position; store the state, every fired rule, then act."""
        eng = self.engine
        if not position.entry_complete or position.open_qty <= 0 or position.id not in eng.book.positions:
            return
        self._refresh_if_bad(position, now)
        try:
            actions, state = policy.evaluate(position.exit_view(eng.profile), position.exit_state,
                                             self.market(position, now), now, eng.settings)
        except ExitInputError as exc:
            eng.log.error("exit_evaluation_failed", position_id=position.id, code=exc.code, error=str(exc))
            return
        await self._act(position, actions, state, now)

    def _refresh_if_bad(self, position: LivePosition, now: datetime) -> None:
        """SPEC §4.4: an exit never acts on a quote the sanity checks refused; it asks the broker for a
        fresh snapshot (at most one per key per jump window, off the quote path: IB may take seconds),
        which goes through the same checks and, usable, re-runs the exit rules with a real price; the
        exit itself is the executor's marketable limit."""
        eng, key = self.engine, position.key
        if eng.quotes.problem(key) is None:
            return
        asked = self._snapshots_asked.get(key)
        if asked is not None and now - asked < timedelta(seconds=float(eng.settings.market_data.jump_window_s)):
            return
        self._snapshots_asked[key] = now
        eng.spawn(self._fresh_snapshot(key), name=f"snapshot-{key}")

    async def _fresh_snapshot(self, key: str) -> None:
        eng = self.engine
        try:
            eng.quotes.update(await eng.broker.snapshot(key))
        except BrokerError as exc:
            eng.log.warning("exit_snapshot_failed", key=key, code=exc.code, error=str(exc))

    async def _act(self, position: LivePosition, actions: tuple[ExitAction, ...], state: ExitState,
                   now: datetime) -> None:
        eng = self.engine
        # The state changes in memory and its record goes to the journal, which keeps it until the
        # store has it: a failed write can no longer lose it (SPEC §6.2), nor hold back the exit.
        if state != position.exit_state:
            position.exit_state = state
            eng.journal.append("save_exit_state", position_id=position.id, state=state.to_record(), at=now)
        for action in actions:
            event_id = eng.next_exit_event_id()
            eng.journal.append("record_exit_event", position_id=position.id, rule=action.rule, kind=action.kind,
                               quantity=action.quantity, reason=action.reason, at=now, event_id=event_id)
            if eng.metrics is not None:
                eng.metrics.observe_exit(action.rule)
            if action.kind in ("close", "partial_close"):
                self._send_exit(position, action.quantity, f"x{event_id}", action, now)
            elif action.kind == "tighten_stop":
                eng.log.info("exit", position_id=position.id, underlying=position.underlying, rule=action.rule,
                             contracts=action.quantity, price=fmt.price(action.stop_price), kind="tighten_stop",
                             reason=action.reason)
                eng.stops.follow_soon(position)
            else:
                eng.log.warning("exit", position_id=position.id, underlying=position.underlying, rule=action.rule,
                                contracts=0, price=fmt.price(position.mark), mark_pnl_pct=_pct(position), kind="alert",
                                reason=action.reason)

    def _send_exit(self, position: LivePosition, quantity: int, source_id: str, action: ExitAction,
                   now: datetime) -> None:
        eng = self.engine
        qty = min(quantity, position.closable)
        eng.log.info("exit", position_id=position.id, underlying=position.underlying, rule=action.rule,
                     contracts=qty, price=fmt.price(position.mark), mark_pnl_pct=_pct(position), kind=action.kind,
                     reason=action.reason)
        if qty <= 0:
            return
        position.pending_exit += qty
        eng.bind_order(parent_ref(eng.profile, source_id, eng.settings.execution.order_ref_prefix), position.id)
        parent = ParentOrder(eng.profile, source_id, position.contract, "SELL", qty, kind="exit")
        eng.spawn(self._exit(position, parent), name=f"exit-{source_id}")

    async def _exit(self, position: LivePosition, parent: ParentOrder) -> None:
        eng = self.engine
        result = None
        try:
            await eng.stops.follow(position)  # the stop gives up these contracts before the exit may sell them
            if eng.stops.leaves_room(position):  # the broker may have refused to shrink it (SPEC §6.1)
                result = await self._execute(parent)
            else:
                eng.log.warning("exit_held_by_stop", position_id=position.id, contracts=parent.quantity)
        finally:  # whatever broke, what was not sold may be asked for again by the next evaluation
            filled = 0 if result is None else result.filled
            position.pending_exit = max(0, position.pending_exit - (parent.quantity - filled))
        self._log_parent(position, parent, result)
        if filled < parent.quantity and position.id in eng.book.positions:
            await eng.stops.follow(position)  # what the exit did not sell is covered again

    async def close_all(self, rule: str, reason: str, now: datetime, losers_only: bool = False) -> list[int]:
        """Close what is open (or only the losing positions), recorded as exit events of `rule`."""
        closing = []
        for position in self.engine.book:
            if position.closable <= 0:
                continue
            if losers_only and position.price() >= position.record.entry_price:
                continue
            qty = position.closable
            state = replace(position.exit_state, fired=position.exit_state.fired | {rule},
                            quantity_closed=min(position.record.original_qty,
                                                position.exit_state.quantity_closed + qty))
            await self._act(position, (ExitAction("close", qty, reason, rule),), state, now)
            closing.append(position.id)
        return closing

    async def resume_interrupted(self, now: datetime) -> None:
        """After a restart: contracts the rules asked to close that are still open (their order died
        with the old process) are sent again; nothing is re-fired."""
        for position in self.engine.book:
            asked = position.exit_state.quantity_closed - (position.record.original_qty - position.open_qty)
            qty = min(asked, position.closable)
            if qty > 0:
                event_id = self.engine.next_exit_event_id()
                self.engine.journal.append(
                    "record_exit_event", position_id=position.id, rule="resume_exit",
                    kind="close" if qty == position.open_qty else "partial_close",
                    quantity=qty, reason="exit interrupted by a restart, sent again", at=now, event_id=event_id)
                self._send_exit(position, qty, f"x{event_id}",
                                ExitAction("partial_close", qty, "resume interrupted exit", "resume_exit"), now)

    # ------------------------------------------------------------------ account breakers (SPEC §3)

    async def check_breakers(self, now: datetime) -> None:
        eng = self.engine
        session = eng.sessions(now.date())
        if session is None:
            return
        await eng.roll_session(now)
        before_state, before_level = eng.control.state, eng.control.level
        session_pnl = eng.book.session_pnl()
        update = eng.control.evaluate(session.day, session_pnl, eng.capital_base())
        if update.event is None and eng.control.state == before_state:
            return
        level = eng.control.level
        name = eng.settings.breakers.levels[level - 1].name if level else "clear"
        await eng.persist_state(name)
        eng.log.warning("breaker", level=level, name=name, session_pnl=fmt.money(session_pnl),
                        trading_state=eng.control.state.value, previous_level=before_level, change=update.event)
        tell.notify("breaker", f"breaker level {before_level} -> {level} ({name}, {update.event or 'changed'}): "
                               f"session P&L {fmt.money_text(session_pnl)}, trading state {eng.control.state.value}")
        if update.event != "tripped":
            return
        eng.journal.append("record_breaker_event", level=level, from_state=before_state.value,
                           to_state=eng.control.state.value, session_pnl=session_pnl, at=now,
                           reason=f"{name}: session P&L {fmt.money(session_pnl)}")
        if eng.metrics is not None:
            eng.metrics.observe_breaker_event(level)
        fx = effects(level)
        if fx.flatten:
            tell.notify("emergency_flatten", f"breaker level {level} ({name}): closing every position; "
                                             f"session P&L {fmt.money_text(session_pnl)}")
            await self.close_all(f"breaker_level_{TOP_LEVEL}_flatten", f"breaker level {level} ({name}): flatten",
                                 now)
        elif fx.close_losers:
            await self.close_all(f"breaker_level_{level}_close_loser",
                                 f"breaker level {level} ({name}): close losing positions", now, losers_only=True)
        if fx.tighten_winners_to_break_even and not fx.flatten:
            await self._tighten_winners(now)

    async def _tighten_winners(self, now: datetime) -> None:
        for position in self.engine.book:
            if position.closable <= 0 or position.mark is None:
                continue
            actions, state = tighten_to_breakeven(position.exit_view(self.engine.profile), position.exit_state,
                                                  position.mark)
            await self._act(position, actions, state, now)


def _pct(position: LivePosition, at_price: Decimal | None = None) -> str | None:
    """P&L on the premium at `at_price` (a fill's price: `pnl_pct`) or, on a line that is not a fill
    (an alert, the decision to close), at the mark (`mark_pnl_pct`): never the one for the other."""
    entry = position.record.entry_price
    if at_price is None:
        return fmt.pct_text(position.unrealized_pct) if position.unrealized_pct is not None else None
    return None if entry <= 0 else fmt.pct_text((at_price - entry) / entry)


# ---------------------------------------------------------------------- fills in memory (room journal)

def fill_record(fill: Fill, position_id: int | None, realized: Decimal) -> FillRecord:
    """The fill as the store will hold it."""
    return FillRecord(exec_id=fill.exec_id, order_id=fill.order_id, order_ref=fill.order_ref,
                      contract_key=fill.contract.key, side=fill.side, quantity=fill.quantity, price=fill.price,
                      commission=quantize_money(fill.commission), at=fill.at, position_id=position_id,
                      realized_pnl=realized)


def apply_fill_to(record: PositionRecord | None, fill: Fill) -> FillOutcome:
    """`ops_orders.apply_fill`'s arithmetic on the book's copy of the position: the same function
    (`apply_to_position`) on a mutable copy, so memory and the store can never disagree."""
    if fill.quantity <= 0 or fill.side not in ("BUY", "SELL"):
        raise ExitInputError("bad_fill", f"fill {fill.exec_id}: {fill.side} {fill.quantity}")
    commission = quantize_money(fill.commission)
    if record is None:
        return FillOutcome(new=True, fill=fill_record(fill, None, -commission), position=None)
    row = SimpleNamespace(**{f.name: getattr(record, f.name) for f in fields(record)})
    realized, unmatched = apply_to_position(
        row, fill.side, fill.quantity, fill.price, commission, fill.at)  # type: ignore[arg-type]
    updated = replace(record, **{f.name: getattr(row, f.name) for f in fields(record)})
    return FillOutcome(new=True, fill=fill_record(fill, record.id, realized), unmatched_qty=unmatched,
                       position=updated)
