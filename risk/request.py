"""What the sizer is asked: the signal plus the market and book it is sized against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from config.models import Settings
from risk import reasons
from risk.breakers import TradingState
from risk.events import NO_EVENTS, EventView
from risk.numbers import MAX_MAGNITUDE, MIN_PRICE, InvalidInput, require_decimal
from risk.regime import VolatilityView
from risk.signal import Signal
from market.frozen import fast_init

Correlations = Mapping[str, Mapping[str, Decimal]]
_NO_CORRELATIONS: Correlations = MappingProxyType({})
_ONE = Decimal(1)
_ZERO = Decimal(0)
_TOP_DIGIT = MAX_MAGNITUDE.adjusted()  # 12: a finite Decimal whose adjusted() is below it lies strictly inside ±MAX_MAGNITUDE
_MAX_COUNT = int(MAX_MAGNITUDE)  # the same bound as an int: an int compared with a Decimal converts it first


@dataclass(frozen=True, slots=True)
class OpenPositionView:
    """One open position as sizing sees it: `price` is the premium paid per share."""

    underlying: str
    contracts: int
    price: Decimal

    def exposure(self, multiplier: int) -> Decimal:
        return self.contracts * self.price * multiplier


@fast_init
@dataclass(frozen=True)
class SizingRequest:
    """Everything one sizing decision depends on; the engine fills it, the sizer only reads it.

    `price` is the option's limit price per share. `option_delta`/`option_gamma` are per share as
    quoted (0.50), `portfolio_delta`/`portfolio_gamma` in share-equivalents (Σ greek × multiplier ×
    contracts; 0 with nothing open). `vix_quote_age_s` is the age of the VIX quote `vix` came from.
    `what_if` (the `size` command): checks needing data the caller does not have (quote age,
    liquidity, VIX, greeks) are recorded as skipped instead of failing; the engine leaves it False,
    so a missing quote or missing greeks refuse the entry.
    """

    signal: Signal
    price: Decimal
    capital_base: Decimal
    now: datetime
    vix: Decimal | None = None
    vix_session_open: Decimal | None = None
    open_positions: tuple[OpenPositionView, ...] = ()
    correlations: Correlations = field(default_factory=lambda: _NO_CORRELATIONS)
    buying_power: Decimal | None = None
    breaker_level: int = 0
    trading_state: TradingState = TradingState.ACTIVE
    quote_age_s: Decimal | None = None
    vix_quote_age_s: Decimal | None = None
    liquidity_ok: bool | None = None
    duplicate: bool = False
    option_delta: Decimal | None = None
    option_gamma: Decimal | None = None
    portfolio_delta: Decimal | None = None
    portfolio_gamma: Decimal | None = None
    what_if: bool = False
    # room expiry: when the close-out of the same-day expiry this entry would trade starts (None: the
    # profile's expiry window never holds today's expiry, or no session today).
    closeout_at: datetime | None = None
    # SPEC §10 (room regime): looked up / computed by the shell, passed in as values. `events` is
    # what the calendar says for this signal; `volatility` the regime's inputs beside `vix`;
    # vega per share per vol point and theta per share per calendar day, portfolio ones in $
    # (Σ greek × multiplier × contracts). The defaults leave every older caller unchanged.
    events: EventView = NO_EVENTS
    volatility: VolatilityView | None = None
    option_vega: Decimal | None = None
    option_theta: Decimal | None = None
    portfolio_vega: Decimal | None = None
    portfolio_theta: Decimal | None = None
    # Part 8: an underlying held for operator review (§6.1), and why the market data it would be
    # sized on is unusable (§4.4 sanity: "SPY: crossed (bid 101 > ask 100)"), None when usable.
    underlying_blocked: bool = False
    market_data_problem: str | None = None
    vix_usable: bool = True  # False: the VIX quote failed §4.4; `vix_above_threshold` is skipped, not judged
    # SPEC §6.2: why the store cannot write (disk full, read-only, database down), None while it can.
    store_unavailable: str | None = None


def normalize_request(request: SizingRequest, settings: Settings, *, priced: bool = True) -> SizingRequest:
    """The request with every number a finite Decimal in range, or InvalidInput naming the first bad one.

    `priced=False` (the pre-quote gate, before any contract is chosen): the option price is not
    known yet, so it is left as given and not checked."""
    signal = request.signal
    if not isinstance(signal, Signal):
        raise InvalidInput(reasons.INVALID_SIGNAL, f"not a parsed signal: {type(signal).__name__}")
    if not isinstance(request.now, datetime) or not isinstance(signal.created_at, datetime):
        raise InvalidInput(reasons.INVALID_CREATED_AT, "now and created_at must be datetimes")
    if signal.profile != settings.profile.name:
        raise InvalidInput(reasons.WRONG_PROFILE, f"signal is for {signal.profile!r}, settings are {settings.profile.name!r}")
    if signal.underlying not in settings.profile.underlyings:
        raise InvalidInput(reasons.UNKNOWN_UNDERLYING, f"{signal.underlying!r} is not traded by {settings.profile.name}")
    confidence, ttl_s = signal.confidence, signal.ttl_s
    # What require_decimal answers for a finite Decimal in its bounds (the value itself), without the call.
    if not (type(confidence) is Decimal and confidence.is_finite() and _ZERO <= confidence <= _ONE):
        confidence = require_decimal(confidence, reasons.INVALID_CONFIDENCE, "confidence", minimum=_ZERO, maximum=_ONE)
    if not (type(ttl_s) is Decimal and ttl_s.is_finite() and _ZERO < ttl_s <= MAX_MAGNITUDE):
        ttl_s = require_decimal(ttl_s, reasons.INVALID_TTL, "ttl_s", strictly_above=_ZERO)
    if request.now.tzinfo is None or signal.created_at.tzinfo is None:
        raise InvalidInput(reasons.INVALID_CREATED_AT, "times must be timezone-aware")
    if not isinstance(request.breaker_level, int) or isinstance(request.breaker_level, bool) \
            or not 0 <= request.breaker_level <= len(settings.breakers.levels):
        raise InvalidInput(reasons.INVALID_BREAKER_LEVEL, f"breaker level must be 0-{len(settings.breakers.levels)}, "
                           f"got {request.breaker_level!r}")
    if not isinstance(request.trading_state, TradingState):
        raise InvalidInput(reasons.INVALID_TRADING_STATE, f"unknown trading state {request.trading_state!r}")
    if confidence is not signal.confidence or ttl_s is not signal.ttl_s:
        signal = replace(signal, confidence=confidence, ttl_s=ttl_s)
    elif _already_normal(request, priced):
        return request  # what the field-by-field pass below would answer, without its ~20 calls
    normalized = {
        "signal": signal,
        "price": (require_decimal(request.price, reasons.INVALID_PRICE, "option price", minimum=MIN_PRICE)
                  if priced else request.price),
        "capital_base": require_decimal(request.capital_base, reasons.INVALID_CAPITAL_BASE, "capital base",
                                        strictly_above=_ZERO),
        "vix": _optional(request.vix, reasons.INVALID_VIX, "VIX", minimum=_ZERO),
        "vix_session_open": _optional(request.vix_session_open, reasons.INVALID_VIX, "VIX session open",
                                      strictly_above=_ZERO),
        "open_positions": parse_open_positions(request.open_positions),
        "correlations": parse_correlations(request.correlations),
        "buying_power": _optional(request.buying_power, reasons.INVALID_BUYING_POWER, "buying power"),
        "quote_age_s": _optional(request.quote_age_s, reasons.INVALID_QUOTE_AGE, "quote age", minimum=_ZERO),
        "vix_quote_age_s": _optional(request.vix_quote_age_s, reasons.INVALID_QUOTE_AGE, "VIX quote age",
                                     minimum=_ZERO),
        "option_delta": _optional(request.option_delta, reasons.INVALID_GREEKS, "option delta"),
        "option_gamma": _optional(request.option_gamma, reasons.INVALID_GREEKS, "option gamma"),
        "portfolio_delta": _optional(request.portfolio_delta, reasons.INVALID_GREEKS, "portfolio delta"),
        "portfolio_gamma": _optional(request.portfolio_gamma, reasons.INVALID_GREEKS, "portfolio gamma"),
        "option_vega": _optional(request.option_vega, reasons.INVALID_GREEKS, "option vega"),
        "option_theta": _optional(request.option_theta, reasons.INVALID_GREEKS, "option theta"),
        "portfolio_vega": _optional(request.portfolio_vega, reasons.INVALID_GREEKS, "portfolio vega"),
        "portfolio_theta": _optional(request.portfolio_theta, reasons.INVALID_GREEKS, "portfolio theta"),
        "events": _events(request.events),
        "volatility": _volatility(request.volatility),
    }
    # Speed, not a rule: a request whose every value is already normalized (Decimals in range, a
    # validated table, views as parsed) is returned as is instead of copied field by field.
    changed = {k: v for k, v in normalized.items() if v is not getattr(request, k)}
    return replace(request, **changed) if changed else request


def _already_normal(r: SizingRequest, priced: bool) -> bool:
    """True when `normalize_request` would hand `r` back unchanged: every number already a finite Decimal
    (`type(...) is Decimal`) inside the bounds `require_decimal` checks, the views, table, events and
    volatility as parsed. False sends the request through the full pass (which names a bad value)."""
    top = MAX_MAGNITUDE
    v = r.price
    if priced and not (type(v) is Decimal and v.is_finite() and MIN_PRICE <= v <= top):
        return False
    v = r.capital_base
    if not (type(v) is Decimal and v.is_finite() and _ZERO < v <= top):
        return False
    for v in (r.vix, r.quote_age_s, r.vix_quote_age_s):  # minimum 0
        if v is not None and not (type(v) is Decimal and v.is_finite() and _ZERO <= v <= top):
            return False
    v = r.vix_session_open  # strictly above 0
    if v is not None and not (type(v) is Decimal and v.is_finite() and _ZERO < v <= top):
        return False
    # Any finite value within ±top: a finite Decimal whose leading digit sits below 10**12 (`adjusted()`,
    # an int) is inside without the two Decimal comparisons (~40 % of their cost); only a leading digit
    # at 10**12 or above needs them (±1E+12 itself is in).
    for v in (r.buying_power, r.option_delta, r.option_gamma, r.portfolio_delta, r.portfolio_gamma,
              r.option_vega, r.option_theta, r.portfolio_vega, r.portfolio_theta):
        if v is not None and not (type(v) is Decimal and v.is_finite()
                                  and (v.adjusted() < _TOP_DIGIT or -top <= v <= top)):
            return False
    if not isinstance(r.events, EventView) or not (r.volatility is None or isinstance(r.volatility, VolatilityView)):
        return False
    try:
        return (parse_open_positions(r.open_positions) is r.open_positions
                and parse_correlations(r.correlations) is r.correlations
                and (r.volatility is None or _volatility(r.volatility) is r.volatility))
    except InvalidInput:
        return False


def _events(raw: object) -> EventView:
    if not isinstance(raw, EventView):
        raise InvalidInput(reasons.INVALID_EVENTS, f"events must be an EventView, got {type(raw).__name__}")
    return raw


def _volatility(raw: object) -> VolatilityView | None:
    if raw is None:
        return None
    if not isinstance(raw, VolatilityView):
        raise InvalidInput(reasons.INVALID_VOLATILITY, f"volatility must be a VolatilityView, got {type(raw).__name__}")
    code = reasons.INVALID_VOLATILITY
    parsed = VolatilityView(
        vix_percentile=_optional(raw.vix_percentile, code, "VIX percentile", minimum=Decimal(0), maximum=_ONE),
        term_slope=_optional(raw.term_slope, code, "term slope"),
        skew_percentile=_optional(raw.skew_percentile, code, "skew percentile", minimum=Decimal(0), maximum=_ONE))
    # Already normalized: the same view back, so normalize_request need not copy the request.
    same = (parsed.vix_percentile is raw.vix_percentile and parsed.term_slope is raw.term_slope
            and parsed.skew_percentile is raw.skew_percentile)
    return raw if same else parsed


def parse_open_positions(raw: object) -> tuple[OpenPositionView, ...]:
    """Open positions from OpenPositionViews or JSON-like objects {underlying, contracts, price}."""
    # A tuple (what the daemon passes) is a list and neither text nor a mapping: no ABC checks for it.
    if type(raw) is tuple:
        # A tuple of views exactly as parsed (what the daemon passes, every decision) is the answer: judged
        # in one loop before the parsing loop below builds a list and an index for each of them.
        for item in raw:
            if type(item) is not OpenPositionView or not _parsed_view(item):
                break
        else:
            return raw  # type: ignore[return-value]
    elif isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
        raise InvalidInput(reasons.INVALID_OPEN_POSITION, "open positions must be a list")
    views: list[OpenPositionView] = []
    same = isinstance(raw, tuple)  # every item already a view exactly as parsed: the tuple is the answer
    for i, item in enumerate(raw):
        if type(item) is OpenPositionView and _parsed_view(item):
            views.append(item)
            continue
        same = False
        if isinstance(item, OpenPositionView):
            item = {"underlying": item.underlying, "contracts": item.contracts, "price": item.price}
        if not isinstance(item, Mapping) or set(item) != {"underlying", "contracts", "price"}:
            raise InvalidInput(reasons.INVALID_OPEN_POSITION,
                               f"open position [{i}] must be an object with exactly underlying, contracts, price")
        underlying, contracts = item["underlying"], item["contracts"]
        if not isinstance(underlying, str) or not underlying.strip():
            raise InvalidInput(reasons.INVALID_OPEN_POSITION, f"open position [{i}]: underlying must be a symbol")
        if isinstance(contracts, bool) or not isinstance(contracts, int) or not 0 < contracts <= MAX_MAGNITUDE:
            raise InvalidInput(reasons.INVALID_OPEN_POSITION,
                               f"open position [{i}]: contracts must be a positive integer of at most {MAX_MAGNITUDE}")
        price = require_decimal(item["price"], reasons.INVALID_OPEN_POSITION, f"open position [{i}] price",
                                minimum=Decimal(0))
        views.append(OpenPositionView(underlying.strip().upper(), contracts, price))
    return raw if same else tuple(views)  # type: ignore[return-value]


def _parsed_view(view: OpenPositionView) -> bool:
    """True when parsing `view` would give back an equal view (so it can be kept as it is)."""
    underlying, contracts, price = view.underlying, view.contracts, view.price
    return (type(underlying) is str and bool(underlying) and underlying == underlying.strip().upper()
            and type(contracts) is int and 0 < contracts <= _MAX_COUNT
            and type(price) is Decimal and price.is_finite() and _ZERO <= price <= MAX_MAGNITUDE)


class CorrelationTable(Mapping[str, Mapping[str, Decimal]]):
    """A correlation table already validated by `parse_correlations`: read-only, so it stays valid,
    and handed back as is when parsed again (the daemon validates its table once per refresh, not
    once per signal)."""

    __slots__ = ("_rows", "get")

    def __init__(self, rows: Mapping[str, Mapping[str, Decimal]]):
        self._rows = MappingProxyType({k: MappingProxyType(dict(v)) for k, v in rows.items()})
        # The hot lookup (risk.correlation.rho, a few per decision): the proxy's own C `get`, no
        # Python method (nor the Mapping mixin's) in between.
        self.get = self._rows.get

    def __getitem__(self, key: str) -> Mapping[str, Decimal]:
        return self._rows[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"CorrelationTable({dict(self._rows)!r})"


def parse_correlations(raw: object) -> Correlations:
    """A symbol -> symbol -> rho mapping with every rho a finite number in [-1, 1]."""
    if type(raw) is CorrelationTable:
        return raw
    if not isinstance(raw, Mapping):
        raise InvalidInput(reasons.INVALID_CORRELATION, "correlations must be an object of objects")
    table: dict[str, dict[str, Decimal]] = {}
    for a, row in raw.items():
        if not isinstance(a, str) or not isinstance(row, Mapping):
            raise InvalidInput(reasons.INVALID_CORRELATION, f"correlations[{a!r}] must be an object")
        for b, rho in row.items():
            if not isinstance(b, str):
                raise InvalidInput(reasons.INVALID_CORRELATION, f"correlations[{a!r}] has a non-symbol key {b!r}")
            if type(rho) is Decimal and rho.is_finite() and -_ONE <= rho <= _ONE:
                value = rho  # what require_decimal would answer, without building its messages' f-strings
            else:
                value = require_decimal(rho, reasons.INVALID_CORRELATION, f"correlations[{a}][{b}]",
                                        minimum=-_ONE, maximum=_ONE)
            table.setdefault(a.strip().upper(), {})[b.strip().upper()] = value
    return CorrelationTable(table)


def _optional(value: object, code: str, what: str, **bounds: Decimal) -> Decimal | None:
    return None if value is None else require_decimal(value, code, what, **bounds)
