from datetime import timedelta

import pytest

from broker.quote_model import OptionQuoteModel
from broker.quotes import QuoteBook
from market.clock import VirtualClock
from tests.broker.helpers import T0, contract, quote, settings

CFG = settings("0dte").broker.sim.model
KEY = contract("270", "C").key


def setup():
    clock = VirtualClock(T0)
    book = QuoteBook()
    model = OptionQuoteModel(book, clock, CFG)
    model.attach()
    return clock, book, model


def test_tracked_options_are_repriced_on_each_underlying_tick():
    clock, book, model = setup()
    assert model.track([KEY, "SPY", KEY]) == [KEY]
    book.update(quote("VIX", "15.9", "16.1"))
    assert book.get(KEY) is None  # no underlying price yet
    book.update(quote("SPY", "270.39", "270.41"))
    first = book.get(KEY)
    same_day = float(CFG.same_day_vix_ratio)  # a same-day option: VIX-based vol x the fitted ratio
    assert first.modelled and float(first.iv) == pytest.approx(0.16 * same_day, abs=0.001)  # VIX/100, a touch of skew
    book.update(quote("SPY", "271.39", "271.41", at=T0 + timedelta(seconds=1)))
    assert book.get(KEY).mid > first.mid and book.get(KEY).received_at == T0 + timedelta(seconds=1)
    book.update(quote("VIX", "29.9", "30.1", at=T0 + timedelta(seconds=2)))
    assert float(book.get(KEY).iv) == pytest.approx(0.30 * same_day * (1 + 2 * 0.0052), abs=0.0005)  # skew: the strike is 0.5 % below spot


def test_recorded_quotes_are_never_overwritten():
    clock, book, model = setup()
    model.track([KEY])
    recorded = quote(KEY, "1.00", "1.02")
    book.update(recorded)
    book.update(quote("VIX", "15.9", "16.1"))
    book.update(quote("SPY", "270.39", "270.41"))
    assert book.get(KEY) is recorded


def test_untracked_and_unpriceable_options_are_left_alone():
    clock, book, model = setup()
    model.track([KEY])
    model.untrack([KEY])
    book.update(quote("VIX", "15.9", "16.1"))
    book.update(quote("SPY", "270.39", "270.41"))
    assert book.get(KEY) is None and model.tracked() == []
    no_vix = OptionQuoteModel(QuoteBook(), clock, CFG)
    assert no_vix.quote_for(contract("270", "C")) is None


def test_stale_underlying_makes_stale_options():
    clock, book, model = setup()
    model.track([KEY])
    book.update(quote("VIX", "15.9", "16.1"))
    book.update(quote("SPY", "270.39", "270.41", usable=False))
    assert book.get(KEY).usable is False


def test_realized_vol_prices_single_stocks():
    s7 = settings("7dte").broker.sim.model
    clock = VirtualClock(T0)
    book = QuoteBook()
    model = OptionQuoteModel(book, clock, s7)
    book.update(quote("AAPL", "170.00", "170.04"))
    c = contract("170", "C", expiry=T0.date() + timedelta(days=3), underlying="AAPL")
    assert model.quote_for(c) is None  # neither VIX nor bars
    model.set_realized_vol("AAPL", 0.25)
    assert float(model.quote_for(c).iv) == pytest.approx(0.275, abs=0.001)  # realized × 1.1
    model.set_realized_vol("AAPL", None)
    assert model.quote_for(c) is None


def test_expired_options_are_not_priced():
    clock, book, model = setup()
    book.update(quote("VIX", "15.9", "16.1"))
    book.update(quote("SPY", "270.39", "270.41"))
    yesterday = contract("270", "C", expiry=T0.date() - timedelta(days=1))
    assert model.quote_for(yesterday) is None


