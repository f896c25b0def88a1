"""Room expiry (SPEC §6.3) through the replay loop: the close-out cannot sell (nobody bids for the
option: the sim venue's bids are withheld from just after the entry), so the position is held through
the close; after it the core settles it at intrinsic value from SPY's last price and the venue settles
its own book the same way: both end flat, with the same money."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from config import load_settings
from daemon.core.effects import Persist, SettleExpired
from daemon.feed import underlying_quote
from daemon.replay import Replay
from daemon.signals.jsonl import TimedSignal
from market.session import EXCHANGE_TZ

DAY = date(2026, 11, 30)  # a Monday session


def _at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute, second), tzinfo=EXCHANGE_TZ)


def _spy(at: datetime) -> Decimal:
    """600 at the open, rising a cent a minute from 10:00: the bought call ends in the money."""
    minutes = max(0, int((at - _at(10, 0)).total_seconds() // 60))
    return Decimal("600.00") + Decimal("0.05") * minutes


def _events():  # type: ignore[no-untyped-def]
    seq = 0
    at = _at(9, 30)
    while at <= _at(16, 0):
        for quote in (underlying_quote("SPY", _spy(at), at), underlying_quote("VIX", Decimal("15"), at, index=True)):
            yield at, 0, seq, quote
            seq += 1
        if at == _at(10, 0):
            raw = {"id": "held-through", "profile": "0dte", "underlying": "SPY", "direction": "bullish",
                   "strategy": "directional", "confidence": 0.9, "created_at": at.isoformat()}
            yield at, 2, seq, TimedSignal(at, raw, 1)
            seq += 1
        at += timedelta(seconds=30)


def test_a_0dte_the_closeout_cannot_sell_is_settled_after_the_close_and_the_venue_agrees() -> None:
    settings = load_settings("0dte", env={}, overrides={"broker.kind": "sim", "gate.max_abs_delta": 1_000_000,
                                                        "gate.max_gamma": 1_000_000})
    from daemon.backtest.run import Collector

    collector = Collector()
    replay = Replay(settings, _at(0, 0), log_effects=False, sink=collector)
    seen: list = []
    take = replay.core.take_effects

    def spy():  # type: ignore[no-untyped-def]
        effects = take()
        seen.extend(effects)
        return effects

    replay.core.take_effects = spy  # type: ignore[method-assign]

    def fault(events):  # type: ignore[no-untyped-def]
        withheld = False
        for event in events:
            held = replay.venue.positions()
            if held and not withheld:  # the entry filled: from now on nobody bids for the option
                replay.venue.withhold_bids(held[0].contract.key, _at(23, 0))
                withheld = True
            yield event

    replay.run(fault(_events()), _at(17, 0))
    bought = [e.payload["fill"] for e in seen if isinstance(e, Persist) and e.op == "apply_fill"
              and e.payload["fill"].side == "BUY"]
    assert bought, "the signal was entered"
    contract = bought[0].contract
    rules = [e.payload["rule"] for e in seen if isinstance(e, Persist) and e.op == "record_exit_event"]
    assert len(rules) > 1 and rules[-1] == "expiry", rules  # exits (take-profit tiers) tried; nothing sold
    assert not [e for e in seen if isinstance(e, Persist) and e.op == "apply_fill" and e.payload["fill"].side == "SELL"]
    closing = [e.payload for e in seen if isinstance(e, Persist) and e.op == "close_position"][-1]
    last = _spy(_at(16, 0))
    assert closing["exit_price"] == last - contract.strike > 0 and closing["reason"] == "expired"
    assert closing["closed_at"] == _at(16, 5)
    assert [e.prices for e in seen if isinstance(e, SettleExpired)] == [{"SPY": last}]
    # book and venue agree: both flat, no order left working, the same money
    assert len(replay.core.book) == 0 and replay.venue.positions() == [] and replay.venue.open_orders() == []
    assert abs((replay.venue.cash - settings.capital.account_size) - replay.core.realized_total) < Decimal("0.01")

    # the backtest report's trade: closed at the settlement, its P&L the core's realized
    from types import SimpleNamespace

    from daemon.backtest.run import _result

    data = SimpleNamespace(name="expiry-test", digest=lambda: "-", days=lambda: [DAY])
    [trade] = _result(settings, data, "new", None, collector, {}, [], {}).trades  # type: ignore[arg-type]
    assert trade["closed"] and trade["close_reason"] == "expired" and trade["settlement_price"] == str(last - contract.strike)
    assert Decimal(trade["pnl"]) == replay.core.realized_total
