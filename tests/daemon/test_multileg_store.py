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
    sink.flush()
    assert sink.failed == 0
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
