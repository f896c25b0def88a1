"""`Working` driven synchronously (SPEC §4.2, §6.4): the executor's cases on virtual time with no asyncio,
plus determinism, the child sizing of §4.2, pacing, refusals and snapshots."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from broker.order_ref import parse_order_ref
from broker.listings import round_to_tick
from broker.parent import ExecutionError, ExecutionStatus, ParentOrder, child_cap, child_limit
from broker.working import Cancel, Modify, Place, SnapshotWanted, Working
from market.types import Fill, OrderRequest, OrderStatus, OrderUpdate
from tests.broker.helpers import T0, quote, settings
from tests.broker.venue_loop import C, KEY, VenueLoop


def parent(qty=40, side="BUY", kind="entry", source="sig-1", min_quantity=0):
    return ParentOrder("0dte", source, C, side, qty, kind, min_quantity=min_quantity)


class _Book:
    def __init__(self):
        self.quotes = {}

    def put(self, q):
        self.quotes[q.key] = q

    def get(self, key):
        return self.quotes.get(key)


def bare(bid="2.90", ask="3.10", size=50, **overrides):
    """A Working over a plain quote dict holding one quote of the option at T0."""
    s = settings("0dte", **overrides)
    book = _Book()
    book.put(quote(KEY, bid, ask, at=T0, size=size))
    return Working(s.execution, quotes=book, max_quote_age_s=s.liquidity.max_quote_age_s), book


@pytest.mark.parametrize("shown, expected", [(50, [10, 10, 10, 10]), (7, [7, 7, 7, 7, 7, 5])])
def test_a_12000_parent_at_3_is_sliced_into_capped_children_spaced_apart(shown, expected):
    h = VenueLoop(rows=[(0, "2.95", "3.05", shown)])
    h.advance(0.5)
    result = h.run(parent(40))  # 40 × 3.00 × 100 = 12,000 > slice_threshold 5,000
    assert [c.quantity for c in result.children] == expected
    sends = [c.sent_at for c in result.children]
    assert all(b - a >= timedelta(seconds=3) for a, b in zip(sends, sends[1:]))
    assert result.status is ExecutionStatus.FILLED and not result.underfilled
    assert (result.requested, result.filled, result.avg_price) == (40, 40, D("3.05"))
    assert result.arrival_mid == D("3.00") and result.slippage_vs_mid == D("0.05")
    assert result.commission == D("26.00")
    assert h.venue.positions()[0].quantity == 40


def test_a_parent_below_the_threshold_goes_as_one_order():
    h = VenueLoop(rows=[(0, "2.95", "3.05", 5)])
    h.advance(0.5)
    result = h.run(parent(16))  # 4,800 of notional
    assert [c.quantity for c in result.children] == [16] and result.filled == 16


def test_children_are_sized_so_the_parent_completes_inside_its_timeout():
    # SPEC §4.2: 400 contracts, 60 s timeout, 3 s apart -> max(10, ceil(400 / 20)) = 20 per child
    cfg = settings("0dte").execution
    assert (cfg.parent_timeout_s, cfg.child_interval_s, cfg.max_child_contracts) == (60, 3, 10)
    assert child_cap(400, cfg) == 20 and child_cap(40, cfg) == 10 and child_cap(401, cfg) == 21
    # each child reaches the ask at its second reprice (1 s apart here), inside its 3 s slot
    h = VenueLoop(rows=[(0, "2.95", "3.05", 50)],
                  **{"broker.sim.starting_cash": 1_000_000, "execution.reprice_s": 1})
    h.advance(0.5)
    result = h.run(parent(400))
    assert [c.quantity for c in result.children] == [20] * 20
    assert result.status is ExecutionStatus.FILLED and result.filled == 400
    assert result.children[-1].sent_at - result.children[0].sent_at == timedelta(seconds=57)


def test_a_child_is_never_larger_than_the_size_shown_at_the_touch():
    h = VenueLoop(rows=[(0, "2.95", "3.05", 12)], **{"broker.sim.starting_cash": 1_000_000})
    h.advance(0.5)
    result = h.run(parent(400))
    assert {c.quantity for c in result.children} == {12}
    assert result.status is ExecutionStatus.TIMED_OUT and result.underfilled


def test_an_entry_ending_below_the_minimum_bet_is_kept_and_says_so():
    h = VenueLoop(rows=[(0, "2.95", "3.05", 5), (5, "3.30", "3.60", 5)])
    h.advance(0.5)
    result = h.run(parent(40, min_quantity=20))
    assert result.status is ExecutionStatus.TIMED_OUT and result.filled == 5
    assert result.underfilled and result.below_minimum
    assert h.venue.positions()[0].quantity == 5  # kept, not unwound
    h2 = VenueLoop(rows=[(0, "2.95", "3.05", 5), (5, "3.30", "3.60", 5)])
    notes = []
    h2.working._log_to = lambda level, event, fields: notes.append((level, event, fields.get("below_minimum")))
    h2.advance(0.5)
    assert not h2.run(parent(40, min_quantity=5)).below_minimum
    assert ("debug", "parent_done", False) in notes
    h3 = VenueLoop(rows=[(0, "2.95", "3.05", 5), (5, "3.30", "3.60", 5)])
    h3.working._log_to = lambda level, event, fields: notes.append((level, event, fields.get("below_minimum")))
    h3.advance(0.5)
    assert h3.run(parent(40, min_quantity=6)).below_minimum
    assert notes[-1] == ("warning", "parent_done", True)  # logged as a warning (SPEC §4.2)


def test_repricing_walks_a_quarter_spread_per_interval_and_never_past_the_band():
    h = VenueLoop(rows=[(0, "2.90", "3.10", 50)])  # mid 3.00, spread 0.20; band 3.09 is short of the ask
    h.advance(0.5)
    result = h.run(parent(40))
    [child] = result.children
    steps = [(t - child.sent_at, price) for t, price in child.limits]
    assert steps == [(timedelta(0), D("3.00")), (timedelta(seconds=2), D("3.05")), (timedelta(seconds=4), D("3.09"))]
    assert len(h.sent("modify")) == 2  # nothing is resent once the band holds
    assert result.status is ExecutionStatus.TIMED_OUT and result.underfilled and result.filled == 0


def test_a_parent_that_cannot_fill_times_out_keeping_what_filled():
    h = VenueLoop(rows=[(0, "2.95", "3.05", 5), (5, "3.30", "3.60", 5)])
    h.advance(0.5)
    start = h.now
    result = h.run(parent(40))
    assert result.status is ExecutionStatus.TIMED_OUT and result.reason == "parent_timeout"
    assert result.underfilled and (result.filled, result.avg_price) == (5, D("3.05"))
    last = result.children[-1]
    assert last.status is OrderStatus.CANCELLED and last.filled == 0
    assert h.sent("cancel") == [(last.order_id, start + timedelta(seconds=60))]
    assert h.now - start < timedelta(seconds=61)
    assert h.venue.positions()[0].quantity == 5 and h.venue.open_orders() == []


def test_an_exit_crosses_the_spread_after_the_band_and_completes():
    h = VenueLoop(rows=[(0, "2.80", "3.20", 50)], **{"execution.parent_timeout_s": 5})
    h.advance(0.5)
    h.buy_position(40)
    start = h.now
    result = h.run(parent(40, side="SELL", kind="exit", source="exit-9"))
    assert result.status is ExecutionStatus.FILLED and result.filled == 40 and not result.underfilled
    first = result.children[0]
    assert [p for _, p in first.limits] == [D("3.00"), D("2.91"), D("2.80")]  # mid, held at the band, cross
    assert result.avg_price == D("2.80") and result.slippage_vs_mid == D("0.20")
    assert h.now - start > timedelta(seconds=5)  # longer than an entry may take: exits never give up
    assert h.venue.positions() == []


def test_an_exit_on_a_stale_quote_asks_for_a_snapshot_and_crosses_at_once():
    h = VenueLoop(rows=[(0, "2.80", "3.20", 50)])
    h.advance(0.5)
    h.buy_position(10)
    h.feed_alive = False  # the feed dies: the last quote goes stale
    h.advance(15)
    result = h.run(parent(10, side="SELL", kind="exit", source="exit-1"))
    assert [k for k, _, _ in h.log][:2] == ["snapshot", "place"]
    assert result.filled == 10 and [p for _, p in result.children[0].limits] == [D("2.80")]


def test_a_stale_exit_waits_for_the_snapshot_answer_then_crosses():
    w, book = bare("2.80", "3.20")
    now = T0 + timedelta(seconds=30)
    w.start(parent(10, side="SELL", kind="exit", source="exit-2"), now, iter(range(500, 600)).__next__)
    assert w.take_commands() == [SnapshotWanted(KEY)]
    w.on_quote(KEY, now)  # the old quote again: nothing
    assert w.take_commands() == []
    later = now + timedelta(milliseconds=300)
    w.on_snapshot(KEY, quote(KEY, "2.70", "3.10", at=later), later)
    [place] = w.take_commands()
    assert isinstance(place, Place) and place.request.limit_price == D("2.70") and place.request.quantity == 10
    # a failed snapshot: the run asks again at its next retry, nothing else happens
    w2, _ = bare("2.80", "3.20")
    w2.start(parent(10, side="SELL", kind="exit", source="exit-3"), now, iter(range(700, 800)).__next__)
    assert w2.take_commands() == [SnapshotWanted(KEY)]
    w2.on_snapshot(KEY, None, now)
    assert w2.take_commands() == [] and w2.next_deadline() == now + timedelta(seconds=2)
    w2.on_timer(now + timedelta(seconds=2))
    assert w2.take_commands() == [SnapshotWanted(KEY)]


def test_an_entry_never_trades_on_a_stale_quote():
    h = VenueLoop(rows=[(0, "2.95", "3.05", 50)])
    h.advance(0.5)
    h.feed_alive = False
    h.advance(15)
    result = h.run(parent(10))
    assert result.status is ExecutionStatus.TIMED_OUT and result.reason == "no_usable_quote"
    assert result.children == () and result.filled == 0 and h.log == []


def test_every_order_carries_the_order_ref():
    h = VenueLoop(rows=[(0, "2.95", "3.05", 10)])
    h.advance(0.5)
    result = h.run(parent(40, source="sig:with:colons"))
    refs = [parse_order_ref(cmd.request.order_ref) for _, cmd in h.commands if isinstance(cmd, (Place, Modify))]
    assert refs and all((r.profile, r.source_id) == ("0dte", "sig:with:colons") for r in refs)
    assert sorted({r.n for r in refs}) == [1, 2, 3, 4] and result.parent_ref == "tradingd:0dte:sig:with:colons"


def test_a_refused_place_stops_the_parent_with_the_reason():
    h = VenueLoop()
    h.advance(0.5)
    h.refuse_places = "store_unavailable"  # no durable intent, no entry
    result = h.run(parent(10))
    assert result.status is ExecutionStatus.REJECTED and result.reason == "store_unavailable"
    assert result.filled == 0 and h.venue.open_orders() == [] and len(h.sent("place")) == 1


def test_a_venue_rejection_stops_the_parent_with_its_reason():
    h = VenueLoop(rows=[(0, "299.95", "300.05", 50)])  # 40 × 300 × 100 is more than the sim's cash
    h.advance(0.5)
    result = h.run(parent(40))
    assert result.status is ExecutionStatus.REJECTED and result.reason == "insufficient_funds"


def test_pacing_never_sends_more_than_the_limit_in_any_second():
    h = VenueLoop(rows=[(0, "2.90", "3.10", 50)])  # nothing fills: every parent keeps repricing
    h.advance(0.5)
    parents = [ParentOrder("0dte", f"sig-{i}", C, "BUY", 1) for i in range(90)]
    results = h.run_all(parents, limit_s=120)
    assert len(results) == 90
    times = [t for t, cmd in h.commands]
    assert len(times) > 200
    assert all(b - a >= timedelta(seconds=1) for a, b in zip(times, times[40:]))
    assert h.working.pacer.sent == len(times)


def test_the_same_inputs_give_identical_commands():
    def one_run():
        h = VenueLoop(rows=[(0, "2.95", "3.05", 7), (7, "2.90", "3.20", 4), (20, "3.30", "3.60", 5)])
        h.advance(0.5)
        h.run_all([parent(40, source="a"), parent(25, source="b")], limit_s=120)
        return [(t, repr(c)) for t, c in h.commands], [repr(r) for r in h.results], [repr(f) for f in h.fills]

    first, second = one_run(), one_run()
    assert first == second and len(first[0]) > 10


def test_fills_count_once_and_late_statuses_never_revive_a_child():
    w, book = bare("2.95", "3.05", size=0)
    w.start(parent(4), T0, iter(range(10, 20)).__next__)
    [place] = w.take_commands()
    oid, ref = place.request.order_id, place.request.order_ref
    fill = Fill("x-1", oid, ref, C, "BUY", 2, D("3.05"), T0, D("1.00"))
    w.on_fill(fill, T0)
    w.on_fill(fill, T0)  # the same execution resent
    assert w.working_order_ids == [oid]
    w.on_update(OrderUpdate(oid, ref, OrderStatus.CANCELLED, 2, 2, D("3.05"), T0, "cancelled"), T0)
    w.on_update(OrderUpdate(oid, ref, OrderStatus.SUBMITTED, 2, 2, D("3.05"), T0), T0)  # late: ignored
    [result] = w.take_results()
    assert result.filled == 2 and result.children[0].status is OrderStatus.CANCELLED
    assert result.status is ExecutionStatus.REJECTED and result.commission == D("1.00")
    w.on_fill(Fill("x-2", oid, ref, C, "BUY", 2, D("3.05"), T0), T0)  # after the end: not ours any more
    w.on_update(OrderUpdate(999, "x", OrderStatus.FILLED, 1, 0, D(1), T0), T0)
    assert w.take_results() == [] and w.working_order_ids == [] and len(w) == 0


def test_a_parent_in_flight_cannot_start_twice_and_bad_parents_are_refused():
    w, book = bare("2.95", "3.05")
    w.start(parent(4), T0, iter(range(10, 20)).__next__)
    with pytest.raises(ExecutionError) as err:
        w.start(parent(4), T0, iter(range(30, 40)).__next__)
    assert err.value.code == "parent_in_flight"
    for bad, code in [(dict(quantity=0), "bad_quantity"), (dict(side="HOLD"), "bad_side"),
                      (dict(kind="maybe"), "bad_kind"), (dict(source_id=""), "bad_order_ref"),
                      (dict(min_quantity=-1), "bad_quantity")]:
        fields = dict(profile="0dte", source_id="s", contract=C, side="BUY", quantity=1, kind="entry") | bad
        with pytest.raises(ExecutionError) as err:
            w.start(ParentOrder(**fields), T0, iter(range(50, 60)).__next__)
        assert err.value.code == code


def test_commands_wait_for_their_token_in_order_and_a_done_childs_modify_is_dropped():
    w, book = bare(**{"execution.max_messages_per_s": 1})
    ids = iter(range(10, 99)).__next__
    for name in "abc":
        w.start(parent(4, source=name), T0, ids)
    sent = []

    def at(seconds):
        t = T0 + timedelta(seconds=seconds)
        book.put(quote(KEY, "2.90", "3.10", at=t))
        w.on_timer(t)
        got = w.take_commands()
        sent.extend((seconds, c) for c in got)
        return got

    [a] = w.take_commands()  # one token per second: b and c wait, in start order
    assert w.next_deadline() == T0 + timedelta(seconds=1)
    [b] = at(1)
    [c] = at(2)  # c's Place was queued before a's reprice at 2 s: a's Modify waits
    assert [x.request.order_ref.split(":")[2] for x in (a, b, c)] == ["a", "b", "c"]
    [modify_a] = at(3)  # b's reprice (due 3 s) queues behind a's Modify
    assert isinstance(modify_a, Modify) and modify_a.request.order_id == a.request.order_id
    t = T0 + timedelta(seconds=3.5)
    w.on_fill(Fill("e-1", b.request.order_id, b.request.order_ref, C, "BUY", 4, D("3.05"), t), t)
    assert w.take_commands() == [] and [r.filled for r in w.take_results()] == [4]
    got = at(4) + at(5) + at(6)
    assert b.request.order_id not in [x.request.order_id for x in got if isinstance(x, Modify)]
    times = [t for t, _ in sent]
    assert all(y - x >= 1 for x, y in zip(times, times[1:]))


def test_cancel_goes_out_at_the_timeout_and_an_unconfirmed_cancel_ends_the_parent():
    w, book = bare()
    w.start(parent(4), T0, iter(range(10, 20)).__next__)
    [place] = w.take_commands()
    t = T0
    while True:
        t = w.next_deadline()
        book.put(quote(KEY, "2.90", "3.10", at=t))
        w.on_timer(t)
        commands = w.take_commands()
        if any(isinstance(c, Cancel) for c in commands):
            break
    assert t == T0 + timedelta(seconds=60) and commands == [Cancel(place.request.order_id)]
    assert w.take_results() == [] and w.next_deadline() == t + timedelta(seconds=2)
    w.on_timer(t + timedelta(seconds=2))  # the venue never answered
    [result] = w.take_results()
    assert result.status is ExecutionStatus.TIMED_OUT and result.children[0].reason == "cancel_unconfirmed"
    assert w.next_deadline() is None


def test_abandon_returns_the_working_children():
    w, book = bare()
    ref = w.start(parent(4), T0, iter(range(10, 20)).__next__)
    [place] = w.take_commands()
    assert w.abandon(ref, T0) == [place.request.order_id]
    assert len(w) == 0 and w.next_deadline() is None and w.take_results() == []


def test_a_refused_modify_keeps_the_venues_price_and_the_next_reprice_tries_again():
    w, book = bare()
    w.start(parent(4), T0, iter(range(10, 20)).__next__)
    [place] = w.take_commands()
    t2 = T0 + timedelta(seconds=2)
    book.put(quote(KEY, "2.90", "3.10", at=t2))
    w.on_timer(t2)
    [modify] = w.take_commands()
    assert modify.request.limit_price == D("3.05")
    w.modify_refused(place.request.order_id, "201", t2)
    t4 = T0 + timedelta(seconds=4)
    book.put(quote(KEY, "2.90", "3.10", at=t4))
    w.on_timer(t4)
    [again] = w.take_commands()
    assert again.request.limit_price == D("3.09")
    w.abandon("tradingd:0dte:sig-1", t4)


def test_renumber_moves_a_child_and_its_queued_commands_to_the_real_id():
    w, book = bare(**{"execution.max_messages_per_s": 1})
    w.start(parent(4, source="a"), T0, iter(range(-1, -10, -1)).__next__)
    w.start(parent(4, source="b"), T0, iter(range(-20, -30, -1)).__next__)
    [place_a] = w.take_commands()
    assert place_a.request.order_id == -1 and w.is_live(-1) and w.is_live(-20)
    assert w.renumber(-20, 501)  # b's Place still waits for its token
    assert not w.is_live(-20) and w.is_live(501) and not w.renumber(-99, 502)
    w.on_timer(T0 + timedelta(seconds=1))
    [place_b] = w.take_commands()
    assert place_b.request.order_id == 501
    w.on_fill(Fill("e", 501, place_b.request.order_ref, C, "BUY", 4, D("3.05"), T0), T0 + timedelta(seconds=1))
    [result] = w.take_results()
    assert result.children[0].order_id == 501 and result.filled == 4


def test_a_quote_does_nothing_unless_a_parent_waits_on_a_snapshot_of_its_key(monkeypatch):
    w, book = bare()
    for i in range(20):
        w.start(parent(4, source=f"p{i}"), T0, iter(range(100 * i, 100 * i + 50)).__next__)
    w.take_commands()
    calls = []
    monkeypatch.setattr(w, "_drive", lambda run, now: calls.append(run))
    monkeypatch.setattr(book, "get", lambda key: calls.append(key))
    w.on_quote(KEY, T0 + timedelta(seconds=1))  # parents work this key, none waits on a snapshot
    w.on_quote("SPY", T0 + timedelta(seconds=1))
    assert calls == [] and w.take_commands() == []


def test_a_fault_in_one_parent_ends_it_with_a_reason_and_the_others_go_on():
    w, book = bare()
    notes = []
    w._log_to = lambda level, event, fields: notes.append((level, event))

    def broken():
        raise RuntimeError("id allocator down")

    w.start(parent(4, source="ok"), T0, iter(range(10, 20)).__next__)
    w.start(parent(4, source="bad"), T0, broken)  # raises nothing into the caller
    [result] = w.take_results()
    assert (result.parent_ref, result.status, result.reason) == (
        "tradingd:0dte:bad", ExecutionStatus.REJECTED, "execution_failed")
    assert ("error", "execution_failed") in notes
    [place] = w.take_commands()
    assert place.request.order_ref == "tradingd:0dte:ok:1" and w.parents == ["tradingd:0dte:ok"]


def test_submitted_messages_share_the_childrens_pacing_in_order():
    w, book = bare(**{"execution.max_messages_per_s": 2})
    stop = OrderRequest(900, "tradingd:0dte:stop-1:1", C, "SELL", 4, "STP", None, D("1.50"))
    w.start(parent(4, source="a"), T0, iter(range(10, 20)).__next__)
    w.submit(Place(stop), T0)
    w.submit(Cancel(900), T0)
    [first] = w.take_commands()
    assert isinstance(first, Place) and first.request.order_id == 10
    assert w.next_deadline() == T0 + timedelta(milliseconds=500)
    w.on_timer(T0 + timedelta(milliseconds=500))
    assert w.take_commands() == [Place(stop)]
    w.on_timer(T0 + timedelta(milliseconds=999))
    assert w.take_commands() == []
    w.on_timer(T0 + timedelta(seconds=1))
    assert w.take_commands() == [Cancel(900)]
    with pytest.raises(ExecutionError):
        w.submit("not a command", T0)


def test_every_deadline_moves_something_even_when_places_wait_past_the_timeout():
    # one message a second and 70 entries at once: the last Places leave after their 60 s timeout
    w, book = bare("2.90", "3.10", **{"execution.max_messages_per_s": 1})
    ids = iter(range(1, 10_000)).__next__
    for i in range(70):
        w.start(parent(1, source=f"e{i}"), T0, ids)
    calls, results = 0, []
    while (t := w.next_deadline()) is not None:
        calls += 1
        assert calls < 2000, "a deadline that moves nothing: the caller would spin"
        book.put(quote(KEY, "2.90", "3.10", at=t))
        w.on_timer(t)
        w.take_commands()
        results += w.take_results()
    assert len(results) == 70 and w.next_deadline() is None
    late = [r for r in results if not r.children or r.children[0].sent_at > T0 + timedelta(seconds=60)]
    assert late, "some Places did wait past their parent's timeout"


from hypothesis import HealthCheck, example, given  # noqa: E402
from hypothesis import settings as hyp_settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from broker.sim_venue import SimAccountState  # noqa: E402
from market.types import BrokerPosition  # noqa: E402

# (from second, bid in cents, spread in cents, size shown)
_ROW = st.tuples(st.integers(0, 90), st.integers(150, 450), st.integers(1, 40), st.integers(0, 30))
_PARENT = st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 120), st.integers(0, 20))  # side, qty, start s


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ROW, min_size=1, max_size=8), st.lists(_PARENT, min_size=1, max_size=4))
@example(rows=[(45, 340, 22, 1)], parents=[("SELL", 99, 7)])  # a long exit: one contract shown a second
def test_property_every_parent_ends_once_within_its_rules(rows, parents):
    rows = sorted({r[0]: r for r in [(0, *rows[0][1:]), *rows]}.values())
    h = VenueLoop(rows=[(s, f"{b / 100:.2f}", f"{(b + sp) / 100:.2f}", size) for s, b, sp, size in rows],
                  **{"broker.sim.starting_cash": 10_000_000})
    h.venue.restore(SimAccountState((BrokerPosition(C, 500, D(2)),)))  # sells have something to sell
    h.advance(0.5)
    started = []
    for i, (side, qty, at_s) in enumerate(sorted(parents, key=lambda p: p[2])):
        h.advance_to(T0 + timedelta(seconds=1 + at_s))
        kind = "exit" if side == "SELL" else "entry"
        p = ParentOrder("0dte", f"p{i}", C, side, qty, kind)
        h.working.start(p, h.now, lambda: next(h.ids))
        started.append(p)
    h.pump()
    end = h.now + timedelta(seconds=3600)  # an exit of 120 against 1 contract shown: ~120 children of ~9 s
    while len(h.results) < len(started) and h.now < end and h.step():
        pass
    assert sorted(r.parent_ref for r in h.results) == sorted(f"tradingd:0dte:p{i}" for i in range(len(started)))
    for result in h.results:
        assert 0 <= result.filled <= result.requested
        sends = [c.sent_at for c in result.children]
        assert sends == sorted(sends)
        if result.status is not ExecutionStatus.FILLED:
            assert result.underfilled and result.reason
        if not result.parent_ref.endswith(tuple(f"p{i}" for i, p in enumerate(started) if p.kind == "exit")):
            assert all(t - sends[0] <= timedelta(seconds=60) for t in sends) if sends else True
    places = [cmd.request for _, cmd in h.commands if isinstance(cmd, Place)]
    assert len({r.order_id for r in places}) == len(places) and len({r.order_ref for r in places}) == len(places)
    times = [t for t, _ in h.commands]
    assert all(b - a >= timedelta(seconds=1) for a, b in zip(times, times[40:]))
    fills_by_order = {}
    for f in h.fills:
        fills_by_order[f.order_id] = fills_by_order.get(f.order_id, 0) + f.quantity
    assert all(fills_by_order[r.order_id] <= r.quantity for r in places if r.order_id in fills_by_order)


def test_child_limit_walk_band_and_far_touch():
    cfg = settings("0dte").execution
    r = _rounder("SPY")
    walk = [child_limit("BUY", D("2.90"), D("3.10"), k, cfg, r) for k in range(5)]
    assert walk == [(D("3.00"), False), (D("3.05"), False), (D("3.09"), True), (D("3.09"), True), (D("3.09"), True)]
    sell = [child_limit("SELL", D("2.95"), D("3.05"), k, cfg, r)[0] for k in range(4)]
    assert sell == [D("3.00"), D("2.98"), D("2.95"), D("2.95")]  # rounds up (passive), stops at the bid
    assert child_limit("SELL", D("2.80"), D("3.20"), 0, cfg, r, cross=True) == (D("2.80"), False)
    # nickel ticks for a stock option above $3: passive rounding keeps the band
    assert child_limit("BUY", D("9.55"), D("10.55"), 2, cfg, _rounder("AAPL")) == (D("10.35"), True)  # band 10.3515


def _rounder(underlying):
    return lambda p, d: round_to_tick(underlying, p, d)


def _exit_working(qty=10):
    w, _ = bare()
    ref = w.start(parent(qty, side="SELL", kind="exit", source="x-7"), T0, iter(range(900, 999)).__next__)
    (place,) = w.take_commands()
    return w, ref, place.request


def test_shrink_cuts_a_working_exit_child_down_to_what_may_still_be_sold():
    """The position's stop sold 4 of the exit's 10 (its cancel overtaken): the child is modified to 6."""
    w, ref, request = _exit_working(10)
    assert w.shrink(ref, 4, T0 + timedelta(milliseconds=500)) == 4
    (modify,) = w.take_commands()
    assert isinstance(modify, Modify) and modify.request.order_id == request.order_id
    assert modify.request.quantity == 6 and modify.request.limit_price == request.limit_price
    now = T0 + timedelta(milliseconds=600)
    w.on_update(OrderUpdate(request.order_id, request.order_ref, OrderStatus.FILLED, 6, 0, D("3.00"), now), now)
    (result,) = w.take_results()
    assert (result.requested, result.filled, result.status) == (6, 6, ExecutionStatus.FILLED)


def test_shrink_by_everything_cancels_the_exit_child_and_ends_the_parent_filled_as_far_as_it_went():
    w, ref, request = _exit_working(10)
    now = T0 + timedelta(milliseconds=500)
    w.on_fill(Fill("e1", request.order_id, request.order_ref, request.contract, "SELL", 3, D("3.00"), now), now)
    assert w.shrink(ref, 10, now) == 7  # 3 were sold by the exit itself: 7 left to give up
    (cancel,) = w.take_commands()
    assert cancel == Cancel(request.order_id)
    w.on_timer(now + timedelta(seconds=30))
    assert w.take_commands() == []  # no reprice of a child being cancelled
    later = now + timedelta(seconds=31)
    w.on_update(OrderUpdate(request.order_id, request.order_ref, OrderStatus.CANCELLED, 3, 7, D("3.00"), later),
                later)
    (result,) = w.take_results()
    assert (result.requested, result.filled, result.status) == (3, 3, ExecutionStatus.FILLED)


def test_shrink_leaves_entries_and_unknown_parents_alone():
    w, _ = bare()
    ref = w.start(parent(10), T0, iter(range(900, 999)).__next__)
    w.take_commands()
    assert w.shrink(ref, 4, T0) == 0 and w.shrink("tradingd:0dte:nope", 4, T0) == 0
    assert w.take_commands() == []


def _exit_waiting_for_its_token(qty=10):
    """An exit whose Place is queued behind another order's (one message a second): not sent yet."""
    w, book = bare(**{"execution.max_messages_per_s": 1})
    ids = iter(range(900, 999)).__next__
    w.start(parent(4, source="sig-first"), T0, ids)
    (first,) = w.take_commands()
    ref = w.start(parent(qty, side="SELL", kind="exit", source="x-7"), T0, ids)
    assert w.take_commands() == []  # the exit's Place waits for the next second's token
    return w, book, ref, first


