"""Which legs a neutral or volatility signal trades (SPEC §9, §4.1 on every leg).

- `volatility`: a long straddle (the money strike's call and put); when either leg fails the
  liquidity check, a long strangle `strangle_steps` strikes out (call above, put below).
- `neutral`: an iron condor bought as a credit: short put and short call nearest
  `condor_short_delta` (|delta|, out of the money), long wings the listed strike nearest
  `condor_wing_width` beyond each short. An unfillable wing refuses the whole trade `liquidity`.

Both on the profile's expiry rule. Pure: chain, spot, time, a quote look-up and config in; a
`ComboSelection` out; it never raises (a refusal carries its reason code). The chosen combo's
quote is `market.combo.combo_quote` (value space: what sizing prices the max loss on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from broker.liquidity import check_quote
from broker.selection import (
    LIQUIDITY,
    NO_EXPIRY,
    NO_STRIKES,
    NO_UNDERLYING_PRICE,
    Candidate,
    choose_expiry,
    tried_reasons,
)
from config.models import ExpiryConfig, LiquidityConfig, MultilegConfig
from market.clock import EXCHANGE_TZ
from market.combo import Combo, combo_quote
from market.types import ComboLeg, OptionChain, OptionContract, Quote

QuoteLookup = Callable[[str], Quote | None]
NO_GREEKS = "no_greeks"  # the condor's short strikes are chosen by delta: none known, nothing chosen
STRATEGIES = ("neutral", "volatility")


@dataclass(frozen=True, slots=True)
class ComboSelection:
    combo: Combo | None
    quote: Quote | None  # the combo's value-space quote when chosen
    reason: str | None
    tried: tuple[Candidate, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.combo is not None

    @property
    def reasons(self) -> dict[str, str]:
        return tried_reasons(self.tried)


def _expiry(chain: OptionChain, now: datetime, cfg: ExpiryConfig) -> date | None:
    return choose_expiry(chain.expiries, now.astimezone(EXCHANGE_TZ).date(), cfg)


def _money_index(strikes: list[Decimal], spot: Decimal) -> int:
    return min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot), strikes[i]))


def candidate_keys(chain: OptionChain, strategy: str, spot: Decimal, now: datetime, expiry_cfg: ExpiryConfig,
                   cfg: MultilegConfig) -> list[str]:
    """Every option key the selection may look at (the core subscribes to these before deciding)."""
    expiry = _expiry(chain, now, expiry_cfg)
    strikes = sorted(set(chain.strikes_for(expiry))) if expiry is not None else []
    if expiry is None or not strikes or not spot > 0:
        return []
    i = _money_index(strikes, spot)
    if strategy == "volatility":
        reach = cfg.strangle_steps
        window = strikes[max(0, i - reach): i + reach + 1]
        return [OptionContract(chain.underlying, expiry, k, right, chain.multiplier).key  # type: ignore[arg-type]
                for k in window for right in ("C", "P")]
    # the condor: puts at and below the money (shorts and their wings), calls at and above
    low = strikes[max(0, i - cfg.condor_search_strikes): i + 1]
    high = strikes[i: i + cfg.condor_search_strikes + 1]
    puts = [k for k in strikes if low[0] - cfg.condor_wing_width <= k <= low[-1]]
    calls = [k for k in strikes if high[0] <= k <= high[-1] + cfg.condor_wing_width]
    return [*(OptionContract(chain.underlying, expiry, k, "P", chain.multiplier).key for k in reversed(puts)),
            *(OptionContract(chain.underlying, expiry, k, "C", chain.multiplier).key for k in calls)]


def select_combo(chain: OptionChain, strategy: str, spot: Decimal | None, now: datetime, expiry_cfg: ExpiryConfig,
                 liquidity_cfg: LiquidityConfig, cfg: MultilegConfig, quote_of: QuoteLookup) -> ComboSelection:
    if spot is None or not spot > 0:
        return ComboSelection(None, None, NO_UNDERLYING_PRICE, detail=f"underlying price {spot}")
    expiry = _expiry(chain, now, expiry_cfg)
    if expiry is None:
        return ComboSelection(None, None, NO_EXPIRY, detail=f"no listed expiry {expiry_cfg.min_dte}-"
                                                            f"{expiry_cfg.max_dte} days out")
    strikes = sorted(set(chain.strikes_for(expiry)))
    if not strikes:
        return ComboSelection(None, None, NO_STRIKES, detail="the chain lists no strikes")

    def contract(k: Decimal, right: str) -> OptionContract:
        return OptionContract(chain.underlying, expiry, k, right, chain.multiplier)  # type: ignore[arg-type]

    tried: list[Candidate] = []

    def check(c: OptionContract) -> bool:
        quote = quote_of(c.key)
        verdict = check_quote(quote, liquidity_cfg, now)
        tried.append(Candidate(c, quote, verdict))
        return verdict.ok

    def chosen(structure: str, legs: tuple[ComboLeg, ...], offset: Decimal = Decimal(0)) -> ComboSelection:
        combo = Combo(strategy, structure, legs, offset)
        return ComboSelection(combo, combo_quote(combo, quote_of), None, tuple(tried))

    i = _money_index(strikes, spot)
    if strategy == "volatility":
        call, put = contract(strikes[i], "C"), contract(strikes[i], "P")
        if check(call) & check(put):  # both checked: the record names every leg that failed
            return chosen("straddle", (ComboLeg(call, "BUY"), ComboLeg(put, "BUY")))
        steps = cfg.strangle_steps
        if i + steps < len(strikes) and i - steps >= 0:
            call, put = contract(strikes[i + steps], "C"), contract(strikes[i - steps], "P")
            if check(call) & check(put):
                return chosen("strangle", (ComboLeg(call, "BUY"), ComboLeg(put, "BUY")))
        return ComboSelection(None, None, LIQUIDITY, tuple(tried),
                              detail="neither the straddle nor the strangle passed §4.1 on every leg")
    if strategy != "neutral":
        return ComboSelection(None, None, "bad_strategy", detail=f"strategy {strategy!r} is not a combo")
    target = cfg.condor_short_delta
    short_put = _by_delta([k for k in strikes[max(0, i - cfg.condor_search_strikes): i + 1] if k < spot],
                          "P", target, contract, quote_of)
    short_call = _by_delta([k for k in strikes[i: i + cfg.condor_search_strikes + 1] if k > spot],
                           "C", target, contract, quote_of)
    if short_put is None or short_call is None:
        return ComboSelection(None, None, NO_GREEKS, tuple(tried),
                              detail=f"no out-of-the-money {'put' if short_put is None else 'call'} with a known delta")
    wing_put = _wing(strikes, short_put, -cfg.condor_wing_width)
    wing_call = _wing(strikes, short_call, cfg.condor_wing_width)
    if wing_put is None or wing_call is None:
        return ComboSelection(None, None, LIQUIDITY, tuple(tried),
                              detail=f"no listed wing {cfg.condor_wing_width} beyond the short strikes")
    legs = (ComboLeg(contract(short_put, "P"), "SELL"), ComboLeg(contract(wing_put, "P"), "BUY"),
            ComboLeg(contract(short_call, "C"), "SELL"), ComboLeg(contract(wing_call, "C"), "BUY"))
    passed = [check(leg.contract) for leg in legs]  # every leg checked and recorded
    if not all(passed):
        failed = [leg.contract.key for leg, ok in zip(legs, passed) if not ok]
        return ComboSelection(None, None, LIQUIDITY, tuple(tried),
                              detail=f"iron condor leg(s) failed §4.1: {', '.join(failed)}")
    width = max(short_put - wing_put, wing_call - short_call)
    return chosen("iron_condor", legs, width)


def _by_delta(strikes: list[Decimal], right: str, target: Decimal, contract, quote_of) -> Decimal | None:  # type: ignore[no-untyped-def]
    best: tuple[Decimal, Decimal] | None = None
    for k in strikes:
        quote = quote_of(contract(k, right).key)
        if quote is None or quote.delta is None:
            continue
        distance = abs(abs(quote.delta) - target)
        if best is None or distance < best[0]:
            best = (distance, k)
    return None if best is None else best[1]


def _wing(strikes: list[Decimal], short: Decimal, width: Decimal) -> Decimal | None:
    """The listed strike nearest `short + width` on the far side of `short` (a tie goes outward)."""
    side = [k for k in strikes if (k < short if width < 0 else k > short)]
    if not side:
        return None
    aim = short + width
    return min(side, key=lambda k: (abs(k - aim), -abs(k - short)))
