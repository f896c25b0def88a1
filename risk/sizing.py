"""`evaluate`: the one entry point for sizing a new position (SPEC §2).

It always sizes (so `tradingd size` shows the sizer's answer even when the gate refuses), then
runs the whole gate. Bad numbers are refused with a reason code, never raised.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType

from config.models import Settings
from config.plain import plain
from risk import reasons
from risk.capital import bet_limits
from risk.contracts import (book_cap_limits, contract_value, min_contracts, open_exposure_of, scaled_contracts,
                            size_entry)
from risk.correlation import average_abs_to, average_pairwise_abs, regime
from risk.decision import CapBound, Decision, GateCheck, owned_decision
from risk.events import event_caps
from risk.gate import entry_checks, first_failure, pre_quote_checks
from risk.multiplier import (MultiplierResult, bounded, clamped, exposure_factor, fundamental_score, least_cap,
                             multiplier_caps, product, signal_factors)
from risk.numbers import InvalidInput
from risk.regime import NO_VOLATILITY, classify
from risk.request import SizingRequest, normalize_request


_read_only = MappingProxyType


def evaluate(request: SizingRequest, settings: Settings) -> Decision:
    settings = plain(settings)  # ~110 config reads follow: plain attributes, not pydantic's hook
    try:
        req = normalize_request(request, settings)
    except InvalidInput as exc:
        return refused_input(request, settings, exc.code, exc.message)
    if req.signal.action != "open":
        return refused_input(req, settings, reasons.INVALID_ACTION,
                             "scale_in signals are sized by risk.scale_in.evaluate_scale_in")
    signal, base = req.signal, req.capital_base
    bets = bet_limits(base, settings.sizing)
    value = contract_value(req.price, settings.profile.contract_multiplier)
    minimum = min_contracts(bets.min_bet, value)
    held = []  # each open position's underlying (a plain loop: no comprehension function and frame)
    for p in req.open_positions:
        held.append(p.underlying)
    # the book's exposure summed once: the 0dte exposure factor and the total-exposure cap both need it
    open_exposure = open_exposure_of(req.open_positions, settings.profile.contract_multiplier)

    mult = _multiplier(req, settings, value, minimum, held, open_exposure)
    book_average = average_pairwise_abs([*held, signal.underlying], req.correlations)
    book_regime = regime(book_average, settings.correlation)
    limits = book_cap_limits(signal.underlying, base, req.open_positions, req.buying_power, book_regime, settings,
                             open_exposure=open_exposure)
    sizing = size_entry(bets, value, mult.final, limits, minimum=minimum)  # the sector cap (SPEC §10.3) is one of `limits`
    checks = entry_checks(req, settings, sizing)
    failed = first_failure(checks)

    notes = {**mult.notes, "correlation_regime": book_regime,
             "average_pairwise_abs_rho": "none" if book_average is None else str(book_average)}
    # Built whole (risk.decision.owned_decision): the four maps are this decision's own fresh dicts.
    return owned_decision({
        "accepted": failed is None, "reason": None if failed is None else failed.name,
        "profile": settings.profile.name, "action": signal.action, "signal_id": signal.id,
        "underlying": signal.underlying, "contracts": sizing.contracts, "notional": sizing.notional,
        "contract_value": value, "min_contracts": minimum, "min_bet": bets.min_bet, "max_bet": bets.max_bet,
        "capital_base": base, "multiplier": mult.final, "raw_multiplier": mult.raw,
        "factors": _read_only(mult.factors), "multiplier_caps": _read_only(mult.caps),
        "cap_limits": _read_only(sizing.cap_limits),
        "caps": (*_multiplier_bound(mult, minimum, settings.multiplier.floor), *sizing.bound),
        "checks": checks, "notes": _read_only(notes), "message": "" if failed is None else failed.detail,
    })


def screen(request: SizingRequest, settings: Settings, *, new_position: bool = True) -> Decision | None:
    """The pre-quote gate (SPEC §2.1): the refusal of the first check that needs no option quote,
    or None when they all pass and the engine may go on to choose a contract. The request's price
    is not looked at (no contract is chosen yet)."""
    settings = plain(settings)
    try:
        req = normalize_request(request, settings, priced=False)
    except InvalidInput as exc:
        return refused_input(request, settings, exc.code, exc.message)
    checks = pre_quote_checks(req, settings, new_position=new_position)
    failed = first_failure(checks)
    if failed is None:
        return None
    signal = req.signal
    return Decision(accepted=False, reason=failed.name, message=failed.detail, profile=settings.profile.name,
                    action=signal.action, signal_id=signal.id, underlying=signal.underlying,
                    capital_base=req.capital_base, checks=checks, notes={"stage": "pre_quote"})


def _multiplier(req: SizingRequest, settings: Settings, value: Decimal, minimum: int,
                held: list[str], open_exposure: Decimal) -> MultiplierResult:
    """Factors and caps. The exposure factor depends on the size it changes: it is judged once on the
    size the other factors give (before the §2.4 caps), never iterated; the larger tentative size
    trips it no later than the final one would."""
    signal = req.signal
    rho_to_open = average_abs_to(signal.underlying, held, req.correlations)  # held: each open position's underlying
    factors, notes = signal_factors(signal, req.vix, rho_to_open, settings)
    caps = multiplier_caps(signal, req.vix, req.vix_session_open, req.breaker_level, settings.multiplier)
    _regime_caps(req, settings, caps, notes)
    floor = settings.multiplier.floor
    # What `combine` then `rescale` answer, with one MultiplierResult instead of two: the tentative
    # multiplier is only read for its final value (a record built and dropped was ~1.5 % of a 0dte
    # decision). Same Decimal operations in the same order: the product, then the product times the
    # exposure factor; the caps do not change between the two, so neither does the least one.
    raw = product(factors)
    cap_name, cap = least_cap(caps)
    if settings.sizing.exposure_factor_threshold_pct is None:  # no exposure factor (7dte): it would answer None
        return bounded(raw, factors, caps, cap, cap_name, floor, notes)
    exposure_after = open_exposure + scaled_contracts(minimum, clamped(raw, cap, floor)) * value
    factor = exposure_factor(exposure_after, req.capital_base, settings.sizing)
    if factor is None:
        return bounded(raw, factors, caps, cap, cap_name, floor, notes)
    notes["exposure_after_tentative"] = str(exposure_after)
    return bounded(raw * factor, {**factors, "exposure": factor}, caps, cap, cap_name, floor, notes)


def _regime_caps(req: SizingRequest, settings: Settings, caps: dict[str, Decimal], notes: dict[str, str]) -> None:
    """SPEC §10: the calendar's caps (macro day, expiry spanning earnings) and the volatility
    regime's cap join the §2.2 caps; each is named in the record with why it applied."""
    cfg = settings.regime
    fundamentals = settings.multiplier.fundamentals
    score = (fundamental_score(req.signal.fundamentals, fundamentals)
             if fundamentals.enabled and req.signal.fundamentals is not None else None)
    found, why = event_caps(req.now, req.events, cfg.events, score)
    caps.update(found)
    notes.update(why)
    if cfg.volatility.enabled:
        regime = classify(req.vix, req.volatility or NO_VOLATILITY, cfg.volatility)
        notes["volatility_regime"] = regime.note()
        if regime.cap is not None:
            caps["volatility_regime"] = regime.cap


def _multiplier_bound(mult: MultiplierResult, minimum: int, floor: Decimal) -> tuple[CapBound, ...]:
    if mult.bound_by is None:
        return ()
    before = scaled_contracts(minimum, max(mult.raw, floor))
    return (CapBound(name=mult.bound_by, kind="multiplier", limit=mult.cap, contracts_before=before,
                     contracts_after=scaled_contracts(minimum, mult.final)),)


def refused_input(request: SizingRequest, settings: Settings, code: str, message: str) -> Decision:
    """A request the sizer cannot size: refused with the reason, nothing computed."""
    signal = getattr(request, "signal", None)
    return Decision(
        accepted=False, reason=code, message=message, profile=settings.profile.name,
        action=str(getattr(signal, "action", "open")), signal_id=getattr(signal, "id", None),
        underlying=getattr(signal, "underlying", None), checks=(GateCheck("inputs", "fail", message),),
    )
