import math
from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from broker.liquidity import check_quote
from broker.listings import option_chain, session_close
from broker.pricing import atm_vol, black_scholes, model_quote, realized_vol, skewed_vol
from broker.selection import strikes_outward
from market.types import OptionContract
from market.clock import EXCHANGE_TZ
from tests.broker.helpers import settings

S0 = settings("0dte")
S7 = settings("7dte")
MODEL0 = S0.broker.sim.model
MODEL7 = S7.broker.sim.model


@pytest.mark.parametrize("spot, strike, years, rate, vol, right, q, expected, tol", [
    (42, 40, 0.5, 0.10, 0.20, "C", 0.0, 4.76, 0.005),  # Hull, Options Futures and Other Derivatives, ex. 15.6
    (42, 40, 0.5, 0.10, 0.20, "P", 0.0, 0.81, 0.005),
    (60, 65, 0.25, 0.08, 0.30, "C", 0.0, 2.1334, 0.00005),  # Haug, Complete Guide, 1.1.1
    (100, 95, 0.5, 0.10, 0.20, "P", 0.05, 2.4648, 0.00005),  # Haug 1.1.2 (Merton, dividend yield)
])
def test_prices_match_published_values(spot, strike, years, rate, vol, right, q, expected, tol):
    assert black_scholes(spot, strike, years, rate, vol, right, q).price == pytest.approx(expected, abs=tol)


def test_greeks_match_hull_example():
    # Hull ex. 19.1: S 49, K 50, r 5 %, σ 20 %, T 20 weeks: Δ 0.522, Γ 0.066, vega 12.1 per unit vol, Θ −4.31 a year
    g = black_scholes(49, 50, 0.3846, 0.05, 0.20, "C")
    assert g.delta == pytest.approx(0.522, abs=0.0005)
    assert g.gamma == pytest.approx(0.066, abs=0.0005)
    assert g.vega == pytest.approx(0.121, abs=0.0005)  # per vol point
    assert g.theta * 365 == pytest.approx(-4.31, abs=0.01)  # per calendar day here


@hsettings(max_examples=150, deadline=None)
@given(spot=st.floats(5, 2000), moneyness=st.floats(0.5, 1.5), years=st.floats(1e-4, 2),
       rate=st.floats(0, 0.1), vol=st.floats(0.02, 2))
def test_put_call_parity_and_greek_signs(spot, moneyness, years, rate, vol):
    strike = spot * moneyness
    c = black_scholes(spot, strike, years, rate, vol, "C")
    p = black_scholes(spot, strike, years, rate, vol, "P")
    assert c.price - p.price == pytest.approx(spot - strike * math.exp(-rate * years), abs=1e-7 * spot)
    assert 0 <= c.delta <= 1 and -1 <= p.delta <= 0
    assert c.delta - p.delta == pytest.approx(1.0, abs=1e-9)
    assert c.gamma >= 0 and c.gamma == pytest.approx(p.gamma)
    assert c.vega >= 0 and c.vega == pytest.approx(p.vega)
    assert c.theta <= 1e-9 + rate * strike / 365  # a long call only gains time value from carry


def test_at_expiry_the_price_is_intrinsic():
    assert black_scholes(105, 100, 0, 0.05, 0.2, "C").price == pytest.approx(5)
    assert black_scholes(105, 100, 0, 0.05, 0.2, "P").price == pytest.approx(0)
    assert black_scholes(95, 100, 0, 0.05, 0.2, "P").delta == -1


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="right"):
        black_scholes(100, 100, 1, 0, 0.2, "X")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        black_scholes(-1, 100, 1, 0, 0.2, "C")
    with pytest.raises(ValueError, match="non-negative"):
        black_scholes(100, 100, float("nan"), 0, 0.2, "C")


def test_vol_from_vix_for_etfs_and_from_realized_for_stocks():
    assert atm_vol("SPY", 20, MODEL0) == pytest.approx(0.20)
    assert atm_vol("IWM", 20, MODEL0) == pytest.approx(0.28)
    assert atm_vol("SPY", 20, MODEL0, realized=0.5) == pytest.approx(0.20)  # index ETFs: VIX only
    assert atm_vol("NVDA", 20, MODEL7) == pytest.approx(0.60)
    assert atm_vol("NVDA", 20, MODEL7, realized=0.40) == pytest.approx(0.44)  # realized × 1.1
    assert atm_vol("NVDA", None, MODEL7) is None


