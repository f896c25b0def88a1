"""SPEC §9 lifecycles on the sim, through the replay loop (the core, Working, SimVenue, the option
model): signal -> sized -> combo sliced -> filled -> exits -> closed, for each family."""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal as D

import pytest

from tests.daemon.multileg_harness import DAY, at, run_session, signal

SPY, QQQ = D("450"), D("380")


@pytest.fixture(scope="module")
def session0():
    """One 0dte session, flat market: a condor (09:35), a straddle (10:00), a directional call (10:10)."""
    sigs = [signal("n1", "neutral", at(9, 35), confidence=0.65),
            signal("v1", "volatility", at(10, 0), confidence=0.65),
            signal("d1", "directional", at(10, 10), underlying="QQQ", confidence=0.65)]
    return run_session(sigs, lambda t: SPY, others={"QQQ": lambda t: QQQ})


def _decision(sink, sid):
    return next(p for p in sink.ops("record_decision") if p["breakdown"].get("signal_id") == sid)


def _intents(sink, sid):
    return [p["request"] for p in sink.ops("write_intent") if f":{sid}:" in p["request"].order_ref]


def _exits(sink, position_id):
    return [(p["rule"], p["kind"], p["quantity"]) for p in sink.ops("record_exit_event")
            if p["position_id"] == position_id and p["kind"] != "alert"]


def _position_of(sink, sid):
    return next(p["position_id"] for p in sink.ops("open_position") if p["signal_id"] == sid)


@pytest.mark.parametrize("sid, structure", [("n1", "iron_condor"), ("v1", "straddle"), ("d1", None)])
def test_each_family_is_sized_by_max_loss_within_the_bets(session0, sid, structure):
    _, sink = session0
    d = _decision(sink, sid)
    assert d["accepted"], d["breakdown"].get("message")
    assert D(12000) <= d["notional"] <= D(24000)  # 0dte min / max bet
    combo = d["breakdown"].get("combo")
    assert (combo or {}).get("structure") == structure
    if combo:
        per_unit = D(combo["max_loss_per_unit"])
        assert d["notional"] == d["contracts"] * per_unit


def test_condor_goes_out_as_sliced_bag_children_at_a_credit(session0):
    _, sink = session0
    entries = [r for r in _intents(sink, "n1")]
    assert len(entries) >= 2 and all(r.quantity <= 10 for r in entries)  # sliced (SPEC §4.2)
    assert sum(r.quantity for r in entries) == _decision(sink, "n1")["contracts"]
    for r in entries:
        assert r.side == "BUY" and len(r.legs) == 4 and r.contract == r.legs[0].contract
        assert r.limit_price < 0  # a credit: the BAG's net limit is negative
        assert [leg.side for leg in r.legs] == ["SELL", "BUY", "SELL", "BUY"]


def test_straddle_children_are_debit_bag_orders(session0):
    _, sink = session0
    entries = _intents(sink, "v1")
    assert len(entries) >= 2 and all(len(r.legs) == 2 and r.limit_price > 0 for r in entries)


def test_combo_fills_are_leg_consistent(session0):
    replay, _ = session0
    per_order: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    legs_of: dict[int, int] = {}
    for fill in replay.venue.executions():
        if ":n1:" in fill.order_ref or ":v1:" in fill.order_ref or ":x" in fill.order_ref:
            per_order[fill.order_id][fill.contract.key] += fill.quantity
    for order_id, by_leg in per_order.items():
        legs_of[order_id] = len(by_leg)
        assert len(set(by_leg.values())) == 1, by_leg  # never one leg without the others
    assert {2, 4} <= set(legs_of.values())


def test_condor_exits_on_the_credit_and_closes(session0):
    replay, sink = session0
    pid = _position_of(sink, "n1")
    exits = _exits(sink, pid)
    assert exits[-1][0] == "credit_take_profit" and exits[-1][1] == "close"
    assert sum(q for _, _, q in exits) == _decision(sink, "n1")["contracts"]
    assert any(kind == "partial_close" for _, kind, _ in exits)  # the 0dte tiers ran on the combo's value
    exit_orders = [p["request"] for p in sink.ops("write_intent") if p["position_id"] == pid
                   and ":x" in p["request"].order_ref]
    assert exit_orders and all(r.side == "SELL" and len(r.legs) == 4 for r in exit_orders)


