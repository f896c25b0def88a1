"""The profiles load, validate whole, take environment overrides, and name the key of every error."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from config.loader import ConfigError, load_settings, profile_path
from daemon.cli import main


@pytest.mark.parametrize("profile", ["0dte", "7dte"])
def test_profiles_load_with_spec_defaults(profile: str) -> None:
    s = load_settings(profile, env={})
    assert s.profile.name == profile
    assert s.multiplier.cap == Decimal("2.0")
    assert s.gate.confidence_threshold == Decimal("0.65")
    assert [lv.loss_pct for lv in s.breakers.levels] == [Decimal("0.07"), Decimal("0.10"), Decimal("0.15"), Decimal("0.20")]
    assert s.execution.max_messages_per_s <= 40


def test_0dte_numbers() -> None:
    s = load_settings("0dte", env={})
    assert s.profile.underlyings == ("SPY", "QQQ", "IWM")
    assert s.capital.account_size * s.sizing.min_bet_pct == Decimal("12000")
    assert s.capital.account_size * s.sizing.max_bet_pct == Decimal("24000")
    assert s.position_levels.hard_stop_pct == Decimal("-0.25")
    assert [b.starts.hour for b in s.exits.zero_dte.bands] == [0, 11, 14]


def test_7dte_numbers() -> None:
    s = load_settings("7dte", env={})
    assert s.capital.source == "equity"
    assert s.sizing.min_bet_floor == Decimal("33000")
    assert s.capital.account_size * s.sizing.max_bet_pct == Decimal("66000")
    assert (s.profile.expiry.min_dte, s.profile.expiry.target_dte, s.profile.expiry.max_dte) == (4, 7, 11)
    assert s.multiplier.liquidity_caps["TSLA"] == Decimal("1.0")
    assert s.position_levels.hard_stop_pct == Decimal("-0.20")


def test_decimal_values_are_exact() -> None:
    s = load_settings("7dte", env={})
    assert s.sizing.min_bet_pct == Decimal("0.33")  # not 0.33000000000000001554...


def test_environment_override() -> None:
    s = load_settings("0dte", env={"TRADINGD_SIZING__MAX_POSITIONS": "4", "TRADINGD_BROKER__IB__PORT": "7497"})
    assert s.sizing.max_positions == 4
    assert s.broker.ib.port == 7497


def test_environment_override_string_value() -> None:
    s = load_settings("0dte", env={"TRADINGD_BROKER__IB__HOST": "localhost"})
    assert s.broker.ib.host == "localhost"


def _problems(env: dict[str, str]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_settings("0dte", env=env)
    return info.value.problems


def test_unknown_key_is_named() -> None:
    assert _problems({"TRADINGD_SIZING__MIN_BETT_PCT": "0.2"})[0][0] == "sizing.min_bett_pct"


def test_min_bet_above_max_bet() -> None:
    key, message = _problems({"TRADINGD_SIZING__MIN_BET_PCT": "0.5"})[0]
    assert key == "sizing" and "min_bet_pct" in message


def test_negative_size_is_named() -> None:
    key, _ = _problems({"TRADINGD_SIZING__MAX_POSITIONS": "-1"})[0]
    assert key == "sizing.max_positions"


def test_breaker_thresholds_out_of_order() -> None:
    levels = ('[{level=1,name="a",loss_pct=0.10},{level=2,name="b",loss_pct=0.07},'
              '{level=3,name="c",loss_pct=0.15},{level=4,name="d",loss_pct=0.20}]')
    key, message = _problems({"TRADINGD_BREAKERS__LEVELS": levels})[0]
    assert key == "breakers" and "loss_pct" in message


def test_tier_shares_must_sum_to_one(tmp_path: Path) -> None:
    text = profile_path("0dte").read_text().replace("{ target = 0.15, share = 0.34 }", "{ target = 0.15, share = 0.30 }")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(str(bad), env={})
    key, message = info.value.problems[0]
    assert key == "exits.zero_dte" and "bands[0]" in message and "0.96" in message


def test_live_without_account_is_refused() -> None:
    key, message = _problems({"TRADINGD_BROKER__IB__LIVE": "true"})[0]
    assert key == "broker.ib" and "ib.account" in message


def test_unknown_profile() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings("1dte", env={})
    assert info.value.problems[0][0] == "profile"


def test_unreadable_toml(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[profile\nname=")
    with pytest.raises(ConfigError) as info:
        load_settings(str(bad), env={})
    assert "cannot read" in info.value.problems[0][1]


@pytest.mark.parametrize("profile", ["0dte", "7dte"])
def test_config_check_prints_profile(profile: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--profile", profile]) == 0
    out = capsys.readouterr().out
    assert f'profile.name = "{profile}"' in out
    assert "sizing.min_bet_pct" in out


def test_config_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--profile", "7dte", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sizing"]["min_bet_floor"] == "33000"


def test_config_check_reports_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRADINGD_SIZING__MIN_BET_PCT", "0.9")
    assert main(["config", "check", "--profile", "0dte", "--json"]) == 2
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["problems"][0]["key"] == "sizing"
    assert "Traceback" not in captured.err
