"""SPEC §9 in the store: a combo position, its legs and its leg executions round-trip, and a core
restored from the store holds the same combo (migration multileg_0001)."""

from decimal import Decimal as D

from config.loader import load_settings
from daemon.replay import Replay, StoreSink
from market.combo import combo_key
from tests.daemon.multileg_harness import at, run_session, signal


async def test_a_combo_position_round_trips_through_the_store_and_restores(store):
    sink = StoreSink(store)
    sink.claim("multileg-round-trip")
    replay, _ = run_session([signal("n1", "neutral", at(9, 35), confidence=0.65)], lambda t: D("450"),
                            end=at(10, 0), sink=sink)
    assert sink.flush()
    assert sink.journal.rejected == 0 and sink.journal.failures == 0  # every record written (CoreSink)
    held = next(iter(replay.core.book))
    assert held.combo is not None and held.combo.structure == "iron_condor"

    snapshot = await store.load_snapshot()
    [position] = [p for p in snapshot.open_positions if p.id == held.id]
    assert position.contract_key == combo_key(held.combo.legs) == held.key
    assert position.open_qty == held.open_qty > 0
    assert position.entry_price == held.record.entry_price  # value space: width - credit, the max loss
    assert position.entry_price < held.combo.value_offset
    assert snapshot.combos[held.id]["legs"] == held.combo.to_record()["legs"]

    fills = await store.list_fills(limit=1000)
    units = [f for f in fills if f.position_id == held.id]
    assert units and all(f.contract_key == held.key for f in units)
    assert sum(f.quantity for f in units) == held.open_qty
    with store.transaction() as session:
        from daemon.store.ops_combos import leg_fills
        legs = leg_fills(session, store.profile, held.id)
    by_leg: dict[str, int] = {}
    for leg in legs:
        by_leg[leg["contract"]] = by_leg.get(leg["contract"], 0) + leg["quantity"]
    assert set(by_leg) == {leg.contract.key for leg in held.combo.legs}
    assert set(by_leg.values()) == {held.open_qty}

    restored = Replay(load_settings("0dte"), at(10, 1), log_effects=False).core
    restored.restore(positions=snapshot.open_positions, exit_states=snapshot.exit_states, combos=snapshot.combos)
    again = restored.book.get(held.id)
    assert again is not None and again.combo == held.combo and again.contract == held.combo.contract
    assert again.record.entry_price == held.record.entry_price and again.open_qty == held.open_qty


async def test_after_a_restart_a_half_filled_combo_order_counts_its_units_once(store):
    """Leg executions stored before a restart are folded again at start-up: a leg reported again
    changes nothing, and the next leg completes exactly the units it completes."""
    from datetime import timedelta

    from market.types import Fill

    sink = StoreSink(store)
    sink.claim("multileg-restart")
    replay, _ = run_session([signal("v1", "volatility", at(10, 0), confidence=0.65)], lambda t: D("450"),
                            end=at(10, 2), sink=sink)
    sink.flush()
    held = next(iter(replay.core.book))
    snapshot = await store.load_snapshot()
    assert {pid for pid, _ in snapshot.combo_leg_fills} == {held.id}
    assert {f.exec_id for _, f in snapshot.combo_leg_fills} <= await store.applied_exec_ids()

    core = Replay(load_settings("0dte"), at(10, 3), log_effects=False).core
    core.restore(positions=snapshot.open_positions, exit_states=snapshot.exit_states, combos=snapshot.combos,
                 combo_leg_fills=snapshot.combo_leg_fills, exec_ids=sorted(await store.applied_exec_ids()))
    again = core.book.get(held.id)
    assert again.open_qty == held.open_qty
    _, last = snapshot.combo_leg_fills[-1]
    core.on_fill(last)  # the broker reports an execution again after the reconnect: applied once
    assert core.book.get(held.id).open_qty == held.open_qty
    # a new order of the same combo: the call leg first (no unit), then the put (one unit)
    order_id = 9001
    core.orders.bind(order_id, held.id)
    call, put = (leg.contract for leg in held.combo.legs)
    when = at(10, 4)
    core.on_fill(Fill("X-1", order_id, "tradingd:0dte:v1:99", call, "BUY", 1, D("1.00"), when))
    assert core.book.get(held.id).open_qty == held.open_qty
    core.on_fill(Fill("X-2", order_id, "tradingd:0dte:v1:99", put, "BUY", 1, D("1.10"), when + timedelta(seconds=1)))
    assert core.book.get(held.id).open_qty == held.open_qty + 1
