"""A rig for daemon tests: the live shell over the core (`daemon.live.LiveShell`, what `tradingd run`
runs), sim broker, option model, store (a file in tmp) and replay feed on a virtual clock over the
bundled bars of chosen symbols and days; the core's own timers fire on that clock.

Imported by the live shell's (test_live_*), lifecycle, restart and breaker tests; its own test checks
the rig.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from broker.quote_model import OptionQuoteModel
from broker.quotes import QuoteBook
from broker.sim import SimBroker
from config.loader import load_settings
from daemon.bars import BUNDLED, load_daily_bars, load_minute_bars
from market.clock import EXCHANGE_TZ
from daemon.live import LiveShell
from daemon.feed import ReplayClock, ReplayFeed
from daemon.scheduler import VirtualScheduler
from daemon.store import Store

DAY1 = date(2019, 2, 11)
# At-the-money strikes (no greek limits) and per-position stops out of the way: a position rides
# the real path, so the account breakers can be walked on it.
RIDE = {"gate.max_abs_delta": 1_000_000, "gate.max_gamma": 1_000_000, "position_levels.alert_pct": -0.8,
        "position_levels.close_half_pct": -0.9, "position_levels.hard_stop_pct": -0.95}
LEVEL_NAMES = ("caution", "daily_limit", "reduce", "emergency_halt")


def breaker_levels(*loss_pcts: float) -> dict[str, Any]:
    """Account breaker levels at these fractions of the base (small, so one morning reaches them)."""
    return {"breakers.levels": [{"level": i + 1, "name": LEVEL_NAMES[i], "loss_pct": pct}
                                for i, pct in enumerate(loss_pcts)]}


def at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=EXCHANGE_TZ)


class Rig:
    def __init__(self, tmp_path: Path, profile: str, symbols: Sequence[str], days: Sequence[date] = (DAY1,),
                 overrides: dict[str, Any] | None = None, db: str | None = None, start: datetime | None = None,
                 broker: type[SimBroker] = SimBroker, metrics: Any = None, replay_closes: bool = True):
        """`replay_closes` False: no daily closes given (as live over the sim: the VIX history comes from quotes)."""
        self.tmp_path = tmp_path
        self.settings = load_settings(profile, env={}, overrides={
            "daemon.state_dir": str(tmp_path), "daemon.api.port": 0, **(overrides or {})})
        wanted = set(days)
        self.bars = {s: [b for b in load_minute_bars(BUNDLED, s) if b.end.date() in wanted]
                     for s in [*symbols, self.settings.profile.vix_symbol]}
        self.daily = {s: load_daily_bars(BUNDLED, s) for s in symbols}
        self.db = db or f"sqlite:///{tmp_path / f'{profile}.db'}"
        self.clock = ReplayClock(start or at(min(days), 0, 0))
        self.quotes = QuoteBook()
        self.model = OptionQuoteModel(self.quotes, self.clock, self.settings.broker.sim.model,
                                      self.settings.profile.vix_symbol, self.settings.profile.contract_multiplier)
        self.broker = broker(self.quotes, self.clock, self.settings, quote_model=self.model)
        self.store = Store(profile, self.db, state_dir=tmp_path)
        self.engine: Any = LiveShell(self.settings, self.clock, self.store, self.broker, self.quotes,
                                     daily_closes=self._closes if replay_closes else None, metrics=metrics)
        self.clock.quiesce = self.engine.settle
        self.scheduler = VirtualScheduler([], self.clock, after_each=self.engine.settle)  # the core times its jobs
        self.feed = ReplayFeed(self.clock, self.quotes, self.bars, scheduler=self.scheduler,
                               settle=self.engine.settle)
        self.fired: list[tuple[str, datetime]] = []  # the core's timers (job, when), in order, as they fire
        timers = self.engine.core.timers
        due = timers.due

        def recorded(now: datetime) -> Any:
            events = due(now)
            self.fired.extend((e.name, e.at) for e in events)
            return events

        timers.due = recorded

    def _closes(self, day: date) -> dict[str, list[Decimal]]:
        return {s: [b.close for b in bars if b.day < day] for s, bars in self.daily.items()}

    async def start(self) -> Any:
        await self.engine.start()
        return self.engine

    async def until(self, when: datetime) -> None:
        await self.feed.run_until(when)

    async def close(self) -> None:
        await self.engine.stop()
        await self.store.close()

    def signal(self, sid: str, underlying: str, direction: str, confidence: float, when: datetime,
               **extra: Any) -> dict[str, Any]:
        return {"id": sid, "profile": self.settings.profile.name, "underlying": underlying, "direction": direction,
                "strategy": "directional", "confidence": confidence, "created_at": when.isoformat(), **extra}


async def test_rig_replays_a_morning_on_the_virtual_clock(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    try:
        await rig.until(at(DAY1, 9, 45))
        assert rig.clock.now() == at(DAY1, 9, 45)
        spy = rig.quotes.get("SPY")
        assert spy is not None and spy.received_at <= at(DAY1, 9, 45)
        fired = [name for name, _ in rig.fired]
        assert "session_open" in fired and "correlation_refresh" in fired and "checkpoint" in fired
        assert rig.engine.status()["trading_state"] == "ACTIVE"
    finally:
        await rig.close()
