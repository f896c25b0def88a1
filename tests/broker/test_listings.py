from datetime import date, datetime
from decimal import Decimal as D

import pytest

from broker.listings import (
    ListingError,
    listed_expiries,
    listed_strikes,
    option_chain,
    round_to_tick,
    session_close,
    strike_increment,
    tick_size,
)
from market.clock import EXCHANGE_TZ


def test_index_etfs_list_an_expiry_every_session():
    # 2019-02-18 was Presidents' Day: no session, no expiry
    assert listed_expiries("SPY", date(2019, 2, 14), horizon_days=6) == (
        date(2019, 2, 14), date(2019, 2, 15), date(2019, 2, 19), date(2019, 2, 20))


def test_single_stocks_list_weekly_fridays_or_thursday_before_a_holiday():
    assert listed_expiries("AAPL", date(2019, 4, 8), horizon_days=20) == (
        date(2019, 4, 12), date(2019, 4, 18), date(2019, 4, 26))  # Good Friday 04-19 -> Thursday
    assert listed_expiries("AAPL", date(2019, 4, 18), horizon_days=1) == (date(2019, 4, 18),)
    # from a weekend, the first expiry is the next Friday
    assert listed_expiries("MSFT", date(2019, 2, 9), horizon_days=7)[0] == date(2019, 2, 15)


def test_strike_grid_by_underlying_and_price():
    assert strike_increment("SPY", D(270)) == 1
    assert strike_increment("AAPL", D(170)) == D("2.5")
    assert strike_increment("TSLA", D("20")) == D("0.5")
    assert strike_increment("META", D(720)) == 5
    assert strike_increment("XYZ", D(1500)) == 10
    strikes = listed_strikes("AAPL", D("171.4"), count_each_side=2)
    assert strikes == (D("167.5"), D(170), D("172.5"), D(175), D("177.5"))
    assert all(k > 0 for k in listed_strikes("SPY", D(3), count_each_side=10))
    with pytest.raises(ListingError, match="bad_price"):
        listed_strikes("SPY", D(0))


def test_chain_for_a_date():
    chain = option_chain("QQQ", date(2019, 2, 12), D("166.2"))
    assert chain.underlying == "QQQ" and chain.expiries[0] == date(2019, 2, 12)
    assert D(166) in chain.strikes and chain.multiplier == 100


def test_session_close_knows_half_days():
    assert session_close(date(2019, 2, 12)) == datetime(2019, 2, 12, 16, 0, tzinfo=EXCHANGE_TZ)
    assert session_close(date(2019, 11, 29)) == datetime(2019, 11, 29, 13, 0, tzinfo=EXCHANGE_TZ)
    with pytest.raises(ListingError, match="not_a_session"):
        session_close(date(2019, 2, 16))
    with pytest.raises(ListingError, match="outside_calendar"):
        session_close(date(1990, 1, 2))


def test_price_ticks_penny_program():
    assert tick_size("SPY", D(12)) == D("0.01")
    assert tick_size("AAPL", D("2.99")) == D("0.01")
    assert tick_size("AAPL", D(3)) == D("0.05")
    assert round_to_tick("SPY", D("3.017"), "down") == D("3.01")
    assert round_to_tick("AAPL", D("3.07"), "down") == D("3.05")
    assert round_to_tick("AAPL", D("3.07"), "up") == D("3.10")
    assert round_to_tick("AAPL", D("2.996"), "up") == D("3.00")
    assert round_to_tick("AAPL", D("1.234"), "nearest") == D("1.23")
    with pytest.raises(ValueError):
        round_to_tick("AAPL", D(1), "sideways")


def test_spxw_expiries_follow_cboe_listing_history_and_strikes_are_5_points() -> None:
    from datetime import date
    from decimal import Decimal

    from broker.listings import listed_expiries, listed_strikes

    # 2021: Monday/Wednesday/Friday only
    assert listed_expiries("SPX", date(2021, 1, 4), 7) == (date(2021, 1, 4), date(2021, 1, 6), date(2021, 1, 8),
                                                          date(2021, 1, 11))
    # Tuesday added 2022-04-18, Thursday 2022-05-11: every session since
    assert date(2022, 4, 19) in listed_expiries("SPX", date(2022, 4, 18), 3)
    assert date(2022, 4, 21) not in listed_expiries("SPX", date(2022, 4, 18), 3)
    assert listed_expiries("SPX", date(2025, 10, 27), 4) == tuple(date(2025, 10, d) for d in range(27, 32))
    strikes = listed_strikes("SPX", Decimal("6853.2"), 2)
    assert strikes == tuple(Decimal(k) for k in (6845, 6850, 6855, 6860, 6865))
