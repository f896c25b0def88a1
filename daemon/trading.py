"""The trading state the engine acts on (SPEC §3): account breaker + operator halt + reconciling.

`risk.breakers` decides levels and states (pure); this holds the current values, restores
them from the store and says what to persist. The whole state is kept as one JSON value in
the store's meta table (so a level-2 daily limit survives a mid-session restart as well as
the level-4 latch) and mirrored into the store's trading-state row, which the API and the
reports read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from config.models import Settings
from daemon.store.records import TradingStateRecord
from risk.breakers import BreakerState, BreakerUpdate, TradingState, evaluate_breaker, resume, trading_state

META_KEY = "engine.trading"


@dataclass
class TradingControl:
    settings: Settings
    breaker: BreakerState = BreakerState()
    operator_halted: bool = False
    halt_reason: str | None = None
    reconciling: bool = False

    @property
    def state(self) -> TradingState:
        return trading_state(self.breaker, operator_halted=self.operator_halted, reconciling=self.reconciling)

    @property
    def level(self) -> int:
        return self.breaker.level

    @property
    def latched(self) -> bool:
        return self.operator_halted or self.breaker.latched

    @property
    def reason(self) -> str | None:
        if self.operator_halted:
            return self.halt_reason
        if self.breaker.level:
            return self.settings.breakers.levels[self.breaker.level - 1].name
        return None

    def evaluate(self, session: date, session_pnl: Decimal, base: Decimal) -> BreakerUpdate:
        update = evaluate_breaker(self.breaker, session, session_pnl, base, self.settings.breakers)
        self.breaker = update.state
        return update

    def halt(self, reason: str) -> None:
        self.operator_halted = True
        self.halt_reason = reason

    def resume(self, session: date) -> None:
        self.operator_halted = False
        self.halt_reason = None
        if self.breaker.latched or self.breaker.level:
            self.breaker = resume(self.breaker, session)

    # ------------------------------------------------------------------ persistence

    def to_meta(self) -> str:
        b = self.breaker
        return json.dumps({
            "breaker": {"session": None if b.session is None else b.session.isoformat(), "level": b.level,
                        "latched": b.latched, "resumed_in_session": b.resumed_in_session},
            "operator_halted": self.operator_halted, "halt_reason": self.halt_reason,
        })

    def restore(self, meta: str | None, record: TradingStateRecord | None) -> None:
        """From the meta value when there is one; a latched trading-state row alone (an older or
        partly written store) restores a halt: when in doubt, stay halted."""
        data: dict[str, Any] = {}
        if meta:
            try:
                data = json.loads(meta)
            except ValueError:
                data = {}
        breaker = data.get("breaker") or {}
        if breaker:
            session = breaker.get("session")
            self.breaker = BreakerState(session=date.fromisoformat(session) if session else None,
                                        level=int(breaker.get("level", 0)), latched=bool(breaker.get("latched")),
                                        resumed_in_session=bool(breaker.get("resumed_in_session")))
        self.operator_halted = bool(data.get("operator_halted"))
        self.halt_reason = data.get("halt_reason")
        if record is not None and record.latched and not self.latched:
            self.operator_halted = True
            self.halt_reason = record.reason or "latched halt restored from the store"
