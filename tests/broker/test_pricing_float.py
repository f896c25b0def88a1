"""The float model path (`model_quote`) gives exactly `model_quote_exact`'s quote: every field equal and
every Decimal the same text, over a seeded sweep of spots, strikes, times, vols and tick rules."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from broker.pricing import model_quote, model_quote_exact
from config.models import OptionModelConfig
from market.session import EXCHANGE_TZ
from market.types import OptionContract

FIELDS = ("key", "bid", "ask", "last", "received_at", "bid_size", "ask_size", "open_interest", "delta", "gamma",
          "iv", "modelled", "usable")


def same(a, b) -> None:  # type: ignore[no-untyped-def]
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x == y and str(x) == str(y), (name, x, y)


def test_the_float_path_gives_the_exact_quote_over_a_seeded_sweep() -> None:
    rng = random.Random(20261204)
    cfg = OptionModelConfig()
    expiry = date(2019, 2, 15)
    close = datetime.combine(expiry, time(16), tzinfo=EXCHANGE_TZ)
    fallbacks = 0
    for i in range(20_000):
        underlying = rng.choice(["SPY", "QQQ", "AAPL", "MSFT", "AMZN"])
        spot = Decimal(rng.uniform(20, 1700)).quantize(Decimal("0.01"))
        strike = (spot * Decimal(rng.uniform(0.8, 1.2))).quantize(Decimal(1))
        contract = OptionContract(underlying, expiry, max(strike, Decimal(1)), rng.choice(["C", "P"]))
        now = close - timedelta(seconds=rng.choice([0, 30, 61, 600, 3600 * rng.uniform(0, 100)]))
        atm = rng.uniform(0.05, 1.2)
        fast = model_quote(contract, spot, atm, now, close, now, cfg, usable=i % 7 != 0)
        exact = model_quote_exact(contract, spot, atm, now, close, now, cfg, usable=i % 7 != 0)
        same(fast, exact)
        fallbacks += fast.bid == 0
    assert fallbacks < 20_000  # the sweep is not all zero bids


def test_cheap_options_near_the_tick_and_the_penny_boundary() -> None:
    """Options priced around $3 (penny below, nickel from there, for non-penny-program classes) and worth
    a tick or less, where rounding decides."""
    cfg = OptionModelConfig()
    expiry = date(2019, 2, 15)
    close = datetime.combine(expiry, time(16), tzinfo=EXCHANGE_TZ)
    for underlying in ("AAPL", "SPY"):
        for cents in range(25000, 27000, 7):
            spot = Decimal(cents) / 100
            for strike in (Decimal(250), Decimal(255), Decimal(262), Decimal(270), Decimal(280)):
                for minutes in (1, 5, 30, 240):
                    contract = OptionContract(underlying, expiry, strike, "C" if cents % 2 else "P")
                    now = close - timedelta(minutes=minutes)
                    same(model_quote(contract, spot, 0.2, now, close, now, cfg),
                         model_quote_exact(contract, spot, 0.2, now, close, now, cfg))


def test_the_key_given_by_the_caller_is_the_quotes_key() -> None:
    cfg = OptionModelConfig()
    expiry = date(2019, 2, 15)
    close = datetime.combine(expiry, time(16), tzinfo=EXCHANGE_TZ)
    contract = OptionContract("SPY", expiry, Decimal(270), "C")
    now = close - timedelta(hours=2)
    assert model_quote(contract, Decimal("270.5"), 0.15, now, close, now, cfg, key=contract.key).key == contract.key


def test_the_per_option_greeks_memo_gives_the_exact_quote_along_a_walk() -> None:
    """`Terms.quote` with an option's memo of its last 6-place greeks (as `OptionQuoteModel` prices a
    tracked option tick after tick): every quote is `model_quote_exact`'s, the Decimals the same text,
    where the greeks repeat (small moves, a second apart) and where they move."""
    from broker.pricing import Terms

    rng = random.Random(20261206)
    cfg = OptionModelConfig()
    expiry = date(2019, 2, 15)
    close = datetime.combine(expiry, time(16), tzinfo=EXCHANGE_TZ)
    reused = 0
    for strike, right in ((270, "C"), (270, "P"), (420, "C"), (150, "P"), (150, "C"), (420, "P")):
        contract = OptionContract("SPY", expiry, Decimal(strike), right)  # type: ignore[arg-type]
        memo: list[object] = [None] * 6
        spot, now = Decimal("270.00"), close - timedelta(hours=30)
        previous = None
        for _ in range(400):
            spot += Decimal(rng.choice([-1, 0, 0, 0, 1])) / 100
            now += timedelta(seconds=1)
            atm = rng.choice([0.15, 0.15, 0.151])
            fast = Terms(cfg, now, close).quote(contract, spot, float(spot), float(strike), atm, now, True,
                                                contract.key, memo)  # type: ignore[arg-type]
            same(fast, model_quote_exact(contract, spot, atm, now, close, now, cfg))
            if previous is not None:
                reused += fast.delta is previous.delta
            previous = fast
    assert reused > 100  # the walk does reuse Decimals


def test_the_per_option_strike_terms_memo_gives_the_exact_quote_along_a_walk() -> None:
    """`Terms.quote` with an option's memo of its time-free terms (spot, strike, at-the-money vol): along a
    walk where the spot and the vol often repeat a second later and often move, every quote is
    `model_quote_exact`'s, and the memo is both reused and worked out again."""
    from broker.pricing import Terms

    rng = random.Random(20261207)
    cfg = OptionModelConfig()
    expiry = date(2019, 2, 15)
    close = datetime.combine(expiry, time(16), tzinfo=EXCHANGE_TZ)
    reused = renewed = 0
    for strike, right in ((270, "C"), (270, "P"), (420, "C"), (150, "P"), (150, "C"), (420, "P"), (271, "C")):
        contract = OptionContract("SPY", expiry, Decimal(strike), right)  # type: ignore[arg-type]
        greeks: list[object] = [None] * 6
        terms: list[object] = []
        spot, now = Decimal("270.00"), close - timedelta(hours=30)
        for _ in range(400):
            spot += Decimal(rng.choice([-1, 0, 0, 0, 1])) / 100
            now += timedelta(seconds=rng.choice([1, 1, 60, 3600]))
            atm = rng.choice([0.15, 0.15, 0.15, 0.151])
            before = list(terms)
            fast = Terms(cfg, now, close).quote(contract, spot, float(spot), float(strike), atm, now, True,
                                                contract.key, greeks, terms)  # type: ignore[arg-type]
            same(fast, model_quote_exact(contract, spot, atm, now, close, now, cfg))
            if before:
                reused += terms == before and terms[0] == float(spot)
                renewed += terms != before
    assert reused > 500 and renewed > 100
