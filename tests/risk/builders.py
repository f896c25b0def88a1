"""Small builders for risk tests: the real profiles, a valid signal, a sizing request."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from config import Settings, load_settings
from config.loader import validate_settings
from risk.request import SizingRequest
from risk.signal import Signal, parse_signal

NY = ZoneInfo("America/New_York")
NOW = datetime(2024, 3, 5, 10, 30, tzinfo=NY)
UNDERLYING = {"0dte": "SPY", "7dte": "AAPL"}
BASE = {"0dte": Decimal(60000), "7dte": Decimal(100000)}


@cache
def settings(profile: str) -> Settings:
    return load_settings(profile, env={})


def settings_with(profile: str, **changes: Any) -> Settings:
    """The profile with dotted keys replaced, validated whole like a real profile."""
    raw = settings(profile).model_dump()
    for key, value in changes.items():
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return validate_settings(raw)


def raw_signal(profile: str = "0dte", /, **fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "sig-1", "profile": profile, "underlying": UNDERLYING[profile], "direction": "bullish",
        "strategy": "directional", "confidence": 0.7, "created_at": NOW.isoformat(),
    }
    raw.update(fields)
    return {k: v for k, v in raw.items() if v is not None}


def signal(profile: str = "0dte", /, **fields: Any) -> Signal:
    return parse_signal(raw_signal(profile, **fields), settings(profile), NOW)


def request(profile: str = "0dte", price: Any = Decimal("3.00"), *, confidence: Any = 0.7,
            sig: Signal | None = None, capital_base: Any = None, **fields: Any) -> SizingRequest:
    """A live (not what-if) request that passes every market-data check unless told otherwise.

    A live 0dte request has greeks (the gate refuses an entry whose greeks are unavailable): a flat
    book and an option of no delta or gamma, so only a test that sets them meets the limits."""
    values: dict[str, Any] = {"vix": Decimal(18) if profile == "0dte" else None, "quote_age_s": Decimal(1),
                              "liquidity_ok": True, **fields}
    if profile == "0dte" and not values.get("what_if"):
        for greek in ("option_delta", "option_gamma", "portfolio_delta", "portfolio_gamma"):
            values.setdefault(greek, Decimal(0))
    if not values.get("what_if"):  # SPEC §10.4: vega and theta limits (both profiles) need their greeks too
        for greek in ("option_vega", "option_theta", "portfolio_vega", "portfolio_theta"):
            values.setdefault(greek, Decimal(0))
    return SizingRequest(signal=sig or signal(profile, confidence=confidence), price=price,
                         capital_base=BASE[profile] if capital_base is None else capital_base, now=NOW, **values)


def with_signal(req: SizingRequest, **fields: Any) -> SizingRequest:
    return replace(req, signal=replace(req.signal, **fields))
