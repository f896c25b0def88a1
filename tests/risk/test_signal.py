from datetime import timedelta, timezone
from decimal import Decimal

import pytest

from risk.signal import SignalRejected, parse_signal
from tests.risk.builders import NOW, raw_signal, settings


def parse(profile: str = "0dte", **fields):
    return parse_signal(raw_signal(profile, **fields), settings(profile), NOW)


def rejected(raw, profile: str = "0dte") -> str:
    with pytest.raises(SignalRejected) as info:
        parse_signal(raw, settings(profile), NOW)
    assert info.value.family == "invalid_signal"
    assert info.value.message
    return info.value.reason_code


def test_valid_signal_has_exact_decimals_and_defaults():
    sig = parse(confidence=0.7)
    assert sig.confidence == Decimal("0.7")  # not the binary 0.69999…
    assert sig.ttl_s == Decimal(settings("0dte").gate.default_ttl_s)
    assert sig.action == "open" and sig.position_id is None and sig.fundamentals is None
    assert sig.created_at == NOW


@pytest.mark.parametrize("symbol", [" spy ", "spy", "Spy", "SPY ", "ſpy", "ſPY", "SPY\u200b", "ＳＰＹ", "SPY\n"])
def test_underlying_must_match_the_profiles_list_exactly(symbol):
    """Part 8: ASCII only, no trimming, no case folding ("ſpy".upper() == "SPY" must not trade SPY)."""
    with pytest.raises(SignalRejected) as err:
        parse(underlying=symbol)
    assert err.value.reason_code == "unknown_underlying"
    assert parse(underlying="SPY").underlying == "SPY"


def test_scale_in_carries_position_id():
    sig = parse(action="scale_in", position_id="pos-7")
    assert (sig.action, sig.position_id) == ("scale_in", "pos-7")


def test_fundamentals_in_percent_units():
    sig = parse("7dte", earnings_surprise_pct=12, analyst_buy_pct=75.5, pe_ratio=20, sector_pe=30)
    f = sig.fundamentals
    assert f is not None
    assert (f.earnings_surprise_pct, f.analyst_buy_pct, f.analyst_sell_pct) == (Decimal(12), Decimal("75.5"), None)
    assert (f.pe_ratio, f.sector_pe) == (Decimal(20), Decimal(30))


def test_created_at_accepts_a_datetime_and_offsets_other_than_new_york():
    assert parse(created_at=NOW).created_at == NOW
    utc = NOW.astimezone(timezone.utc).isoformat()
    assert parse(created_at=utc).created_at == NOW


@pytest.mark.parametrize("fields, code", [
    ({"id": None}, "missing_field"),
    ({"confidence": None}, "missing_field"),
    ({"created_at": None}, "missing_field"),
    ({"price": 3.0}, "unknown_field"),
    ({"id": 42}, "invalid_type"),
    ({"id": "a:b"}, "invalid_id"),
    ({"id": "x" * 65}, "invalid_id"),
    ({"profile": "7dte"}, "wrong_profile"),
    ({"underlying": "AAPL"}, "unknown_underlying"),
    ({"underlying": ""}, "invalid_type"),
    ({"direction": "sideways"}, "invalid_direction"),
    ({"strategy": "yolo"}, "invalid_strategy"),
    ({"action": "close"}, "invalid_action"),
    ({"confidence": "0.7"}, "invalid_type"),
    ({"confidence": True}, "invalid_type"),
    ({"confidence": float("nan")}, "invalid_confidence"),
    ({"confidence": float("inf")}, "invalid_confidence"),
    ({"confidence": 1.0001}, "invalid_confidence"),
    ({"confidence": -0.01}, "invalid_confidence"),
    ({"ttl_s": 0}, "invalid_ttl"),
    ({"ttl_s": -5}, "invalid_ttl"),
    ({"ttl_s": float("nan")}, "invalid_ttl"),
    ({"ttl_s": "60"}, "invalid_type"),
    ({"created_at": "yesterday"}, "invalid_created_at"),
    ({"created_at": "2024-03-05T10:30:00"}, "invalid_created_at"),  # naive
    ({"created_at": 1709652600}, "invalid_type"),
    ({"created_at": (NOW + timedelta(seconds=30)).isoformat()}, "created_in_future"),
    ({"action": "scale_in"}, "missing_position_id"),
    ({"position_id": "pos-1"}, "unexpected_position_id"),
    ({"action": "scale_in", "position_id": 7}, "invalid_type"),
])
def test_each_malformed_field_has_its_reason(fields, code):
    assert rejected(raw_signal("0dte", **fields)) == code  # a None field is left out: missing


@pytest.mark.parametrize("fields, code", [
    ({"earnings_surprise_pct": float("nan")}, "invalid_fundamentals"),
    ({"analyst_buy_pct": 101}, "invalid_fundamentals"),
    ({"analyst_sell_pct": -1}, "invalid_fundamentals"),
    ({"pe_ratio": 10, "sector_pe": 0}, "invalid_fundamentals"),
    ({"pe_ratio": "cheap"}, "invalid_type"),
])
def test_bad_fundamentals(fields, code):
    assert rejected(raw_signal("7dte", **fields), "7dte") == code


def test_not_a_mapping():
    assert rejected(["id", "sig-1"]) == "invalid_signal"


def test_slight_clock_skew_is_tolerated():
    ahead = NOW + timedelta(seconds=float(settings("0dte").gate.max_clock_skew_s))
    assert parse(created_at=ahead.isoformat()).created_at == ahead


def test_age():
    sig = parse()
    assert sig.age_s(NOW + timedelta(seconds=61)) == Decimal(61)
