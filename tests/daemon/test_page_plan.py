"""The operator page's exit plan (daemon/page/plan.py) against each profile's own exit rules."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from config.loader import load_settings
from daemon.page.plan import exit_plan
from exits import ExitPosition, MarketSnapshot, new_state
from exits.partial import threshold_id
from exits.tiered import tier_id
from market import calendar
from market.clock import EXCHANGE_TZ


def _at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=EXCHANGE_TZ)


def test_0dte_next_tier_stop_and_closeout() -> None:
    settings = load_settings("0dte", env={})
    day = date(2019, 2, 11)
    position = ExitPosition(entry_price=Decimal("2.00"), entry_time=_at(day, 10, 0), original_quantity=10,
                            open_quantity=10, expiry=day, underlying="SPY", profile="0dte")
    state = new_state(position, settings)
    market = MarketSnapshot(option_price=Decimal("2.05"), session=calendar.session_for(day), vix=Decimal(20))
    plan = exit_plan(position, state, market, _at(day, 10, 30), settings, calendar.session_for(day))
    band = [b for b in settings.exits.zero_dte.bands if b.starts <= time(10, 0)][-1]  # the entry's band
    first = band.tiers[0].target  # VIX 20 (between the VIX bands) and 5 h to the close: unscaled
    assert plan.next_target == Decimal("2.00") * (1 + first)
    assert plan.next_target_name is not None and plan.next_target_name.startswith("tier 1/")
    assert (plan.stop, plan.stop_rule, plan.trailing_stop) == (state.stop_price, "hard_stop", None)
    assert plan.forced_close == _at(day, 15, 43)  # the close-out starts two parent timeouts before 15:45 (flat by)
    fired = type(state)(fired=frozenset({tier_id(1)}), stop_price=state.stop_price, stop_rule=state.stop_rule)
    later = exit_plan(position, fired, market, _at(day, 10, 30), settings, calendar.session_for(day))
    assert later.next_target_name is not None and later.next_target_name.startswith("tier 2/")


def test_7dte_threshold_trailing_stop_and_expiry_close() -> None:
    settings = load_settings("7dte", env={})
    entry_day, expiry = date(2019, 2, 11), date(2019, 2, 15)
    position = ExitPosition(entry_price=Decimal("10.00"), entry_time=_at(entry_day, 10, 0), original_quantity=8,
                            open_quantity=8, expiry=expiry, underlying="AAPL", profile="7dte")
    state = new_state(position, settings)
    market = MarketSnapshot(option_price=Decimal("10.50"), session=calendar.session_for(entry_day))
    plan = exit_plan(position, state, market, _at(entry_day, 11, 0), settings, calendar.session_for(expiry))
    assert plan.next_target == Decimal("10.00") * (1 + Decimal("0.20") * Decimal("0.9"))  # 4 DTE: x 0.9
    # The -20 % hard stop and the 20 % initial stop meet at 8.00: the hard stop names it.
    assert (plan.stop, plan.stop_rule, plan.trailing_stop) == (Decimal("8.00"), "hard_stop", None)
    assert plan.forced_close == _at(expiry, 15, 30)
    trailed = type(state)(fired=frozenset({threshold_id(1), threshold_id(2), threshold_id(3)}),
                          stop_price=Decimal("11.50"), stop_rule="trailing_stop")
    runner = exit_plan(position, trailed, market, _at(entry_day, 11, 0), settings, calendar.session_for(expiry))
    assert runner.next_target is None and runner.next_target_name == "runner: trailing stop and take-profit"
    assert runner.trailing_stop == Decimal("11.50")