def test_shrink_resizes_an_exit_place_still_waiting_for_its_token():
    w, book, ref, _ = _exit_waiting_for_its_token(10)
    assert w.shrink(ref, 4, T0 + timedelta(milliseconds=200)) == 4
    assert w.take_commands() == []  # still waiting: the cut sends nothing by itself
    t = T0 + timedelta(seconds=1)
    book.put(quote(KEY, "2.90", "3.10", at=t))
    w.on_timer(t)
    (place,) = w.take_commands()
    assert isinstance(place, Place) and place.request.side == "SELL" and place.request.quantity == 6
    w.on_update(OrderUpdate(place.request.order_id, place.request.order_ref, OrderStatus.FILLED, 6, 0, D("2.95"), t), t)
    (result,) = [r for r in w.take_results() if r.parent_ref == ref]
    assert (result.requested, result.filled, result.status) == (6, 6, ExecutionStatus.FILLED)


def test_shrink_by_everything_drops_an_exit_place_still_waiting_for_its_token():
    w, book, ref, first = _exit_waiting_for_its_token(10)
    assert w.shrink(ref, 10, T0 + timedelta(milliseconds=200)) == 10
    for s in (1, 2, 3):
        t = T0 + timedelta(seconds=s)
        book.put(quote(KEY, "2.90", "3.10", at=t))
        w.on_timer(t)
        sells = [c for c in w.take_commands() if isinstance(c, Place) and c.request.side == "SELL"]
        assert sells == []  # nothing of the exit ever reaches the venue
    results = [r for r in w.take_results() if r.parent_ref == ref]
    assert [(r.requested, r.filled) for r in results] == [(0, 0)]  # ended once, nothing sold
