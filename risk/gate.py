"""The pre-trade gate (SPEC §2.1): every check is run and recorded; the first failure is the reason.

Each check is a small function of the (normalized) request, so scale-ins compose their own list
from the same pieces.
"""

from __future__ import annotations

from collections.abc import Iterable

from config.models import Settings
from risk import reasons
from risk.breakers import TradingState, effects
from risk.contracts import ContractSizing
from risk.decision import GateCheck
from risk.events import blackout
from risk.request import SizingRequest


# Decimals go into the texts as `{d!s}`: a bare `{d}` runs `Decimal.__format__` with an empty spec, which
# parses it (~3x `str(d)`, ~13 times a decision) and gives the same text (tests/risk/test_decimal_text.py).


def first_failure(checks: Iterable[GateCheck]) -> GateCheck | None:
    for check in checks:  # a plain loop: a generator's frame costs more than the eighteen tests
        if check.status == "fail":
            return check
    return None


def pre_quote_checks(request: SizingRequest, settings: Settings, *,
                     new_position: bool = True) -> tuple[GateCheck, ...]:
    """The SPEC §2.1 checks that need no option quote, in SPEC order. The engine runs them before it
    chooses or subscribes any contract, so a signal's reason never depends on whether quotes have
    arrived yet (a confidence of 0.5 is `confidence_below_threshold` with or without a market).
    `store_unavailable` (§6.2) follows `underlying_blocked`: no entry without a durable intent. A
    scale-in (`new_position=False`) adds to a position already counted, so the position-count
    checks are not its own; the event blackout is.

    One pass, each check's rule in its own commented block: a function per check was ~20 calls on
    every decision, a good part of the checks' cost. The checks a scale-in also runs on their own
    (`stale_market_data`, `bad_market_data`, `liquidity`, `greeks`) stay functions, as do the few
    whose refusals need several branches (`vix_threshold`, `event_blackout`, `closeout_window`)."""
    signal = request.signal
    symbol = signal.underlying
    # duplicate signal
    duplicate_check = (_fail(reasons.DUPLICATE_SIGNAL, f"signal {signal.id} was seen before") if request.duplicate
                       else _DUPLICATE_PASSED)
    # signal age against its ttl
    age, ttl = signal.age_s(request.now), signal.ttl_s
    expired_check = GateCheck(reasons.SIGNAL_EXPIRED, "fail" if age > ttl else "pass", f"signal is {age!s} s old, ttl {ttl!s} s")
    # trading state and account breaker
    state, level = request.trading_state, request.breaker_level
    if state is _RECONCILING:
        halted_check = _fail(reasons.HALTED, "trading state RECONCILING allows no entries: the store is being "
                                             "reconciled with the broker after a (re)connect")
    elif state not in _ENTRY_STATES:
        halted_check = _fail(reasons.HALTED, f"trading state {state.value} allows no entries")
    elif not effects(level).entries_allowed:
        halted_check = _fail(reasons.HALTED, f"account breaker at level {level}: no new entries this session")
    else:
        key = (reasons.HALTED, state._value_, level)  # the member's plain value: an Enum hashes in Python
        halted_check = _PASS_TEXTS.get(key) or _pass_once(key, reasons.HALTED,
                                                          f"trading state {state.value}, breaker level {level}")
    # underlying held for operator review (§6.1)
    if request.underlying_blocked:
        blocked_check = _fail(reasons.UNDERLYING_BLOCKED,
                              f"{symbol} is blocked until an operator acknowledges an unknown broker position")
    else:
        key = (reasons.UNDERLYING_BLOCKED, symbol)
        blocked_check = _PASS_TEXTS.get(key) or _pass_once(key, reasons.UNDERLYING_BLOCKED, f"{symbol} is not blocked")
    # the store (§6.2): an entry needs its order intent durable before it is sent; exits go on from memory
    store_check = (_fail(reasons.STORE_UNAVAILABLE, f"the store cannot write ({request.store_unavailable}): no entry "
                                                    f"without a durable intent; exits go on")
                   if request.store_unavailable else _STORE_WRITES)
    # confidence threshold
    value, threshold = signal.confidence, settings.gate.confidence_threshold
    confidence_check = (_fail(reasons.CONFIDENCE_BELOW_THRESHOLD, f"confidence {value!s} < {threshold!s}")
                        if value < threshold else
                        GateCheck(reasons.CONFIDENCE_BELOW_THRESHOLD, "pass", f"confidence {value!s} >= {threshold!s}"))
    common = (duplicate_check, expired_check, halted_check, blocked_check, store_check, confidence_check,
              vix_threshold(request, settings))
    # (tuples joined with `+`: one C concatenation, where `(*common, ...)` grows a list and copies it)
    if not new_position:
        return common + (event_blackout(request, settings), closeout_window(request))
    # open positions, in all and on this underlying
    positions, sizing = request.open_positions, settings.sizing
    held, limit = len(positions), sizing.max_positions
    if held >= limit:
        count_check = _fail(reasons.MAX_POSITIONS, f"{held} positions open, at most {limit}")
    else:
        key = (reasons.MAX_POSITIONS, held, limit)
        count_check = _PASS_TEXTS.get(key) or _pass_once(key, reasons.MAX_POSITIONS, f"{held} of {limit} positions open")
    on_symbol = 0
    for p in positions:  # a plain loop: a generator for `sum` is a frame resumed per position
        if p.underlying == symbol:
            on_symbol += 1
    limit = sizing.max_positions_per_underlying
    if on_symbol >= limit:
        symbol_check = _fail(reasons.MAX_POSITIONS_PER_SYMBOL, f"{on_symbol} {symbol} positions open, at most {limit}")
    else:
        key = (reasons.MAX_POSITIONS_PER_SYMBOL, on_symbol, limit, symbol)
        symbol_check = _PASS_TEXTS.get(key) or _pass_once(key, reasons.MAX_POSITIONS_PER_SYMBOL,
                                                          f"{on_symbol} of {limit} {symbol} positions open")
    return common + (count_check, symbol_check, event_blackout(request, settings), closeout_window(request))


