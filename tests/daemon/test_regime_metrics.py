"""SPEC §10.2 gauges: the surface, the inversion flag and the regime, one-hot."""

from datetime import date, datetime

from prometheus_client import generate_latest

from broker.surface import ExpiryVol, Surface
from daemon.metrics import Metrics
from market.session import EXCHANGE_TZ


def test_surface_and_regime_gauges():
    now = datetime(2025, 3, 3, 10, 0, tzinfo=EXCHANGE_TZ)
    front = ExpiryVol(date(2025, 3, 7), 0.01, 0.35, -0.04, 20)
    nxt = ExpiryVol(date(2025, 3, 14), 0.03, 0.30, -0.03, 20)
    surface = Surface("AAPL", now, 230.0, (front, nxt), front, nxt)
    metrics = Metrics("7dte")
    metrics.set_volatility({"AAPL": surface}, {"AAPL"}, "stressed", 0.93)
    text = generate_latest(metrics.registry).decode()
    assert 'tradingd_atm_iv_ratio{profile="7dte",tenor="front",underlying="AAPL"} 0.35' in text
    assert 'tradingd_term_slope_ratio{profile="7dte",underlying="AAPL"} -0.04999999999999999' in text
    assert 'tradingd_term_structure_inverted{profile="7dte",underlying="AAPL"} 1.0' in text
    assert 'tradingd_volatility_regime{profile="7dte",regime="stressed"} 1.0' in text
    assert 'tradingd_volatility_regime{profile="7dte",regime="calm"} 0.0' in text
    assert 'tradingd_vix_percentile_ratio{profile="7dte"} 0.93' in text
