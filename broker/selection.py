"""Contract choice (SPEC §1, §4.1): which listed option a signal trades.

Expiry: the listed expiry closest to `target_dte` calendar days within [min_dte, max_dte]
(0dte: today's). Right: calls for bullish, puts for bearish. Strike: the one nearest the
money that passes the liquidity check, trying outward (at most `strikes_each_side` each side
of the money strike). Pure: the chain, the underlying price, the time and a quote lookup in;
a Selection out. It never raises: a refusal carries its reason code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from broker.liquidity import LiquidityCheck, check_quote
from market.types import OptionChain, OptionContract, Quote, Right
from config.models import ExpiryConfig, LiquidityConfig
from market.clock import EXCHANGE_TZ

# Refusal reason codes. `liquidity` is SPEC §2.1's; the others say why there was nothing to check.
LIQUIDITY = "liquidity"
NO_EXPIRY = "no_expiry"
NO_STRIKES = "no_strikes"
NO_UNDERLYING_PRICE = "no_underlying_price"
BAD_DIRECTION = "bad_direction"

RIGHT_FOR_DIRECTION: dict[str, Right] = {"bullish": "C", "bearish": "P"}

QuoteLookup = Callable[[str], Quote | None]


@dataclass(frozen=True, slots=True)
class Candidate:
    contract: OptionContract
    quote: Quote | None
    check: LiquidityCheck


@dataclass(frozen=True, slots=True)
class Selection:
    contract: OptionContract | None
    quote: Quote | None
    reason: str | None  # None when a contract was chosen
    tried: tuple[Candidate, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.contract is not None

    @property
    def reasons(self) -> dict[str, str]:
        """Every candidate tried -> why it failed (empty reason when it passed), for the decision record."""
        return tried_reasons(self.tried)


def tried_reasons(tried: tuple[Candidate, ...]) -> dict[str, str]:
    return {c.contract.key: (c.check.reason or "") + (f" ({c.check.detail})" if c.check.detail else "")
            for c in tried}


def choose_expiry(expiries: Iterable[date], today: date, cfg: ExpiryConfig) -> date | None:
    """Closest to target within the window; on a tie the later expiry (see docs/decisions/broker.md)."""
    window = [e for e in expiries if cfg.min_dte <= (e - today).days <= cfg.max_dte]
    if not window:
        return None
    return min(window, key=lambda e: (abs((e - today).days - cfg.target_dte), -e.toordinal()))


def strikes_outward(strikes: Sequence[Decimal], spot: Decimal, each_side: int, right: Right) -> list[Decimal]:
    """The money strike, then outward by distance from spot, at most `each_side` strikes above and below it.

    Equal distance goes to the in-the-money strike: more delta per premium dollar and, usually,
    a tighter spread in percent.
    """
    ordered = sorted(set(strikes))
    if not ordered:
        return []

    def itm_first(k: Decimal) -> int:
        itm = k < spot if right == "C" else k > spot
        return 0 if itm else 1

    def rank(k: Decimal) -> tuple[Decimal, int]:
        return abs(k - spot), itm_first(k)

    money = min(ordered, key=rank)
    i = ordered.index(money)
    window = ordered[max(0, i - each_side): i + each_side + 1]
    return sorted(window, key=rank)


def candidates(chain: OptionChain, direction: str, spot: Decimal, today: date, expiry_cfg: ExpiryConfig,
               each_side: int) -> list[OptionContract]:
    """The contracts select_contract would try, in order (the engine subscribes to these first)."""
    right = RIGHT_FOR_DIRECTION.get(direction)
    expiry = choose_expiry(chain.expiries, today, expiry_cfg)
    if right is None or expiry is None or spot is None or not spot > 0:
        return []
    return [OptionContract(chain.underlying, expiry, k, right, chain.multiplier)
            for k in strikes_outward(chain.strikes_for(expiry), spot, each_side, right)]


def select_contract(chain: OptionChain, direction: str, spot: Decimal | None, now: datetime,
                    expiry_cfg: ExpiryConfig, liquidity_cfg: LiquidityConfig, quote_of: QuoteLookup) -> Selection:
    if direction not in RIGHT_FOR_DIRECTION:
        return Selection(None, None, BAD_DIRECTION, detail=f"direction {direction!r} is not bullish or bearish")
    if spot is None or not spot > 0:
        return Selection(None, None, NO_UNDERLYING_PRICE, detail=f"underlying price {spot}")
    today = now.astimezone(EXCHANGE_TZ).date()
    if choose_expiry(chain.expiries, today, expiry_cfg) is None:
        return Selection(None, None, NO_EXPIRY, detail=(
            f"no listed expiry {expiry_cfg.min_dte}-{expiry_cfg.max_dte} days after {today}"))
    contracts = candidates(chain, direction, spot, today, expiry_cfg, liquidity_cfg.strikes_each_side)
    if not contracts:
        return Selection(None, None, NO_STRIKES, detail="the chain lists no strikes")
    tried = []
    for contract in contracts:
        quote = quote_of(contract.key)
        check = check_quote(quote, liquidity_cfg, now)
        tried.append(Candidate(contract, quote, check))
        if check.ok:
            return Selection(contract, quote, None, tuple(tried))
    return Selection(None, None, LIQUIDITY, tuple(tried), detail=f"none of {len(tried)} strikes passed §4.1")
