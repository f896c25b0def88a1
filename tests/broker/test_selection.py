from datetime import date, datetime, timedelta
from decimal import Decimal as D

from broker import liquidity, selection
from broker.listings import option_chain
from broker.selection import choose_expiry, select_contract, strikes_outward
from market.types import OptionChain
from market.clock import EXCHANGE_TZ
from tests.broker.helpers import quote, settings

S0 = settings("0dte")
S7 = settings("7dte")


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=EXCHANGE_TZ)


def good(key, now):
    return quote(key, "1.00", "1.04", at=now, oi=5000)


def test_0dte_trades_the_same_day_expiry():
    now = at(date(2019, 2, 12))
    chain = option_chain("SPY", now.date(), D("270.40"))
    chosen = select_contract(chain, "bullish", D("270.40"), now, S0.profile.expiry, S0.liquidity,
                             lambda k: good(k, now))
    assert chosen.ok and chosen.contract.expiry == date(2019, 2, 12)
    assert chosen.contract.right == "C" and chosen.contract.strike == D(270)
    assert chosen.quote.key == chosen.contract.key


def test_0dte_without_a_same_day_expiry_is_refused():
    now = at(date(2019, 2, 12))
    chain = OptionChain("SPY", (date(2019, 2, 13),), (D(270),))
    refused = select_contract(chain, "bullish", D(270), now, S0.profile.expiry, S0.liquidity, lambda k: good(k, now))
    assert not refused.ok and refused.reason == selection.NO_EXPIRY


def test_7dte_holiday_week_picks_the_thursday_expiry_before_good_friday():
    # 2019-04-19 was Good Friday: the weekly expired Thursday 04-18, 7 days after Thursday 04-11.
    now = at(date(2019, 4, 11))
    chain = option_chain("AAPL", now.date(), D("198.95"))
    assert date(2019, 4, 18) in chain.expiries and date(2019, 4, 19) not in chain.expiries
    chosen = select_contract(chain, "bearish", D("198.95"), now, S7.profile.expiry, S7.liquidity,
                             lambda k: good(k, now))
    assert chosen.ok and chosen.contract.expiry == date(2019, 4, 18)
    assert chosen.contract.right == "P" and chosen.contract.strike == D("200")  # $2.50 strikes: 197.5 / 200


def test_7dte_window_is_four_to_eleven_days():
    cfg = S7.profile.expiry
    today = date(2019, 4, 15)  # Monday: Thursday 04-18 is 3 days out, Friday 04-26 is 11
    assert choose_expiry((date(2019, 4, 18), date(2019, 4, 26)), today, cfg) == date(2019, 4, 26)  # 3 out, 11 in
    assert choose_expiry((date(2019, 4, 18),), today, cfg) is None  # 3 days: too near
    assert choose_expiry((date(2019, 4, 27),), today, cfg) is None  # 12 days: too far
    assert choose_expiry((date(2019, 4, 19), date(2019, 4, 18)), today, cfg) == date(2019, 4, 19)  # 4 in, 3 out
    # nearest 7: 6 beats 9, and a tie (6 vs 8) goes to the later expiry
    assert choose_expiry((date(2019, 4, 21), date(2019, 4, 24)), today, cfg) == date(2019, 4, 21)
    assert choose_expiry((date(2019, 4, 21), date(2019, 4, 23)), today, cfg) == date(2019, 4, 23)


def test_strikes_are_tried_outward_at_most_three_each_side():
    strikes = tuple(D(k) for k in range(90, 111))
    assert strikes_outward(strikes, D("100.2"), 3, "C") == [D(k) for k in (100, 101, 99, 102, 98, 103, 97)]
    # half-way between two strikes: the in-the-money one first
    assert strikes_outward(strikes, D("100.5"), 1, "C")[:2] == [D(100), D(101)]
    assert strikes_outward(strikes, D("100.5"), 1, "P")[:2] == [D(101), D(100)]
    # at the edge of the chain there is nothing beyond the last strike
    assert strikes_outward(strikes, D(110), 3, "C") == [D(k) for k in (110, 109, 108, 107)]


def test_first_liquid_strike_outward_is_chosen():
    now = at(date(2019, 2, 12))
    chain = OptionChain("SPY", (now.date(),), tuple(D(k) for k in range(260, 281)))
    liquid = {"SPY 20190212 C 271"}

    def lookup(key):
        return good(key, now) if key in liquid else quote(key, "1.00", "1.50", at=now)

    chosen = select_contract(chain, "bullish", D("270.2"), now, S0.profile.expiry, S0.liquidity, lookup)
    assert chosen.contract.strike == D(271)
    assert [c.contract.strike for c in chosen.tried] == [D(270), D(271)]


def test_liquidity_refusal_lists_every_candidate_and_its_reason():
    now = at(date(2019, 2, 12))
    chain = OptionChain("SPY", (now.date(),), tuple(D(k) for k in range(260, 281)))
    book = {
        "SPY 20190212 C 270": quote("SPY 20190212 C 270", "1.00", "1.50", at=now),
        "SPY 20190212 C 271": quote("SPY 20190212 C 271", "1.00", "1.04", at=now, oi=10),
        "SPY 20190212 C 269": quote("SPY 20190212 C 269", "1.00", "1.04", at=now - timedelta(seconds=30)),
        "SPY 20190212 C 272": quote("SPY 20190212 C 272", "0", "0.05", at=now),
    }
    refused = select_contract(chain, "bullish", D(270), now, S0.profile.expiry, S0.liquidity, book.get)
    assert not refused.ok and refused.reason == selection.LIQUIDITY
    assert len(refused.tried) == 7  # the money strike and three each side, no more
    codes = {c.contract.key: c.check.reason for c in refused.tried}
    assert codes["SPY 20190212 C 270"] == liquidity.SPREAD_TOO_WIDE
    assert codes["SPY 20190212 C 271"] == liquidity.OPEN_INTEREST
    assert codes["SPY 20190212 C 269"] == liquidity.QUOTE_STALE
    assert codes["SPY 20190212 C 272"] == liquidity.NO_BID
    assert codes["SPY 20190212 C 267"] == liquidity.NO_QUOTE
    assert "SPY 20190212 C 266" not in codes and "SPY 20190212 C 274" not in codes
    assert refused.reasons["SPY 20190212 C 271"].startswith("open_interest_below_min (open interest 10 < 500")


def test_bad_inputs_are_refusals_not_crashes():
    now = at(date(2019, 2, 12))
    chain = OptionChain("SPY", (now.date(),), (D(270),))
    args = (now, S0.profile.expiry, S0.liquidity, lambda k: None)
    assert select_contract(chain, "sideways", D(270), *args).reason == selection.BAD_DIRECTION
    assert select_contract(chain, "bullish", None, *args).reason == selection.NO_UNDERLYING_PRICE
    assert select_contract(chain, "bullish", D(-1), *args).reason == selection.NO_UNDERLYING_PRICE
    empty = OptionChain("SPY", (now.date(),), ())
    assert select_contract(empty, "bullish", D(270), *args).reason == selection.NO_STRIKES
