"""Prometheus metrics: declared once, here, on a dedicated registry (SPEC §6).

Names are `tradingd_<what>_<unit>`, counters end in `_total`, every series carries
`profile`. The engine calls `Metrics` methods (`observe_decision`, `observe_fill`, ...);
the API refreshes the gauges from `EngineControl.status()` on every scrape, so a gauge
the engine forgets to set is still right when Prometheus reads it.

A registry is never the global one: tests and several engines in one process each get
their own, or share one on purpose (two profiles' `Metrics` on the same registry share
the metric families and differ by the `profile` label).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# `_created` series double every counter and histogram and no dashboard or alert reads them.
disable_created_metrics()

PROFILE = ("profile",)

TRADING_STATES = ("STARTING", "RECONCILING", "ACTIVE", "REDUCING", "HALTED", "STOPPING")

# Signal outcomes, one per SignalOutcome.http_status hint.
SIGNAL_OUTCOMES = {200: "accepted", 422: "refused", 409: "duplicate", 503: "not_accepting"}

# Adverse slippage as a fraction of the mid (0.01 = paid 1 % over mid on a buy).
SLIPPAGE_BUCKETS = (-0.05, -0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CHECKPOINT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class _Spec:
    kind: type
    name: str
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


# The one declaration of every metric. Dashboards and alert rules may only use these
# (tests/daemon/test_metrics_monitoring.py checks it).
SPECS: tuple[_Spec, ...] = (
    _Spec(Gauge, "tradingd_equity_dollars", "Account equity (capital base of the profile)"),
    _Spec(Gauge, "tradingd_session_pnl_dollars", "Session P&L, realized + unrealized marked to mid"),
    _Spec(Gauge, "tradingd_drawdown_ratio", "Session loss as a fraction of the capital base (0.07 = 7 %)"),
    _Spec(Gauge, "tradingd_exposure_dollars", "Premium at risk in open positions"),
    _Spec(Gauge, "tradingd_open_positions", "Open positions"),
    _Spec(Gauge, "tradingd_portfolio_delta_shares", "Portfolio delta in share equivalents"),
    _Spec(Gauge, "tradingd_portfolio_gamma_shares", "Portfolio gamma in share equivalents per 1.00 move"),
    _Spec(Gauge, "tradingd_portfolio_vega_dollars", "Portfolio vega, dollars per volatility point"),
    _Spec(Gauge, "tradingd_portfolio_theta_dollars", "Portfolio theta, dollars per day"),
    _Spec(Gauge, "tradingd_breaker_level", "Account circuit breaker level (0 none .. 4 emergency halt)"),
    _Spec(Gauge, "tradingd_trading_state", "Trading state, one-hot: 1 for the current state", ("state",)),
    # level: "parent" (one per decided order, its end) or "child" (each slice sent to the broker).
    _Spec(Counter, "tradingd_orders_total", "Orders by level (parent|child) and outcome", ("level", "outcome")),
    _Spec(Counter, "tradingd_fills_total", "Fills (executions) by side", ("side",)),
    _Spec(Counter, "tradingd_filled_contracts_total", "Contracts filled by side", ("side",)),
    _Spec(Histogram, "tradingd_slippage_vs_mid_ratio", "Adverse fill slippage vs the mid, fraction of mid",
          buckets=SLIPPAGE_BUCKETS),
    _Spec(Histogram, "tradingd_tick_to_decision_seconds", "Quote or signal arrival to decision",
          buckets=LATENCY_BUCKETS),
    _Spec(Histogram, "tradingd_checkpoint_duration_seconds", "Duration of one checkpoint job",
          buckets=CHECKPOINT_BUCKETS),
    _Spec(Gauge, "tradingd_last_checkpoint_timestamp_seconds", "Unix time of the last completed checkpoint"),
    _Spec(Gauge, "tradingd_broker_connected", "1 while the broker session is up (heartbeat answered)"),
    _Spec(Gauge, "tradingd_broker_disconnect_expected", "1 inside the broker's restart window or the weekend"),
    _Spec(Gauge, "tradingd_market_open", "1 during the exchange's regular trading hours"),
    _Spec(Gauge, "tradingd_market_data_age_seconds", "Age of the freshest underlying quote (+Inf: none yet)"),
    _Spec(Counter, "tradingd_signals_total", "Signals by outcome and reason code", ("outcome", "reason")),
    _Spec(Counter, "tradingd_exits_total", "Exit actions by rule", ("rule",)),
    _Spec(Counter, "tradingd_breaker_events_total", "Account breaker trips by level", ("level",)),
    _Spec(Counter, "tradingd_operator_actions_total", "Operator commands by action", ("action",)),
    # room journal (SPEC §6.2): the store behind the write-behind journal
    _Spec(Gauge, "tradingd_store_available", "1 while the store writes; 0 while it cannot (disk full, read-only, down)"),
    _Spec(Gauge, "tradingd_journal_pending", "Records appended to the journal and not yet committed"),
    _Spec(Counter, "tradingd_store_write_failures_total", "Failed attempts to write the journal to the store"),
    # SPEC §10.2: the volatility surface and regime (room regime)
    _Spec(Gauge, "tradingd_atm_iv_ratio", "At-the-money implied vol by tenor (front, next), 0.20 = 20 %",
          ("underlying", "tenor")),
    _Spec(Gauge, "tradingd_risk_reversal_25d_ratio", "25-delta risk reversal of the front expiry (call IV - put IV)",
          ("underlying",)),
    _Spec(Gauge, "tradingd_term_slope_ratio", "Front/next term slope: next ATM IV - front ATM IV", ("underlying",)),
    _Spec(Gauge, "tradingd_term_structure_inverted", "1 while the front expiry's ATM IV is above the next's",
          ("underlying",)),
    _Spec(Gauge, "tradingd_volatility_regime", "Volatility regime, one-hot: 1 for the current one", ("regime",)),
    _Spec(Gauge, "tradingd_vix_percentile_ratio", "VIX percentile over its own history (0.9 = 90th)"),
    _Spec(Counter, "tradingd_api_requests_total", "HTTP API requests by route, method and status",
          ("route", "method", "status")),
    # Part 8: bad input and bad market data, counted by reason.
    _Spec(Counter, "tradingd_bad_market_data_total", "Quotes found unusable by the SPEC 4.4 sanity checks, by reason",
          ("reason",)),
    _Spec(Counter, "tradingd_bad_events_total",
          "Events the core refused as bad input (a malformed fill, update or quote), by reason code", ("reason",)),
    _Spec(Counter, "tradingd_api_refusals_total",
          "API requests refused before any handler: auth (401/403), rate limit (429), timeouts, bad JSON",
          ("reason", "status")),
)

METRIC_NAMES: frozenset[str] = frozenset(s.name for s in SPECS)

_families: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = weakref.WeakKeyDictionary()


def _declare(registry: CollectorRegistry) -> dict[str, Any]:
    found = _families.get(registry)
    if found is None:
        found = {}
        for spec in SPECS:
            kwargs: dict[str, Any] = {"registry": registry}
            if spec.buckets is not None:
                kwargs["buckets"] = spec.buckets
            found[spec.name] = spec.kind(spec.name, spec.doc, PROFILE + spec.labels, **kwargs)
        _families[registry] = found
    return found


def series_names() -> frozenset[str]:
    """Every series name the declared metrics expose (histograms' _bucket/_sum/_count included)."""
    names: set[str] = set()
    for spec in SPECS:
        names.add(spec.name)
        if spec.kind is Histogram:
            names.update(f"{spec.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return frozenset(names)


class Metrics:
    """One profile's metrics. Cheap to call from the event loop (no I/O).

    Values may be Decimal, int, float or None; None leaves a gauge unchanged (the
    engine may not know equity before its first account snapshot).
    """

    def __init__(self, profile: str, registry: CollectorRegistry | None = None):
        self.profile = profile
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._f = _declare(self.registry)
        self._state: str | None = None
        self._store_failures = 0
        for state in TRADING_STATES:
            self._metric("tradingd_trading_state", state=state).set(0)

    def _metric(self, name: str, **labels: str) -> Any:
        return self._f[name].labels(profile=self.profile, **labels)

    def _set(self, name: str, value: Any) -> None:
        number = _number(value)
        if number is not None:
            self._metric(name).set(number)

    # ------------------------------------------------------------------ gauges

    def set_account(self, *, equity: Any = None, session_pnl: Any = None, drawdown: Any = None,
                    exposure: Any = None) -> None:
        self._set("tradingd_equity_dollars", equity)
        self._set("tradingd_session_pnl_dollars", session_pnl)
        self._set("tradingd_drawdown_ratio", drawdown)
        self._set("tradingd_exposure_dollars", exposure)

    def set_open_positions(self, count: int) -> None:
        self._set("tradingd_open_positions", count)

    def set_greeks(self, *, delta: Any = None, gamma: Any = None, vega: Any = None, theta: Any = None) -> None:
        self._set("tradingd_portfolio_delta_shares", delta)
        self._set("tradingd_portfolio_gamma_shares", gamma)
        self._set("tradingd_portfolio_vega_dollars", vega)
        self._set("tradingd_portfolio_theta_dollars", theta)

    def set_volatility(self, surfaces: Mapping[str, Any], inverted: Any, regime: str, vix_percentile: Any) -> None:
        """SPEC §10.2 gauges from the checkpoint's surfaces (broker.surface.Surface values)."""
        for underlying, surface in surfaces.items():
            for tenor, vol in (("front", surface.front), ("next", surface.next)):
                if vol is not None and vol.atm_iv is not None:
                    self._metric("tradingd_atm_iv_ratio", underlying=underlying, tenor=tenor).set(vol.atm_iv)
            if surface.risk_reversal_25d is not None:
                self._metric("tradingd_risk_reversal_25d_ratio", underlying=underlying).set(surface.risk_reversal_25d)
            if surface.term_slope is not None:
                self._metric("tradingd_term_slope_ratio", underlying=underlying).set(surface.term_slope)
            self._metric("tradingd_term_structure_inverted", underlying=underlying).set(
                1 if underlying in inverted else 0)
        for name in ("calm", "normal", "stressed"):
            self._metric("tradingd_volatility_regime", regime=name).set(1 if name == regime else 0)
        self._set("tradingd_vix_percentile_ratio", vix_percentile)

    def set_breaker_level(self, level: int) -> None:
        self._set("tradingd_breaker_level", level)

    def set_trading_state(self, state: str) -> None:
        state = str(state).upper()
        if state == self._state:
            return
        if self._state is not None:
            self._metric("tradingd_trading_state", state=self._state).set(0)
        self._metric("tradingd_trading_state", state=state).set(1)
        self._state = state

    def set_broker_connected(self, connected: bool, *, disconnect_expected: bool = False) -> None:
        self._metric("tradingd_broker_connected").set(1 if connected else 0)
        self._metric("tradingd_broker_disconnect_expected").set(1 if disconnect_expected else 0)

    def set_market_open(self, is_open: bool) -> None:
        self._metric("tradingd_market_open").set(1 if is_open else 0)

    def set_market_data_age(self, seconds: Any) -> None:
        number = _number(seconds)
        self._metric("tradingd_market_data_age_seconds").set(math.inf if number is None else number)

    # ------------------------------------------------------------------ events

    def observe_decision(self, *, accepted: bool, reason: str | None = None, latency_s: float | None = None,
                         outcome: str | None = None) -> None:
        """One signal decided. `outcome` defaults to accepted/refused; use "duplicate" or
        "not_accepting" (or `observe_signal_outcome`) for the other answers."""
        outcome = outcome or ("accepted" if accepted else "refused")
        self._metric("tradingd_signals_total", outcome=outcome, reason=reason or "").inc()
        if latency_s is not None:
            self.observe_latency(latency_s)

    def observe_signal_outcome(self, accepted: bool, reason: str | None, http_status: int,
                               latency_s: float | None = None) -> None:
        outcome = SIGNAL_OUTCOMES.get(http_status, "accepted" if accepted else "refused")
        self.observe_decision(accepted=accepted, reason=reason, latency_s=latency_s, outcome=outcome)

    def observe_bad_market_data(self, reason: str) -> None:
        self._metric("tradingd_bad_market_data_total", reason=reason).inc()

    def observe_api_refusal(self, reason: str, status: int) -> None:
        self._metric("tradingd_api_refusals_total", reason=reason, status=str(status)).inc()

    def observe_latency(self, seconds: float) -> None:
        """Tick (quote or signal receipt) to decision."""
        self._metric("tradingd_tick_to_decision_seconds").observe(max(0.0, float(seconds)))

    def observe_order(self, outcome: str, level: str = "child") -> None:
        """level "child": submitted, rejected (each slice at the broker); level "parent": filled,
        timed_out, rejected, underfilled (each parent order's end). One level per series, never mixed."""
        if level not in ("parent", "child"):
            raise ValueError(f"order level must be parent or child, got {level!r}")
        self._metric("tradingd_orders_total", level=level, outcome=outcome).inc()

    def observe_fill(self, *, side: str, contracts: int, slippage_vs_mid: Any = None) -> None:
        """`slippage_vs_mid`: adverse fraction of the mid (positive = worse than mid)."""
        side = side.upper()
        self._metric("tradingd_fills_total", side=side).inc()
        self._metric("tradingd_filled_contracts_total", side=side).inc(max(0, int(contracts)))
        number = _number(slippage_vs_mid)
        if number is not None:
            self._metric("tradingd_slippage_vs_mid_ratio").observe(number)

    def observe_checkpoint(self, duration_s: float | None = None, at: datetime | None = None) -> None:
        """`duration_s` None: the caller cannot time it (the core reads no clock; its shell times the event)."""
        if duration_s is not None:
            self._metric("tradingd_checkpoint_duration_seconds").observe(max(0.0, float(duration_s)))
        if at is None:
            return
        self._metric("tradingd_last_checkpoint_timestamp_seconds").set(at.timestamp())

    def observe_exit(self, rule: str) -> None:
        self._metric("tradingd_exits_total", rule=rule).inc()

    def observe_breaker_event(self, level: int) -> None:
        self._metric("tradingd_breaker_events_total", level=str(level)).inc()

    def observe_operator_action(self, action: str) -> None:
        self._metric("tradingd_operator_actions_total", action=action).inc()

    def observe_api_request(self, route: str, method: str, status: int) -> None:
        self._metric("tradingd_api_requests_total", route=route, method=method, status=str(status)).inc()

    def set_store(self, *, available: bool, pending: int, failures: int | None = None) -> None:
        """The journal's view of the store; `failures` is its running count (the counter follows it)."""
        self._metric("tradingd_store_available").set(1 if available else 0)
        self._metric("tradingd_journal_pending").set(pending)
        if failures is not None:
            counter = self._metric("tradingd_store_write_failures_total")
            seen = self._store_failures
            if failures > seen:
                counter.inc(failures - seen)
                self._store_failures = failures

    def set_store_available(self, available: bool) -> None:
        """The core's own view (its StoreStatusEvent); the journal's `set_store` adds pending and failures."""
        self._metric("tradingd_store_available").set(1 if available else 0)

    def observe_bad_event(self, code: str) -> None:
        self._metric("tradingd_bad_events_total", reason=code).inc()

    # ------------------------------------------------------------------ scrape

    def update_from_status(self, status: Mapping[str, Any]) -> None:
        """Refresh the gauges from an `EngineControl.status()` snapshot (keys it lacks are left alone)."""
        self.set_account(equity=status.get("equity"), session_pnl=status.get("session_pnl"),
                         drawdown=status.get("drawdown"), exposure=status.get("exposure"))
        if status.get("open_positions") is not None:
            self.set_open_positions(status["open_positions"])
        greeks = status.get("greeks")
        if isinstance(greeks, Mapping):
            self.set_greeks(delta=greeks.get("delta"), gamma=greeks.get("gamma"),
                            vega=greeks.get("vega"), theta=greeks.get("theta"))
        regime = status.get("regime")
        if isinstance(regime, Mapping):  # SPEC §10.4: vega and theta come from the regime desk
            self.set_greeks(vega=regime.get("vega"), theta=regime.get("theta"))
        if status.get("breaker_level") is not None:
            self.set_breaker_level(status["breaker_level"])
        if status.get("trading_state"):
            self.set_trading_state(status["trading_state"])
        if status.get("broker_connected") is not None:
            self.set_broker_connected(bool(status["broker_connected"]),
                                      disconnect_expected=bool(status.get("disconnect_expected", False)))
        if status.get("market_open") is not None:
            self.set_market_open(bool(status["market_open"]))
        if "market_data_age_s" in status:
            self.set_market_data_age(status["market_data_age_s"])
        store = status.get("store")
        if isinstance(store, Mapping) and store.get("available") is not None:
            self.set_store(available=bool(store["available"]), pending=int(store.get("pending") or 0),
                           failures=store.get("failures"))
        last = status.get("last_checkpoint")
        if isinstance(last, str):
            try:
                self._metric("tradingd_last_checkpoint_timestamp_seconds").set(datetime.fromisoformat(last).timestamp())
            except ValueError:
                pass

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text exposition."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(Decimal(str(value)) if isinstance(value, str) else value)
    except (TypeError, ValueError, InvalidOperation):
        return None
