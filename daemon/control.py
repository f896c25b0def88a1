"""The seam between the engine and its operators (HTTP API, `tradingd status|halt|...`).

The engine implements `EngineControl`; `daemon.api` and `daemon.commands.ops` only ever
talk to this protocol, so they are tested against a fake and the engine never imports
aiohttp. Everything crossing this seam is JSON-safe (str, int, float, bool, None, list,
dict; money as decimal strings) so the API can answer it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

JsonDict = dict[str, Any]

# http_status hints a SignalOutcome carries (the API answers with them as they are).
HTTP_ACCEPTED = 200
HTTP_REFUSED = 422  # refused by a rule, or the signal is invalid
HTTP_DUPLICATE = 409  # a signal id already decided: the first decision is answered again
HTTP_NOT_ACCEPTING = 503  # RECONCILING, broker disconnected, starting up or stopping
HTTP_INTERNAL_ERROR = 500  # a bug met while deciding: logged, the daemon carries on
INTERNAL_ERROR = "internal_error"

# Keys `status()` answers. The engine may add more; the API and the ops command
# show these first and tolerate any of them being None (e.g. equity before the
# first account snapshot).
STATUS_KEYS = (
    "profile",  # "0dte" | "7dte"
    "trading_state",  # "ACTIVE" | "REDUCING" | "HALTED" | "RECONCILING" | "STARTING"
    "breaker_level",  # 0..4
    "equity",  # decimal string
    "session_pnl",  # decimal string, realized + unrealized
    "drawdown",  # decimal string, fraction of the base (0.05 = 5 %)
    "exposure",  # decimal string, premium at risk
    "open_positions",  # int
    "broker_connected",  # bool
    "market_data_age_s",  # float | None, age of the freshest underlying quote
    "last_checkpoint",  # ISO datetime | None
    "blocked_underlyings",  # list[str], waiting for `acknowledge`
    "accepting_signals",  # bool
)
# Optional keys `daemon.metrics.Metrics.update_from_status` also reads when present:
# "greeks" {delta, gamma, vega, theta}, "market_open" (bool, regular hours),
# "disconnect_expected" (bool, inside IB's restart window or the weekend).


@dataclass(frozen=True)
class SignalOutcome:
    """What the engine decided about one signal.

    `decision` is the decision record (JSON-safe), the same row the store keeps.
    `reason` is a stable snake_case code (SPEC §2.1 names) when refused, None when accepted.
    `http_status` is a hint the API answers with: 200, 422, 409, 503 or 500 (see HTTP_*).
    """

    accepted: bool
    reason: str | None = None
    http_status: int = HTTP_ACCEPTED
    decision: JsonDict = field(default_factory=dict)
    message: str | None = None

    def to_json(self) -> JsonDict:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "message": self.message,
            "decision": self.decision,
        }


class ControlError(Exception):
    """An operator command the engine cannot carry out (not a crash).

    Raised by `halt`/`resume`/`flatten`/`acknowledge`, e.g. `resume` while not halted
    (`not_halted`), `acknowledge` of an underlying that is not blocked (`not_blocked`).
    The API answers `http_status` with `{"ok": false, "reason": code, "message": ...}`.
    """

    def __init__(self, code: str, message: str, http_status: int = 409):
        self.code = code
        self.message = message
        self.http_status = http_status
        super().__init__(f"{code}: {message}")


@runtime_checkable
class EngineControl(Protocol):
    """What operators may ask of a running engine. One instance per profile/process.

    Operator commands return a JSON-safe dict describing what was done (at least
    `{"ok": True, "trading_state": ..., ...}`) and are recorded by the engine with `actor`
    (the API passes "api:admin"; the CLI goes through the API).
    """

    async def submit_signal(self, raw: JsonDict, source: str) -> SignalOutcome:
        """Validate, decide and (if accepted) act on one signal; idempotent on `raw["id"]`.

        `raw` is the parsed JSON body exactly as received (it may be anything: the engine
        validates). `source` says where it came from ("api", "replay:<file>").
        A second submission of a decided id answers the first decision with 409.
        """
        ...

    def status(self) -> JsonDict:
        """A snapshot with at least STATUS_KEYS. Cheap and non-blocking."""
        ...

    def positions(self) -> list[JsonDict]:
        """Open positions: position_id, underlying, right, strike, expiry, contracts,
        entry_price, mark, unrealized_pnl, unrealized_pct, opened_at (JSON-safe)."""
        ...

    async def halt(self, reason: str, actor: str) -> JsonDict:
        """Latch HALTED (nothing but flattening) until `resume`."""
        ...

    async def resume(self, actor: str) -> JsonDict:
        """Leave HALTED for ACTIVE (or for what the breakers allow)."""
        ...

    async def flatten(self, reason: str, actor: str) -> JsonDict:
        """Close every open position at once (marketable limits)."""
        ...

    async def acknowledge(self, underlying: str, actor: str) -> JsonDict:
        """Unblock an underlying blocked at start-up for unknown broker positions (SPEC §6.1)."""
        ...
