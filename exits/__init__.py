"""Exit rules (SPEC §5, and the per-position levels of §3): pure functions of the position,
its exit state, a market snapshot and `now`, returning actions and the next state.

No I/O, no clock reads: the daemon supplies `now`, the session's hours and the quotes.
"""

from exits.action import ExitAction
from exits.breakeven import tighten_to_breakeven
from exits.closeout import expiry_close_at, zero_dte_closeout_at, zero_dte_flat_by
from exits.errors import ExitInputError
from exits.market import MarketSnapshot
from exits.policy import evaluate, new_state
from exits.position import ExitPosition
from market.session import EXCHANGE_TZ, SessionTimes
from exits.state import ExitState

__all__ = [
    "EXCHANGE_TZ",
    "ExitAction",
    "ExitInputError",
    "ExitPosition",
    "ExitState",
    "MarketSnapshot",
    "SessionTimes",
    "evaluate",
    "expiry_close_at",
    "new_state",
    "tighten_to_breakeven",
    "zero_dte_closeout_at",
    "zero_dte_flat_by",
]
