"""The same inputs give byte-identical effects (SPEC §6.4)."""

from __future__ import annotations

from daemon.core.events import FillEvent, QuoteEvent, SignalEvent
from daemon.core.effects import PlaceOrder
from tests.daemon.core.fakes import at, fill_of, make_core, option, signal, underlying, vix


def run() -> str:
    core, _ = make_core()
    log: list[object] = []
    core.advance(at(9, 30))
    for second in range(0, 50, 5):
        when = at(9, 31, second)
        core.handle(QuoteEvent(vix("15", when)))
        core.handle(QuoteEvent(underlying("SPY", f"600.{second:02d}", when)))
        log += core.take_effects()
    core.handle(SignalEvent(signal("s1", "SPY", "bullish", at(9, 31, 45)), "test", at(9, 31, 45)))
    effects = core.take_effects()
    log += effects
    keys = next(e.keys for e in effects if hasattr(e, "keys"))
    for key in keys:
        core.handle(QuoteEvent(option(key, "2.00", at(9, 31, 46))))
    effects = core.take_effects()
    log += effects
    place = next(e for e in effects if isinstance(e, PlaceOrder))
    core.handle(FillEvent(fill_of(place.request, at(9, 31, 47))))
    for minute in range(32, 60):
        when = at(9, minute)
        core.advance(when)
        core.handle(QuoteEvent(option(place.request.contract.key, f"{2 + (minute % 7) / 10:.2f}", when)))
        log += core.take_effects()
    return repr(log)


def test_the_same_inputs_give_byte_identical_effects() -> None:
    first, second = run(), run()
    assert "PlaceOrder" in first and "record_exit_event" in first or "save_exit_state" in first
    assert first == second
