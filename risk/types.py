"""The value objects of `risk/` in one place, for callers that want a single import."""

from risk.breakers import BreakerEffects, BreakerState, BreakerUpdate, TradingState
from risk.capital import BetLimits
from risk.decision import CapBound, Decision, GateCheck
from risk.request import OpenPositionView, SizingRequest
from risk.scale_in import ScaleInRequest
from risk.signal import Fundamentals, Signal, SignalRejected

__all__ = [
    "BetLimits", "BreakerEffects", "BreakerState", "BreakerUpdate", "CapBound", "Decision", "Fundamentals",
    "GateCheck", "OpenPositionView", "ScaleInRequest", "Signal", "SignalRejected", "SizingRequest", "TradingState",
]
