"""Operator commands (SPEC §6): halt, resume, flatten, acknowledge a blocked underlying.

Each is recorded (`record_operator_action`) and answered with a JSON-able result; a command
that cannot apply (resume when not halted, ack of an underlying not blocked) is answered
with a reason code and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from daemon.core.breakers import persist_state
from daemon.core.effects import Outbox
from daemon.core.exits import ExitDesk
from daemon.positions import Book
from daemon.trading import TradingControl

JsonDict = dict[str, Any]


class OperatorDesk:
    def __init__(self, control: TradingControl, book: Book, exits: ExitDesk, blocked: set[str]):
        self.control = control
        self.book = book
        self.exits = exits
        self.blocked = blocked

    def handle(self, action: str, actor: str, args: dict[str, str], now: datetime, out: Outbox) -> JsonDict:
        handler = {"halt": self.halt, "resume": self.resume, "flatten": self.flatten, "ack": self.ack}.get(action)
        if handler is None:
            out.log("warning", "operator_command_unknown", code="unknown_command", action=action, actor=actor)
            return {"ok": False, "error": "unknown_command", "message": f"no operator command {action!r}"}
        result = handler(actor, args, now, out)
        if result.get("ok"):
            out.metric("observe_operator_action", action=action)
        return result

    def halt(self, actor: str, args: dict[str, str], now: datetime, out: Outbox) -> JsonDict:
        reason = args.get("reason") or ""
        self.control.halt(reason or "operator halt")
        out.persist("record_operator_action", action="halt", who=actor, why=reason, at=now)
        persist_state(self.control, reason or "operator halt", now, out)
        out.log("warning", "operator_halt", actor=actor, reason=reason)
        return {"ok": True, "trading_state": self.control.state.value, "latched": True}

    def resume(self, actor: str, args: dict[str, str], now: datetime, out: Outbox) -> JsonDict:
        if not self.control.latched:
            return {"ok": False, "error": "not_halted",
                    "message": f"trading state is {self.control.state.value}, nothing to resume"}
        self.control.resume(now.date())
        out.persist("record_operator_action", action="resume", who=actor, why=None, at=now)
        persist_state(self.control, f"resumed by {actor}", now, out)
        out.log("warning", "operator_resume", actor=actor, trading_state=self.control.state.value,
                breaker_level=self.control.level)
        return {"ok": True, "trading_state": self.control.state.value, "breaker_level": self.control.level}

    def flatten(self, actor: str, args: dict[str, str], now: datetime, out: Outbox) -> JsonDict:
        reason = args.get("reason") or ""
        out.persist("record_operator_action", action="flatten", who=actor, why=reason, at=now,
                    detail={"positions": [p.id for p in self.book]})
        closing = self.exits.close_all(self.book, "operator_flatten", f"operator flatten by {actor}: {reason}", now,
                                       out)
        out.log("warning", "operator_flatten", actor=actor, reason=reason, positions=closing)
        return {"ok": True, "trading_state": self.control.state.value, "closing_positions": closing}

    def ack(self, actor: str, args: dict[str, str], now: datetime, out: Outbox) -> JsonDict:
        raw = args.get("underlying") or ""
        symbol = raw.strip().upper()
        if symbol not in self.blocked:
            return {"ok": False, "error": "not_blocked", "message": f"{symbol or raw!r} is not blocked"}
        out.persist("ack_underlying", underlying=symbol, who=actor, at=now)
        out.persist("record_operator_action", action="ack", who=actor, why=None, at=now,
                    detail={"underlying": symbol})
        self.blocked.discard(symbol)
        return {"ok": True, "underlying": symbol, "blocked_underlyings": sorted(self.blocked)}
