"""SPEC §10.1 in the exit rules, through the whole policy: macro-day 0dte targets × 0.8 and the
7dte thresholds × 0.75 while earnings fall before expiry, each named in the exit reason."""

from __future__ import annotations

from datetime import date

from tests.exits.builders import DAY, FRI, at, seven_position, walk, zero_position


def closes(out):
    """The closing actions of one evaluation (a 7dte trailing stop may also ratchet: not under test)."""
    return tuple(a for a in out[0][1] if a.kind in ("close", "partial_close"))

FOMC = ("fomc 2025-03-03 14:00 ET",)


def test_a_7dte_position_whose_expiry_spans_earnings_takes_its_20_percent_tier_at_15():
    position = seven_position()  # entry 100, Friday, expiry next Friday: 7 DTE, no DTE scaling
    plain, _ = walk(position, [(at(FRI, 11), "115.00")])
    assert closes(plain) == ()  # without earnings 15 % is below the 20 % threshold
    held, _ = walk(position, [(at(FRI, 11), "114.99")], earnings_date=date(2025, 3, 6))
    assert closes(held) == ()
    fired, _ = walk(position, [(at(FRI, 11), "115.00")], earnings_date=date(2025, 3, 6))
    action = closes(fired)[0]
    assert (action.kind, action.quantity, action.rule) == ("partial_close", 5, "partial_profit")
    assert action.reason.endswith("; earnings 2025-03-06 before expiry 2025-03-07 x 0.75")
    assert "thresholds +15.0%" in action.reason


def test_an_fomc_day_takes_0dte_targets_at_0_8():
    # entry 10.00 at 09:45, now 10:00 (> 3 h to the close, held < 3 h), VIX 20: tier 1 at +5 %, x 0.8 = +4 %
    position = zero_position()
    ordinary, _ = walk(position, [(at(DAY, 10), "10.40")])
    assert ordinary[0][1] == ()
    below, _ = walk(position, [(at(DAY, 10), "10.39")], macro_events=FOMC)
    assert below[0][1] == ()
    fired, _ = walk(position, [(at(DAY, 10), "10.40")], macro_events=FOMC)
    action = fired[0][1][0]
    assert (action.rule, action.quantity) == ("take_profit_tier_1", 3)
    assert action.reason.endswith("; macro day (fomc 2025-03-03 14:00 ET) x 0.8")


def test_7dte_targets_do_not_move_on_a_macro_day():
    position = seven_position()
    out, _ = walk(position, [(at(FRI, 11), "119.99")], macro_events=("cpi 2025-02-28 08:30 ET",))
    assert closes(out) == ()
