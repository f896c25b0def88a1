"""Part 8 on the whole live shell over the core: SPEC §2.1's gate order (no-quote checks first) and §4.4's
`bad_market_data` (a replay with a ×10 bar and a crossed quote sends no order)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from daemon.core.effects import RequestSnapshot
from daemon.metrics import Metrics
from market.clock import EXCHANGE_TZ
from market.types import Quote
from tests.daemon.test_live_rig import DAY1, Rig, at


def _spike(rig: Rig, symbol: str, end: datetime, factor: int = 10) -> None:
    """The bar ending at `end` multiplied by `factor` (open, high, low, close: a consistent bar)."""
    rig.bars[symbol] = [replace(b, open=b.open * factor, high=b.high * factor, low=b.low * factor,
                                close=b.close * factor) if b.end == end else b for b in rig.bars[symbol]]
    rig.feed.bars = rig.bars


async def test_confidence_below_threshold_is_answered_before_any_quote_exists(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    try:
        assert rig.quotes.get("SPY") is None and len(rig.quotes) == 0
        now = rig.clock.now()
        low = await rig.engine.submit_signal(rig.signal("c-1", "SPY", "bullish", 0.5, now), "t")
        assert low.reason == "confidence_below_threshold"
        old = await rig.engine.submit_signal(rig.signal("c-2", "SPY", "bullish", 0.9, now - timedelta(minutes=5)),
                                             "t")
        assert old.reason == "signal_expired"
        ancient = await rig.engine.submit_signal(
            rig.signal("c-3", "SPY", "bullish", 0.9, datetime(1, 1, 1, tzinfo=EXCHANGE_TZ)), "t")
        assert ancient.reason == "signal_expired"
        rig.engine.blocked.add("SPY")
        blocked = await rig.engine.submit_signal(rig.signal("c-4", "SPY", "bullish", 0.9, now), "t")
        assert blocked.reason == "underlying_blocked"
        rig.engine.blocked.discard("SPY")
        adding = await rig.engine.submit_signal(
            rig.signal("c-6", "SPY", "bullish", 0.5, now, action="scale_in", position_id="99"), "t")
        assert adding.reason == "confidence_below_threshold"  # before the position is even looked for
        fine = await rig.engine.submit_signal(rig.signal("c-5", "SPY", "bullish", 0.9, now), "t")
        assert fine.reason == "stale_market_data"  # only now, with every no-quote check passed
        assert len(rig.quotes) == 0 or rig.quotes.get("SPY") is None
        stored = {d.signal_id: d.breakdown for d in await rig.store.recent_decisions()}
        checks = [c["name"] for c in stored["c-1"]["checks"]]
        assert checks[:6] == ["duplicate_signal", "signal_expired", "halted", "underlying_blocked",
                              "store_unavailable", "confidence_below_threshold"]  # SPEC §2.1 (§6.2 in its place)
    finally:
        await rig.close()


async def test_a_replay_with_a_x10_bar_and_a_crossed_quote_sends_no_order(tmp_path: Path) -> None:
    metrics = Metrics("0dte")
    rig = Rig(tmp_path, "0dte", ["SPY"], metrics=metrics)
    _spike(rig, "SPY", at(DAY1, 10, 29))
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28, 40))  # inside the spiked bar: its quotes are ten times the last usable
        spy = rig.quotes.get("SPY")
        assert spy is not None and not spy.usable and spy.mid is not None and spy.mid > 2000
        spiked = await rig.engine.submit_signal(rig.signal("x10", "SPY", "bearish", 0.91, rig.clock.now()), "t")
        assert spiked.reason == "bad_market_data" and "tick_jump" in (spiked.message or "")

        await rig.until(at(DAY1, 10, 40))  # back to normal bars: usable again
        assert rig.quotes.get("SPY").usable  # type: ignore[union-attr]
        now = rig.clock.now()
        usable = rig.quotes.get("SPY")
        assert usable is not None
        rig.quotes.update(Quote("SPY", usable.ask + Decimal("0.50"), usable.ask, usable.last, now, 100, 100))
        crossed = await rig.engine.submit_signal(rig.signal("crossed", "SPY", "bearish", 0.91, now), "t")
        assert crossed.reason == "bad_market_data" and "crossed" in (crossed.message or "")

        await rig.until(at(DAY1, 10, 45))
        assert await rig.store.list_orders() == []
        assert await rig.store.list_positions() == []
        rendered = metrics.render()[0].decode()
        assert 'tradingd_bad_market_data_total{profile="0dte",reason="tick_jump"}' in rendered
        assert 'tradingd_bad_market_data_total{profile="0dte",reason="crossed"}' in rendered
    finally:
        await rig.close()


async def test_the_same_replay_without_the_spike_trades(tmp_path: Path) -> None:
    """The control: the signals above are tradeable on clean data (so the refusals are the data's)."""
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28, 40))
        accepted = await rig.engine.submit_signal(rig.signal("clean", "SPY", "bearish", 0.91, rig.clock.now()), "t")
        assert accepted.accepted, accepted
    finally:
        await rig.close()


