"""A sizing decision with its whole breakdown, as stored and shown (SPEC §2: every decision is a record)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal
from market.frozen import fast_init

CheckStatus = Literal["pass", "fail", "skip"]
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@fast_init
@dataclass(frozen=True, slots=True)
class GateCheck:
    """One pre-trade check; `skip` when it does not apply or its data was not given (what-if)."""

    name: str
    status: CheckStatus
    detail: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class CapBound:
    """A cap that bound: the multiplier (limit = the multiplier cap) or the contracts (limit = money)."""

    name: str
    kind: Literal["multiplier", "contracts"]
    limit: Decimal
    contracts_before: int
    contracts_after: int


@fast_init
@dataclass(frozen=True)
class Decision:
    """What the sizer decided. `contracts` and `notional` are the sizer's answer even when the gate
    refuses (so an operator sees both); only `accepted` decides whether anything is sent."""

    accepted: bool
    reason: str | None
    profile: str
    action: str
    signal_id: str | None
    underlying: str | None
    contracts: int = 0
    notional: Decimal = Decimal(0)
    contract_value: Decimal | None = None
    min_contracts: int = 0
    min_bet: Decimal | None = None
    max_bet: Decimal | None = None
    capital_base: Decimal | None = None
    multiplier: Decimal = Decimal(0)
    raw_multiplier: Decimal = Decimal(0)
    factors: Mapping[str, Decimal] = field(default_factory=lambda: _EMPTY)
    multiplier_caps: Mapping[str, Decimal] = field(default_factory=lambda: _EMPTY)  # every multiplier cap that applied
    cap_limits: Mapping[str, Decimal] = field(default_factory=lambda: _EMPTY)  # every contracts cap, as money still allowed
    caps: tuple[CapBound, ...] = ()  # the caps that actually reduced the size, in the order applied
    checks: tuple[GateCheck, ...] = ()
    notes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    message: str = ""

    def __post_init__(self) -> None:
        # Frozen all the way down: the breakdown is a record, nobody may edit it after the fact.
        fields = self.__dict__  # (frozen: written directly, as the constructor does)
        for name in ("factors", "multiplier_caps", "cap_limits", "notes"):
            fields[name] = MappingProxyType(dict(fields[name]))

    def to_record(self, *, numbers: bool = False) -> dict[str, Any]:
        """JSON-safe: Decimals as strings (exact, for the store and the API), or with `numbers` as JSON
        numbers wherever the number's text is exact (the CLI), strings otherwise."""
        dec = _json_number if numbers else str  # a Decimal's str is its exact text
        value, min_bet, max_bet, base = self.contract_value, self.min_bet, self.max_bet, self.capital_base
        # The maps and lists built in plain loops: a comprehension builds a function and a frame each
        # time (3.11), more than converting its few items.
        caps = []
        for c in self.caps:
            caps.append({"name": c.name, "kind": c.kind, "limit": dec(c.limit),
                         "contracts_before": c.contracts_before, "contracts_after": c.contracts_after})
        checks = []
        for check in self.checks:
            checks.append({"name": check.name, "status": check.status, "detail": check.detail})
        return {  # (the optional amounts inline: a helper call apiece was a tenth of the record's cost)
            "accepted": self.accepted,
            "reason": self.reason,
            "message": self.message,
            "profile": self.profile,
            "action": self.action,
            "signal_id": self.signal_id,
            "underlying": self.underlying,
            "contracts": self.contracts,
            "notional": dec(self.notional),
            "contract_value": None if value is None else dec(value),
            "min_contracts": self.min_contracts,
            "min_bet": None if min_bet is None else dec(min_bet),
            "max_bet": None if max_bet is None else dec(max_bet),
            "capital_base": None if base is None else dec(base),
            "multiplier": dec(self.multiplier),
            "raw_multiplier": dec(self.raw_multiplier),
            "factors": _amounts(self.factors, dec),
            "multiplier_caps": _amounts(self.multiplier_caps, dec),
            "cap_limits": _amounts(self.cap_limits, dec),
            "caps": caps,
            "checks": checks,
            "notes": self.notes.copy(),  # the proxy's own dict copied (dict(proxy) goes key by key)
        }


def _amounts(amounts: Mapping[str, Decimal], dec: Callable[[Decimal], Any]) -> dict[str, Any]:
    """A record's map of amounts, each as `dec` writes it (a plain loop: see `to_record`)."""
    out: dict[str, Any] = {}
    for k, v in amounts.items():
        out[k] = dec(v)
    return out


_new = object.__new__
_setattr = object.__setattr__


def owned_decision(fields: dict[str, Any]) -> Decision:
    """A `Decision` whose field dict the caller built whole and hands over: every field, in declaration
    order, the four maps already read-only views (`MappingProxyType`) of dicts no one else holds.

    Why: the sizer's every decision went through the 22-keyword constructor and `__post_init__`,
    which copies each map before wrapping it (a caller could keep and edit its dict); the sizer's
    maps are its own fresh dicts, so the copies bought nothing. The instance is the one the
    constructor would build (tests/risk/test_owned_decision.py compares them)."""
    decision = _new(Decision)
    _setattr(decision, "__dict__", fields)  # a dict of its own, as fast_init assigns it (market/frozen.py)
    return decision


def _json_number(value: Decimal) -> int | float | str:
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)