def test_straddle_daemon_side_stop_follows_its_partial_exit(session0):
    """The combo's protective stop is the exit desk's rule on the combined value: after the loss
    level closed half, the stop closes exactly what is left, all legs together; no STP ever rests."""
    replay, sink = session0
    pid = _position_of(sink, "v1")
    units = _decision(sink, "v1")["contracts"]
    exits = _exits(sink, pid)
    assert exits[0][:2] == ("loss_close_half", "partial_close")
    half = exits[0][2]
    assert exits[-1] == ("hard_stop", "close", units - half)
    assert not [p for p in sink.ops("write_intent") if p["position_id"] == pid and p["request"].order_type == "STP"]


def test_every_position_closed_and_the_venue_is_flat(session0):
    replay, sink = session0
    assert len(replay.core.book) == 0
    assert replay.venue.positions() == []
    assert {p["breakdown"]["signal_id"] for p in sink.ops("record_decision") if p["accepted"]} == {"n1", "v1", "d1"}


def test_an_unfillable_wing_refuses_the_whole_trade_liquidity():
    """IWM at 10:05: the call wing two strikes beyond the 0.20-delta short shows no bid."""
    replay, sink = run_session([signal("n2", "neutral", at(10, 5), underlying="IWM")], lambda t: D("200"),
                               underlying="IWM", end=at(10, 30))
    d = _decision(sink, "n2")
    assert not d["accepted"] and d["reason"] == "liquidity"
    assert "no_bid" in " ".join(d["breakdown"]["combo"]["tried"].values())
    assert not sink.ops("open_position") and not sink.ops("write_intent")
    assert replay.venue.positions() == []


def test_condor_over_a_week_7dte_takes_profit_on_the_credit():
    replay, sink = run_session([signal("n7", "neutral", at(10, 0), profile="7dte", underlying="AAPL")],
                               lambda t: D("180"), profile="7dte", underlying="AAPL",
                               end=at(16, 0, day=DAY + timedelta(days=4)), coarse_after_s=3600)
    d = _decision(sink, "n7")
    assert d["accepted"] and D(33000) <= d["notional"] <= D(66000)
    exits = _exits(sink, _position_of(sink, "n7"))
    assert ("credit_take_profit", "close") == exits[-1][:2]
    assert sum(q for _, _, q in exits) == d["contracts"]
    assert replay.venue.positions() == [] and len(replay.core.book) == 0


def test_a_combo_the_venue_refuses_leaves_no_leg_and_no_position(monkeypatch):
    """The broker refuses the BAG (as IB does an unsupported combo): the entry ends unfilled, the
    position is closed `entry_unfilled`, nothing of any leg was bought, and the legs are unsubscribed."""
    from broker.base import BrokerError
    from broker.sim_venue import SimVenue

    place = SimVenue.place

    def refusing(self, cmd, now):
        request = getattr(cmd, "request", cmd)
        if request.legs:
            raise BrokerError("combo_refused", "the venue takes no combo orders")
        return place(self, cmd, now)

    monkeypatch.setattr(SimVenue, "place", refusing)
    replay, sink = run_session([signal("v9", "volatility", at(10, 0), confidence=0.65)], lambda t: SPY,
                               end=at(10, 30))
    assert _decision(sink, "v9")["accepted"]
    [closed] = sink.ops("close_position")
    assert closed["reason"] == "entry_unfilled"
    assert replay.venue.positions() == [] and replay.venue.executions() == []
    assert len(replay.core.book) == 0 and not sink.ops("apply_fill")
    assert not replay.model.tracked()  # the legs' quotes were given up


def test_the_same_combo_session_gives_the_same_records_byte_for_byte(session0):
    """SPEC §6.4 with combos: the same inputs, the same effects (leg fills folded the same way)."""
    _, first = session0
    sigs = [signal("n1", "neutral", at(9, 35), confidence=0.65),
            signal("v1", "volatility", at(10, 0), confidence=0.65),
            signal("d1", "directional", at(10, 10), underlying="QQQ", confidence=0.65)]
    _, again = run_session(sigs, lambda t: SPY, others={"QQQ": lambda t: QQQ})
    assert repr(again.records) == repr(first.records)


