"""Interactive Brokers (TWS / IB Gateway) behind the Broker interface, through ib_async."""

from broker.ib.broker import IBBroker, Reconciler
from broker.ib.session import ConnectionState

__all__ = ["ConnectionState", "IBBroker", "Reconciler"]
