"""Sizing an add-on to an open position (SPEC §2.6).

0dte: up to `pct_of_min_bet` of the minimum bet, only while the position is in profit.
7dte: up to `pct_of_position` of the position's contracts, on the entry day or up to
`max_days_after_entry` sessions later. Either way never past the maximum bet for the position,
within the book's exposure caps and buying power, and never while the account breaker forbids it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from config.models import ScaleInConfig, Settings
from risk import gate, reasons
from risk.breakers import effects
from risk.capital import BetLimits, bet_limits
from risk.contracts import apply_caps, book_cap_limits, contract_value
from risk.correlation import average_pairwise_abs, regime
from risk.decision import Decision, GateCheck
from risk.numbers import InvalidInput, require_decimal
from risk.request import OpenPositionView, SizingRequest, normalize_request, parse_open_positions
from risk.sizing import refused_input


@dataclass(frozen=True)
class ScaleInRequest:
    """`request.open_positions` is the whole book, this position included; `request.price` is the add's
    limit price. `position.price` is the premium paid per share, `position_mark` its current price."""

    request: SizingRequest
    position: OpenPositionView
    position_mark: Decimal | None = None
    sessions_since_entry: int = 0  # 0 on the entry day


def evaluate_scale_in(scale_in: ScaleInRequest, settings: Settings) -> Decision:
    try:
        req, position, mark = _normalize(scale_in, settings)
    except InvalidInput as exc:
        return refused_input(scale_in.request, settings, exc.code, exc.message)
    if req.signal.action != "scale_in":
        return refused_input(req, settings, reasons.INVALID_ACTION, "only scale_in signals add to a position")
    cfg = settings.scale_in
    multiplier = settings.profile.contract_multiplier
    bets = bet_limits(req.capital_base, settings.sizing)
    value = contract_value(req.price, multiplier)
    budget = _budget(cfg, bets, value, position)

    book = [p.underlying for p in req.open_positions]
    book_regime = regime(average_pairwise_abs(book, req.correlations), settings.correlation)
    limits = {"max_bet": bets.max_bet - position.exposure(multiplier),
              **book_cap_limits(position.underlying, req.capital_base, req.open_positions, req.buying_power,
                                book_regime, settings)}
    contracts, bound = apply_caps(budget, value, limits)
    checks = (
        *gate.pre_quote_checks(req, settings, new_position=False),  # SPEC §2.1's order (Part 8)
        _enabled(cfg),
        _breaker(req.breaker_level),
        _same_underlying(req, position),
        gate.stale_market_data(req, settings),
        gate.bad_market_data(req),
        gate.liquidity(req),
        _in_profit(cfg, position, mark),
        _window(cfg, scale_in.sessions_since_entry),
        _not_empty(contracts, budget, bound),
        gate.greeks(req, settings, contracts),
    )
    failed = gate.first_failure(checks)
    return Decision(
        accepted=failed is None, reason=None if failed is None else failed.name,
        message="" if failed is None else failed.detail,
        profile=settings.profile.name, action="scale_in", signal_id=req.signal.id, underlying=position.underlying,
        contracts=contracts, notional=contracts * value, contract_value=value,
        min_bet=bets.min_bet, max_bet=bets.max_bet, capital_base=req.capital_base,
        cap_limits=limits, caps=bound, checks=checks,
        notes={"budget_contracts": str(budget), "position_contracts": str(position.contracts),
               "position_exposure": str(position.exposure(multiplier)), "correlation_regime": book_regime},
    )


def _normalize(scale_in: ScaleInRequest, settings: Settings) -> tuple[SizingRequest, OpenPositionView, Decimal | None]:
    req = normalize_request(scale_in.request, settings)
    (position,) = parse_open_positions([scale_in.position])
    mark = None if scale_in.position_mark is None else require_decimal(
        scale_in.position_mark, reasons.INVALID_PRICE, "position mark", minimum=Decimal(0))
    days = scale_in.sessions_since_entry
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise InvalidInput(reasons.INVALID_VALUE, f"sessions_since_entry must be a non-negative integer, got {days!r}")
    return req, position, mark


def _budget(cfg: ScaleInConfig, bets: BetLimits, value: Decimal, position: OpenPositionView) -> int:
    """The add the rule allows before the caps: the smaller of the configured allowances."""
    allowances: list[int] = []
    if cfg.pct_of_min_bet is not None:
        allowances.append(int((cfg.pct_of_min_bet * bets.min_bet / value).to_integral_value(rounding=ROUND_FLOOR)))
    if cfg.pct_of_position is not None:
        allowances.append(int((cfg.pct_of_position * position.contracts).to_integral_value(rounding=ROUND_FLOOR)))
    return min(allowances, default=0)


def _enabled(cfg: ScaleInConfig) -> GateCheck:
    if not cfg.enabled or (cfg.pct_of_min_bet is None and cfg.pct_of_position is None):
        return GateCheck(reasons.SCALE_IN_DISABLED, "fail", "scale-ins are disabled for this profile")
    return GateCheck(reasons.SCALE_IN_DISABLED, "pass")


def _breaker(level: int) -> GateCheck:
    if not effects(level).scale_ins_allowed:
        return GateCheck(reasons.SCALE_IN_BREAKER, "fail", f"account breaker at level {level}: no scale-ins")
    return GateCheck(reasons.SCALE_IN_BREAKER, "pass", f"breaker level {level}")


def _same_underlying(req: SizingRequest, position: OpenPositionView) -> GateCheck:
    if position.underlying != req.signal.underlying:
        return GateCheck(reasons.SCALE_IN_POSITION_MISMATCH, "fail",
                         f"signal is for {req.signal.underlying}, position {req.signal.position_id} is {position.underlying}")
    return GateCheck(reasons.SCALE_IN_POSITION_MISMATCH, "pass")


def _in_profit(cfg: ScaleInConfig, position: OpenPositionView, mark: Decimal | None) -> GateCheck:
    name = reasons.SCALE_IN_NOT_IN_PROFIT
    if not cfg.require_profit:
        return GateCheck(name, "skip", "profile does not require profit")
    if mark is None:
        return GateCheck(name, "fail", "no current price for the position")
    if mark <= position.price:
        return GateCheck(name, "fail", f"position at {mark}, paid {position.price}: not in profit")
    return GateCheck(name, "pass", f"position at {mark}, paid {position.price}")


def _window(cfg: ScaleInConfig, sessions_since_entry: int) -> GateCheck:
    name = reasons.SCALE_IN_WINDOW_CLOSED
    if cfg.max_days_after_entry is None:
        return GateCheck(name, "skip", "no entry window for this profile")
    if sessions_since_entry > cfg.max_days_after_entry:
        return GateCheck(name, "fail", f"{sessions_since_entry} sessions after entry, at most {cfg.max_days_after_entry}")
    return GateCheck(name, "pass", f"{sessions_since_entry} sessions after entry")


def _not_empty(contracts: int, budget: int, bound: tuple) -> GateCheck:
    if contracts <= 0:
        why = f"capped by {bound[-1].name}" if bound else "the allowance is under one contract"
        return GateCheck(reasons.SCALE_IN_TOO_SMALL, "fail", f"no contract to add ({why}; allowance {budget})")
    return GateCheck(reasons.SCALE_IN_TOO_SMALL, "pass", f"{contracts} of an allowance of {budget}")
