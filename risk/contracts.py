"""From bet and multiplier to a contract count, and the caps that floor it (SPEC §2.3, §2.4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from config.models import Settings, SizingConfig
from risk import reasons
from risk.capital import BetLimits
from risk.correlation import Regime
from risk.decision import CapBound
from risk.request import OpenPositionView
from market.frozen import fast_init
from risk.sector import SECTOR_CAP, sector_room

# (`{d!s}` for a Decimal: the text of a bare `{d}` without its format-spec parsing; risk/gate.py)


_ZERO = Decimal(0)


@fast_init
@dataclass(frozen=True)
class ContractSizing:
    contract_value: Decimal
    min_contracts: int
    scaled: int  # before the caps
    contracts: int  # after the caps
    notional: Decimal
    cap_limits: Mapping[str, Decimal]
    bound: tuple[CapBound, ...]
    reason: str | None  # contract_too_expensive | below_minimum_bet | None
    message: str


def contract_value(price: Decimal, multiplier: int) -> Decimal:
    return price * multiplier


# No rounding argument to parse: Decimal's C argument parsing (`to_integral_value(rounding)`) costs
# about as much as the rounding itself. Where the floored count is then raised to a bound of zero or more, `int()`
# (which truncates toward zero, with no argument parsing) gives the same count: the two differ only
# below zero, where the bound wins either way. A two-value max is a comparison: the builtin parses
# its (keyword) arguments on every call, more than the Decimal comparison itself; these run several
# times per decision.
#
# The Decimal's own `__ceil__` / `__trunc__` are called as methods: the int of `math.ceil(d)` /
# `int(d)` (the very C function each calls: rounding to an integer, ROUND_CEILING / ROUND_DOWN, then
# the conversion, with the same errors for an infinity or NaN), without `int`'s type call and argument
# parsing or `math`'s special-method lookup (~0.5k instructions each; a few a decision).
# `int(d.to_integral_value(ROUND_CEILING))` rounded twice and parsed an argument.
def min_contracts(min_bet: Decimal, value: Decimal) -> int:
    return (min_bet / value).__ceil__()


def scaled_contracts(minimum: int, multiplier: Decimal) -> int:
    """`minimum` (a count, never below zero) scaled by `multiplier`, floored, and never below `minimum`."""
    scaled = (minimum * multiplier).__trunc__()  # int(): see above
    return scaled if scaled > minimum else minimum


def apply_caps(contracts: int, value: Decimal, limits: Mapping[str, Decimal]) -> tuple[int, tuple[CapBound, ...]]:
    """Each cap in order floors the count to what its money allows (never below zero)."""
    bound: list[CapBound] = []
    for name, money in limits.items():
        room = money / value
        if room >= contracts:
            # The cap leaves room for every contract: its count (`room` floored, `contracts` a count of
            # zero or more) would not be below `contracts`. Decided on the quotient itself: its int is
            # ~2x the comparison, and most caps do not bind.
            continue
        allowed = room.__trunc__()  # (int(room); value > 0: truncated, then at least zero, as floored would be)
        if allowed < 0:
            allowed = 0
        if allowed < contracts:
            bound.append(CapBound(name=name, kind="contracts", limit=money,
                                  contracts_before=contracts, contracts_after=allowed))
            contracts = allowed
    return contracts, tuple(bound)


def open_exposure_of(open_positions: Sequence[OpenPositionView], multiplier: int) -> Decimal:
    """The money in the open positions, summed from zero in position order."""
    total = _ZERO  # (a plain loop: a comprehension builds a function and runs a frame per call, 3.11)
    for p in open_positions:
        total += p.exposure(multiplier)
    return total


def exposure_cap_pct(book_regime: Regime, cfg: SizingConfig) -> Decimal:
    """Total exposure cap as a fraction of the base, tighter for a correlated book when configured (7dte)."""
    if book_regime == "high" and cfg.max_exposure_pct_high is not None:
        return cfg.max_exposure_pct_high
    if book_regime in ("high", "moderate") and cfg.max_exposure_pct_moderate is not None:
        return cfg.max_exposure_pct_moderate
    return cfg.max_exposure_pct


def book_cap_limits(underlying: str, base: Decimal, open_positions: Sequence[OpenPositionView],
                    buying_power: Decimal | None, book_regime: Regime, settings: Settings, *,
                    open_exposure: Decimal | None = None) -> dict[str, Decimal]:
    """The money each §2.4 cap after the maximum bet still allows, given what is already open.
    `open_exposure`: `open_exposure(open_positions, multiplier)` when the caller has it already."""
    multiplier = settings.profile.contract_multiplier
    sizing = settings.sizing
    limits: dict[str, Decimal] = {}
    if sizing.per_underlying_alloc_pct is not None:
        on_underlying = _ZERO  # (a plain loop, summed from zero in position order: no comprehension frame)
        for p in open_positions:
            if p.underlying == underlying:
                on_underlying += p.exposure(multiplier)
        limits["per_underlying"] = sizing.per_underlying_alloc_pct * base - on_underlying
    sector = sector_room(underlying, base, open_positions, settings.regime.sectors, multiplier)
    if sector is not None:  # SPEC §10.3, between the underlying's and the whole book's caps
        limits[SECTOR_CAP] = sector
    total = open_exposure_of(open_positions, multiplier) if open_exposure is None else open_exposure
    limits["total_exposure"] = exposure_cap_pct(book_regime, sizing) * base - total
    if buying_power is not None:
        limits["buying_power"] = buying_power
    return limits


def size_entry(bets: BetLimits, value: Decimal, multiplier: Decimal,
               book_limits: Mapping[str, Decimal], *, minimum: int | None = None) -> ContractSizing:
    """SPEC §2.3: the minimum in contracts, scaled, then capped; refused below the minimum bet.
    `minimum`: `min_contracts(bets.min_bet, value)` when the caller has it already."""
    if minimum is None:
        minimum = min_contracts(bets.min_bet, value)
    scaled = scaled_contracts(minimum, multiplier)
    limits = {"max_bet": bets.max_bet, **book_limits}
    contracts, bound = apply_caps(scaled, value, limits)
    notional = contracts * value
    reason, message = None, ""
    if value > bets.max_bet:
        reason = reasons.CONTRACT_TOO_EXPENSIVE
        message = f"one contract costs {value!s}, more than the maximum bet {bets.max_bet!s}"
    elif notional < bets.min_bet:
        reason = reasons.BELOW_MINIMUM_BET
        names = ", ".join(b.name for b in bound) or "the bet limits"
        message = f"{contracts} contracts = {notional!s} after {names}, below the minimum bet {bets.min_bet!s}"
        by_sector = next((b for b in bound if b.name == SECTOR_CAP), None)
        if by_sector is not None and by_sector.contracts_before * value >= bets.min_bet:
            # the sector's cap is what took the bet below the minimum: refused for the sector (SPEC §10.3)
            reason = reasons.SECTOR_LIMIT
            message = (f"sector cap leaves {by_sector.limit!s} for this underlying's sector: {contracts} contracts = "
                       f"{notional!s}, below the minimum bet {bets.min_bet!s}")
    return ContractSizing(value, minimum, scaled, contracts, notional, limits, bound, reason, message)  # (positional: no keyword matching)
