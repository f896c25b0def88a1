"""SPEC §4.1: is one candidate option's quote good enough to trade?

Pure: a quote, the liquidity config and the time in; a verdict with a reason code out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from market.types import Quote
from config.models import LiquidityConfig

# Reason codes, first failure wins, in this order.
NO_QUOTE = "no_quote"
QUOTE_UNUSABLE = "quote_unusable"
QUOTE_STALE = "quote_stale"
NO_BID = "no_bid"
NO_ASK = "no_ask"
CROSSED = "ask_not_above_bid"
SPREAD_TOO_WIDE = "spread_too_wide"
OPEN_INTEREST = "open_interest_below_min"


@dataclass(frozen=True, slots=True)
class LiquidityCheck:
    ok: bool
    reason: str | None = None  # a code above; None when ok
    detail: str = ""  # the numbers behind the reason, for logs and the decision record

    def __iter__(self) -> Iterator[object]:
        """`ok, reason = check_quote(...)` works as well as attribute access."""
        return iter((self.ok, self.reason))


PASS = LiquidityCheck(True)


def check_quote(quote: Quote | None, cfg: LiquidityConfig, now: datetime) -> LiquidityCheck:
    if quote is None:
        return LiquidityCheck(False, NO_QUOTE, "no quote received")
    if not quote.usable:
        return LiquidityCheck(False, QUOTE_UNUSABLE, "broker marked the data unusable")
    age = quote.age_s(now)
    if age > cfg.max_quote_age_s:
        return LiquidityCheck(False, QUOTE_STALE, f"age {age}s > {cfg.max_quote_age_s}s")
    if quote.bid is None or quote.bid <= 0:
        return LiquidityCheck(False, NO_BID, f"bid {quote.bid}")
    if quote.ask is None:
        return LiquidityCheck(False, NO_ASK, "no ask")
    if quote.ask <= quote.bid:
        return LiquidityCheck(False, CROSSED, f"bid {quote.bid} ask {quote.ask}")
    mid = (quote.bid + quote.ask) / 2
    spread = quote.ask - quote.bid
    # Cheap options trade in whole ticks, so a percentage of a tiny mid is unreachable: an absolute cap applies.
    allowed = mid * cfg.max_spread_pct
    if mid < cfg.small_mid_below:
        allowed = max(allowed, cfg.max_spread_abs_small)
    if spread > allowed:
        return LiquidityCheck(False, SPREAD_TOO_WIDE, f"spread {spread} > {allowed} (mid {mid})")
    if quote.open_interest is not None and quote.open_interest < cfg.min_open_interest:
        return LiquidityCheck(False, OPEN_INTEREST, f"open interest {quote.open_interest} < {cfg.min_open_interest}")
    return PASS
