"""Stable reason codes (snake_case) for refused signals and decisions.

Stored with every decision and returned by the API, so they never change meaning.
The gate's codes keep the names of SPEC §2.1, in its order.
"""

from __future__ import annotations

# SPEC §2.1 gate, in order (contract_too_expensive sits with below_minimum_bet: both come from sizing).
HALTED = "halted"
CONFIDENCE_BELOW_THRESHOLD = "confidence_below_threshold"
VIX_ABOVE_THRESHOLD = "vix_above_threshold"
MAX_POSITIONS = "max_positions"
MAX_POSITIONS_PER_SYMBOL = "max_positions_per_symbol"
STALE_MARKET_DATA = "stale_market_data"
LIQUIDITY = "liquidity"
DUPLICATE_SIGNAL = "duplicate_signal"
SIGNAL_EXPIRED = "signal_expired"
CONTRACT_TOO_EXPENSIVE = "contract_too_expensive"
BELOW_MINIMUM_BET = "below_minimum_bet"
GREEKS_LIMIT = "greeks_limit"
# SPEC §6.2, checked after underlying_blocked and before confidence_below_threshold: the store cannot
# commit an entry's intent, so no entry (room journal).
STORE_UNAVAILABLE = "store_unavailable"
# SPEC §10 (market-regime rules): event_blackout sits after max_positions_per_symbol, sector_limit last.
EVENT_BLACKOUT = "event_blackout"
SECTOR_LIMIT = "sector_limit"
# room expiry (SPEC §6.3, no SPEC §2.1 code): a same-day expiry's close-out (0dte) or expiry-day close
# (7dte) has started: nothing could close the entry before it expires. Last of the pre-quote checks.
CLOSEOUT_WINDOW = "closeout_window"
# Part 8: the gate's other SPEC §2.1 codes (order: see risk.gate.pre_quote_checks / entry_checks).
UNDERLYING_BLOCKED = "underlying_blocked"  # held for operator review (§6.1), not the trading state
BAD_MARKET_DATA = "bad_market_data"  # a quote the §4.4 sanity checks found unusable

# Signal validation (the `invalid_signal` family, raised by risk.signal.parse_signal).
INVALID_SIGNAL = "invalid_signal"
MISSING_FIELD = "missing_field"
UNKNOWN_FIELD = "unknown_field"
INVALID_TYPE = "invalid_type"
INVALID_VALUE = "invalid_value"
INVALID_ID = "invalid_id"
WRONG_PROFILE = "wrong_profile"
UNKNOWN_UNDERLYING = "unknown_underlying"
INVALID_DIRECTION = "invalid_direction"
INVALID_STRATEGY = "invalid_strategy"
INVALID_ACTION = "invalid_action"
INVALID_CONFIDENCE = "invalid_confidence"
INVALID_TTL = "invalid_ttl"
INVALID_CREATED_AT = "invalid_created_at"
CREATED_IN_FUTURE = "created_in_future"
MISSING_POSITION_ID = "missing_position_id"
UNEXPECTED_POSITION_ID = "unexpected_position_id"
INVALID_FUNDAMENTALS = "invalid_fundamentals"

# Request validation (bad numbers reaching the sizer: refused, never raised).
INVALID_PRICE = "invalid_price"
INVALID_CAPITAL_BASE = "invalid_capital_base"
INVALID_VIX = "invalid_vix"
INVALID_OPEN_POSITION = "invalid_open_position"
INVALID_CORRELATION = "invalid_correlation"
INVALID_BUYING_POWER = "invalid_buying_power"
INVALID_BREAKER_LEVEL = "invalid_breaker_level"
INVALID_TRADING_STATE = "invalid_trading_state"
INVALID_QUOTE_AGE = "invalid_quote_age"
INVALID_GREEKS = "invalid_greeks"
INVALID_VOLATILITY = "invalid_volatility"
INVALID_EVENTS = "invalid_events"

# Scale-in (SPEC §2.6).
SCALE_IN_DISABLED = "scale_in_disabled"
SCALE_IN_BREAKER = "scale_in_breaker"
SCALE_IN_POSITION_MISMATCH = "scale_in_position_mismatch"
SCALE_IN_NOT_IN_PROFIT = "scale_in_not_in_profit"
SCALE_IN_WINDOW_CLOSED = "scale_in_window_closed"
SCALE_IN_TOO_SMALL = "scale_in_too_small"
