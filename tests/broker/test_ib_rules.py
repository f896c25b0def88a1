"""The pure parts of broker/ib: restart window, backoff, the paper check, account values, error codes, statuses."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.base import BrokerError
from broker.ib import codes
from broker.ib.account import check_account, snapshot_from_values
from broker.ib.contracts import plain_decimal
from broker.ib.orders import map_status
from broker.ib.windows import backoff_delays, in_restart_window
from market.types import OrderStatus
from config.models import IBConfig
from tests.broker.test_ib_support import at

START, END = time(23, 45), time(0, 45)


@pytest.mark.parametrize(("when", "inside"), [
    (at(23, 44), False), (at(23, 45), True), (at(0, 30, date(2024, 3, 7)), True),
    (at(0, 45, date(2024, 3, 7)), False), (at(12, 0), False),
    (at(12, 0, date(2024, 3, 9)), True), (at(12, 0, date(2024, 3, 10)), True),  # Saturday, Sunday
])
def test_restart_window_crosses_midnight_and_covers_the_weekend(when, inside):
    assert in_restart_window(when, START, END) is inside


def test_a_window_within_one_day():
    assert in_restart_window(at(3, 0), time(2, 0), time(4, 0))
    assert not in_restart_window(at(4, 0), time(2, 0), time(4, 0))


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), jitter=st.decimals("0", "0.99", places=2))
def test_backoff_doubles_to_the_cap_and_jitter_only_shortens(seed, jitter):
    delays = backoff_delays(Decimal(1), Decimal(60), jitter, random.Random(seed))
    nominal = [1, 2, 4, 8, 16, 32, 60, 60]
    for expected, got in zip(nominal, delays):
        assert expected * (1 - float(jitter)) - 1e-9 <= got <= expected


def test_paper_accounts_pass_and_live_ones_need_live_and_a_matching_account():
    assert check_account(["DU111"], IBConfig()) == "DU111"
    with pytest.raises(BrokerError) as err:
        check_account(["U222"], IBConfig())
    assert err.value.code == "live_account_refused" and "ib.account = \"U222\"" in str(err.value)
    assert check_account(["U222"], IBConfig(live=True, account="U222")) == "U222"
    with pytest.raises(BrokerError) as err:
        check_account(["U222", "U333"], IBConfig())
    assert err.value.code == "account_ambiguous"
    with pytest.raises(BrokerError) as err:
        check_account([], IBConfig())
    assert err.value.code == "no_account"


@dataclass
class _Value:
    account: str
    tag: str
    value: str
    currency: str


def test_account_snapshot_takes_base_currency_values_and_names_what_is_missing():
    values = [_Value("DU1", "NetLiquidation", "1038472.36", "GBP"), _Value("DU1", "BuyingPower", "4153889.44", "GBP"),
              _Value("DU1", "TotalCashValue", "1038472.36", "GBP"), _Value("DU1", "CashBalance", "5", "BASE")]
    snap = snapshot_from_values("DU1", values, 176)
    assert (snap.currency, snap.net_liquidation, snap.paper) == ("GBP", Decimal("1038472.36"), True)
    with pytest.raises(BrokerError) as err:
        snapshot_from_values("DU1", values[:1], 176)
    assert err.value.code == "account_values_missing" and "buying_power" in str(err.value)
    with pytest.raises(BrokerError) as err:
        snapshot_from_values("DU1", [_Value("DU1", "NetLiquidation", "n/a", "USD")], 176)
    assert err.value.code == "bad_account_value"


@pytest.mark.parametrize(("code", "effect"), [
    (1100, codes.Effect.CONNECTIVITY_LOST), (1101, codes.Effect.RESTORED_DATA_LOST),
    (1102, codes.Effect.RESTORED_DATA_KEPT), (326, codes.Effect.CLIENT_ID_IN_USE),
    (354, codes.Effect.QUOTE_STALE), (10197, codes.Effect.QUOTE_STALE), (2103, codes.Effect.ALL_QUOTES_STALE),
    (2104, codes.Effect.DATA_FARM_OK), (201, codes.Effect.ORDER_REJECTED), (202, codes.Effect.ORDER_CANCELLED),
    (2199, codes.Effect.INFO), (99999, codes.Effect.INFO),
])
def test_error_codes_are_classified(code, effect):
    assert codes.info(code).effect is effect


@pytest.mark.parametrize(("status", "filled", "ours"), [
    ("PreSubmitted", 0, OrderStatus.SUBMITTED), ("Submitted", 0, OrderStatus.SUBMITTED),
    ("Submitted", 2, OrderStatus.PARTIALLY_FILLED), ("Filled", 5, OrderStatus.FILLED),
    ("ApiCancelled", 0, OrderStatus.CANCELLED), ("Inactive", 0, OrderStatus.INACTIVE),
    ("PendingCancel", 0, None), ("ValidationError", 0, None),
])
def test_ib_statuses_map_to_ours(status, filled, ours):
    assert map_status(status, filled) is ours


def test_wire_floats_become_plain_decimals():
    assert str(plain_decimal(470.0)) == "470" and str(plain_decimal(2.5)) == "2.5"
    assert str(plain_decimal(0.05)) == "0.05"
