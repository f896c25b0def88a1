"""An in-memory EngineControl for the API and ops tests (never used by the daemon)."""

from __future__ import annotations

import asyncio
from typing import Any

from daemon.control import ControlError, SignalOutcome


class FakeControl:
    """Decides like a toy engine: refuses unknown underlyings, remembers ids, can be told to fail."""

    def __init__(self, profile: str = "0dte", underlyings: tuple[str, ...] = ("SPY", "QQQ", "IWM")):
        self.profile = profile
        self.underlyings = underlyings
        self.trading_state = "ACTIVE"
        self.accepting = True
        self.blocked: set[str] = set()
        self.decided: dict[str, SignalOutcome] = {}
        self.submissions = 0
        self.calls: list[tuple[str, ...]] = []
        self.fail_with: Exception | None = None
        self.open_positions: list[dict[str, Any]] = []

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            exc, self.fail_with = self.fail_with, None
            raise exc

    async def submit_signal(self, raw: dict, source: str) -> SignalOutcome:
        self._maybe_fail()
        self.submissions += 1
        await asyncio.sleep(0)  # a real engine awaits: give a concurrent duplicate the chance to race
        if not isinstance(raw, dict):
            return SignalOutcome(False, "invalid_signal", 422, {"signal_id": None, "accepted": False}, "not an object")
        signal_id = raw.get("id")
        if not isinstance(signal_id, str):
            return SignalOutcome(False, "invalid_id", 422, {"signal_id": None, "accepted": False}, "id missing")
        if signal_id in self.decided:
            first = self.decided[signal_id]
            return SignalOutcome(False, "duplicate_signal", 409, first.decision, "already decided")
        if not self.accepting:
            return SignalOutcome(False, "reconciling", 503, {"signal_id": signal_id, "accepted": False})
        await asyncio.sleep(0)
        if raw.get("underlying") not in self.underlyings:
            outcome = SignalOutcome(False, "unknown_underlying", 422,
                                    {"signal_id": signal_id, "accepted": False, "reason": "unknown_underlying"},
                                    "not an underlying of this profile")
        else:
            outcome = SignalOutcome(True, None, 200, {"signal_id": signal_id, "accepted": True, "contracts": 3,
                                                      "source": source})
        self.decided[signal_id] = outcome
        return outcome

    def status(self) -> dict:
        self._maybe_fail()
        return {
            "profile": self.profile, "trading_state": self.trading_state, "breaker_level": 1,
            "equity": "60000.00", "session_pnl": "-1250.50", "drawdown": "0.0208", "exposure": "12000.00",
            "open_positions": len(self.open_positions), "broker_connected": True, "market_data_age_s": 0.4,
            "last_checkpoint": "2019-02-11T10:05:00-05:00", "blocked_underlyings": sorted(self.blocked),
            "accepting_signals": self.accepting, "market_open": True,
            "greeks": {"delta": 120.5, "gamma": 8.25, "vega": -40, "theta": -310.75},
        }

    def positions(self) -> list[dict]:
        self._maybe_fail()
        return list(self.open_positions)

    async def halt(self, reason: str, actor: str) -> dict:
        self._maybe_fail()
        self.calls.append(("halt", reason, actor))
        self.trading_state = "HALTED"
        return {"ok": True, "trading_state": self.trading_state, "reason": reason}

    async def resume(self, actor: str) -> dict:
        self._maybe_fail()
        if self.trading_state != "HALTED":
            raise ControlError("not_halted", f"trading state is {self.trading_state}, not HALTED")
        self.calls.append(("resume", actor))
        self.trading_state = "ACTIVE"
        return {"ok": True, "trading_state": self.trading_state}

    async def flatten(self, reason: str, actor: str) -> dict:
        self._maybe_fail()
        self.calls.append(("flatten", reason, actor))
        closing = len(self.open_positions)
        self.open_positions = []
        return {"ok": True, "closing_positions": closing, "trading_state": self.trading_state}

    async def acknowledge(self, underlying: str, actor: str) -> dict:
        self._maybe_fail()
        if underlying not in self.blocked:
            raise ControlError("not_blocked", f"{underlying} is not blocked")
        self.calls.append(("acknowledge", underlying, actor))
        self.blocked.discard(underlying)
        return {"ok": True, "underlying": underlying, "blocked_underlyings": sorted(self.blocked)}


POSITION = {"position_id": "p-1", "underlying": "SPY", "right": "C", "strike": "275", "expiry": "2019-02-11",
            "contracts": 3, "entry_price": "1.25", "mark": "1.40", "unrealized_pnl": "45.00",
            "unrealized_pct": "0.12", "opened_at": "2019-02-11T10:01:00-05:00"}
