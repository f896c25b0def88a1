"""The daemon's state: SQLAlchemy 2 models, Alembic migrations, and the non-blocking `Store`."""

from daemon.store.database import default_url
from daemon.store.errors import StoreError
from daemon.store.migrate import upgrade
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
from daemon.store.store import Store

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
