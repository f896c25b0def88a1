"""daemon.metrics: one declaration, a dedicated registry, values from the engine's calls."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from prometheus_client import REGISTRY, CollectorRegistry

from market.clock import EXCHANGE_TZ
from daemon.metrics import METRIC_NAMES, SPECS, TRADING_STATES, Metrics, series_names


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, {"profile": m.profile, **labels})


def test_names_follow_the_convention() -> None:
    assert len(METRIC_NAMES) == len(SPECS)
    for spec in SPECS:
        assert spec.name.startswith("tradingd_")
        assert spec.name.endswith("_total") == (spec.kind.__name__ == "Counter")


def test_never_the_global_registry_and_profiles_share_one_on_purpose() -> None:
    m0 = Metrics("0dte")
    assert m0.registry is not REGISTRY
    assert REGISTRY.get_sample_value("tradingd_breaker_level", {"profile": "0dte"}) is None
    shared = CollectorRegistry()
    a, b = Metrics("0dte", shared), Metrics("7dte", shared)  # a second declaration would raise
    a.set_breaker_level(2)
    b.set_breaker_level(1)
    assert value(a, "tradingd_breaker_level") == 2 and value(b, "tradingd_breaker_level") == 1
    Metrics("0dte")  # and fresh registries never collide


def test_gauges_take_decimals_strings_and_ignore_none() -> None:
    m = Metrics("0dte")
    m.set_account(equity=Decimal("60000.50"), session_pnl="-420.25", drawdown=Decimal("0.007"), exposure=12000)
    m.set_account(equity=None)
    assert value(m, "tradingd_equity_dollars") == 60000.5
    assert value(m, "tradingd_session_pnl_dollars") == -420.25
    assert value(m, "tradingd_drawdown_ratio") == 0.007
    assert value(m, "tradingd_exposure_dollars") == 12000
    m.set_greeks(delta=Decimal("150"), gamma=3, vega="-12.5", theta=-80)
    assert value(m, "tradingd_portfolio_vega_dollars") == -12.5
    m.set_account(equity="not a number")
    assert value(m, "tradingd_equity_dollars") == 60000.5


def test_trading_state_is_one_hot() -> None:
    m = Metrics("0dte")
    assert all(value(m, "tradingd_trading_state", state=s) == 0 for s in TRADING_STATES)
    m.set_trading_state("ACTIVE")
    m.set_trading_state("halted")
    states = {s: value(m, "tradingd_trading_state", state=s) for s in TRADING_STATES}
    assert states["HALTED"] == 1 and sum(v for v in states.values() if v) == 1


def test_signals_by_outcome_and_reason_with_latency() -> None:
    m = Metrics("0dte")
    m.observe_decision(accepted=True, latency_s=0.004)
    m.observe_decision(accepted=False, reason="confidence_below_threshold", latency_s=0.002)
    m.observe_signal_outcome(False, "duplicate_signal", 409)
    m.observe_signal_outcome(False, "reconciling", 503)
    assert value(m, "tradingd_signals_total", outcome="accepted", reason="") == 1
    assert value(m, "tradingd_signals_total", outcome="refused", reason="confidence_below_threshold") == 1
    assert value(m, "tradingd_signals_total", outcome="duplicate", reason="duplicate_signal") == 1
    assert value(m, "tradingd_signals_total", outcome="not_accepting", reason="reconciling") == 1
    assert value(m, "tradingd_tick_to_decision_seconds_count") == 2
    assert value(m, "tradingd_tick_to_decision_seconds_bucket", le="0.0025") == 1


def test_orders_fills_slippage_exits_breakers() -> None:
    m = Metrics("0dte")
    m.observe_order("submitted")
    m.observe_order("filled", level="parent")
    m.observe_fill(side="buy", contracts=5, slippage_vs_mid=Decimal("0.012"))
    m.observe_fill(side="SELL", contracts=2)
    m.observe_exit("tier_1")
    m.observe_breaker_event(2)
    m.observe_operator_action("halt")
    assert value(m, "tradingd_orders_total", level="parent", outcome="filled") == 1
    assert value(m, "tradingd_orders_total", level="child", outcome="submitted") == 1
    assert value(m, "tradingd_orders_total", level="child", outcome="filled") is None  # levels never mix
    assert value(m, "tradingd_fills_total", side="BUY") == 1
    assert value(m, "tradingd_filled_contracts_total", side="BUY") == 5
    assert value(m, "tradingd_slippage_vs_mid_ratio_count") == 1
    assert value(m, "tradingd_slippage_vs_mid_ratio_bucket", le="0.01") == 0
    assert value(m, "tradingd_slippage_vs_mid_ratio_bucket", le="0.02") == 1
    assert value(m, "tradingd_exits_total", rule="tier_1") == 1
    assert value(m, "tradingd_breaker_events_total", level="2") == 1
    assert value(m, "tradingd_operator_actions_total", action="halt") == 1


def test_checkpoint_and_connection_gauges() -> None:
    m = Metrics("7dte")
    at = datetime(2019, 2, 11, 10, 5, tzinfo=EXCHANGE_TZ)
    m.observe_checkpoint(0.2, at)
    assert value(m, "tradingd_last_checkpoint_timestamp_seconds") == at.timestamp()
    assert value(m, "tradingd_checkpoint_duration_seconds_count") == 1
    m.set_broker_connected(False, disconnect_expected=True)
    assert value(m, "tradingd_broker_connected") == 0 and value(m, "tradingd_broker_disconnect_expected") == 1
    m.set_market_data_age(None)
    assert value(m, "tradingd_market_data_age_seconds") == math.inf
    m.set_market_data_age(Decimal("1.5"))
    assert value(m, "tradingd_market_data_age_seconds") == 1.5


def test_update_from_status_tolerates_missing_and_null_keys() -> None:
    m = Metrics("0dte")
    m.update_from_status({})
    m.update_from_status({"equity": None, "trading_state": None, "last_checkpoint": "garbage"})
    m.update_from_status({"trading_state": "REDUCING", "breaker_level": 3, "broker_connected": False,
                          "market_open": True, "open_positions": 2, "market_data_age_s": 12.0,
                          "last_checkpoint": "2019-02-11T10:05:00-05:00", "greeks": {"delta": -30}})
    assert value(m, "tradingd_trading_state", state="REDUCING") == 1
    assert value(m, "tradingd_breaker_level") == 3
    assert value(m, "tradingd_market_open") == 1
    assert value(m, "tradingd_open_positions") == 2
    assert value(m, "tradingd_portfolio_delta_shares") == -30
    assert value(m, "tradingd_last_checkpoint_timestamp_seconds") == datetime.fromisoformat(
        "2019-02-11T10:05:00-05:00").timestamp()


def test_series_names_cover_histogram_parts() -> None:
    names = series_names()
    assert "tradingd_slippage_vs_mid_ratio_bucket" in names
    assert "tradingd_orders_total" in names
    assert METRIC_NAMES <= names
