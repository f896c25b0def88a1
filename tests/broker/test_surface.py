"""The volatility surface (SPEC §10.2): IV solve, ATM IV per expiry, 25-delta risk reversal, term slope.

The recorded checks use the GOOG chain of 2015-12-24 (Lean sample data, ../shared; skipped without it).
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from broker.pricing import black_scholes
from broker.recorded import read_quotes
from broker.surface import (atm_iv, build_surface, expires_at, implied_vol, option_greeks, risk_reversal, smile)
from broker.pricing import years_between
from market.session import EXCHANGE_TZ
from market.types import OptionContract, Quote
from tests.conftest import SHARED_DATA

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=EXCHANGE_TZ)
RATE = 0.04


def quote(contract: OptionContract, vol: float, spot: float, now: datetime = NOW, iv: Decimal | None = None,
          half_spread: float = 0.0) -> Quote:
    years = years_between(now, expires_at(contract.expiry))
    price = black_scholes(spot, float(contract.strike), years, RATE, vol, contract.right).price
    bid, ask = round(price - half_spread, 4), round(price + half_spread, 4)
    return Quote(contract.key, Decimal(repr(bid)), Decimal(repr(ask)), None, now, iv=iv)


def chain(expiry: date, spot: float, vol_at, strikes=range(80, 121, 2)) -> list[tuple[OptionContract, Quote]]:
    out = []
    for k in strikes:
        for right in ("C", "P"):
            c = OptionContract("XYZ", expiry, Decimal(k), right)  # type: ignore[arg-type]
            out.append((c, quote(c, vol_at(k), spot)))
    return out


@pytest.mark.parametrize("vol, right, strike", [(0.2, "C", 100), (0.65, "P", 90), (0.12, "C", 110)])
def test_implied_vol_recovers_the_vol_that_priced_the_option(vol, right, strike):
    years = 7 / 365
    price = black_scholes(100.0, strike, years, RATE, vol, right).price
    assert implied_vol(price, 100.0, strike, years, RATE, right) == pytest.approx(vol, abs=1e-5)


def test_no_vol_prices_an_option_below_its_intrinsic_value_or_an_expired_one():
    assert implied_vol(4.0, 110.0, 100.0, 0.02, RATE, "C") is None
    assert implied_vol(1.0, 100.0, 100.0, 0.0, RATE, "C") is None
    assert implied_vol(float("nan"), 100.0, 100.0, 0.02, RATE, "C") is None


def test_a_flat_smile_has_its_vol_at_the_money_and_no_risk_reversal():
    surface = build_surface("XYZ", chain(date(2025, 3, 7), 100.0, lambda k: 0.3), 100.0, NOW, RATE)
    front = surface.expiries[0]
    assert front.atm_iv == pytest.approx(0.3, abs=1e-4)
    assert front.risk_reversal_25d == pytest.approx(0.0, abs=1e-4)


def test_a_put_skew_gives_a_negative_risk_reversal_of_the_right_size():
    skewed = chain(date(2025, 3, 28), 100.0, lambda k: 0.3 - 0.01 * (k - 100))  # -1 vol point per strike
    points = smile(skewed, 100.0, NOW, RATE)[date(2025, 3, 28)][1]
    rr = risk_reversal(points)
    assert rr is not None and -0.14 < rr < -0.04  # the 25-delta strikes sit a few points either side
    assert atm_iv(points, 100.0) == pytest.approx(0.3, abs=2e-3)


def test_term_slope_is_next_minus_front_and_a_same_day_expiry_is_not_the_front():
    quotes = (chain(NOW.date(), 100.0, lambda k: 0.9) + chain(date(2025, 3, 7), 100.0, lambda k: 0.35)
              + chain(date(2025, 3, 14), 100.0, lambda k: 0.25))
    surface = build_surface("XYZ", quotes, 100.0, NOW, RATE, front_min_days=1)
    assert (surface.front.expiry, surface.next.expiry) == (date(2025, 3, 7), date(2025, 3, 14))
    assert surface.term_slope == pytest.approx(-0.10, abs=1e-3)  # inverted: the near week is dearer
    assert surface.to_record()["front"] == "2025-03-07"


def test_the_brokers_model_iv_is_used_when_the_quote_has_one():
    c = OptionContract("XYZ", date(2025, 3, 7), Decimal(104), "C")
    q = quote(c, 0.3, 100.0, iv=Decimal("0.55"))
    assert smile([(c, q)], 100.0, NOW, RATE)[c.expiry][1][0].iv == 0.55
    assert smile([(c, q)], 100.0, NOW, RATE)[c.expiry][1][0].source == "model"


def test_a_one_sided_quote_is_not_solved():
    c = OptionContract("XYZ", date(2025, 3, 7), Decimal(104), "C")
    assert smile([(c, Quote(c.key, None, Decimal(2), None, NOW))], 100.0, NOW, RATE) == {}


def test_option_greeks_give_vega_per_vol_point_and_theta_per_day():
    c = OptionContract("XYZ", date(2025, 3, 10), Decimal(100), "C")
    q = quote(c, 0.3, 100.0)
    vega, theta = option_greeks(c, q, Decimal(100), NOW, RATE)
    g = black_scholes(100.0, 100.0, years_between(NOW, expires_at(c.expiry)), RATE, 0.3, "C")
    assert float(vega) == pytest.approx(g.vega, rel=1e-3) and float(theta) == pytest.approx(g.theta, rel=1e-3)
    assert vega > 0 > theta
    assert option_greeks(c, None, Decimal(100), NOW, RATE) is None
    # quoted at (or past) its nominal 16:00 expiry: measured a minute before it, vega about nil, never unknown
    late = datetime(2025, 3, 10, 16, 3, tzinfo=EXCHANGE_TZ)
    ib_quote = Quote(c.key, Decimal("0.05"), Decimal("0.10"), None, late, iv=Decimal("0.2"))  # IB's model IV
    vega, theta = option_greeks(c, ib_quote, Decimal(100), late, RATE)
    assert 0 <= vega < Decimal("0.01")


# ------------------------------------------------------------------ recorded GOOG chain, 2015-12-24

LEAN = ("market", "quantconnect_lean", "Data")
AT = datetime(2015, 12, 24, 12, 59, tzinfo=EXCHANGE_TZ)  # the last minute of the half day
CLOSE = datetime(2015, 12, 24, 13, 0, tzinfo=EXCHANGE_TZ)
RATE_2015 = 0.005  # the Fed funds target range was 0.25-0.50 % after 2015-12-16


@pytest.fixture(scope="module")
def goog():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA} (only CI and developer machines have it)")
    root = SHARED_DATA.joinpath(*LEAN)
    quotes = read_quotes(root / "option/usa/minute/goog/20151224_quote_american.zip")
    last: dict[str, Quote] = {}
    for q in quotes:
        if q.received_at <= AT:
            last[q.key] = q
    archive = zipfile.ZipFile(root / "equity/usa/minute/goog/20151224_quote.zip")
    spot = None
    for row in csv.reader(io.StringIO(archive.read(archive.namelist()[0]).decode())):
        bar_end = datetime(2015, 12, 24, tzinfo=EXCHANGE_TZ) + timedelta(milliseconds=int(row[0]) + 60_000)
        if bar_end <= AT:
            spot = (int(row[4]) + int(row[9])) / 20_000  # bid close + ask close, prices x 10000
    rows = list(csv.reader(gzip.open(root / "option/usa/universes/goog/20151224.csv.gz", "rt")))
    return {"quotes": [(OptionContract.from_key(k), q) for k, q in last.items()], "spot": spot, "universe": rows}


def test_goog_atm_ivs_from_the_minute_quotes_agree_with_the_lean_eod_universe_within_2_vol_points(goog):
    ours = build_surface("GOOG", goog["quotes"], goog["spot"], AT, RATE_2015, front_min_days=1)
    rows = goog["universe"]
    eod_spot = float(rows[1][6])
    traded = []  # the universe's closes of contracts that traded that day (a zero-volume close is stale)
    for r in rows[2:]:
        expiry = datetime.strptime(r[0], "%Y%m%d").date()
        contract = OptionContract("GOOG", expiry, Decimal(r[1]), r[2])  # type: ignore[arg-type]
        close = Decimal(r[6])
        if close > 0 and int(r[7]) > 0:
            traded.append((contract, Quote(contract.key, close, close, None, CLOSE)))
    theirs = {e.expiry: e.atm_iv for e in build_surface("GOOG", traded, eod_spot, CLOSE, RATE_2015).expiries}
    compared = 0
    for e in ours.expiries:
        if e.expiry == AT.date() or theirs.get(e.expiry) is None:
            continue
        assert e.atm_iv == pytest.approx(theirs[e.expiry], abs=0.02), e.expiry
        compared += 1
    assert compared == 11  # 2015-12-31 .. 2018-01-19
    # the 7-day weekly is the front, and the smile has the usual equity put skew
    assert ours.front.expiry == date(2015, 12, 31) and 0.12 < ours.front.atm_iv < 0.17
    assert ours.front.risk_reversal_25d < 0
    assert ours.next.expiry == date(2016, 1, 8) and ours.term_slope > 0  # upward sloping: not inverted


def test_the_lean_universe_iv_column_does_not_reprice_its_own_closes(goog):
    """Why the check above solves the universe's closes instead of reading its IV column: near the
    money the column is 100-400 % vol for a 7-day GOOG option whose close prices it near 14 %."""
    rows = goog["universe"]
    spot = float(rows[1][6])
    row = next(r for r in rows[2:] if r[0] == "20151231" and r[1] == "750" and r[2] == "C")
    years = years_between(CLOSE, expires_at(date(2015, 12, 31)))
    their_price = black_scholes(spot, 750.0, years, RATE_2015, float(row[9]), "C").price
    assert float(row[9]) > 1 and their_price > 10 * float(row[6])
