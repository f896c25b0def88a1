"""What the exit rules remember between evaluations. The daemon stores it and hands it back,
so a restarted daemon never fires a once-only rule twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exits.errors import ExitInputError
from risk.numbers import MAX_MAGNITUDE

RECORD_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExitState:
    """Advanced only by the exit evaluation itself.

    fired: ids of once-only rules that have fired (tiers, thresholds, levels, alerts, close-outs).
    quantity_closed: contracts the rules have asked to close, in total.
    profit_closed: of those, contracts closed by 7dte partial profit-taking (its cumulative base).
    peak_price: highest premium seen (7dte trailing), starting at the entry price.
    stop_price / stop_rule: the protective stop and the rule that set it; only ever raised.
    stop_announced: the stop last sent out in an action (or placed at entry).
    exit_at_open_since: when an overnight gap flagged the position to exit at the next open.
    """

    fired: frozenset[str] = field(default_factory=frozenset)
    quantity_closed: int = 0
    profit_closed: int = 0
    peak_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_rule: str | None = None
    stop_announced: Decimal | None = None
    exit_at_open_since: datetime | None = None

    @property
    def exit_at_open(self) -> bool:
        return self.exit_at_open_since is not None

    def has_fired(self, rule_id: str) -> bool:
        return rule_id in self.fired

    def to_record(self) -> dict[str, Any]:
        """JSON-safe: Decimals and datetimes as strings, sets as sorted lists."""
        return {
            "v": RECORD_VERSION,
            "fired": sorted(self.fired),
            "quantity_closed": self.quantity_closed,
            "profit_closed": self.profit_closed,
            "peak_price": _text(self.peak_price),
            "stop_price": _text(self.stop_price),
            "stop_rule": self.stop_rule,
            "stop_announced": _text(self.stop_announced),
            "exit_at_open_since": None if self.exit_at_open_since is None else self.exit_at_open_since.isoformat(),
        }

    @staticmethod
    def from_record(record: Any) -> ExitState:
        if not isinstance(record, dict) or record.get("v") != RECORD_VERSION:
            raise ExitInputError("bad_exit_state", f"not an exit state record of version {RECORD_VERSION}")
        try:
            fired = record["fired"]
            if not isinstance(fired, list) or not all(isinstance(f, str) for f in fired):
                raise ExitInputError("bad_exit_state", "fired must be a list of rule ids")
            since = record["exit_at_open_since"]
            state = ExitState(
                fired=frozenset(fired),
                quantity_closed=_count(record["quantity_closed"], "quantity_closed"),
                profit_closed=_count(record["profit_closed"], "profit_closed"),
                peak_price=_decimal(record["peak_price"], "peak_price"),
                stop_price=_decimal(record["stop_price"], "stop_price"),
                stop_rule=_optional_str(record["stop_rule"], "stop_rule"),
                stop_announced=_decimal(record["stop_announced"], "stop_announced"),
                exit_at_open_since=None if since is None else datetime.fromisoformat(since),
            )
        except KeyError as exc:
            raise ExitInputError("bad_exit_state", f"exit state record lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ExitInputError):
                raise
            raise ExitInputError("bad_exit_state", f"bad exit state record: {exc}") from None
        if state.exit_at_open_since is not None and state.exit_at_open_since.tzinfo is None:
            raise ExitInputError("bad_exit_state", "exit_at_open_since must be timezone-aware")
        if state.profit_closed > state.quantity_closed:
            raise ExitInputError("bad_exit_state", "profit_closed exceeds quantity_closed")
        return state


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or abs(number) > MAX_MAGNITUDE:
        raise ExitInputError("bad_exit_state", f"{name} must be a decimal string of at most {MAX_MAGNITUDE}, "
                                               f"got {value!r}")
    return number


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExitInputError("bad_exit_state", f"{name} must be a whole number >= 0, got {value!r}")
    return value


def _optional_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ExitInputError("bad_exit_state", f"{name} must be a string, got {value!r}")
    return value
