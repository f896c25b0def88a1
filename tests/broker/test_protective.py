"""The protective stop's price (SPEC §6.1). The stops themselves are the core's stop desk
(tests/daemon/core/test_stops.py), carried out by the live shell: tests/daemon/test_live_wiring.py (sim)
and tests/broker/test_ib_e2e.py, test_ib_refused_changes.py, test_live_restart.py (IB over the fake gateway)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from broker.protective import stop_price


@pytest.mark.parametrize(("entry", "pct", "expected"), [
    ("2.60", "-0.25", "1.95"), ("2.55", "-0.25", "1.91"), ("10.00", "-0.20", "8.00"), ("0.01", "-0.25", "0.01")])
def test_stop_price_is_the_hard_stop_rounded_down_to_the_tick(entry, pct, expected):
    assert stop_price(Decimal(entry), Decimal(pct), Decimal("0.01")) == Decimal(expected)