def entry_checks(request: SizingRequest, settings: Settings, sizing: ContractSizing) -> tuple[GateCheck, ...]:
    """All SPEC §2.1 checks for a new position, in SPEC order."""
    # The three sizing outcomes (below the minimum bet, contract too expensive, sector cap) are one
    # refusal reason or none: at most one of them fails, with the sizer's message.
    refused = sizing.reason
    return pre_quote_checks(request, settings) + (
        stale_market_data(request, settings),
        bad_market_data(request) if request.market_data_problem else _BAD_MARKET_DATA_PASSED,
        _LIQUIDITY_PASSED if request.liquidity_ok else liquidity(request),
        _sizing_check(reasons.BELOW_MINIMUM_BET, sizing) if refused else _BELOW_MINIMUM_BET_PASSED,
        _sizing_check(reasons.CONTRACT_TOO_EXPENSIVE, sizing) if refused else _TOO_EXPENSIVE_PASSED,
        greeks(request, settings, sizing.contracts),
        _sizing_check(reasons.SECTOR_LIMIT, sizing) if refused else _SECTOR_PASSED,
    )


def _pass(name: str, detail: str = "") -> GateCheck:
    return GateCheck(name, "pass", detail)  # (the checks run on every decision build theirs directly: no frame)


# Checks whose outcome has a fixed text, built once: a GateCheck is frozen, so one instance can sit in
# every decision's record (about half of a decision's checks; each construction is ~0.5 us).
_PASSED = {name: GateCheck(name, "pass", "") for name in (
    reasons.BAD_MARKET_DATA, reasons.LIQUIDITY, reasons.DUPLICATE_SIGNAL, reasons.BELOW_MINIMUM_BET,
    reasons.CONTRACT_TOO_EXPENSIVE, reasons.SECTOR_LIMIT)}
