"""SPEC §10.2: a term-structure inversion is told to the operator once per inversion. The core's
regime host emits `Notify("vol_term_inversion")` at the checkpoint that first sees it; the replay
loop sends it through `daemon.notifications.notify` to the configured URL (a local receiver)."""

from __future__ import annotations

import re

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from broker.pricing import black_scholes, years_between
from broker.surface import expires_at
from config import load_settings
from daemon import notifications
from daemon.core.effects import Notify
from daemon.replay import Replay
from market.session import EXCHANGE_TZ
from market.types import OptionContract, Quote
from tests.daemon.test_notifications import Receiver, _notifier, receiver  # noqa: F401 - the fixture

DAY = date(2025, 3, 3)
FRONT, NEXT = date(2025, 3, 7), date(2025, 3, 14)


def _at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, second, tzinfo=EXCHANGE_TZ)


def _chain(at: datetime, front_vol: float, next_vol: float, spot: float = 100.0) -> list[Quote]:
    """AAPL and both expiries' strikes 90..110, priced at the given vols (each quote sent twice a
    second apart: the second confirms a jump, SPEC §4.4)."""
    out = []
    for n in range(2):
        when = at + timedelta(seconds=n)
        out.append(Quote("AAPL", Decimal(spot) - Decimal("0.01"), Decimal(spot) + Decimal("0.01"), None, when,
                         bid_size=100, ask_size=100))
        for expiry, vol in ((FRONT, front_vol), (NEXT, next_vol)):
            for k in range(90, 111, 2):
                right = "C" if k >= spot else "P"
                c = OptionContract("AAPL", expiry, Decimal(k), right)  # type: ignore[arg-type]
                price = black_scholes(spot, k, years_between(when, expires_at(expiry)), 0.04, vol, right).price
                bid = max(Decimal(repr(round(price, 2))) - Decimal("0.02"), Decimal("0.01"))
                out.append(Quote(c.key, bid, bid + Decimal("0.04"), None, when,
                                 bid_size=50, ask_size=50))
    return out


def _events(quotes: list[Quote]):
    return [(q.received_at, 0, i, q) for i, q in enumerate(sorted(quotes, key=lambda q: q.received_at))]


def test_an_inversion_is_notified_once_per_inversion_through_the_replay_loop(receiver: Receiver,  # noqa: F811
                                                                               tmp_path: Path) -> None:
    settings = load_settings("7dte", env={}, overrides={"broker.kind": "sim"})
    quotes = (_chain(_at(9, 36), 0.45, 0.30)      # inverted: told at the 09:40 checkpoint
              + _chain(_at(9, 46), 0.45, 0.30)    # still inverted at 09:50: not told again
              + _chain(_at(10, 1), 0.25, 0.30)    # normal again at 10:05
              + _chain(_at(10, 16), 0.50, 0.30))  # inverted anew: told again at 10:20
    sent: list[Notify] = []
    notifier = _notifier(receiver, events=("vol_term_inversion",), burst=5)
    notifications.install(notifier)
    try:
        replay = Replay(settings, datetime(DAY.year, DAY.month, DAY.day, tzinfo=EXCHANGE_TZ), log_effects=True)
        take = replay.core.take_effects

        def spy() -> list:  # what the core asked the shell to send, beside what the receiver got
            effects = take()
            sent.extend(e for e in effects if isinstance(e, Notify))
            return effects

        replay.core.take_effects = spy  # type: ignore[method-assign]
        replay.run(_events(quotes), _at(10, 30))
        assert notifier.wait_idle(30)
    finally:
        notifications.install(None)
        notifier.stop()
    assert [n.kind for n in sent] == ["vol_term_inversion", "vol_term_inversion"]
    messages = [m for m in receiver.messages if m["title"].endswith("vol term inversion")]
    assert len(messages) == 2, receiver.messages
    first, second = (m["message"] for m in messages)
    assert "AAPL volatility term structure inverted at 2025-03-03 09:40 ET" in first
    assert re.search(r"front 2025-03-07 ATM IV 4[45]\.\d% above next 2025-03-14 ATM IV (29|30)\.\d%", first), first
    assert "multiplier capped at 1" in first
    assert "2025-03-03 10:20 ET" in second and re.search(r"ATM IV (49|50)\.\d% above", second), second


def test_a_replay_catching_up_does_not_tell_again() -> None:
    """A resumed replay re-running what a killed run already did (log_effects=False) sends nothing."""
    settings = load_settings("7dte", env={}, overrides={"broker.kind": "sim"})
    got: list[tuple[str, str]] = []

    class Spy:
        def notify(self, kind: str, text: str) -> bool:
            got.append((kind, text))
            return True

    notifications.install(Spy())  # type: ignore[arg-type]
    try:
        replay = Replay(settings, datetime(DAY.year, DAY.month, DAY.day, tzinfo=EXCHANGE_TZ), log_effects=False)
        replay.run(_events(_chain(_at(9, 36), 0.45, 0.30)), _at(9, 45))
        assert replay.core.regime.inverted == {"AAPL"}  # it did see the inversion
    finally:
        notifications.install(None)
    assert got == []
