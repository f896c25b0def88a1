"""The live shell over the core wired to its pieces (SPEC §3, §6, §6.1): protective stops at the broker,
reconciliation at start-up and on every reconnect, quote ages, refused sends, metrics, throttle, greeks and
the strike walk. Each test fails when its piece is not wired in. The real live shell, sim broker, store and replay
feed (`Rig`), or the shell's own parts where a whole replay would add nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_FLOOR, ROUND_UP, Decimal
from typing import Any


from broker.base import BrokerError
from broker.ib import IBBroker
from broker.quotes import QuoteBook
from broker.liquidity import check_quote
from broker.selection import candidates
from broker.sim import RestingOrder, SimAccountState, SimBroker
from market.types import BrokerPosition, Fill, OptionContract, OrderRequest, OrderStatus, Quote
from daemon.app import App, RunOptions
from market.clock import LiveClock
from broker.pacing import Pacer
from daemon.live import RECONCILE_KEY
from daemon.metrics import Metrics
from daemon.store import Store
from risk.signal import parse_signal
from risk.sizing import evaluate
from tests.daemon.test_live_rig import DAY1, Rig, at

CENT = Decimal("0.01")
SPY_PUT = OptionContract("SPY", DAY1, Decimal(274), "P")


async def _opened(rig: Rig, sid: str = "w-1") -> Any:
    """A bearish SPY position bought on the morning of DAY1, its entry complete."""
    await rig.until(at(DAY1, 10, 28))
    outcome = await rig.engine.submit_signal(rig.signal(sid, "SPY", "bearish", 0.91, rig.clock.now()), "test")
    assert outcome.accepted, outcome
    await rig.until(at(DAY1, 10, 29))
    (position,) = rig.engine.book.held()
    assert position.entry_complete
    return position


async def _stops_at_broker(rig: Rig) -> list[OrderRequest]:
    return [o.request for o in await rig.broker.open_orders() if o.request.order_type == "STP"]


def _floor(price: Decimal) -> Decimal:
    return price.quantize(CENT, ROUND_FLOOR)


# ---------------------------------------------------------------------------- protective stops


async def test_an_entry_rests_its_hard_stop_at_the_broker_and_the_stop_goes_when_the_position_closes(rig: Rig):
    position = await _opened(rig)
    await rig.engine.settle()
    (stop,) = await _stops_at_broker(rig)
    assert stop.side == "SELL" and stop.order_ref == f"tradingd:0dte:stop-{position.id}:1"
    assert stop.quantity == position.open_qty - position.pending_exit
    assert stop.stop_price == _floor(position.record.entry_price * (1 + rig.settings.position_levels.hard_stop_pct))
    assert stop.tif == rig.settings.broker.protective.tif
    intent = await rig.store.find_intent(stop.order_id)
    assert intent is not None and intent.position_id == position.id  # written ahead, tied to the position

    await rig.until(at(DAY1, 16, 0))
    assert await _stops_at_broker(rig) == []
    closed = await rig.store.get_position(position.id)
    assert closed is not None and closed.status == "closed"
    fills = await rig.store.list_fills(limit=1000)
    assert sum(f.quantity for f in fills if f.side == "SELL") == closed.original_qty  # never oversold
    assert not [i for i in await rig.store.load_pending_intents() if ":stop-" in i.order_ref]


async def test_a_stop_filled_at_the_broker_closes_the_position_once_and_the_engine_sells_nothing(tmp_path):
    # The daemon's own close-half level just above the hard stop: the quote below trips only the broker's stop.
    levels = {"position_levels.close_half_pct": -0.24, "position_levels.hard_stop_pct": -0.25}
    rig = Rig(tmp_path, "0dte", ["SPY"], overrides=levels)
    await rig.start()
    try:
        position = await _opened(rig)
        await rig.engine.settle()
        (stop,) = await _stops_at_broker(rig)
        entry, held = position.record.entry_price, position.open_qty
        ask = (entry * Decimal("1.54") - stop.stop_price).quantize(CENT, ROUND_UP)  # mid just above 0.77 x entry
        rig.quotes.update(Quote(position.key, stop.stop_price, ask, None, rig.clock.now(), bid_size=held,
                                ask_size=held, delta=Decimal("-0.4"), gamma=Decimal("0.05")))
        await rig.engine.settle()
        closed = await rig.store.get_position(position.id)
        assert closed is not None and closed.status == "closed" and position.id not in rig.engine.book.positions
        sells = [f for f in await rig.store.list_fills(limit=1000) if f.side == "SELL"]
        assert {f.order_id for f in sells} == {stop.order_id} and sum(f.quantity for f in sells) == held
        events = [(e.rule, e.kind, e.quantity) for e in await rig.store.list_exit_events(position.id)
                  if e.kind != "alert"]
        assert events == [("protective_stop", "close", held)]
        intents = await rig.store.intents_by_ref(f"tradingd:0dte:{stop.order_ref.split(':')[2]}:1")
        assert [i.state for i in intents] == ["filled"]
        assert not [o for o in await rig.broker.open_orders() if o.request.side == "SELL"]
    finally:
        await rig.close()


# ---------------------------------------------------------------------------- reconciliation


async def test_start_up_blocks_an_unknown_broker_position_until_acknowledged(tmp_path):
    rig = Rig(tmp_path, "0dte", ["SPY", "QQQ"])
    stranger = OptionContract("QQQ", DAY1, Decimal(168), "C")
    rig.broker.restore(SimAccountState(positions=(BrokerPosition(stranger, 3, Decimal("1.10")),)))
    await rig.start()
    try:
        assert rig.engine.blocked == {"QQQ"} and rig.engine.status()["blocked_underlyings"] == ["QQQ"]
        await rig.until(at(DAY1, 10, 0))
        refused = await rig.engine.submit_signal(rig.signal("b-1", "QQQ", "bullish", 0.9, rig.clock.now()), "t")
        assert refused.reason == "underlying_blocked" and "blocked" in (refused.message or "")
        await rig.engine.acknowledge("QQQ", "ops")
        again = await rig.engine.submit_signal(rig.signal("b-2", "QQQ", "bullish", 0.9, rig.clock.now()), "t")
        assert "blocked" not in (again.message or "")
        report = rig.engine.status()["last_reconcile"]
        assert report["kind"] == "startup" and report["blocked"] == ["QQQ"] and not report["clean"]
        assert await rig.store.get_meta(RECONCILE_KEY)  # the report is stored
    finally:
        await rig.close()


async def test_start_up_adopts_a_position_its_orderref_proves_and_gives_it_a_stop_of_its_own(tmp_path):
    rig = Rig(tmp_path, "0dte", ["SPY"])
    old_stop = OrderRequest(7, "tradingd:0dte:stop-99:1", SPY_PUT, "SELL", 4, "STP", stop_price=Decimal("0.90"))
    rig.broker.restore(SimAccountState(positions=(BrokerPosition(SPY_PUT, 4, Decimal("1.25")),),
                                       orders=(RestingOrder(old_stop),)))
    await rig.start()
    try:
        (adopted,) = rig.engine.book.held()
        assert (adopted.key, adopted.open_qty, adopted.record.entry_price) == (SPY_PUT.key, 4, Decimal("1.25"))
        assert rig.engine.last_reconcile is not None and len(rig.engine.last_reconcile.adopted) == 1
        await rig.until(rig.clock.now() + timedelta(seconds=1))  # the sim's latency and the throttle
        (stop,) = await _stops_at_broker(rig)  # the dead position's stop cancelled, the adopted one's placed
        assert stop.order_ref == f"tradingd:0dte:stop-{adopted.id}:1" and stop.quantity == 4
        assert stop.order_id > 7  # the max rule: an id seen at the broker is never reused
        assert not rig.engine.blocked
    finally:
        await rig.close()


async def test_an_intent_never_sent_is_marked_with_its_reason_at_start_up(tmp_path):
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.store.upgrade()
    request = OrderRequest(41, "tradingd:0dte:lost-1:1", SPY_PUT, "BUY", 2, limit_price=Decimal("1.20"))
    await rig.store.write_intent(request, rig.clock.now(), parent_ref="tradingd:0dte:lost-1")
    await rig.start()
    try:
        intent = await rig.store.find_intent(41)
        assert intent is not None and intent.state == "cancelled"
        (order,) = [o for o in await rig.store.list_orders() if o.order_id == 41]
        assert order.reason == "never_sent"
        assert rig.engine.last_reconcile is not None and rig.engine.last_reconcile.never_sent == (41,)
    finally:
        await rig.close()


class ReconcilingSim(SimBroker):
    """A sim that reconciles the way IBBroker does: through a hook, between "reconciling" and "ready"."""

    reconciles = True  # declared (broker.base.Broker), as IBBroker does
    reconciler: Any = None
    runs = 0

    def set_reconciler(self, reconciler: Any) -> None:
        self.reconciler = reconciler

    async def start(self) -> None:
        await super().start()
        await self.come_back("connected")

    async def come_back(self, reason: str, signal: Any = None) -> Any:
        assert self._listener is not None
        self._listener.on_connection(True, "reconciling")
        answer = None if signal is None else await signal()
        self.runs += 1
        await self.reconciler(reason)
        self._listener.on_connection(True, "ready")
        return answer


async def test_a_reconnect_reconciles_once_and_refuses_entries_until_ready(tmp_path):
    rig = Rig(tmp_path, "0dte", ["SPY"], broker=ReconcilingSim)
    broker = rig.broker
    assert isinstance(broker, ReconcilingSim)
    await rig.start()
    try:
        await _opened(rig)
        await rig.engine.settle()
        fills = await rig.store.list_fills(limit=1000)
        rig.engine.on_connection(False, "1100")
        refused = await broker.come_back("1101", lambda: rig.engine.submit_signal(
            rig.signal("r-1", "SPY", "bullish", 0.9, rig.clock.now()), "t"))
        assert (refused.accepted, refused.reason) == (False, "halted") and "RECONCILING" in refused.message
        (stored,) = [d for d in await rig.store.recent_decisions() if d.signal_id == "r-1"]
        assert stored.reason == "halted"  # the refusal is a decision of record
        await rig.engine.settle()
        report = rig.engine.last_reconcile
        assert broker.runs == 2 and report is not None and report.kind == "reconnect"
        # The engine's fill handler answers with the store's outcome: known fills are not applied again.
        assert fills and report.fills_applied == () and report.fills_known >= 1
        assert rig.engine.control.state.value == "ACTIVE"
    finally:
        await rig.close()


async def test_a_reconnect_of_a_broker_without_a_hook_is_reconciled_by_the_engine_once(rig: Rig, monkeypatch):
    import daemon.live

    await rig.until(at(DAY1, 9, 45))
    first = rig.engine.last_reconcile
    states: list[str] = []
    rig.engine.on_state = states.append  # every state the shell announces, in order
    kinds: list[str] = []
    real = daemon.live.reconcile

    async def counted(*args: Any, **kwargs: Any) -> Any:
        kinds.append(kwargs["kind"])
        return await real(*args, **kwargs)

    monkeypatch.setattr(daemon.live, "reconcile", counted)
    rig.engine.on_connection(True, "sim_restored")
    rig.engine.on_connection(True, "sim_restored")  # a second word while the first is reconciled: one run
    await rig.engine.settle()
    assert states and states[0].startswith("RECONCILING")  # no entries until the store and broker agree
    assert kinds == ["reconnect"]
    assert rig.engine.last_reconcile is not first and rig.engine.last_reconcile.kind == "reconnect"
    assert rig.engine.control.state.value == "ACTIVE" and states[-1].startswith("ACTIVE")


# ---------------------------------------------------------------------------- signals and sends


async def test_quotes_that_arrive_while_the_candidates_are_subscribed_are_not_from_the_future(rig: Rig):
    await rig.until(at(DAY1, 10, 28))
    subscribe = rig.broker.subscribe

    async def slow_subscribe(keys: list[str]) -> None:
        """As IB streams: the candidates' quotes come in a second later, stamped when they arrive."""
        await subscribe(keys)
        options = [k for k in keys if " " in k]
        if options:
            await rig.clock.advance_to(rig.clock.now() + timedelta(seconds=1))
            for key in options:
                quote = rig.quotes.get(key)
                if quote is not None:
                    rig.quotes.update(replace(quote, received_at=rig.clock.now()))

    rig.broker.subscribe = slow_subscribe  # type: ignore[method-assign]
    outcome = await rig.engine.submit_signal(rig.signal("qa-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert outcome.reason != "invalid_quote_age" and outcome.accepted, outcome


async def test_a_send_the_broker_refuses_is_recorded_rejected_with_its_reason_at_once(rig: Rig):
    await rig.until(at(DAY1, 10, 28))

    async def refuse(order: OrderRequest) -> None:
        raise BrokerError("not_connected", "the broker is away")

    rig.broker.place = refuse  # type: ignore[method-assign]
    outcome = await rig.engine.submit_signal(rig.signal("rf-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert outcome.accepted
    await rig.engine.settle()
    (intent,) = await rig.store.intents_by_ref("tradingd:0dte:rf-1:1")
    assert intent.state == "rejected"
    (order,) = [o for o in await rig.store.list_orders() if o.order_id == intent.order_id]
    assert order.status == OrderStatus.REJECTED.value and "not_connected" in (order.reason or "")


async def test_a_stale_vix_refuses_0dte_entries_as_stale_market_data(tmp_path):
    rig = Rig(tmp_path, "0dte", ["SPY"])
    rig.feed.bars["VIX"] = [b for b in rig.feed.bars["VIX"] if b.end <= at(DAY1, 9, 45)]
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28))
        outcome = await rig.engine.submit_signal(rig.signal("vx-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
        assert outcome.reason == "stale_market_data"
        check = next(c for c in outcome.decision["checks"] if c["name"] == "stale_market_data")
        assert "VIX quote" in check["detail"]
    finally:
        await rig.close()


def _sizing_request(rig: Rig, signal: Any, price: Decimal, quote: Quote, now: Any) -> Any:
    """The gate's input for this option as the core's entry desk builds it (book, greeks, capital)."""
    desk = rig.engine.core.entries
    return desk.request(desk.standing(now), signal, price, quote, now, liquidity_ok=True)


async def test_an_option_without_greeks_is_refused_greeks_unavailable_and_a_flat_book_counts_zero(rig: Rig):
    await rig.until(at(DAY1, 10, 28))
    now = rig.clock.now()
    signal = parse_signal(rig.signal("g-1", "SPY", "bearish", 0.91, now), rig.settings, now)
    bare = Quote(SPY_PUT.key, Decimal("1.00"), Decimal("1.02"), None, now, bid_size=50, ask_size=50)
    request = _sizing_request(rig, signal, Decimal("1.01"), bare, now)
    assert (request.portfolio_delta, request.portfolio_gamma) == (0, 0)
    decision = evaluate(request, rig.settings)
    assert decision.reason == "greeks_limit" and "greeks unavailable" in decision.message


async def test_the_money_strike_refused_for_greeks_only_walks_outward_to_the_first_strike_the_gate_takes(rig: Rig):
    await rig.until(at(DAY1, 10, 28))
    now = rig.clock.now()
    outcome = await rig.engine.submit_signal(rig.signal("sw-1", "SPY", "bearish", 0.91, now), "t")
    assert outcome.accepted and outcome.decision.get("strike_note")
    chosen = outcome.decision["selection"]["contract"]
    # Replay the walk: every liquid (§4.1) candidate before the chosen one fails the gate on greeks_limit
    # alone; the money strike is one of them.
    signal = parse_signal(rig.signal("sw-check", "SPY", "bearish", 0.91, now), rig.settings, now)
    rig.engine.book.positions.clear()  # the gate as it was before this entry
    chain = await rig.broker.chain("SPY")
    spot = rig.quotes.get("SPY").mid  # type: ignore[union-attr]
    walk = [c.key for c in candidates(chain, "bearish", spot, now.date(), rig.settings.profile.expiry,
                                      rig.settings.liquidity.strikes_each_side)]
    assert chosen in walk
    refused = []
    for key in walk[:walk.index(chosen)]:
        quote = rig.quotes.get(key)
        if not check_quote(quote, rig.settings.liquidity, now).ok or quote is None or quote.mid is None:
            continue
        decision = evaluate(_sizing_request(rig, signal, quote.mid, quote, now), rig.settings)
        assert [c.name for c in decision.checks if c.status == "fail"] == ["greeks_limit"], key
        refused.append(key)
    assert refused and refused[0] == outcome.decision["money_strike"]


# ---------------------------------------------------------------------------- metrics and throttle


async def test_the_broker_restart_window_reaches_the_metrics_and_the_status(tmp_path):
    metrics = Metrics("0dte")
    rig = Rig(tmp_path, "0dte", ["SPY"], metrics=metrics)
    await rig.start()
    try:
        rig.broker.disconnect_expected = True  # type: ignore[attr-defined]
        rig.engine.on_connection(False, "1100")
        await rig.engine.settle()
        sample = metrics.registry.get_sample_value("tradingd_broker_disconnect_expected", {"profile": "0dte"})
        assert sample == 1.0 and rig.engine.status()["disconnect_expected"] is True
    finally:
        await rig.close()


def test_with_ib_every_message_leaves_through_the_gateways_one_throttle(tmp_path):
    """IB paces every message itself (`broker.throttle`); the shell sends orders, changes and cancels only
    through the broker (its effect lane), and the core's own pacer asks for no more than the same budget."""
    from daemon.live import LiveShell

    settings = Rig(tmp_path, "0dte", ["SPY"]).settings
    clock = LiveClock()
    broker = IBBroker(settings, clock)
    shell = LiveShell(settings, clock, Store("0dte", f"sqlite:///{tmp_path / 'ib.db'}"), broker, QuoteBook())
    assert broker.throttle is not None and shell.effects.broker is broker
    assert shell.working.pacer._gap == Pacer(settings.execution.max_messages_per_s)._gap


# ---------------------------------------------------------------------------- the app


async def test_a_restarted_live_sim_holds_what_the_store_says_so_reconciliation_blocks_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path / "state"))
    url = f"sqlite:///{tmp_path / 'live.db'}"
    contract = OptionContract("SPY", date(2030, 1, 18), Decimal(470), "C")
    store = Store("0dte", url)
    await store.upgrade()
    now = LiveClock().now()
    position = await store.open_position(contract, now, signal_id=None)
    request = OrderRequest(5, "tradingd:0dte:held-1:1", contract, "BUY", 5, limit_price=Decimal("1.20"))
    await store.write_intent(request, now, parent_ref="tradingd:0dte:held-1", position_id=position.id)
    await store.apply_fill(Fill("X-1", 5, request.order_ref, contract, "BUY", 5, Decimal("1.20"), now))
    await store.set_intent_state(5, "filled", now)
    await store.close()

    app = App(RunOptions(profile="0dte", broker="sim", db=url, api=False, json_logs=True))
    run = asyncio.ensure_future(app.run())
    try:
        async with asyncio.timeout(20):
            while app.engine is None or app.engine.phase != "RUNNING":
                await asyncio.sleep(0.02)
        engine = app.engine
        assert engine.blocked == set() and engine.last_reconcile is not None and engine.last_reconcile.clean
        assert [(p.key, p.open_qty) for p in engine.book.held()] == [(contract.key, 5)]
    finally:
        app.stop()
        assert await asyncio.wait_for(run, 30) == 0