_DUPLICATE_PASSED = _PASSED[reasons.DUPLICATE_SIGNAL]
_BAD_MARKET_DATA_PASSED = _PASSED[reasons.BAD_MARKET_DATA]
_LIQUIDITY_PASSED = _PASSED[reasons.LIQUIDITY]
_BELOW_MINIMUM_BET_PASSED = _PASSED[reasons.BELOW_MINIMUM_BET]
_TOO_EXPENSIVE_PASSED = _PASSED[reasons.CONTRACT_TOO_EXPENSIVE]
_SECTOR_PASSED = _PASSED[reasons.SECTOR_LIMIT]
_STORE_WRITES = GateCheck(reasons.STORE_UNAVAILABLE, "pass", "the store writes")
_NO_SAME_DAY_EXPIRY = GateCheck(reasons.CLOSEOUT_WINDOW, "skip", "no same-day expiry")
_CALENDAR_DISABLED = GateCheck(reasons.EVENT_BLACKOUT, "skip", "event calendar disabled")
# Passes whose text depends on a few small values only (trading state and breaker level, counts of
# positions, the symbol, today's release count): built on first use, then shared. Their keys are bounded
# (validated symbols, levels 0-4, counts below the configured limits, a day's releases), so these never
# grow past a few hundred entries.
_PASS_TEXTS: dict[tuple[object, ...], GateCheck] = {}


def _pass_once(key: tuple[object, ...], name: str, detail: str) -> GateCheck:
    check = _PASS_TEXTS.get(key)
    if check is None:
        check = _PASS_TEXTS[key] = GateCheck(name, "pass", detail)
    return check


def _fail(name: str, detail: str) -> GateCheck:
    return GateCheck(name, "fail", detail)


def _skip(name: str, detail: str) -> GateCheck:
    return GateCheck(name, "skip", detail)


# (a member read off the Enum class is a lookup through its metaclass that 3.11 does not specialize)
_RECONCILING = TradingState.RECONCILING
# The states whose `allows_entries` holds, read once: the property is a Python call on every decision,
# a tuple's `in` an identity test in C.
_ENTRY_STATES = tuple(state for state in TradingState if state.allows_entries)


def bad_market_data(request: SizingRequest) -> GateCheck:
    """SPEC §4.4: no entry is sized on a quote the sanity checks found unusable."""
    if request.market_data_problem:
        return _fail(reasons.BAD_MARKET_DATA, request.market_data_problem)
    return _PASSED[reasons.BAD_MARKET_DATA]


def vix_threshold(request: SizingRequest, settings: Settings) -> GateCheck:
    limit = settings.gate.vix_max_entry
    if limit is None:
        return _skip(reasons.VIX_ABOVE_THRESHOLD, f"no VIX limit for profile {settings.profile.name}")
    if request.vix is None:
        return _skip(reasons.VIX_ABOVE_THRESHOLD, "no VIX given")
    if not request.vix_usable:
        return _skip(reasons.VIX_ABOVE_THRESHOLD, f"VIX {request.vix!s} failed the market-data checks")
    if request.vix > limit:
        return _fail(reasons.VIX_ABOVE_THRESHOLD, f"VIX {request.vix!s} > {limit!s}")
    return GateCheck(reasons.VIX_ABOVE_THRESHOLD, "pass", f"VIX {request.vix!s} <= {limit!s}")


def stale_market_data(request: SizingRequest, settings: Settings) -> GateCheck:
    name, max_age = reasons.STALE_MARKET_DATA, settings.gate.max_quote_age_s
    if request.quote_age_s is not None and request.quote_age_s > max_age:
        return _fail(name, f"option quote is {request.quote_age_s!s} s old, more than {max_age!s} s")
    vix_needed = needs_vix(settings)
    if vix_needed:  # the VIX gates and scales the entry: a stale VIX is stale market data
        vix_age = request.vix_quote_age_s
        if vix_age is not None and vix_age > max_age:
            return _fail(name, f"VIX quote is {vix_age!s} s old, more than {max_age!s} s")
    if not request.what_if:
        if request.quote_age_s is None:
            return _fail(name, "no option quote")
        if vix_needed and request.vix is None:
            return _fail(name, "no VIX quote")
    if request.quote_age_s is None:
        return _skip(name, "quote age not given (what-if)")
    return GateCheck(name, "pass", f"option quote {request.quote_age_s!s} s old")


def needs_vix(settings: Settings) -> bool:
    """The profile gates or scales entries on the VIX, so the VIX quote is market data it sizes on."""
    return settings.gate.vix_max_entry is not None or bool(settings.multiplier.vix_factor_above
                                                           or settings.multiplier.vix_factor_below)


