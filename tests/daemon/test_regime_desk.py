"""The regime desk's shell work without a replay: surfaces from the quote book, the inversion told
once, the live VIX history cached in the store, and vega/theta of the book."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from broker.pricing import black_scholes, years_between
from broker.quotes import QuoteBook
from broker.surface import expires_at
from config import load_settings
from daemon.regime import VIX_HISTORY_KEY, RegimeDesk
from market.session import EXCHANGE_TZ
from market.types import OptionContract, Quote
from risk.regime import classify

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=EXCHANGE_TZ)


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str):  # info / warning / error
        return lambda event, **kw: self.events.append((level, event, kw))


class Store:
    def __init__(self) -> None:
        self.meta: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.meta[key] = value


class Journal:
    """The engine's write-behind journal (SPEC §6.2): its `set_meta` records land in the fake store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, op: str, **payload: Any) -> None:
        assert op == "set_meta"
        self.store.meta[payload["key"]] = payload["value"]


def engine(held: list[Any] = ()) -> SimpleNamespace:
    store = Store()
    return SimpleNamespace(settings=load_settings("7dte", env={}), log=Log(), quotes=QuoteBook(), metrics=None,
                           store=store, journal=Journal(store), book=SimpleNamespace(held=lambda: list(held)))


def put_chain(quotes: QuoteBook, expiry: date, vol: float, spot: float = 100.0) -> None:
    for k in range(90, 111, 2):
        right = "C" if k >= spot else "P"
        c = OptionContract("AAPL", expiry, Decimal(k), right)  # type: ignore[arg-type]
        price = black_scholes(spot, k, years_between(NOW, expires_at(expiry)), 0.04, vol, right).price
        quotes.update(Quote(c.key, Decimal(repr(round(price, 4))), Decimal(repr(round(price, 4))), None, NOW))
    quotes.update(Quote("AAPL", Decimal(100), Decimal(100), None, NOW))


def test_an_inverted_term_structure_is_seen_at_the_checkpoint_and_told_once():
    eng = engine()
    put_chain(eng.quotes, date(2025, 3, 7), 0.45)
    put_chain(eng.quotes, date(2025, 3, 14), 0.30)
    desk = RegimeDesk(eng)
    asyncio.run(desk.checkpoint(NOW))
    asyncio.run(desk.checkpoint(NOW))
    assert desk.inverted == {"AAPL"}
    told = [e for e in eng.log.events if e[1] == "term_structure_inverted"]
    assert len(told) == 1 and told[0][0] == "warning" and told[0][2]["underlying"] == "AAPL"
    assert desk.last_regime.name == "stressed"
    view = desk.volatility_for("AAPL", Decimal(18))
    assert view.term_slope is not None and view.term_slope < 0
    status = desk.status(NOW)
    assert status["term_structure_inverted"] == ["AAPL"] and status["volatility_regime"]["name"] == "stressed"
    # stored: the surfaces and the skew history, read back after a restart
    assert '"front": "2025-03-07"' in eng.store.meta["regime.surfaces"]
    again = RegimeDesk(SimpleNamespace(**{**vars(eng), "log": Log()}))
    asyncio.run(again.load())
    assert list(again.skew_history["AAPL"]) == list(desk.skew_history["AAPL"])
    assert [d for d, _ in desk.skew_history["AAPL"]] == [NOW.date()]  # one value per session


def test_the_live_vix_history_is_cached_in_the_store_and_read_back():
    eng = engine()
    desk = RegimeDesk(eng)
    for day, close in ((date(2025, 2, 27), "18.5"), (date(2025, 2, 28), "19.6"), (date(2025, 2, 28), "30")):
        asyncio.run(desk.record_vix_close(day, Decimal(close)))
    assert [v for _, v in desk.vix_history] == [Decimal("18.5"), Decimal("19.6")]  # a day is recorded once
    again = RegimeDesk(SimpleNamespace(**{**vars(eng), "log": Log()}))
    asyncio.run(again.load())
    assert list(again.vix_history) == list(desk.vix_history)
    assert VIX_HISTORY_KEY in eng.store.meta


def test_book_vega_and_theta_sum_the_held_positions_and_an_unknown_one_makes_them_unknown():
    eng = engine()
    put_chain(eng.quotes, date(2025, 3, 14), 0.30)
    key = OptionContract("AAPL", date(2025, 3, 14), Decimal(100), "C").key
    held = [SimpleNamespace(key=key, multiplier=100, open_qty=10)]
    eng.book = SimpleNamespace(held=lambda: held)
    desk = RegimeDesk(eng)
    vega, theta = desk.portfolio_vega_theta(NOW)
    one_vega, one_theta = desk.option_vega_theta(key, NOW)
    assert vega == one_vega * 1000 and theta == one_theta * 1000 and vega > 0 > theta
    held.append(SimpleNamespace(key="AAPL 20250314 C 150", multiplier=100, open_qty=1))  # no quote
    assert desk.portfolio_vega_theta(NOW) == (None, None)


def test_the_skew_percentile_ranks_today_s_put_skew_among_past_sessions():
    eng = engine()
    put_chain(eng.quotes, date(2025, 3, 7), 0.30)
    put_chain(eng.quotes, date(2025, 3, 14), 0.30)
    desk = RegimeDesk(eng)
    asyncio.run(desk.checkpoint(NOW))
    today = desk.skew_history["AAPL"][-1][1]  # a flat smile: put skew about 0
    past = [(NOW.date() - timedelta(days=30 - i), today - Decimal("0.001") * (i + 1)) for i in range(25)]
    desk.skew_history["AAPL"] = deque([*past, (NOW.date(), today)], maxlen=252)
    view = desk.volatility_for("AAPL", Decimal(18))
    assert view.skew_percentile == 1  # above every past session's
    assert classify(Decimal(18), view, eng.settings.regime.volatility).name == "stressed"
    desk.skew_history["AAPL"] = deque(past[:10], maxlen=252)  # too short a history: unknown
    assert desk.volatility_for("AAPL", Decimal(18)).skew_percentile is None
