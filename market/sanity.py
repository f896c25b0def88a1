"""Market-data sanity (SPEC §4.4): is a quote usable, and if not, why.

A pure, stateful checker: it keeps, per key, the last usable mid (the reference for the jump
check), a pending jump waiting for confirmation, and when each key+reason was last logged. It
reads no clock: the caller passes `now`. Every quote path (the IB stream, IB snapshots, the sim,
the replay feed) writes through `broker.quotes.QuoteBook.update`, which asks this checker.

A quote is unusable when:
- `invalid_price`: bid, ask or last is NaN, infinite, or negative (IB's -1 "no value" included);
- `crossed`: bid > ask (a locked bid == ask is a real, if odd, market);
- `future_stamp`: stamped more than `max_future_s` after now;
- `too_old`: stamped more than `max_age_s` before now;
- `tick_jump`: its mid moved more than `max_tick_jump` (underlyings and options apart) from the
  last usable mid, unless a second quote within `jump_window_s` of it agrees with it (within the
  same limit) and so confirms it. A reference older than `jump_reference_max_age_s` is no
  reference (the market may really have moved while the key was silent or unusable): the next
  quote is taken as is. Quotes a model priced (`Quote.modelled`) are not jump-checked: they are
  a function of their underlying, which is, and carry its usability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from market.types import Quote

INVALID_PRICE = "invalid_price"
CROSSED = "crossed"
FUTURE_STAMP = "future_stamp"
TOO_OLD = "too_old"
TICK_JUMP = "tick_jump"
REASONS = (INVALID_PRICE, CROSSED, FUTURE_STAMP, TOO_OLD, TICK_JUMP)

_MAX_LOG_KEYS = 10_000  # the log-once table is pruned past this many key+reason pairs


@dataclass(frozen=True, slots=True)
class SanityLimits:
    """The §4.4 numbers (from `config.models.MarketDataConfig`)."""

    max_tick_jump_underlying: Decimal
    max_tick_jump_option: Decimal
    jump_window_s: Decimal
    jump_reference_max_age_s: Decimal
    max_future_s: Decimal
    max_age_s: Decimal
    log_interval_s: Decimal

    @classmethod
    def from_config(cls, cfg: object) -> SanityLimits:
        """From `config.models.MarketDataConfig` (market/ imports nothing of tradingd, so: by name)."""
        return cls(**{name: getattr(cfg, name) for name in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Verdict:
    usable: bool
    reason: str | None = None  # one of REASONS when unusable
    detail: str = ""
    log: bool = False  # the first of its key+reason within the log interval: log it (always count it)

    def describe(self, key: str) -> str:
        return f"{key}: {self.reason} ({self.detail})"


USABLE = Verdict(True)


# A key's reference mid and its stamp, `(mid, at)`: a plain tuple, made on every usable underlying
# quote (a NamedTuple's generated `__new__` cost more than the rest of the jump check).
_Mid = tuple[Decimal, datetime]
_MID, _AT = 0, 1


def is_option_key(key: str) -> bool:
    """`OptionContract.key` is `SPY 20190211 C 270`; underlyings and indices are bare symbols."""
    return " " in key


class QuoteSanity:
    def __init__(self, limits: SanityLimits, is_option: Callable[[str], bool] = is_option_key):
        self.limits = limits
        self.is_option = is_option
        # The time limits as timedeltas once: this runs on every quote of a replay.
        self._future = _delta(limits.max_future_s)
        self._old = _delta(limits.max_age_s)
        self._window = _delta(limits.jump_window_s)
        self._reference_age = _delta(limits.jump_reference_max_age_s)
        self._log_interval = _delta(limits.log_interval_s)
        # a quote stamped at the moment it is judged passes both time checks (neither limit is negative)
        self._now_fine = self._future >= timedelta(0) and self._old >= timedelta(0)
        self._limits_not_negative = limits.max_tick_jump_option >= 0 and limits.max_tick_jump_underlying >= 0
        self._last: dict[str, _Mid] = {}
        self._pending: dict[str, _Mid] = {}
        self._logged: dict[tuple[str, str], datetime] = {}

    def check(self, quote: Quote, now: datetime) -> Verdict:
        """The verdict on `quote` received at `now`; a usable quote becomes its key's reference."""
        # The common case, decided here without allocating: Decimal prices inside [0, inf) (ordered
        # compares: NaN raises, inf fails), not crossed, stamped at `now` itself (the core judges each
        # quote at its own stamp, and then both time checks pass). Anything else: `_judge`, check by check.
        bid, ask, last = quote.bid, quote.ask, quote.last
        try:
            plain = ((bid is None or _ZERO <= bid < _INF) and (ask is None or _ZERO <= ask < _INF)
                     and (last is None or _ZERO <= last < _INF) and (bid is None or ask is None or bid <= ask))
        except (ArithmeticError, TypeError):
            plain = False
        if plain and quote.received_at is now and self._now_fine:
            if quote.modelled:  # `_jump`'s first answer
                return USABLE
            verdict = self._jump(quote)
        else:
            verdict = self._judge(quote, now)
        if verdict.usable:
            return verdict
        return Verdict(False, verdict.reason, verdict.detail, log=self._first_in_interval(quote.key, verdict.reason, now))

    def last_usable_mid(self, key: str) -> Decimal | None:
        last = self._last.get(key)
        return None if last is None else last[_MID]

    def forget(self, key: str) -> None:
        """Drop a key's reference and pending jump (e.g. when its subscription ends)."""
        self._last.pop(key, None)
        self._pending.pop(key, None)

    # ------------------------------------------------------------------ the checks, in order

    def _judge(self, quote: Quote, now: datetime) -> Verdict:
        for name in ("bid", "ask", "last"):
            value = getattr(quote, name)
            if value is not None and not _sane_price(value):
                return Verdict(False, INVALID_PRICE, f"{name} {value}")
        bid, ask = quote.bid, quote.ask
        if bid is not None and ask is not None and bid > ask:
            return Verdict(False, CROSSED, f"bid {bid} > ask {ask}")
        lim = self.limits
        ahead = quote.received_at - now
        if ahead > self._future:
            return Verdict(False, FUTURE_STAMP, f"stamped {_seconds(ahead)} s in the future, more than "
                                                f"{lim.max_future_s} s")
        if -ahead > self._old:
            return Verdict(False, TOO_OLD, f"{_seconds(-ahead)} s old on arrival, more than {lim.max_age_s} s")
        return self._jump(quote)

    def _jump(self, quote: Quote) -> Verdict:
        if quote.modelled:  # before the mid: a modelled quote's mid is not needed here
            return USABLE
        mid, key, at = quote.mid, quote.key, quote.received_at
        if mid is None or mid <= 0:
            return USABLE
        ref = self._last.get(key)
        # An unchanged mid moved 0 % (`_move` is 0): within either limit when neither is negative, decided
        # without the key's kind and without a division (most quotes of a 1-second stream in cents).
        if ref is None or at - ref[_AT] > self._reference_age or (mid == ref[_MID] and self._limits_not_negative):
            within = True
        else:
            lim = self.limits
            limit = lim.max_tick_jump_option if self.is_option(key) else lim.max_tick_jump_underlying
            within = _move(ref[_MID], mid) <= limit
        if within:
            self._last[key] = (mid, at)  # `_accept`, inline: this is nearly every underlying quote
            if self._pending:
                self._pending.pop(key, None)
            return USABLE
        pending = self._pending.get(key)
        if pending is not None and at - pending[_AT] <= self._window and _move(pending[_MID], mid) <= limit:
            self._accept(key, mid, at)  # a second quote agrees: the market really moved
            return USABLE
        self._pending[key] = (mid, at)
        return Verdict(False, TICK_JUMP, f"mid {mid} is {_move(ref[_MID], mid):.0%} from the last usable mid "
                                         f"{ref[_MID]}, more than {limit:.0%}, unconfirmed")

    def _accept(self, key: str, mid: Decimal, at: datetime) -> None:
        self._last[key] = (mid, at)
        if self._pending:
            self._pending.pop(key, None)

    def _first_in_interval(self, key: str, reason: str | None, now: datetime) -> bool:
        slot = (key, reason or "")
        last = self._logged.get(slot)
        if last is not None and timedelta(0) <= now - last < self._log_interval:
            return False
        if len(self._logged) >= _MAX_LOG_KEYS:
            horizon = now - self._log_interval
            self._logged = {k: v for k, v in self._logged.items() if v > horizon}
        self._logged[slot] = now
        return True


_ZERO = Decimal(0)
_INF = Decimal("Infinity")


def _sane_price(value: Decimal) -> bool:
    try:
        return value.is_finite() and value >= 0
    except AttributeError:  # a float slipped through: judge it the same way
        return value == value and value not in (float("inf"), float("-inf")) and value >= 0


def _move(reference: Decimal, mid: Decimal) -> Decimal:
    return abs(mid - reference) / reference


def _delta(seconds: Decimal) -> timedelta:
    return timedelta(seconds=float(seconds))


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(str(delta.total_seconds()))