def test_positions_view_lists_a_combos_legs():
    replay, _ = run_session([signal("v2", "volatility", at(10, 0), confidence=0.65)], lambda t: SPY, end=at(10, 5))
    [row] = replay.core.positions()
    assert row["contract"].count("|") == 1 and [leg["side"] for leg in row["combo"]["legs"]] == ["BUY", "BUY"]


def test_a_scale_in_adds_whole_units_to_a_straddle_in_profit():
    """SPEC §2.6 on a combo: up to 50% of the minimum bet (0dte) in combo units, one more BAG parent;
    the exits then close the whole position, scale-in included."""
    add = signal("v1s", "volatility", at(10, 6), confidence=0.65)
    add.raw.update({"action": "scale_in", "position_id": "1"})

    def rally(t):
        minutes = (t - at(10, 0)).total_seconds() / 60
        return SPY + (D(str(round(minutes * 0.15, 2))) if minutes > 0 else 0)

    replay, sink = run_session([signal("v1", "volatility", at(10, 0), confidence=0.65), add], rally, end=at(11, 0))
    first, more = _decision(sink, "v1"), _decision(sink, "v1s")
    assert more["accepted"] and 0 < more["notional"] <= D(6000)  # half the 12,000 minimum bet
    scale = _intents(sink, "v1s")
    assert scale and all(len(r.legs) == 2 for r in scale)
    exits = _exits(sink, 1)
    assert sum(q for _, _, q in exits) == first["contracts"] + more["contracts"]
    assert replay.venue.positions() == [] and len(replay.core.book) == 0


def test_held_combos_count_in_the_books_greeks_with_their_combined_legs():
    """The greek limits see a held combo as its legs combined (Σ side x ratio x leg greek), so the
    next entry is checked against the book with it."""
    replay, sink = run_session([signal("n3", "neutral", at(9, 35), confidence=0.65),
                                signal("v3", "volatility", at(9, 40), confidence=0.65)], lambda t: SPY,
                               end=at(9, 45))
    core = replay.core
    expected = {"delta": D(0), "gamma": D(0)}
    for p in core.book:
        legs = [core.quotes.get(leg.contract.key) for leg in p.combo.legs]
        for name in expected:
            per_unit = sum((getattr(q, name) * (1 if leg.side == "BUY" else -1) for leg, q in zip(p.combo.legs, legs)),
                           D(0))
            expected[name] += per_unit * 100 * p.open_qty
    assert len(core.book) == 2 and core.book.greeks() == expected
    assert expected["gamma"] != 0
    second = _decision(sink, "v3")["breakdown"]
    greeks_check = next(c for c in second["checks"] if c["name"] == "greeks_limit")
    assert greeks_check["status"] in ("pass", "fail") and "gamma" in greeks_check["detail"]


def test_the_books_realized_pnl_is_the_venues_cash_change(session0):
    """Value-space accounting is exact: with everything closed, the P&L the core realized on combo
    units (and the single option) is what the venue's cash moved by, leg by leg, commissions included."""
    replay, _ = session0
    start = replay.settings.capital.account_size
    assert replay.venue.positions() == []
    assert replay.core.realized_total == replay.venue.cash - start
    assert replay.core.realized_total != 0


def test_with_multileg_disabled_a_volatility_signal_trades_one_option_as_before():
    from tests.risk.builders import settings_with

    replay, sink = run_session([signal("v5", "volatility", at(10, 0), confidence=0.65)], lambda t: SPY,
                               end=at(10, 5), settings=settings_with("0dte", **{"multileg.enabled": False}))
    d = _decision(sink, "v5")
    assert d["accepted"] and "combo" not in d["breakdown"]
    intents = [p["request"] for p in sink.ops("write_intent")]
    assert intents and all(not r.legs and r.contract.right == "C" for r in intents)  # bullish: a call