async def test_an_exit_on_a_bad_quote_asks_for_a_fresh_snapshot(tmp_path: Path) -> None:
    """SPEC §4.4: exits never price on an unusable quote; they ask for a snapshot, which replaces it."""
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28))
        opened = await rig.engine.submit_signal(rig.signal("pos", "SPY", "bearish", 0.91, rig.clock.now()), "t")
        assert opened.accepted, opened
        await rig.until(at(DAY1, 10, 31))
        (position,) = rig.engine.book.held()
        asked: list[str] = []
        real_snapshot = rig.broker.snapshot

        async def snapshot(key: str) -> Quote:
            asked.append(key)
            return await real_snapshot(key)

        rig.broker.snapshot = snapshot  # type: ignore[method-assign]
        good = rig.quotes.get(position.key)
        assert good is not None and good.usable and good.bid is not None
        # crossed, stamped like the model's quotes (the sim's snapshot carries its underlying's stamp)
        rig.quotes.update(Quote(position.key, good.bid + 1, good.bid, None, good.received_at, 10, 10,
                                modelled=True))
        assert rig.quotes.problem(position.key) is not None
        await rig.engine.settle()
        assert asked == [position.key]
        fresh = rig.quotes.get(position.key)
        assert fresh is not None and fresh.usable and rig.quotes.problem(position.key) is None
    finally:
        await rig.close()


async def test_the_stream_and_snapshot_paths_are_checked(tmp_path: Path) -> None:
    """The IB stream calls the shell's `on_quote`; a signal's snapshots (`_fresh_market`) come back through the
    quote book too: both are checked, by the book and again by the core."""
    metrics = Metrics("0dte")
    rig = Rig(tmp_path, "0dte", ["SPY"], metrics=metrics)
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 0))
        now = rig.clock.now()
        rig.engine.on_quote(Quote("QQQ", Decimal("-1"), Decimal("170.00"), None, now, 100, 100))  # IB's "no value"
        assert rig.quotes.problem("QQQ") is not None and rig.quotes.problem("QQQ").reason == "invalid_price"  # type: ignore[union-attr]

        async def crossed_snapshot(key: str) -> Quote:
            return Quote(key, Decimal("2.00"), Decimal("1.50"), None, now, 10, 10)

        async def no_stream(keys: list[str]) -> None:  # as IB before the first tick: only the snapshot answers
            return None

        rig.broker.snapshot = crossed_snapshot  # type: ignore[method-assign]
        rig.broker.subscribe = no_stream  # type: ignore[method-assign]
        key = "SPY 20190211 C 300"
        rig.engine.effects.carry_out([RequestSnapshot(key)])  # as the core asks one (an exit on a bad quote)
        await rig.engine.settle()
        assert rig.quotes.problem(key) is not None and rig.quotes.problem(key).reason == "crossed"  # type: ignore[union-attr]
        assert not rig.quotes.get(key).usable  # type: ignore[union-attr]
        assert rig.engine.core.quotes.problem(key).reason == "crossed"  # type: ignore[union-attr]
        assert not rig.engine.core.quotes.get(key).usable  # type: ignore[union-attr]
        rendered = metrics.render()[0].decode()
        assert 'reason="invalid_price"' in rendered and 'reason="crossed"' in rendered
    finally:
        await rig.close()


async def test_a_vix_glitch_is_bad_market_data_not_vix_above_threshold(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28, 40))
        vix = rig.quotes.get("VIX")
        assert vix is not None and vix.usable and vix.mid is not None and vix.mid < 30
        now = rig.clock.now()
        rig.quotes.update(Quote("VIX", None, None, vix.mid * 10, now))
        answer = await rig.engine.submit_signal(rig.signal("vix", "SPY", "bearish", 0.91, now), "t")
        assert answer.reason == "bad_market_data" and "VIX" in (answer.message or "")
    finally:
        await rig.close()
