"""daemon/history.DailyHistory: cached in the store, refreshed only when a session is missing, paced, aligned."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from broker.base import BrokerError
from daemon.history import META_KEY, DailyHistory


class Broker:
    def __init__(self, bars: dict[str, list[tuple[date, Decimal]]]):
        self.bars, self.asked = bars, []

    async def daily_closes(self, symbol: str, sessions: int) -> list[tuple[date, Decimal]]:
        self.asked.append(symbol)
        if symbol not in self.bars:
            raise BrokerError("no_history", symbol)
        return self.bars[symbol][-sessions:]


class Meta:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.values[key] = value


D = [date(2024, 3, d) for d in (1, 4, 5)]  # Fri, Mon, Tue


async def test_refresh_caches_in_the_store_and_a_restart_asks_nothing_more():
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    broker = Broker({"AAPL": [(D[0], Decimal(1)), (D[1], Decimal(2)), (D[2], Decimal(3))],
                     "MSFT": [(D[1], Decimal(5)), (D[2], Decimal(6))]})
    meta = Meta()
    history = DailyHistory(broker, meta, ["aapl", "MSFT", "NVDA"], sessions=60, pace_s=2, sleep=sleep)
    assert await history.refresh(date(2024, 3, 6)) == ["AAPL", "MSFT", "NVDA"]
    assert slept == [2, 2]  # paced between requests
    assert history.closes(date(2024, 3, 6)) == {"AAPL": [Decimal(2), Decimal(3)], "MSFT": [Decimal(5), Decimal(6)]}
    assert history.closes(date(2024, 3, 5)) == {"AAPL": [Decimal(2)], "MSFT": [Decimal(5)]}  # before the day only
    assert META_KEY in meta.values
    restarted = DailyHistory(Broker({}), meta, ["AAPL", "MSFT"], sessions=60, pace_s=0, sleep=sleep)
    assert await restarted.refresh(date(2024, 3, 6)) == []  # the store had the previous session
    assert restarted.closes(date(2024, 3, 6))["AAPL"] == [Decimal(2), Decimal(3)]
    assert await restarted.refresh(date(2024, 3, 8)) == ["AAPL", "MSFT"]  # Wednesday's closes are missing
