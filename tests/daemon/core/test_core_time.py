"""The core's time never runs backwards, and a new position knows its option's greeks at once.

Both were found by the 1-second replay bench (issue 8): a modelled option quote carries its
underlying's stamp, so it can arrive stamped before a VIX print the core has already taken in;
sizing a pending signal at that older stamp gave the VIX quote a negative age and refused the
signal `invalid_quote_age`. And a position opened a moment ago had no delta or gamma until its
next quote, so the next signal's gate saw "greeks unavailable" and refused `greeks_limit`.
"""

from __future__ import annotations

from decimal import Decimal

from daemon.core.effects import PlaceOrder, Subscribe
from daemon.core.events import FillEvent, QuoteEvent, SignalEvent
from tests.daemon.core.fakes import at, fill_of, make_core, option, orders, signal, underlying, vix


def opened_core():  # type: ignore[no-untyped-def]
    core, execution = make_core()
    core.advance(at(9, 30))
    core.handle(QuoteEvent(vix("15", at(9, 30, 1))))
    core.handle(QuoteEvent(vix("15", at(9, 31))))
    core.handle(QuoteEvent(underlying("SPY", "600.00", at(9, 31))))
    core.handle(QuoteEvent(underlying("QQQ", "500.00", at(9, 31))))
    core.take_effects()
    return core, execution


def test_a_pending_signal_is_sized_at_the_cores_time_not_an_older_quote_stamp() -> None:
    core, _ = opened_core()
    received = at(9, 31, 5)
    assert core.handle(SignalEvent(signal("s1", "SPY", "bullish", received), "test", received)) is None
    keys = next(e.keys for e in core.take_effects() if isinstance(e, Subscribe))
    core.handle(QuoteEvent(vix("15", at(9, 31, 6))))  # a newer VIX print comes in first
    for key in keys:  # then the options, stamped (as a model stamps them) with the underlying's older time
        core.handle(QuoteEvent(option(key, "2.00", received)))
    outcome = core.answers[-1][1]
    assert outcome.accepted, outcome.decision
    assert outcome.reason != "invalid_quote_age"
    assert core.latest == at(9, 31, 6)


def test_an_older_stamped_quote_does_not_move_the_cores_time_back() -> None:
    core, _ = opened_core()
    core.handle(QuoteEvent(vix("15", at(9, 40))))
    core.handle(QuoteEvent(underlying("SPY", "601.00", at(9, 39, 59))))
    assert core.latest == at(9, 40)


def test_a_new_position_carries_the_greeks_of_the_quote_it_was_sized_on() -> None:
    core, execution = opened_core()
    when = at(9, 31, 5)
    assert core.handle(SignalEvent(signal("s1", "SPY", "bullish", when), "test", when)) is None
    keys = next(e.keys for e in core.take_effects() if isinstance(e, Subscribe))
    for key in keys:
        core.handle(QuoteEvent(option(key, "2.00", when, delta="0.52", gamma="0.04")))
    effects = core.take_effects()
    assert core.answers[-1][1].accepted
    place = next(e for e in orders(effects) if isinstance(e, PlaceOrder))
    core.handle(FillEvent(fill_of(place.request, at(9, 31, 6))))
    core.take_effects()
    position = next(iter(core.book))
    assert position.open_qty > 0
    # no quote of its key since the decision: the greeks are the sizing quote's
    assert (position.delta, position.gamma) == (Decimal("0.52"), Decimal("0.04"))
    greeks = core.book.known_greeks()
    assert greeks["delta"] == Decimal("0.52") * 100 * position.open_qty
    # the next signal's gate sees them, not "greeks unavailable"
    second = at(9, 31, 7)
    core.handle(SignalEvent(signal("s2", "QQQ", "bullish", second), "test", second))
    keys = next(e.keys for e in core.take_effects() if isinstance(e, Subscribe))
    for key in keys:
        core.handle(QuoteEvent(option(key, "2.00", second)))
    outcome = core.answers[-1][1]
    assert "greeks unavailable" not in (outcome.message or ""), outcome.decision


def test_quote_is_handle_of_a_quote_event_without_the_event() -> None:
    """The replay's per-quote entry (`Core.quote`) gives the same state and effects as `handle(QuoteEvent)`."""
    runs = []
    for direct in (False, True):
        core, _ = opened_core()
        when = at(9, 31, 5)
        core.handle(SignalEvent(signal("s1", "SPY", "bullish", when), "test", when))
        keys = next(e.keys for e in core.take_effects() if isinstance(e, Subscribe))
        for i, key in enumerate(keys):
            q = option(key, f"2.0{i}", at(9, 31, 6))
            core.quote(q) if direct else core.handle(QuoteEvent(q))
        runs.append((repr(core.take_effects()), [(p.key, p.open_qty, p.delta) for p in core.book], core.answers))
    assert runs[0] == runs[1]


def test_a_quote_that_breaks_the_core_is_counted_not_raised() -> None:
    core, _ = opened_core()

    class Broken:
        def put(self, quote):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    core.quotes = Broken()  # type: ignore[assignment]
    core.quote(underlying("SPY", "600.00", at(9, 32)))
    assert core.bad_events == 1