def liquidity(request: SizingRequest) -> GateCheck:
    if request.liquidity_ok is None:
        if request.what_if:
            return _skip(reasons.LIQUIDITY, "liquidity not given (what-if)")
        return _fail(reasons.LIQUIDITY, "no strike established as liquid")
    if not request.liquidity_ok:
        return _fail(reasons.LIQUIDITY, "no strike passes the liquidity check")
    return _PASSED[reasons.LIQUIDITY]


def _sizing_check(name: str, sizing: ContractSizing) -> GateCheck:
    if sizing.reason == name:
        return _fail(name, sizing.message)
    return _PASSED[name]


def greeks(request: SizingRequest, settings: Settings, contracts: int) -> GateCheck:
    """Portfolio greeks after the trade, in share-equivalents, against each configured limit.

    A limit whose greeks are missing refuses the entry ("greeks unavailable"): an unchecked
    limit is no limit. Only a what-if (the `size` command, which has no market) skips it.
    """
    name, gate = reasons.GREEKS_LIMIT, settings.gate
    shares = settings.profile.contract_multiplier * contracts  # an int: Decimal * int converts it exactly, no constructor call
    checked: list[str] = []
    missing: list[str] = []
    limits = settings.regime.greeks  # SPEC §10.4: vega ($/vol point) and theta ($/day) join delta and gamma
    for label, limit, per_share, book in (("delta", gate.max_abs_delta, request.option_delta, request.portfolio_delta),
                                          ("gamma", gate.max_gamma, request.option_gamma, request.portfolio_gamma),
                                          ("vega", limits.max_abs_vega, request.option_vega, request.portfolio_vega),
                                          ("theta", limits.max_abs_theta, request.option_theta,
                                           request.portfolio_theta)):
        if limit is None:
            continue
        if per_share is None or book is None:
            missing.append(f"no {'option' if per_share is None else 'portfolio'} {label}")
            continue
        after = book + per_share * shares
        # Delta and gamma (share-equivalents, products of 4-place greeks) are shown at 0.1: the text is
        # read, the comparison used the exact value. Vega and theta are dollars, already at the cent.
        shown = f"{after:.1f}" if label in ("delta", "gamma") else str(after)
        if abs(after) > limit:
            return _fail(name, f"portfolio {label} after the trade |{shown}| > {limit!s}")
        checked.append(f"{label} {shown} within {limit!s}")
    if missing and not request.what_if:
        return _fail(name, f"greeks unavailable: {', '.join(missing)}")
    if not checked:
        return _skip(name, "no greek limits" if not missing else f"greeks not given (what-if): {', '.join(missing)}")
    return GateCheck(name, "pass", "; ".join(checked))


# ------------------------------------------------------------------ SPEC §10 (market-regime rules)


def event_blackout(request: SizingRequest, settings: Settings) -> GateCheck:
    """Refused inside the window around a macro release (SPEC §10.1); the calendar came in as values."""
    name, cfg = reasons.EVENT_BLACKOUT, settings.regime.events
    if not cfg.enabled:
        return _CALENDAR_DISABLED
    event = blackout(request.now, request.events, cfg)
    if event is not None:
        return _fail(name, f"{event.label}: no entries from {cfg.blackout_before_min} min before to "
                           f"{cfg.blackout_after_min} min after the release")
    key = (name, len(request.events.macro))
    return _PASS_TEXTS.get(key) or _pass_once(key, name, f"{key[1]} macro release(s) today, none within the window")


def closeout_window(request: SizingRequest) -> GateCheck:
    """Room expiry: no entry (nor scale-in) into a same-day expiry once its close-out has started;
    the close-out would not take it and it would be left to expire (docs/decisions/expiry.md)."""
    name, cutoff = reasons.CLOSEOUT_WINDOW, request.closeout_at
    if cutoff is None:
        return _NO_SAME_DAY_EXPIRY
    if request.now >= cutoff:
        return _fail(name, f"today's expiry closes out from {cutoff:%H:%M:%S}: nothing could close it before it expires")
    return _pass(name, f"close-out from {cutoff:%H:%M:%S}")

