"""Which legs a neutral or volatility signal trades (broker.combos, SPEC §9, §4.1 on every leg)."""

from datetime import date, datetime
from decimal import Decimal as D

from broker.combos import candidate_keys, select_combo
from config.loader import load_settings
from market.session import EXCHANGE_TZ
from market.types import OptionChain, OptionContract, Quote

S = load_settings("0dte")
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=EXCHANGE_TZ)
E = date(2026, 11, 30)
CHAIN = OptionChain("SPY", (E,), tuple(D(k) for k in range(440, 461)))


def key(k, right):
    return OptionContract("SPY", E, D(k), right).key


def book(**over):
    """A liquid chain around 450: deltas fall 0.05 a strike from 0.50 at the money."""
    quotes = {}
    for k in range(440, 461):
        for right in ("C", "P"):
            dist = (k - 450) if right == "C" else (450 - k)
            delta = max(D("0.01"), D("0.50") - D("0.05") * dist)
            mid = max(D("0.10"), D(2) - D("0.2") * dist)
            quotes[key(k, right)] = Quote(key(k, right), mid - D("0.02"), mid + D("0.02"), mid, NOW, bid_size=20,
                                          ask_size=20, delta=delta if right == "C" else -delta, gamma=D("0.05"))
    quotes.update(over)
    return quotes.get


def test_volatility_is_the_money_straddle():
    chosen = select_combo(CHAIN, "volatility", D("450.2"), NOW, S.profile.expiry, S.liquidity, S.multileg, book())
    assert chosen.ok and chosen.combo.structure == "straddle"
    assert [(l.contract.key, l.side) for l in chosen.combo.legs] == [(key(450, "C"), "BUY"), (key(450, "P"), "BUY")]
    assert chosen.quote.mid == D(4) and chosen.quote.delta == D(0)  # debit: the value is what is paid


def test_an_illiquid_straddle_leg_falls_back_to_the_strangle_one_strike_out():
    dead = Quote(key(450, "P"), D(0), D("2.02"), None, NOW)
    chosen = select_combo(CHAIN, "volatility", D(450), NOW, S.profile.expiry, S.liquidity, S.multileg,
                          book(**{key(450, "P"): dead}))
    assert chosen.ok and chosen.combo.structure == "strangle"
    assert {l.contract.key for l in chosen.combo.legs} == {key(451, "C"), key(449, "P")}
    assert chosen.reasons[key(450, "P")].startswith("no_bid")


def test_neutral_is_a_condor_short_near_020_delta_with_wings_of_the_configured_width():
    chosen = select_combo(CHAIN, "neutral", D(450), NOW, S.profile.expiry, S.liquidity, S.multileg, book())
    width = S.multileg.condor_wing_width
    assert chosen.ok and chosen.combo.structure == "iron_condor" and chosen.combo.value_offset == width
    legs = [(l.contract.key, l.side) for l in chosen.combo.legs]
    assert legs == [(key(456, "P").replace("456", "444"), "SELL"), (key(444 - int(width), "P"), "BUY"),
                    (key(456, "C"), "SELL"), (key(456 + int(width), "C"), "BUY")]
    assert 0 < chosen.quote.mid < width  # value = width - credit = the max loss per unit


def test_an_unfillable_wing_refuses_the_whole_condor_liquidity():
    wing = key(456 + int(S.multileg.condor_wing_width), "C")
    chosen = select_combo(CHAIN, "neutral", D(450), NOW, S.profile.expiry, S.liquidity, S.multileg,
                          book(**{wing: Quote(wing, D(0), D("0.05"), None, NOW)}))
    assert not chosen.ok and chosen.reason == "liquidity" and wing in chosen.detail


def test_candidate_keys_cover_what_the_selection_reads():
    for strategy in ("volatility", "neutral"):
        keys = set(candidate_keys(CHAIN, strategy, D(450), NOW, S.profile.expiry, S.multileg))
        chosen = select_combo(CHAIN, strategy, D(450), NOW, S.profile.expiry, S.liquidity, S.multileg, book())
        assert {l.contract.key for l in chosen.combo.legs} <= keys
