"""The Grafana dashboard and Prometheus rules only use metrics daemon/metrics.py declares,
and cover what SPEC §6 asks to watch and alert on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from daemon.metrics import series_names

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
METRIC_RE = re.compile(r"\btradingd_[a-z0-9_]+")
# Prometheus' own series and functions a rule may use beside ours.
FOREIGN_OK = {"up"}


def dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())


def exprs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        for value in node.values():
            found += exprs_in(value)
        return found
    if isinstance(node, list):
        return [e for item in node for e in exprs_in(item)]
    return []


def rules() -> list[dict[str, Any]]:
    """The alert rules: with PyYAML when installed, else a reader for this file's plain layout
    (`- alert:` items, `expr:` inline or as a `|` block, `severity:` and `summary:` keys)."""
    text = (MONITORING / "prometheus-rules.yml").read_text()
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return _read_rules(text)
    data = yaml.safe_load(text)
    return [rule for group in data["groups"] for rule in group["rules"]]


def _read_rules(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)- alert: (\S+)$", line)
        if not match:
            continue
        rule: dict[str, Any] = {"alert": match.group(2), "labels": {}, "annotations": {}}
        for j in range(i + 1, len(lines)):
            if re.match(r"^\s*- alert:", lines[j]):
                break
            key, _, value = lines[j].strip().partition(": ")
            if key == "expr" and value == "|":
                indent = len(lines[j + 1]) - len(lines[j + 1].lstrip())
                block = []
                for k in range(j + 1, len(lines)):
                    if lines[k].strip() and len(lines[k]) - len(lines[k].lstrip()) < indent:
                        break
                    block.append(lines[k].strip())
                rule["expr"] = " ".join(b for b in block if b)
            elif key in ("expr", "for"):
                rule[key] = value
            elif key == "severity":
                rule["labels"]["severity"] = value
            elif key in ("summary", "description"):
                rule["annotations"][key] = value.strip('"')
        found.append(rule)
    return found


def test_dashboard_metrics_are_declared() -> None:
    exprs = exprs_in(dashboard())
    assert len(exprs) >= 20
    declared = series_names()
    used = {name for expr in exprs for name in METRIC_RE.findall(expr)}
    assert used - declared == set()


def test_dashboard_shows_what_spec_asks() -> None:
    used = {name for expr in exprs_in(dashboard()) for name in METRIC_RE.findall(expr)}
    for wanted in ("tradingd_equity_dollars", "tradingd_session_pnl_dollars", "tradingd_drawdown_ratio",
                   "tradingd_exposure_dollars", "tradingd_breaker_level", "tradingd_trading_state",
                   "tradingd_open_positions", "tradingd_portfolio_delta_shares", "tradingd_portfolio_gamma_shares",
                   "tradingd_portfolio_vega_dollars", "tradingd_portfolio_theta_dollars", "tradingd_orders_total",
                   "tradingd_fills_total", "tradingd_slippage_vs_mid_ratio_bucket",
                   "tradingd_tick_to_decision_seconds_bucket", "tradingd_broker_connected",
                   "tradingd_market_data_age_seconds"):
        assert wanted in used, wanted


def test_dashboard_panels_have_unique_ids_and_a_profile_variable() -> None:
    data = dashboard()
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in data["templating"]["list"]} >= {"profile", "datasource"}


def test_rules_use_declared_metrics_only() -> None:
    declared = series_names()
    found = rules()
    assert found
    for rule in found:
        names = set(METRIC_RE.findall(rule["expr"]))
        assert names - declared == set(), rule["alert"]
        assert names or set(re.findall(r"\b[a-z_]+(?=\{)", rule["expr"])) <= FOREIGN_OK, rule["alert"]
        assert rule["labels"].get("severity") in {"warning", "page"}, rule["alert"]
        assert rule["annotations"].get("summary"), rule["alert"]


@pytest.mark.parametrize(("needle", "what"), [
    (r"tradingd_breaker_level >= 2", "breaker level >= 2"),
    (r'tradingd_trading_state\{state="HALTED"\} == 1', "HALTED"),
    (r"tradingd_broker_connected == 0 and on\(instance, profile\) tradingd_market_open == 1", "broker down in RTH"),
    (r"tradingd_market_data_age_seconds > \d+", "market data stale"),
    (r"time\(\) - tradingd_last_checkpoint_timestamp_seconds", "checkpoint missing"),
    (r"tradingd_term_structure_inverted == 1", "term structure inverted (SPEC §10.2)"),
])
def test_required_alerts_exist(needle: str, what: str) -> None:
    assert any(re.search(needle, " ".join(rule["expr"].split())) for rule in rules()), what


def test_broker_disconnect_alerts_wait_sixty_seconds() -> None:
    broker = [r for r in rules() if "tradingd_broker_connected == 0" in r["expr"]]
    assert len(broker) == 2
    assert all(str(r["for"]) in {"60s", "1m"} for r in broker)


def test_fallback_reader_agrees_with_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    text = (MONITORING / "prometheus-rules.yml").read_text()
    parsed = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
    ours = _read_rules(text)
    assert [r["alert"] for r in ours] == [r["alert"] for r in parsed]
    assert [" ".join(r["expr"].split()) for r in ours] == [" ".join(str(r["expr"]).split()) for r in parsed]
