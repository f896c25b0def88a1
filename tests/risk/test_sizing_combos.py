"""SPEC §2.3's invariant over all three families (SPEC §9): every entry sent has its maximum loss in
[min bet, max bet], or is not sent. A combo is sized on its value (market.combo), and the value it is
sized at IS its maximum loss per unit: checked here against the payoff at expiry, brute force."""

from datetime import date, datetime
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from market.combo import Combo, combo_quote
from market.types import ComboLeg, OptionContract, Quote
from risk.sizing import evaluate
from tests.risk.builders import request, settings, signal

NOW = datetime(2026, 11, 30, 15, 0)
EXPIRY = date(2026, 12, 4)


def _quote(contract: OptionContract, mid: D, half: D) -> Quote:
    return Quote(contract.key, mid - half, mid + half, mid, NOW, bid_size=50, ask_size=50)


def _payoff(legs: tuple[ComboLeg, ...], spot: D) -> D:
    """Value at expiry of one unit bought (per share)."""
    total = D(0)
    for leg in legs:
        k = leg.contract.strike
        intrinsic = max(D(0), spot - k) if leg.contract.right == "C" else max(D(0), k - spot)
        total += (intrinsic if leg.side == "BUY" else -intrinsic) * leg.ratio
    return total


@st.composite
def combos(draw):
    """(family, combo, its value-space quote): a directional single leg, a straddle/strangle, a condor."""
    family = draw(st.sampled_from(["directional", "volatility", "neutral"]))
    center = D(draw(st.integers(50, 500)))
    step = draw(st.sampled_from([D(1), D("2.5"), D(5)]))
    cents = st.integers(5, 3000).map(lambda c: D(c) / 100)
    half = D(draw(st.integers(1, 5))) / 100

    def c(k: D, right: str) -> OptionContract:
        return OptionContract("AAPL", EXPIRY, k, right)  # type: ignore[arg-type]

    if family == "directional":
        price = draw(cents)
        return family, None, price, {}
    if family == "volatility":
        out = step * draw(st.integers(0, 1))
        legs = (ComboLeg(c(center + out, "C"), "BUY"), ComboLeg(c(center - out, "P"), "BUY"))
        mids = [draw(cents), draw(cents)]
        combo = Combo("volatility", "straddle" if not out else "strangle", legs)
    else:
        gap = step * draw(st.integers(1, 6))
        width = step * draw(st.integers(1, 4))
        legs = (ComboLeg(c(center - gap, "P"), "SELL"), ComboLeg(c(center - gap - width, "P"), "BUY"),
                ComboLeg(c(center + gap, "C"), "SELL"), ComboLeg(c(center + gap + width, "C"), "BUY"))
        short_p, short_c = draw(cents), draw(cents)
        wing_p = D(draw(st.integers(1, 100))) / 100 * short_p  # a wing is worth less than its short
        wing_c = D(draw(st.integers(1, 100))) / 100 * short_c
        mids = [short_p, max(D("0.01"), wing_p.quantize(D("0.01"))), short_c, max(D("0.01"), wing_c.quantize(D("0.01")))]
        combo = Combo("neutral", "iron_condor", legs, width)
    quotes = {leg.contract.key: _quote(leg.contract, m + half, half) for leg, m in zip(combo.legs, mids)}
    quote = combo_quote(combo, quotes.get)
    return family, combo, quote.mid, quotes


@hyp_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(combos(), st.sampled_from(["0dte", "7dte"]), st.decimals(D("0.65"), D(1), places=2))
def test_every_family_sized_by_max_loss_within_the_bets(drawn, profile, confidence):
    family, combo, value, _ = drawn
    cfg = settings(profile)
    if combo is not None:
        entry_net = combo.net(value)
        strikes = [leg.contract.strike for leg in combo.legs]
        grid = [D(0), *strikes, max(strikes) * 3]  # the payoff is piecewise linear: its extremes are at kinks
        max_loss = max(entry_net - _payoff(combo.legs, s) for s in grid)
        assert value == max_loss  # value space: what a unit is sized at is what it can lose
        if combo.credit:
            assert value == combo.value_offset - (-entry_net)  # width - credit
    if value <= 0:
        return  # a combo with no value to lose (a free condor) is never an entry: nothing to size
    underlying = cfg.profile.underlyings[0]
    sig = signal(profile, underlying=underlying, strategy=family, confidence=float(confidence))
    decision = evaluate(request(profile, value, sig=sig), cfg)
    if not decision.accepted:
        assert decision.reason
        return
    notional = decision.contracts * value * cfg.profile.contract_multiplier
    assert decision.notional == notional
    assert decision.min_bet <= notional <= decision.max_bet
    cap = {"neutral": cfg.multiplier.strategy_caps.get("neutral")}.get(family)
    if isinstance(cap, D):
        assert decision.multiplier <= cap