async def test_options_past_their_expiry_stop_being_tracked():
    clock, book, model = setup()
    tomorrow = contract("270", "C", expiry=T0.date() + timedelta(days=1)).key
    model.track([KEY, tomorrow])
    book.update(quote("VIX", "15.9", "16.1"))
    book.update(quote("SPY", "270.39", "270.41"))
    assert sorted(model.tracked()) == sorted([KEY, tomorrow])
    await clock.advance_to(T0.replace(hour=16, minute=1))  # today's expiry closed at 16:00
    model.refresh()
    assert model.tracked() == [tomorrow], "an expired option never quotes again"
    later = contract("270", "C", expiry=T0.date() + timedelta(days=1))
    assert model.quote_for(later) is None  # after the close no listed option trades: no modelled quote either
    next_open = T0.replace(hour=10) + timedelta(days=1)
    await clock.advance_to(next_open)
    book.update(quote("SPY", "270.39", "270.41", at=next_open))
    assert model.quote_for(later) is not None  # in regular hours it quotes again


async def test_no_modelled_option_quote_before_the_open():
    """Listed options trade in regular hours only: a pre-market underlying print models nothing,
    so the sim cannot fill a stop or a flatten against a price no exchange offers."""
    pre = T0.replace(hour=9, minute=0)
    book, clock2 = QuoteBook(), VirtualClock(pre)
    model = OptionQuoteModel(book, clock2, CFG)
    book.update(quote("VIX", "15.9", "16.1", at=pre))
    book.update(quote("SPY", "270.39", "270.41", at=pre))
    assert model.quote_for(contract("270", "C")) is None
    await clock2.advance_to(pre.replace(minute=30))
    assert model.quote_for(contract("270", "C")) is not None


def test_a_repriced_option_is_the_fresh_models_quote_tick_after_tick():
    """Each quote the model writes equals, field for field (Decimal texts too), the quote a model that
    has priced nothing before writes from the same book at the same moment: what it keeps per option
    (the last inputs and quote, the greeks' Decimals, the time terms of the moment) changes no quote.
    The walk has VIX and the underlying ticking at the same second (priced alike: copied), the
    underlying's usability flipping, and VIX, the price and the clock moving alone."""
    from dataclasses import fields

    class Clock:
        at = T0

        def now(self):  # type: ignore[no-untyped-def]
            return self.at

    clock, book = Clock(), QuoteBook()
    model = OptionQuoteModel(book, clock, CFG)  # type: ignore[arg-type]
    model.attach()
    keys = [KEY, contract("268", "P").key, contract("275", "C").key]
    model.track(keys)
    steps = [("VIX", "15.9", "16.1", 0), ("SPY", "270.39", "270.41", 0), ("VIX", "15.9", "16.1", 0),
             ("SPY", "270.39", "270.41", 1), ("VIX", "15.9", "16.1", 1), ("VIX", "16.9", "17.1", 1),
             ("SPY", "270.49", "270.51", 1), ("SPY", "270.49", "270.51", 2), ("VIX", "16.9", "17.1", 2)]
    copied = 0
    for i, (symbol, bid, ask, second) in enumerate(steps):
        clock.at = T0 + timedelta(seconds=second)
        before = {k: book.get(k) for k in keys}
        book.update(quote(symbol, bid, ask, at=T0 + timedelta(seconds=second), usable=i != 3))
        fresh_book = QuoteBook()
        for k in ("VIX", "SPY"):
            if book.get(k) is not None:
                fresh_book.update(book.get(k))
        fresh = OptionQuoteModel(fresh_book, clock, CFG)  # type: ignore[arg-type]
        fresh.track(keys)
        fresh.refresh()
        for k in keys:
            mine, theirs = book.get(k), fresh_book.get(k)
            assert (mine is None) == (theirs is None)
            if mine is not None:
                for f in fields(mine):
                    x, y = getattr(mine, f.name), getattr(theirs, f.name)
                    assert x == y and str(x) == str(y), (i, k, f.name, x, y)
                copied += before[k] is not None and mine is not before[k] and mine.bid is before[k].bid \
                    and mine.delta is before[k].delta
    assert copied > 0
