"""The daemon's state: SQLAlchemy 2 models, Alembic migrations, and the non-blocking `Store`."""

from typing import Any

from daemon.store.errors import StoreError
from daemon.store.records import (
    BlockedUnderlying,
    BreakerEventRecord,
    CheckpointRecord,
    DaySummary,
    DecisionRecord,
    ExitEventRecord,
    FillOutcome,
    FillRecord,
    IntentRecord,
    OperatorActionRecord,
    OrderRecord,
    PositionRecord,
    SignalRecord,
    StoreSnapshot,
    TradingStateRecord,
)

# The records are plain dataclasses that pure code (daemon.positions, the core) imports; the store itself
# pulls SQLAlchemy and Alembic (~0.7 s), which a replay into memory (every `tradingd sweep` worker) never
# uses. So the database side loads on first use, not with the package.
_LAZY = {"Store": "daemon.store.store", "default_url": "daemon.store.database", "upgrade": "daemon.store.migrate"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BlockedUnderlying",
    "BreakerEventRecord",
    "CheckpointRecord",
    "DaySummary",
    "DecisionRecord",
    "ExitEventRecord",
    "FillOutcome",
    "FillRecord",
    "IntentRecord",
    "OperatorActionRecord",
    "OrderRecord",
    "PositionRecord",
    "SignalRecord",
    "Store",
    "StoreError",
    "StoreSnapshot",
    "TradingStateRecord",
    "default_url",
    "upgrade",
]
