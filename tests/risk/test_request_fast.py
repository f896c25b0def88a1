"""`normalize_request`'s shortcut for an already-normal request answers exactly what the full
field-by-field pass answers: the same object back, or the same InvalidInput."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

import risk.request as request_module
from config.loader import load_settings
from risk.numbers import InvalidInput
from risk.request import OpenPositionView, SizingRequest, normalize_request, parse_correlations
from risk.signal import parse_signal

NOW = datetime(2019, 2, 12, 10, 30, tzinfo=ZoneInfo("America/New_York"))
SETTINGS = load_settings("0dte", env={})


def base() -> SizingRequest:
    raw = {"id": "n-1", "profile": "0dte", "underlying": "SPY", "direction": "bullish", "strategy": "directional",
           "confidence": 0.8, "created_at": NOW.isoformat()}
    return SizingRequest(signal=parse_signal(raw, SETTINGS, NOW), price=Decimal("2.5"), capital_base=Decimal(60000),
                         now=NOW, vix=Decimal(18), vix_session_open=Decimal(17), vix_quote_age_s=Decimal(1),
                         quote_age_s=Decimal(2), open_positions=(OpenPositionView("QQQ", 3, Decimal("1.5")),),
                         correlations=parse_correlations({"SPY": {"QQQ": Decimal("0.9")}, "QQQ": {"SPY": Decimal("0.9")}}),
                         buying_power=Decimal(60000), option_delta=Decimal("0.5"), option_gamma=Decimal("0.05"),
                         portfolio_delta=Decimal(100), portfolio_gamma=Decimal(5), option_vega=Decimal("0.1"),
                         option_theta=Decimal("-0.2"), portfolio_vega=Decimal(10), portfolio_theta=Decimal(-20))


BAD = [0.5, -1, Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("-0"),
       Decimal("-0.01"), Decimal(0), Decimal("1e30"), "2.5", None,
       True, Decimal("0.001"),
       # the ±1E+12 bound's edges (the shortcut judges by the leading digit, then compares at 10**12 and up)
       Decimal("1E+12"), Decimal("-1E+12"), Decimal("1000000000000.000"), Decimal("999999999999.9999"),
       Decimal("1000000000000.0001"), Decimal("-1000000000000.0001"), Decimal("9.99E+12"), Decimal("0E+20"),
       Decimal("-0E+15"), Decimal("1E-30")]
FIELDS = ["price", "capital_base", "vix", "vix_session_open", "buying_power", "quote_age_s", "vix_quote_age_s",
          "option_delta", "option_gamma", "portfolio_delta", "portfolio_gamma", "option_vega", "option_theta",
          "portfolio_vega", "portfolio_theta"]


def answer(req: SizingRequest, full: bool, monkeypatch: pytest.MonkeyPatch, priced: bool = True) -> object:
    with monkeypatch.context() as m:
        if full:
            m.setattr(request_module, "_already_normal", lambda r, p: False)
        try:
            got = normalize_request(req, SETTINGS, priced=priced)
        except InvalidInput as exc:
            return ("invalid", exc.code, str(exc))
        return ("same", got is req, got)


def test_a_normal_request_comes_back_as_is() -> None:
    req = base()
    assert request_module._already_normal(req, True)
    assert normalize_request(req, SETTINGS) is req


@pytest.mark.parametrize("name", FIELDS)
def test_each_field_each_odd_value_answers_as_the_full_pass(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for value in BAD:
        req = replace(base(), **{name: value})
        for priced in (True, False):
            assert answer(req, False, monkeypatch, priced) == answer(req, True, monkeypatch, priced), (name, value)


def test_views_and_tables_as_given_answer_as_the_full_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    for _ in range(200):
        req = base()
        if rng.random() < 0.5:
            req = replace(req, open_positions=[OpenPositionView("qqq ", 3, Decimal("1.5"))])
        if rng.random() < 0.5:
            req = replace(req, correlations={"SPY": {"QQQ": Decimal("0.9")}})
        if rng.random() < 0.3:
            req = replace(req, open_positions=(OpenPositionView("QQQ", 0, Decimal("1.5")),))
        assert answer(req, False, monkeypatch) == answer(req, True, monkeypatch)
