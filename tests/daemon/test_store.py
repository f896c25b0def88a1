"""The Store's operations, on SQLite and PostgreSQL: what goes in comes back, exactly, and survives a restart."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from market.types import Fill, OptionContract, OrderRequest, OrderStatus, OrderUpdate
from market.clock import EXCHANGE_TZ
from daemon.store import Store, StoreError

T0 = datetime(2019, 2, 11, 9, 45, tzinfo=EXCHANGE_TZ)
SPY_C = OptionContract("SPY", date(2019, 2, 11), Decimal("270"), "C")
QQQ_P = OptionContract("QQQ", date(2019, 2, 12), Decimal("165.5"), "P")


def at(minutes: int, day: int = 0) -> datetime:
    return T0 + timedelta(days=day, minutes=minutes)


def order(order_id: int, contract: OptionContract = SPY_C, side: str = "BUY", qty: int = 3,
          ref: str = "tradingd:0dte:sig-1:1") -> OrderRequest:
    return OrderRequest(order_id, ref, contract, side, qty, "LMT", Decimal("1.25"))  # type: ignore[arg-type]


def fill(exec_id: str, order_id: int, side: str, qty: int, price: str, minutes: int, commission: str = "0.65",
         contract: OptionContract = SPY_C, day: int = 0) -> Fill:
    return Fill(exec_id, order_id, f"tradingd:0dte:x:{order_id}", contract, side, qty,  # type: ignore[arg-type]
                Decimal(price), at(minutes, day), Decimal(commission))


async def checkpoint(store: Store, equity: Decimal, minutes: int = 0) -> None:
    await store.record_checkpoint(at=at(minutes), equity=equity, session_pnl=-equity, drawdown=Decimal("0.0001"),
                                  exposure=Decimal("12000.5"), open_positions=2,
                                  greeks={"delta": Decimal("0.45")}, breaker_level=1, state="ACTIVE")


# ------------------------------------------------------------------ values


AMOUNTS = ["0", "0.0001", "-0.0001", "1.2345", "12000.1234", "-99999999999999.9999", "99999999999999.9999", "270"]


async def test_decimal_round_trips_exactly(store):
    for minute, amount in enumerate(AMOUNTS):
        await checkpoint(store, Decimal(amount), minutes=minute)
    rows = await store.list_checkpoints()
    assert [r.equity for r in rows] == [Decimal(a) for a in AMOUNTS]
    assert [str(r.equity) for r in rows] == [str(Decimal(a).quantize(Decimal("0.0001"))) for a in AMOUNTS]
    assert [r.session_pnl for r in rows] == [-Decimal(a) for a in AMOUNTS]
    assert all(isinstance(r.equity, Decimal) for r in rows)


async def test_money_beyond_four_places_rounds_half_even_on_both_databases(store):
    await checkpoint(store, Decimal("1.00005"))
    await checkpoint(store, Decimal("1.00015"), minutes=1)
    assert [c.equity for c in await store.list_checkpoints()] == [Decimal("1.0000"), Decimal("1.0002")]


async def test_times_come_back_timezone_aware_in_exchange_time(store):
    utc_time = datetime(2019, 2, 11, 15, 30, 0, 123456, tzinfo=timezone.utc)
    await store.record_signal("s-utc", {}, utc_time)
    record = await store.get_signal("s-utc")
    assert record.received_at == utc_time
    assert record.received_at.tzinfo == EXCHANGE_TZ and record.received_at.hour == 10
    assert record.received_at.microsecond == 123456


async def test_naive_time_is_refused_with_a_reason(store):
    with pytest.raises(StoreError) as err:
        await store.record_signal("s-naive", {}, datetime(2019, 2, 11, 10, 0))
    assert err.value.code == "naive_datetime"
    assert not await store.is_duplicate_signal("s-naive")  # nothing half-written


async def test_non_finite_amount_is_refused(store):
    with pytest.raises(StoreError) as err:
        await checkpoint(store, Decimal("NaN"))
    assert err.value.code == "bad_amount"


async def test_wrong_arguments_fail_in_the_caller_not_the_writer(store):
    with pytest.raises(TypeError):
        await store.record_signal("only-an-id")  # type: ignore[call-arg]


# ------------------------------------------------------------------ signals and decisions


async def test_signal_ids_are_unique_and_the_first_decision_sets_status(store):
    assert await store.record_signal("sig-1", {"underlying": "SPY", "confidence": Decimal("0.8")}, at(0))
    assert not await store.record_signal("sig-1", {"underlying": "QQQ"}, at(1))
    assert await store.is_duplicate_signal("sig-1") and not await store.is_duplicate_signal("sig-2")
    decision = await store.record_decision(signal_id="sig-1", at=at(0), accepted=False, reason="low_confidence",
                                           contracts=0, notional=Decimal(0), multiplier=Decimal("1.25"),
                                           breakdown={"gate": {"confidence": Decimal("0.8")}, "steps": (1, 2)})
    await store.record_decision(signal_id="sig-1", at=at(1), accepted=False, reason="duplicate_signal",
                                contracts=0, notional=Decimal(0), multiplier=Decimal(1), breakdown={})
    signal = await store.get_signal("sig-1")
    assert signal.payload == {"underlying": "SPY", "confidence": "0.8"}
    assert (signal.status, signal.reason) == ("refused", "low_confidence")
    assert decision.breakdown == {"gate": {"confidence": "0.8"}, "steps": [1, 2]}
    assert decision.multiplier == Decimal("1.25")
    assert [d.reason for d in await store.recent_decisions()] == ["duplicate_signal", "low_confidence"]
    first = await store.first_decision("sig-1")
    assert first is not None and (first.id, first.reason) == (decision.id, "low_confidence")
    assert await store.first_decision("sig-2") is None


async def test_a_resend_finds_its_first_decision_however_many_came_after(store):
    await store.record_decision(signal_id="old", at=at(0), accepted=True, reason=None, contracts=40,
                                notional=Decimal(12000), multiplier=Decimal(1), breakdown={})
    for i in range(600):  # far more than any "recent" window
        await store.record_decision(signal_id=f"later-{i}", at=at(1), accepted=False, reason="liquidity",
                                    contracts=0, notional=Decimal(0), multiplier=Decimal(1), breakdown={})
    first = await store.first_decision("old")
    assert first is not None and first.accepted and first.contracts == 40


async def test_bad_signal_input_has_reason_codes(store):
    with pytest.raises(StoreError) as err:
        await store.record_signal("", {}, at(0))
    assert err.value.code == "missing_signal_id"
    with pytest.raises(StoreError) as err:
        await store.record_signal("s", {}, at(0), status="maybe")  # type: ignore[arg-type]
    assert err.value.code == "bad_signal_status"
    with pytest.raises(StoreError) as err:
        await store.record_signal("s", {"x": object()}, at(0))
    assert err.value.code == "bad_json"


# ------------------------------------------------------------------ intents, orders, fills


async def test_intent_written_before_send_is_found_after_a_restart(store, open_store):
    await store.write_intent(order(41), at(0))
    sent = await store.write_intent(order(42), at(1), parent_ref="tradingd:0dte:sig-1")
    await store.mark_intent_sent(42, at(2))
    await store.close()  # the "crash": the daemon never heard back from placeOrder

    reopened = open_store()
    await reopened.upgrade()
    pending = await reopened.load_pending_intents()
    assert [(i.order_id, i.state) for i in pending] == [(41, "intent"), (42, "sent")]
    assert pending[1].parent_ref == sent.parent_ref and pending[1].limit_price == Decimal("1.25")
    assert await reopened.highest_order_id() == 42
    assert [i.order_id for i in await reopened.intents_by_ref("tradingd:0dte:sig-1:1")] == [41, 42]
    await reopened.close()


async def test_order_refs_starting_lists_this_profiles_stops_and_reads_the_prefix_literally(store, open_store):
    """The shell numbers a restarted stop past these (decision shell #6b); `_` in the prefix is no wildcard."""
    await store.write_intent(order(1, ref="tradingd:0dte:stop-7:1"), at(0))
    await store.write_intent(order(2, ref="tradingd:0dte:stop-7:2"), at(1))
    await store.write_intent(order(3, ref="tradingd:0dte:sig-1:1"), at(2))
    await store.write_intent(order(4, ref="tradingd:0dteXstop-9:1"), at(3))  # `_` as a wildcard would match it
    other = Store("7dte", store.url)
    await other.write_intent(order(5, ref="tradingd:0dte:stop-8:1"), at(4))  # another profile's row
    await other.close()
    assert await store.order_refs_starting("tradingd:0dte:stop-") == ["tradingd:0dte:stop-7:1",
                                                                       "tradingd:0dte:stop-7:2"]
    assert await store.order_refs_starting("tradingd:0dte_stop-") == []


async def test_an_order_id_is_never_written_twice(store):
    await store.write_intent(order(7), at(0))
    with pytest.raises(StoreError) as err:
        await store.write_intent(order(7), at(1))
    assert err.value.code == "order_id_reused"


async def test_a_written_intent_is_returned_as_the_store_reads_it_back(store):
    """tick: write_intent is one INSERT (no SELECT after it); what it returns is still the row as stored."""
    request = OrderRequest(8, "tradingd:0dte:sig-2:1", SPY_C, "SELL", 2, "LMT", Decimal("1.234567"))
    written = await store.write_intent(request, at(3), parent_ref="tradingd:0dte:sig-2")
    [read] = await store.intents_by_ref("tradingd:0dte:sig-2:1")
    assert written == read
    assert await store.write_intent(request, at(3), parent_ref="tradingd:0dte:sig-2") == read  # a retry: no-op


async def test_intent_state_only_moves_forward(store):
    await store.write_intent(order(1), at(0))
    await store.update_order(OrderUpdate(1, "r", OrderStatus.SUBMITTED, 0, 3, None, at(1)))
    assert (await store.mark_intent_sent(1, at(2))).state == "working"  # a late `sent` mark does not go back
    await store.update_order(OrderUpdate(1, "r", OrderStatus.FILLED, 3, 0, Decimal("1.2"), at(3)))
    assert (await store.set_intent_state(1, "cancelled", at(4))).state == "filled"  # terminal stays
    assert await store.load_pending_intents() == []
    (o,) = await store.list_orders()
    assert (o.status, o.filled, o.remaining, o.avg_fill_price) == ("Filled", 3, 0, Decimal("1.2"))
    assert await store.list_orders(open_only=True) == []
    with pytest.raises(StoreError) as err:
        await store.set_intent_state(99, "sent", at(5))
    assert err.value.code == "unknown_order"


async def test_apply_fill_is_idempotent_by_exec_id(store):
    position = await store.open_position(SPY_C, at(0), signal_id="sig-1")
    await store.write_intent(order(5), at(0), position_id=position.id)
    first = await store.apply_fill(fill("exec-1", 5, "BUY", 3, "1.20", 1))  # position found through the intent
    again = await store.apply_fill(fill("exec-1", 5, "BUY", 3, "1.20", 1))
    assert first.new and not again.new
    assert again.position == first.position
    assert (first.position.open_qty, first.position.original_qty) == (3, 3)
    assert first.position.realized_pnl == Decimal("-0.65")
    assert len(await store.list_fills()) == 1
    assert (await store.get_position(position.id)).open_qty == 3


async def test_fills_average_the_entry_and_realize_on_exit(store):
    position = await store.open_position(SPY_C, at(0), signal_id="sig-1")
    await store.apply_fill(fill("b1", 1, "BUY", 2, "1.00", 1), position.id)
    scaled = await store.apply_fill(fill("b2", 2, "BUY", 2, "1.50", 2), position.id)
    assert scaled.position.entry_price == Decimal("1.25") and scaled.position.entry_time == at(1)
    half = await store.apply_fill(fill("s1", 3, "SELL", 2, "2.00", 3), position.id)
    assert half.fill.realized_pnl == Decimal("149.35")  # (2.00 - 1.25) x 2 x 100 - 0.65
    assert (half.position.open_qty, half.position.status) == (2, "open")
    done = await store.apply_fill(fill("s2", 4, "SELL", 3, "1.00", 4), position.id)
    assert done.unmatched_qty == 1  # one more sold than held: reported, not applied
    assert done.position.status == "closed" and done.position.closed_at == at(4)
    assert done.position.realized_pnl == Decimal("-2.60") + Decimal(150) - Decimal(50)
    assert await store.load_open_positions() == []
    assert await store.last_execution_time() == at(4)


async def test_fill_without_position_is_stored_alone(store):
    outcome = await store.apply_fill(fill("lone", 77, "SELL", 1, "0.50", 1))
    assert outcome.new and outcome.position is None and outcome.fill.realized_pnl == Decimal("-0.65")


async def test_bad_fill_is_refused_with_a_reason(store):
    with pytest.raises(StoreError) as err:
        await store.apply_fill(fill("zero", 1, "BUY", 0, "1", 1))
    assert err.value.code == "bad_fill"
    with pytest.raises(StoreError) as err:
        await store.apply_fill(fill("nopos", 1, "BUY", 1, "1", 1), 12345)
    assert err.value.code == "unknown_position"
    assert await store.list_fills() == []


# ------------------------------------------------------------------ positions and exits


async def test_adopted_position_and_close_at_expiry(store):
    adopted = await store.open_position(QQQ_P, at(0), quantity=4, entry_price=Decimal("2.10"))
    assert (adopted.underlying, adopted.strike, adopted.right, adopted.expiry) == ("QQQ", Decimal("165.5"), "P",
                                                                                  date(2019, 2, 12))
    with pytest.raises(StoreError) as err:
        await store.close_position(adopted.id, at(10))
    assert err.value.code == "position_still_open"
    closed = await store.close_position(adopted.id, at(10), exit_price=Decimal(0), reason="expired")
    assert (closed.status, closed.open_qty, closed.realized_pnl, closed.close_reason) == (
        "closed", 0, Decimal("-840"), "expired")
    assert [p.id for p in await store.list_positions(status="closed")] == [adopted.id]


async def test_exit_states_and_events(store):
    position = await store.open_position(SPY_C, at(0), quantity=2, entry_price=Decimal("1"))
    await store.save_exit_state(position.id, {"peak": Decimal("1.4"), "tiers_hit": [1]}, at(1))
    await store.save_exit_state(position.id, {"peak": Decimal("1.6"), "tiers_hit": [1, 2]}, at(2))
    assert await store.load_exit_states() == {position.id: {"peak": "1.6", "tiers_hit": [1, 2]}}
    event = await store.record_exit_event(position.id, rule="tier_2", kind="take_profit", quantity=1,
                                          reason="profit 0.10 >= 0.10", at=at(2))
    assert (await store.list_exit_events(position.id)) == [event]
    with pytest.raises(StoreError) as err:
        await store.save_exit_state(999, {}, at(3))
    assert err.value.code == "unknown_position"
    await store.close_position(position.id, at(3), exit_price=Decimal("1.5"))
    assert await store.load_exit_states() == {}  # only open positions' states are loaded


# ------------------------------------------------------------------ state that must survive restarts


async def test_trading_state_latch_survives_reopening(store, open_store):
    assert await store.get_trading_state() is None
    await store.set_trading_state("HALTED", since=at(30), breaker_level=4, latched=True,
                                  reason="emergency_halt")
    await store.record_breaker_event(level=4, from_state="REDUCING", to_state="HALTED",
                                     session_pnl=Decimal("-12000.5"), at=at(30))
    await store.record_operator_action("halt", who="ops", why="test", at=at(31), detail={"source": "cli"})
    await store.close()

    reopened = open_store()
    await reopened.upgrade()
    state = await reopened.get_trading_state()
    assert (state.state, state.latched, state.breaker_level, state.reason, state.since) == (
        "HALTED", True, 4, "emergency_halt", at(30))
    (event,) = await reopened.list_breaker_events()
    assert event.session_pnl == Decimal("-12000.5")
    (action,) = await reopened.list_operator_actions()
    assert (action.action, action.who, action.detail) == ("halt", "ops", {"source": "cli"})
    snapshot = await reopened.load_snapshot()
    assert snapshot.trading_state == state
    await reopened.close()


async def test_operator_action_input_is_checked(store):
    with pytest.raises(StoreError) as err:
        await store.record_operator_action("reboot", who="ops", why=None, at=at(0))  # type: ignore[arg-type]
    assert err.value.code == "bad_operator_action"
    with pytest.raises(StoreError) as err:
        await store.record_operator_action("halt", who="", why=None, at=at(0))
    assert err.value.code == "missing_operator"


async def test_blocked_underlying_until_acknowledged(store):
    await store.block_underlying("TSLA", reason="unknown_broker_position", at=at(0), detail={"qty": 2})
    assert [b.underlying for b in await store.blocked_underlyings()] == ["TSLA"]
    acked = await store.ack_underlying("TSLA", who="ops", at=at(5))
    assert acked.acknowledged and acked.acknowledged_by == "ops"
    assert await store.blocked_underlyings() == []
    await store.block_underlying("TSLA", reason="unknown_broker_position", at=at(60))
    assert await store.blocked_underlyings() == []  # the same discrepancy stays acknowledged
    await store.block_underlying("TSLA", reason="unknown_open_order", at=at(61))
    assert [b.reason for b in await store.blocked_underlyings()] == ["unknown_open_order"]
    assert await store.ack_underlying("AAPL", who="ops", at=at(62)) is None


async def test_order_ids_and_meta(store):
    assert await store.highest_order_id() == 0
    await store.note_order_id(500)
    await store.note_order_id(20)
    await store.write_intent(order(30), at(0))
    assert await store.highest_order_id() == 500
    await store.set_meta("last_exec_id", "abc")
    assert await store.get_meta("last_exec_id") == "abc" and await store.get_meta("nope") is None


# ------------------------------------------------------------------ the end-of-run summary


async def test_summary_by_day(store):
    for i, (accepted, reason) in enumerate([(True, None), (False, "low_confidence"), (False, "low_confidence"),
                                            (False, "vix_too_high")]):
        await store.record_signal(f"s{i}", {}, at(i))
        await store.record_decision(signal_id=f"s{i}", at=at(i), accepted=accepted, reason=reason,
                                    contracts=3 if accepted else 0, notional=Decimal(0), multiplier=Decimal(1),
                                    breakdown={})
    win = await store.open_position(SPY_C, at(5), signal_id="s0")
    await store.apply_fill(fill("a", 1, "BUY", 2, "1.00", 5), win.id)
    await store.apply_fill(fill("b", 2, "SELL", 2, "1.50", 30), win.id)
    carried = await store.open_position(QQQ_P, at(10), quantity=1, entry_price=Decimal("2"))  # no fills
    await store.record_breaker_event(level=1, from_state="ACTIVE", to_state="ACTIVE",
                                     session_pnl=Decimal(-4200), at=at(40))
    await store.record_signal("late", {}, T0.replace(hour=20))  # 20:00 New York is still the 11th
    await store.close_position(carried.id, at(0, day=1), exit_price=Decimal("0.5"), reason="expired")
    await store.record_breaker_event(level=2, from_state="ACTIVE", to_state="ACTIVE",
                                     session_pnl=Decimal(-6100), at=at(1, day=1))
    await store.record_breaker_event(level=1, from_state="ACTIVE", to_state="ACTIVE",
                                     session_pnl=Decimal(-4300), at=at(2, day=1))

    first, second = await store.summary_by_day()
    assert first.session_date == date(2019, 2, 11) and second.session_date == date(2019, 2, 12)
    assert (first.signals, first.accepted, first.refused) == (5, 1, 3)
    assert first.refused_by_reason == {"low_confidence": 2, "vix_too_high": 1}
    assert (first.trades_opened, first.trades_closed) == (2, 1)
    assert first.realized_pnl == Decimal("98.70") and first.commissions == Decimal("1.30")
    assert (first.breaker_events, first.max_breaker_level) == (1, 1)
    assert (second.trades_opened, second.trades_closed, second.realized_pnl) == (0, 1, Decimal(-150))
    assert (second.breaker_events, second.max_breaker_level, second.signals) == (2, 2, 0)
    assert await store.summary_by_day("7dte") == []
