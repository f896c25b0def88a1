"""Part 8: strict booleans and no empty paths in the configuration."""

from __future__ import annotations

import pytest

from config.loader import ConfigError, load_settings


@pytest.mark.parametrize("text", ['"yes"', "yes", "1", "0", '"true"', '"on"'])
def test_live_must_be_a_toml_boolean(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings("0dte", env={"TRADINGD_BROKER__IB__LIVE": text})
    assert "broker.ib.live" in str(err.value) and "must be true or false" in str(err.value)


@pytest.mark.parametrize("key", ["TRADINGD_SCALE_IN__ENABLED", "TRADINGD_BROKER__PROTECTIVE__ENABLED"])
def test_real_booleans_still_load(key: str) -> None:
    section, field = key[len("TRADINGD_"):].lower().split("__", 1)
    settings = load_settings("0dte", env={key: "false"})
    node = getattr(settings, section)
    for part in field.split("__"):
        node = getattr(node, part)
    assert node is False


@pytest.mark.parametrize("key, value", [("TRADINGD_DAEMON__STATE_DIR", ""), ("TRADINGD_DAEMON__STATE_DIR", "   "),
                                        ("TRADINGD_DAEMON__API__TOKEN_FILE", ""),
                                        ("TRADINGD_DAEMON__STORE__URL", " ")])
def test_empty_paths_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings("0dte", env={key: value})
    assert "must not be empty" in str(err.value)


def test_overrides_refuse_string_booleans() -> None:
    with pytest.raises(ConfigError):
        load_settings("7dte", overrides={"scale_in.enabled": "no"})
