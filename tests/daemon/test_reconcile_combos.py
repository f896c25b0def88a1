"""Combos at reconciliation: units filled, a combo's legs found again by orderRef, a leg missing or out of
ratio blocks the underlying; and over the fake gateway, a reconnect in the middle of a combo's fills
reconciles both legs exactly once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from broker.ib import ConnectionState
from daemon.reconcile import reconcile, reconciler
from daemon.reconcile_combos import LEGS_MISMATCH, NOT_ADOPTABLE, combo_groups, leg_problems, units_filled
from daemon.store import Store
from market.clock import EXCHANGE_TZ
from market.types import BrokerPosition, Fill, OpenOrder, OptionContract, OrderRequest, OrderStatus
from tests.broker.test_ib_support import connected, gateway, order
from tests.daemon.test_reconcile import _Daemon  # live fills applied to the store, as the shell journals them
from tests.broker.test_ib_combos import CONDOR, STRADDLE, combo, quote_legs

PROFILE, PREFIX = "0dte", "tradingd"
D = Decimal
AT = datetime(2030, 1, 2, 10, 0, tzinfo=EXCHANGE_TZ)
CALL, PUT = STRADDLE[0].contract, STRADDLE[1].contract


def fill(exec_id: str, order_id: int, contract: OptionContract, side: str, qty: int, ref: str = "tradingd:0dte:c:1") -> Fill:
    return Fill(exec_id, order_id, ref, contract, side, qty, D("2.5"), AT)  # type: ignore[arg-type]


def held(*pairs: tuple[OptionContract, int]) -> list[BrokerPosition]:
    return [BrokerPosition(c, q, D("2.5")) for c, q in pairs]


# ----------------------------------------------------------------- pure


def test_units_filled_counts_whole_combo_units_not_contracts():
    straddle = [fill("a", 1, CALL, "BUY", 3), fill("b", 1, PUT, "BUY", 3)]
    assert units_filled(straddle) == 3  # six contracts are three straddles
    assert units_filled([fill("a", 1, CALL, "BUY", 2), fill("b", 1, PUT, "BUY", 2), fill("c", 1, CALL, "BUY", 1)]) == 2
    ratio = {CALL.key: (1, 1), PUT.key: (1, 2)}
    assert units_filled([fill("a", 1, CALL, "BUY", 2), fill("b", 1, PUT, "BUY", 3)], ratio) == 1
    assert units_filled([fill("a", 1, CALL, "BUY", 2)], ratio) == 0  # one leg alone is no unit
    assert units_filled([fill("a", 2, CALL, "SELL", 4)]) == 4  # a single option: contracts


def test_combo_groups_join_an_entry_and_its_exit_and_read_open_bag_orders():
    fills = [fill("a", 1, CALL, "BUY", 2), fill("b", 1, PUT, "BUY", 2),
             fill("c", 2, CALL, "SELL", 1, "tradingd:0dte:x:1"), fill("d", 2, PUT, "SELL", 1, "tradingd:0dte:x:1"),
             fill("e", 3, CALL, "BUY", 1, "tradingd:0dte:single:1")]
    [group] = combo_groups([], fills)
    assert group.order_refs == ("tradingd:0dte:c:1", "tradingd:0dte:x:1")
    assert dict(group.legs) == {CALL.key: (1, 1), PUT.key: (1, 1)}
    working = OpenOrder(OrderRequest(9, "tradingd:0dte:ic:1", CONDOR[0].contract, "BUY", 2, limit_price=D("-1.2"),
                                     legs=CONDOR), OrderStatus.SUBMITTED, 0)
    [condor] = combo_groups([working], [])
    assert dict(condor.legs) == {leg.contract.key: (1 if leg.side == "BUY" else -1, 1) for leg in CONDOR}


def test_leg_problems_block_a_missing_or_unbalanced_leg_and_never_half_adopt_a_condor():
    [straddle] = combo_groups([], [fill("a", 1, CALL, "BUY", 2), fill("b", 1, PUT, "BUY", 2)])
    assert leg_problems([straddle], held((CALL, 2), (PUT, 2)), {}) == []  # whole: adopted leg by leg
    assert leg_problems([straddle], held((CALL, -1), (PUT, -1)), {CALL.key: -1}) == []  # reversed: whole too
    assert leg_problems([straddle], [], {}) == []  # closed
    [missing] = leg_problems([straddle], held((CALL, 2)), {CALL.key: 2, PUT.key: 2})
    assert (missing.reason, missing.underlying, missing.broker_legs) == (LEGS_MISMATCH, "SPY", ((CALL.key, 2), (PUT.key, 0)))
    [unbalanced] = leg_problems([straddle], held((CALL, 2), (PUT, 1)), {})
    assert unbalanced.reason == LEGS_MISMATCH
    working = OpenOrder(OrderRequest(9, "tradingd:0dte:ic:1", CONDOR[0].contract, "SELL", 1, limit_price=D("1.1"),
                                     legs=CONDOR), OrderStatus.SUBMITTED, 0)
    condor = combo_groups([working], [])
    whole = held(*((leg.contract, 2 if leg.side == "BUY" else -2) for leg in CONDOR))
    [unknown] = leg_problems(condor, whole, {})
    assert unknown.reason == NOT_ADOPTABLE  # the store holds long contracts only: a condor is never half-adopted
    assert leg_problems(condor, whole, {CONDOR[1].contract.key: 2}) == []  # known to the store: whole, fine


# ----------------------------------------------------------------- over the fake gateway


async def test_a_reconnect_mid_combo_reconciles_both_legs_exactly_once(store: Store):
    async with gateway() as gw, connected(gw, start=False) as (broker, _):
        quote_legs(gw)
        engine = _Daemon(store)
        broker.set_listener(engine)
        reports = []
        broker.set_reconciler(reconciler(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now,
                                         on_report=reports.append))
        await broker.start()
        entry = combo(5, STRADDLE, qty=2, limit="5.10", ref="tradingd:0dte:straddle-1:1")
        await store.write_intent(entry, broker.clock.now())
        gw.drop_mid_combo = True  # the first leg's execDetails arrives, then the socket is cut
        await broker.place(entry)
        await engine.wait_for(lambda: len(reports) == 2 and broker.state is ConnectionState.READY, timeout=10)
        await engine.settle()

        after = reports[1]
        legs = {e.exec_id for e in gw.executions if e.contract.sec_type == "OPT"}
        assert len(legs) == 2 and len({f.exec_id for f in engine.fills}) < 2  # a leg's fill was lost live
        stored = {f.exec_id: (f.contract_key, f.quantity) for f in await store.list_fills(limit=100)}
        assert set(stored) == legs  # both legs, each once
        assert sorted(stored.values()) == [(CALL.key, 2), (PUT.key, 2)]
        assert after.kind == "reconnect" and not after.combo_mismatches and not after.unknown_positions
        [intent] = await store.intents_by_ref("tradingd:0dte:straddle-1:1")
        [recorded] = [o for o in await store.list_orders() if o.order_id == 5]
        assert (recorded.status, recorded.filled, recorded.remaining) == ("Filled", 2, 0)  # units, not 4 contracts
        again = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now(), kind="reconnect")
        assert again.fills_applied == () and not again.combo_mismatches


async def test_a_combo_leg_closed_outside_the_daemon_blocks_the_underlying(store: Store):
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        await broker.place(combo(7, STRADDLE, qty=2, limit="5.10", ref="tradingd:0dte:straddle-2:1"))
        await rec.wait_for(lambda: len(rec.fills) == 2)
        # someone sells the put by hand in TWS: the combo has lost a leg
        await broker.place(order(8, qty=2, side="SELL", limit="2.40", contract=PUT, ref="manual"))
        await rec.wait_for(lambda: any(f.order_id == 8 for f in rec.fills))
        report = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now())
        [mismatch] = report.combo_mismatches
        assert (mismatch.reason, mismatch.order_refs) == (LEGS_MISMATCH, ("tradingd:0dte:straddle-2:1",))
        assert dict(mismatch.broker_legs) == {CALL.key: 2, PUT.key: 0}
        assert report.blocked == ("SPY",) and not report.clean and not report.adopted
        [blocked] = await store.blocked_underlyings()
        assert (blocked.underlying, blocked.reason) == ("SPY", LEGS_MISMATCH)


async def test_a_whole_straddle_unknown_to_the_store_is_adopted_and_a_condor_is_blocked(store: Store):
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        await broker.place(combo(11, STRADDLE, qty=1, limit="5.10", ref="tradingd:0dte:straddle-3:1"))
        await broker.place(combo(12, CONDOR, qty=1, limit="-1.20", ref="tradingd:0dte:condor-3:1"))
        await rec.wait_for(lambda: len(rec.fills) == 6)
        report = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now())
        assert sorted(a.contract_key for a in report.adopted) == sorted([CALL.key, PUT.key])
        [condor] = report.combo_mismatches
        assert condor.reason == NOT_ADOPTABLE and condor.order_refs == ("tradingd:0dte:condor-3:1",)
        assert report.blocked == ("SPY",) and not report.unknown_positions


def _placed(gw, order_ref: str) -> int:
    """placeOrder frames carrying `order_ref` that reached the gateway (every client, every connection)."""
    return sum(1 for _, fields in gw.received if fields and fields[0] == "3" and order_ref in fields)


async def test_a_combo_killed_between_intent_and_place_order_is_sent_at_most_once(open_store):
    """The daemon dies (its broker and store dropped, nothing cleaned up) once after writing a combo's intent and
    before placeOrder, once right after placeOrder; a new daemon on the same database reconciles and resends
    neither. In-process restarts: `tradingd run` cannot trade combos until the core side (room multileg) lands."""
    async with gateway() as gw:
        quote_legs(gw)
        gw.auto_fill = False
        first = open_store()
        await first.upgrade()
        unsent = combo(20, STRADDLE, qty=1, limit="5.00", ref="tradingd:0dte:straddle-k1:1")
        sent = combo(21, CONDOR, qty=1, limit="-1.40", ref="tradingd:0dte:condor-k2:1")
        async with connected(gw) as (broker, rec):
            await first.write_intent(unsent, broker.clock.now())  # killed here: placeOrder never called
            await first.write_intent(sent, broker.clock.now())
            await first.mark_intent_sent(21, broker.clock.now())
            await broker.place(sent)  # killed here: the gateway has it, the daemon never heard back
            await rec.wait_for(lambda: 21 in gw.orders)
        await first.close()

        second = open_store()
        async with connected(gw) as (broker, _):
            report = await reconcile(broker, second, profile=PROFILE, prefix=PREFIX, now=broker.clock.now())
            assert report.never_sent == (20,) and report.matched_orders == (21,)
            [working] = await broker.open_orders()
            assert working.request.legs == CONDOR and working.request.order_ref == sent.order_ref
            pending = {i.order_id for i in await second.load_pending_intents()}
            assert pending == {21}  # 20 is done (never sent, not resent); 21 is working at the broker
        await second.close()
        assert _placed(gw, sent.order_ref) == 1 and _placed(gw, unsent.order_ref) == 0
        assert sorted(gw.orders) == [21]


def test_a_stored_combo_is_held_leg_by_leg():
    from daemon.reconcile_combos import stored_legs
    from market.types import combo_key
    assert stored_legs(CALL.key, 3) == [(CALL.key, 3)]
    assert stored_legs(combo_key(CONDOR), 2) == [(leg.contract.key, 2 if leg.side == "BUY" else -2) for leg in CONDOR]


async def test_a_combo_the_store_holds_reconciles_clean_after_a_restart(store: Store):
    """The store keeps a combo as one position under the combo's key; IB holds its four legs: the same thing."""
    from market.combo import Combo
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        entry = combo(30, CONDOR, qty=2, limit="-1.20", ref="tradingd:0dte:condor-r:1")
        position = await store.open_position(CONDOR[0].contract, broker.clock.now(), quantity=2, entry_price=D("3.80"))
        await store.record_combo(position.id, Combo("neutral", "iron_condor", CONDOR, D(5)).to_record())
        await store.write_intent(entry, broker.clock.now(), position_id=position.id)
        await broker.place(entry)
        await rec.wait_for(lambda: len(rec.fills) == 4)
        report = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now())
        assert not report.unknown_positions and not report.mismatches and not report.combo_mismatches
        assert report.blocked == () and report.adopted == ()
        # a wing sold by hand: the per-leg comparison and the combo's shape both see it
        await broker.place(order(31, qty=2, side="SELL", limit="0.90", contract=CONDOR[1].contract, ref="manual"))
        await rec.wait_for(lambda: any(f.order_id == 31 for f in rec.fills))
        after = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now())
        assert [m.contract_key for m in after.mismatches] == [CONDOR[1].contract.key]
        assert [c.reason for c in after.combo_mismatches] == [LEGS_MISMATCH] and after.blocked == ("SPY",)