def test_realized_vol_of_daily_closes():
    assert realized_vol([100, 101], window=20) is None  # not enough bars
    closes = [100 * math.exp(0.01 * (i % 2)) for i in range(30)]  # alternating ±1 % returns
    assert realized_vol(closes, window=20) == pytest.approx(0.01 * math.sqrt(252) * math.sqrt(20 / 19), rel=1e-6)


def test_skew_makes_lower_strikes_richer():
    atm = 0.2
    assert skewed_vol(atm, 100, 95, MODEL0) > atm > skewed_vol(atm, 100, 105, MODEL0)
    assert skewed_vol(atm, 100, 100, MODEL0) == pytest.approx(atm)


def _modelled_near_money(profile, underlying, spot, today, expiry, now, vix):
    s = settings(profile)
    cfg = s.broker.sim.model
    chain = option_chain(underlying, today, spot)
    vol = atm_vol(underlying, vix, cfg)
    out = []
    for right in ("C", "P"):
        for k in strikes_outward(chain.strikes, spot, 1, right):
            c = OptionContract(underlying, expiry, k, right)
            out.append(model_quote(c, spot, vol, now, session_close(expiry), now, cfg))
    return s, out


@pytest.mark.parametrize("minutes_after_open", [5, 120, 300, 350])
@pytest.mark.parametrize("vix", [11, 20, 35])
def test_modelled_0dte_quotes_near_the_money_pass_the_liquidity_check(minutes_after_open, vix):
    now = datetime(2019, 2, 12, 9, 30, tzinfo=EXCHANGE_TZ) + timedelta(minutes=minutes_after_open)
    s, quotes = _modelled_near_money("0dte", "SPY", D("270.37"), now.date(), now.date(), now, vix)
    for right in ("C", "P"):  # within one strike of the money there is something to trade, both ways
        tradeable = [q for q in quotes if f" {right} " in q.key and check_quote(q, s.liquidity, now).ok]
        assert tradeable and all(q.modelled and q.bid_size > 0 and q.ask_size > 0 for q in tradeable)
    if minutes_after_open <= 300:  # until the last hour both sides of the money strike trade
        assert all(check_quote(q, s.liquidity, now).ok for q in quotes if q.key.endswith(" 270"))


@pytest.mark.parametrize("underlying, spot", [("AAPL", D("170.2")), ("NVDA", D("151.3")), ("TSLA", D("305.1")),
                                              ("META", D("162.4")), ("MSFT", D("106.9"))])
@pytest.mark.parametrize("vix", [11, 20, 35])
def test_modelled_7dte_quotes_near_the_money_pass_the_liquidity_check(underlying, spot, vix):
    now = datetime(2019, 2, 8, 10, 0, tzinfo=EXCHANGE_TZ)
    s, quotes = _modelled_near_money("7dte", underlying, spot, now.date(), date(2019, 2, 15), now, vix)
    failing = {q.key: check_quote(q, s.liquidity, now).reason for q in quotes if not check_quote(q, s.liquidity, now).ok}
    assert not failing


def test_modelled_quote_shape():
    now = datetime(2019, 2, 8, 10, 0, tzinfo=EXCHANGE_TZ)
    expiry = date(2019, 2, 15)
    near = model_quote(OptionContract("AAPL", expiry, D(170), "C"), D(170), 0.3, now, session_close(expiry), now, MODEL7)
    far = model_quote(OptionContract("AAPL", expiry, D(180), "C"), D(170), 0.3, now, session_close(expiry), now, MODEL7)
    put = model_quote(OptionContract("AAPL", expiry, D(170), "P"), D(170), 0.3, now, session_close(expiry), now, MODEL7)
    assert near.delta > far.delta > 0 > put.delta and near.gamma > 0
    assert near.ask_size > far.ask_size and near.open_interest > far.open_interest
    assert far.spread / far.mid > near.spread / near.mid  # cheaper and further out: wider in percent
    assert near.iv == put.iv  # the skew depends on the strike, not the right
    for q in (near, far, put):  # on the listing tick: nickels from $3 for a stock, pennies below
        for price in (q.bid, q.ask):
            tick = D("0.05") if price >= 3 else D("0.01")
            assert price % tick == 0
