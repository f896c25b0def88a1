"""One thing the exit rules ask the engine to do (SPEC §5.4)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

ActionKind = Literal["close", "partial_close", "tighten_stop", "alert"]


@dataclass(frozen=True, slots=True)
class ExitAction:
    """`quantity`: contracts to sell for close/partial_close; the open quantity the stop
    order should cover for tighten_stop; 0 for alert. `rule` is a stable snake_case id."""

    kind: ActionKind
    quantity: int
    reason: str
    rule: str
    stop_price: Decimal | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "quantity": self.quantity,
            "rule": self.rule,
            "reason": self.reason,
            "stop_price": None if self.stop_price is None else str(self.stop_price),
        }
