"""A trading signal (SPEC §2) and its strict validation.

Anything malformed is refused with a reason code of the `invalid_signal` family; expiry is
not checked here (it depends on when the gate runs, so it is the gate's `signal_expired`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from config.models import Settings
from risk import reasons
from risk.numbers import InvalidInput, require_decimal

Direction = Literal["bullish", "bearish"]
Strategy = Literal["directional", "neutral", "volatility"]
Action = Literal["open", "scale_in"]

DIRECTIONS: tuple[str, ...] = ("bullish", "bearish")
STRATEGIES: tuple[str, ...] = ("directional", "neutral", "volatility")
ACTIONS: tuple[str, ...] = ("open", "scale_in")

REQUIRED_FIELDS = ("id", "profile", "underlying", "direction", "strategy", "confidence", "created_at")
FUNDAMENTAL_FIELDS = ("earnings_surprise_pct", "analyst_buy_pct", "analyst_sell_pct", "pe_ratio", "sector_pe")
OPTIONAL_FIELDS = ("ttl_s", "action", "position_id", *FUNDAMENTAL_FIELDS)

# The id travels inside orderRef `tradingd:<profile>:<id>:<n>`, so it must not contain ':'.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
_PERCENT = Decimal(100)


class SignalRejected(ValueError):
    """A signal that cannot be used. `reason_code` is one of the `invalid_signal` family."""

    family = reasons.INVALID_SIGNAL

    def __init__(self, reason_code: str, message: str):
        self.reason_code = reason_code
        self.message = message
        super().__init__(f"{reason_code}: {message}")


@dataclass(frozen=True, slots=True)
class Fundamentals:
    """7dte fundamentals in percent units (12 means 12 %); a missing value adds nothing to the score."""

    earnings_surprise_pct: Decimal | None = None
    analyst_buy_pct: Decimal | None = None
    analyst_sell_pct: Decimal | None = None
    pe_ratio: Decimal | None = None
    sector_pe: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    id: str
    profile: str
    underlying: str
    direction: Direction
    strategy: Strategy
    confidence: Decimal
    created_at: datetime
    ttl_s: Decimal
    fundamentals: Fundamentals | None = None
    action: Action = "open"
    position_id: str | None = None

    def age_s(self, now: datetime) -> Decimal:
        return Decimal(str((now - self.created_at).total_seconds()))


def parse_signal(raw: Mapping[str, object], settings: Settings, now: datetime) -> Signal:
    """Validate a raw signal (as decoded from JSON) for `settings`' profile. Raises SignalRejected."""
    if not isinstance(raw, Mapping):
        raise SignalRejected(reasons.INVALID_SIGNAL, f"a signal must be an object, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in REQUIRED_FIELDS and k not in OPTIONAL_FIELDS)
    if unknown:
        raise SignalRejected(reasons.UNKNOWN_FIELD, f"unknown field(s): {', '.join(unknown)}")
    missing = [k for k in REQUIRED_FIELDS if raw.get(k) is None]
    if missing:
        raise SignalRejected(reasons.MISSING_FIELD, f"missing field(s): {', '.join(missing)}")

    signal_id = _text(raw, "id")
    if not _ID_PATTERN.match(signal_id):
        raise SignalRejected(reasons.INVALID_ID, "id must be 1-64 characters of letters, digits, '.', '_' or '-'")
    profile = _text(raw, "profile")
    if profile != settings.profile.name:
        raise SignalRejected(reasons.WRONG_PROFILE, f"signal is for profile {profile!r}, this is {settings.profile.name!r}")
    underlying = _text(raw, "underlying")
    if not underlying.isascii():  # "ſpy".upper() is "SPY": no folding of anything but an exact symbol
        raise SignalRejected(reasons.UNKNOWN_UNDERLYING, f"{underlying!r} is not an ASCII symbol")
    if underlying not in settings.profile.underlyings:  # exactly as listed: no trimming, no case folding
        raise SignalRejected(reasons.UNKNOWN_UNDERLYING, f"{underlying!r} is not traded by profile {profile!r}; "
                             f"known: {', '.join(settings.profile.underlyings)}")
    direction = _choice(raw, "direction", DIRECTIONS, reasons.INVALID_DIRECTION)
    strategy = _choice(raw, "strategy", STRATEGIES, reasons.INVALID_STRATEGY)
    action = _choice(raw, "action", ACTIONS, reasons.INVALID_ACTION) if raw.get("action") is not None else "open"
    confidence = _number(raw["confidence"], reasons.INVALID_CONFIDENCE, "confidence",
                         minimum=Decimal(0), maximum=Decimal(1))
    ttl_s = (_number(raw["ttl_s"], reasons.INVALID_TTL, "ttl_s", strictly_above=Decimal(0))
             if raw.get("ttl_s") is not None else Decimal(settings.gate.default_ttl_s))
    created_at = _created_at(raw["created_at"])
    skew = (created_at - now).total_seconds()
    if skew > settings.gate.max_clock_skew_s:
        raise SignalRejected(reasons.CREATED_IN_FUTURE, f"created_at is {skew:.1f} s ahead of our clock "
                             f"(more than {settings.gate.max_clock_skew_s} s)")
    position_id = raw.get("position_id")
    if action == "scale_in" and position_id is None:
        raise SignalRejected(reasons.MISSING_POSITION_ID, "a scale_in signal needs position_id")
    if action == "open" and position_id is not None:
        raise SignalRejected(reasons.UNEXPECTED_POSITION_ID, "position_id is only for action scale_in")
    if position_id is not None:
        position_id = _text(raw, "position_id")
    return Signal(id=signal_id, profile=profile, underlying=underlying, direction=direction,  # type: ignore[arg-type]
                  strategy=strategy, confidence=confidence, created_at=created_at,  # type: ignore[arg-type]
                  ttl_s=ttl_s, fundamentals=_fundamentals(raw), action=action,  # type: ignore[arg-type]
                  position_id=position_id)


def _text(raw: Mapping[str, object], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise SignalRejected(reasons.INVALID_TYPE, f"{key} must be a non-empty string, got {value!r}")
    return value


def _choice(raw: Mapping[str, object], key: str, allowed: tuple[str, ...], code: str) -> str:
    value = _text(raw, key)
    if value not in allowed:
        raise SignalRejected(code, f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _number(value: object, code: str, what: str, **bounds: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise SignalRejected(reasons.INVALID_TYPE, f"{what} must be a number, got {value!r}")
    try:
        return require_decimal(value, code, what, **bounds)
    except InvalidInput as exc:
        raise SignalRejected(exc.code, exc.message) from None


def _created_at(value: object) -> datetime:
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.strip())
        except ValueError:
            raise SignalRejected(reasons.INVALID_CREATED_AT, f"created_at is not ISO-8601: {value!r}") from None
    else:
        raise SignalRejected(reasons.INVALID_TYPE, f"created_at must be an ISO-8601 string, got {value!r}")
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise SignalRejected(reasons.INVALID_CREATED_AT, "created_at needs a time zone (e.g. 2024-01-02T10:00:00-05:00)")
    return stamp


def _fundamentals(raw: Mapping[str, object]) -> Fundamentals | None:
    given = {k: raw[k] for k in FUNDAMENTAL_FIELDS if raw.get(k) is not None}
    if not given:
        return None
    values: dict[str, Decimal] = {}
    for key, value in given.items():
        values[key] = _number(value, reasons.INVALID_FUNDAMENTALS, key)
    for key in ("analyst_buy_pct", "analyst_sell_pct"):
        if key in values and not (0 <= values[key] <= _PERCENT):
            raise SignalRejected(reasons.INVALID_FUNDAMENTALS, f"{key} is a percentage within [0, 100], got {values[key]}")
    if "sector_pe" in values and values["sector_pe"] <= 0:
        raise SignalRejected(reasons.INVALID_FUNDAMENTALS, f"sector_pe must be positive, got {values['sector_pe']}")
    return Fundamentals(**values)
