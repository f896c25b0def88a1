"""Property: whatever the inputs, evaluate answers; accepted => within the bet limits and every cap."""

import json
import re
from dataclasses import replace
from decimal import Decimal as D
from itertools import combinations

from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from risk.breakers import TradingState
from risk.request import OpenPositionView
from risk.sizing import evaluate
from tests.risk.builders import BASE, request, settings, signal

REASON = re.compile(r"^[a-z][a-z0-9_]*$")


def money(low: str, high: str, places: int = 2):
    return st.decimals(min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False)


weird_numbers = st.sampled_from([D("NaN"), D("-Infinity"), D(0), D(-1), float("nan"), "3", None])


@st.composite
def requests(draw):
    """Three in four requests pass the gate's non-sizing checks, so the caps get exercised."""
    healthy = draw(st.integers(0, 3)) > 0
    profile = draw(st.sampled_from(["0dte", "7dte"]))
    cfg = settings(profile)
    symbols = list(cfg.profile.underlyings)
    underlying = draw(st.sampled_from(symbols))
    fundamentals = {}
    if profile == "7dte" and draw(st.booleans()):
        fundamentals = {"earnings_surprise_pct": draw(st.integers(-30, 30)),
                        "analyst_buy_pct": draw(st.integers(0, 100)), "pe_ratio": draw(st.integers(-10, 80)),
                        "sector_pe": draw(st.integers(5, 60))}
    low_confidence = D(0) if not healthy else cfg.gate.confidence_threshold
    sig = signal(profile, underlying=underlying, strategy=draw(st.sampled_from(["directional", "neutral",
                                                                                 "volatility"])),
                 confidence=draw(st.decimals(low_confidence, D(1), places=3)), **fundamentals)
    positions = tuple(OpenPositionView(draw(st.sampled_from(symbols)), draw(st.integers(1, 150)),
                                       draw(money("0.05", "60")))
                      for _ in range(draw(st.integers(0, 2 if healthy else 6))))
    correlations = {a: {b: draw(st.decimals(D(-1), D(1), places=2))}
                    for a, b in combinations(symbols, 2) if draw(st.booleans())}
    price = draw(st.one_of(money("0.05", "400"), weird_numbers)) if draw(st.integers(0, 9)) == 0 \
        else draw(money("0.05", "60"))
    maybe = st.just if healthy else (lambda value: st.one_of(st.none(), st.just(value)))
    return request(
        profile, price, sig=sig,
        capital_base=draw(st.one_of(st.just(BASE[profile]), money("20000", "2000000", 0))),
        vix=draw(money("8", "35").flatmap(maybe)),
        vix_session_open=draw(st.one_of(st.none(), money("8", "35"))),
        open_positions=positions, correlations=correlations,
        buying_power=draw(st.one_of(st.none(), money("-1000", "300000", 0))),
        breaker_level=draw(st.integers(0, 1 if healthy else 4)),
        trading_state=TradingState.ACTIVE if healthy else draw(st.sampled_from(list(TradingState))),
        quote_age_s=draw(money("0", "10" if healthy else "20", 1).flatmap(maybe)),
        liquidity_ok=True if healthy else draw(st.sampled_from([None, True, False])),
        duplicate=not healthy and draw(st.booleans()),
        option_delta=draw(st.one_of(st.none(), money("-1", "1"))),
        portfolio_delta=draw(st.one_of(st.none(), money("-8000", "8000", 0))),
        option_gamma=draw(st.one_of(st.none(), money("0", "0.2"))),
        portfolio_gamma=draw(st.one_of(st.none(), money("0", "4000", 0))),
        what_if=draw(st.booleans()),
    )


def _rho(corr, a, b):
    if a == b:
        return D(1)
    value = corr.get(a, {}).get(b)
    return value if value is not None else corr.get(b, {}).get(a)


def _exposure_cap(req, cfg):
    """The total exposure cap computed independently of risk.contracts."""
    book = [p.underlying for p in req.open_positions] + [req.signal.underlying]
    known = [abs(r) for r in (_rho(req.correlations, a, b) for a, b in combinations(book, 2)) if r is not None]
    average = sum(known) / len(known) if known else None
    pct = cfg.sizing.max_exposure_pct
    if average is not None and average > cfg.correlation.high_above and cfg.sizing.max_exposure_pct_high:
        pct = cfg.sizing.max_exposure_pct_high
    elif average is not None and average > cfg.correlation.moderate_above and cfg.sizing.max_exposure_pct_moderate:
        pct = cfg.sizing.max_exposure_pct_moderate
    return pct * req.capital_base


@hyp_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_accepted_means_within_limits_and_caps_refused_means_a_reason(req):
    cfg = settings(req.signal.profile)
    d = evaluate(req, cfg)
    json.dumps(d.to_record())
    json.dumps(d.to_record(numbers=True))
    if not d.accepted:
        assert d.reason and REASON.match(d.reason)
        failed = [c.name for c in d.checks if c.status == "fail"]
        assert failed == ["inputs"] or failed[0] == d.reason  # bad numbers stop before the gate
        return
    assert d.reason is None and d.contracts >= 1
    mult = cfg.profile.contract_multiplier
    value = req.price * mult
    notional = d.contracts * value
    assert d.notional == notional
    assert d.min_bet <= notional <= d.max_bet
    assert d.min_bet >= cfg.sizing.min_bet_pct * req.capital_base
    assert d.max_bet <= cfg.sizing.max_bet_pct * req.capital_base
    open_total = sum(p.contracts * p.price * mult for p in req.open_positions)
    assert open_total + notional <= _exposure_cap(req, cfg)
    if cfg.sizing.per_underlying_alloc_pct is not None:
        on_symbol = sum(p.contracts * p.price * mult for p in req.open_positions if p.underlying == req.signal.underlying)
        assert on_symbol + notional <= cfg.sizing.per_underlying_alloc_pct * req.capital_base
    if req.buying_power is not None:
        assert notional <= req.buying_power
    assert req.trading_state is TradingState.ACTIVE and req.breaker_level < 2
    assert req.signal.confidence >= cfg.gate.confidence_threshold
    assert not req.duplicate and len(req.open_positions) < cfg.sizing.max_positions
    if req.breaker_level >= 1:
        assert d.contracts == d.min_contracts  # minimum bet only
    assert d.multiplier <= cfg.multiplier.cap


@hyp_settings(max_examples=50, deadline=None)
@given(requests(), st.sampled_from(["price", "capital_base", "vix", "buying_power"]),
       st.sampled_from([D("NaN"), D("Infinity"), float("-inf"), object()]))
def test_garbage_in_any_number_is_refused_not_raised(req, field, garbage):
    d = evaluate(replace(req, **{field: garbage}), settings(req.signal.profile))
    assert not d.accepted and REASON.match(d.reason)
